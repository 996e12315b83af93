// Writes bench/results/P1-P6-P7.md from the JSON the three benchmarks wrote
// (hash.json, dedup.json, first-put.json): one table, figures as measured.
//   node bench/report.mjs
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { ROOT } from "../tests/lib/shardrop.mjs";

const dir = join(ROOT, "bench", "results");
const load = (n) => (existsSync(join(dir, `${n}.json`)) ? JSON.parse(readFileSync(join(dir, `${n}.json`), "utf8")) : null);
const f = (x, d = 0) => (x === null || x === undefined ? "—" : Number(x).toFixed(d));
const machineOf = (m) => `${m.nproc} × ${m.cpu_model}, Chromium ${m.chromium}, load ${m.loadavg_1_5_15.join("/")}`;
const rows = [];

const hash = load("hash");
if (hash) {
  const e = hash.results.engine;
  const h = hash.results["hash-wasm"];
  const pr = hash.ratio_per_round;
  rows.push([
    "P1 whole-file SHA-1, MB/s",
    `${f(e.median_mb_s)} MB/s (${f(e.min_mb_s)}–${f(e.max_mb_s)})`,
    `hash-wasm ${f(h.median_mb_s)} MB/s (${f(h.min_mb_s)}–${f(h.max_mb_s)})`,
    `${f(hash.ratio_engine_to_hash_wasm, 2)}x`,
    pr ? `per round ${f(Math.min(...pr), 2)}–${f(Math.max(...pr), 2)}x; ${hash.rounds} rounds of ${f(hash.bytes / 2 ** 20)} MiB` : `${hash.rounds} rounds`,
    hash.machine ? machineOf(hash.machine) : `Chromium ${hash.chromium}`,
    `\`${hash.command ?? "node bench/hash.mjs"}\``,
    hash.ratio_engine_to_hash_wasm >= 1.2 ? "met (≥ 1.2x)" : `**missed** (≥ 1.2x: the engine would need ${f(1.2 / hash.ratio_engine_to_hash_wasm, 2)}x its speed)`,
  ]);
}

const dedup = load("dedup");
if (dedup) {
  const ref = dedup.reference.time_ms;
  for (const [who, label] of [["owner", "owner: instant, no challenge"], ["other_user", "second user: proof of possession"]]) {
    const d = dedup[who];
    rows.push([
      `P6 duplicate ${f(dedup.file_bytes / 2 ** 30, 0)} GiB, ${label}`,
      `${d.part_bytes_total} part bytes (${d.part_puts_total} PUTs); ${f(d.time_ms.median)} ms (${f(d.time_ms.min)}–${f(d.time_ms.max)})`,
      `hashing alone ${f(ref.median)} ms (${f(ref.min)}–${f(ref.max)}), ${f(dedup.reference.median_mb_s)} MB/s`,
      `${f(d.ratio_per_round.median, 2)}x (medians: ${f(d.ratio_of_medians, 2)}x)`,
      `per round ${f(d.ratio_per_round.min, 2)}–${f(d.ratio_per_round.max, 2)}x; ${d.time_ms.n} rounds`,
      `${machineOf(dedup.machine)}; ${dedup.storage}`,
      `\`${dedup.command}\``,
      d.target_met ? "met (0 bytes; ≤ 1.1x)" : "**missed** (0 bytes; ≤ 1.1x)",
    ]);
  }
}

const fp = load("first-put");
if (fp) {
  for (const mode of ["warm", "cold"]) {
    const m = fp[mode];
    const b = m.browser_request_start_ms ?? m.page_ms;
    rows.push([
      `P7 upload() → first part PUT, ${f(fp.file_bytes / 2 ** 30, 0)} GiB, ${mode === "warm" ? "worker ready" : "worker made at upload()"}`,
      `${f(b.median)} ms request start (${f(b.min)}–${f(b.max)}); engine's first_put_ms ${f(m.engine_first_put_ms.median)} ms (${f(m.engine_first_put_ms.min)}–${f(m.engine_first_put_ms.max)}); page ${f(m.page_ms.median)} ms`,
      "— (target 300 ms)",
      `${f(b.median / 300, 2)} of the budget`,
      `spread ${f(b.spread_pct)}% of the median; ${b.n} rounds`,
      `${machineOf(fp.machine)}; ${fp.storage}`,
      `\`${fp.command}\``,
      m.target_met ? "met (≤ 300 ms)" : "**missed** (≤ 300 ms)",
    ]);
  }
}

const head = ["row", "ours (median, min–max)", "reference", "ratio", "spread", "machine", "command", "target"];
const table = [head, head.map(() => "---"), ...rows].map((r) => `| ${r.join(" | ")} |`).join("\n");
const out = join(dir, "P1-P6-P7.md");
const notes = existsSync(join(dir, "notes.md")) ? "\n" + readFileSync(join(dir, "notes.md"), "utf8") : "";
writeFileSync(out, `## Issue 7: P1, P6, P7 (measured ${new Date().toISOString().slice(0, 16)} UTC)\n\n${table}\n${notes}`);
console.log(readFileSync(out, "utf8"));
