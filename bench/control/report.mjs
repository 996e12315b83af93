#!/usr/bin/env node
// Writes bench/results/P3-P4.md from bench/results/p3.json and p4.json (whichever exist).
//   node bench/control/report.mjs
import fs from "node:fs";
import path from "node:path";
import { RESULTS } from "./lib.mjs";

const read = (f) => {
  try {
    return JSON.parse(fs.readFileSync(path.join(RESULTS, f), "utf8"));
  } catch {
    return null;
  }
};
const p3 = read("p3.json");
const p4 = read("p4.json");
// A separate run of one part count (BENCH_P4_PARTS=10000 BENCH_P4_OUT=p4-10000.json), if any.
const p4b = read("p4-10000.json");
const f = (x, d = 1) => (x == null ? "n/a" : Number(x).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: d }));
const rng = (s, d = 1) => `${f(s.min, d)} to ${f(s.max, d)}`;
const yes = (b) => (b == null ? "n/a" : b ? "**met**" : "**missed**");
const out = [];
const m = (p3 || p4)?.machine;

out.push("# Issue 7, rows P3 and P4: control plane and completion, next to the references");
out.push("");
if (m) {
  out.push(
    `Machine: ${m.nproc} cores (\`nproc\`), ${m.cpu_model}, ${m.mem_total_gib} GiB, Linux ${m.kernel}; ${m.note}. ` +
      `Versions: shardrop ${m.versions.shardrop} (commit ${String(m.versions.shardrop_commit).slice(0, 12)}), ${m.versions.garage}, ` +
      `PostgreSQL ${m.versions.postgres}, Redis ${m.versions.redis}, Node ${m.versions.node}, @uppy/companion ${m.versions["@uppy/companion"]}, ` +
      `autocannon ${m.versions.autocannon}, @aws-sdk/client-s3 ${m.versions["@aws-sdk/client-s3"]}.`,
  );
  out.push("");
  out.push(
    "Setup measured: the production-like one. `shardrop serve` (release build) with PostgreSQL (a database of the benchmark's own), " +
      "the Redis tracker and Garage as S3 storage, its default worker count (one per core: 2), `SHARDROP_LOG=warn`, `http.sign_rate=0`.",
  );
  out.push("");
}

if (p3) {
  const s = p3.summary;
  const t = p3.targets;
  out.push("## P3: sign and report of parts (requests/s, p50/p99)");
  out.push("");
  out.push(`Command: \`${p3.command}\` (${p3.when}). ${p3.setup.load_generator}.`);
  out.push("");
  out.push("| measure | Shardrop | Companion (reference) | ratio | spread over rounds (min to max) | target | met? |");
  out.push("| --- | --- | --- | --- | --- | --- | --- |");
  out.push(
    `| sign, 1 part per request: req/s (median of ${s.shardrop_sign.requests_per_s.values.length}) | ${f(s.shardrop_sign.requests_per_s.median, 0)} | ${f(s.companion_sign.requests_per_s.median, 0)} | ${f(p3.ratio_sign_shardrop_over_companion.of_medians, 2)}x | Shardrop ${rng(s.shardrop_sign.requests_per_s, 0)}; Companion ${rng(s.companion_sign.requests_per_s, 0)}; ratio per round ${rng(p3.ratio_sign_shardrop_over_companion.per_round, 2)} | >= 3x | ${yes(t.sign_ratio_ge_3x.met)} |`,
  );
  out.push(
    `| sign: p50 / p99 latency (ms) | ${f(s.shardrop_sign.p50_ms.median, 2)} / ${f(s.shardrop_sign.p99_ms.median, 2)} | ${f(s.companion_sign.p50_ms.median, 2)} / ${f(s.companion_sign.p99_ms.median, 2)} | | Shardrop p99 ${rng(s.shardrop_sign.p99_ms, 2)}; Companion p99 ${rng(s.companion_sign.p99_ms, 2)} | p99 <= 10 ms | ${yes(t.shardrop_sign_p99_le_10ms.met)} |`,
  );
  out.push(
    `| report of a part: req/s | ${f(s.shardrop_report.requests_per_s.median, 0)} | none (no such route) | | ${rng(s.shardrop_report.requests_per_s, 0)} | | |`,
  );
  out.push(
    `| report: p50 / p99 latency (ms) | ${f(s.shardrop_report.p50_ms.median, 2)} / ${f(s.shardrop_report.p99_ms.median, 2)} | none | | p99 ${rng(s.shardrop_report.p99_ms, 2)} | p99 <= 10 ms | ${yes(t.shardrop_report_p99_le_10ms.met)} |`,
  );
  const bad = ["shardrop_sign", "shardrop_report", "companion_sign"].map((k) => `${k}: ${s[k].non_2xx_total} non-2xx, ${s[k].errors_total} errors`).join("; ");
  out.push("");
  out.push(`Failed requests over all rounds: ${bad}.`);
  out.push("");
  out.push(`- Shardrop sign: ${p3.setup.requests.shardrop_sign}.`);
  out.push(`- Shardrop report: ${p3.setup.requests.shardrop_report}.`);
  out.push(`- Companion sign: ${p3.setup.requests.companion_sign}. Companion: ${p3.setup.companion}.`);
  out.push(`- Companion report: ${p3.setup.requests.companion_report}.`);
  out.push("");
}

if (p4) {
  out.push("## P4: completion latency");
  out.push("");
  out.push(`Command: \`${p4.command}\` (${p4.when})${p4.complete ? "" : `; **incomplete run: only ${p4.part_counts_measured.join(", ")} parts measured**`}.`);
  out.push("");
  out.push("| parts | Shardrop completing report (ms, median) | Garage's own Complete, on the wire (ms, median) | ratio of medians | spread (min to max): Shardrop; Garage; ratio per round | Garage incl. JS SDK (ms) | target | met? |");
  out.push("| --- | --- | --- | --- | --- | --- | --- | --- |");
  for (const [n, x] of Object.entries(p4.summary)) {
    const tgt = Number(n) === 1000 ? "<= 1.2x" : "";
    const met = Number(n) === 1000 ? yes(p4.targets.ratio_at_1000_parts_le_1_2.met) : "";
    out.push(
      `| ${Number(n).toLocaleString("en-US")} | ${f(x.shardrop_completing_report_ms.median)} | ${f(x.garage_complete_wire_ms.median)} | ${f(x.ratio_of_medians, 2)}x | ${rng(x.shardrop_completing_report_ms)}; ${rng(x.garage_complete_wire_ms)}; ${rng(x.ratio_per_round, 2)} (${x.ratio_per_round.values.length} rounds) | ${f(x.garage_complete_with_js_sdk_ms.median)} | ${tgt} | ${met} |`,
    );
  }
  if (p4b) {
    for (const [n, x] of Object.entries(p4b.summary)) {
      if (p4.summary[n]) continue;
      out.push(
        `| ${Number(n).toLocaleString("en-US")} (separate run, ${x.ratio_per_round.values.length} rounds) | ${f(x.shardrop_completing_report_ms.median)} | ${f(x.garage_complete_wire_ms.median)} | ${f(x.ratio_of_medians, 2)}x | ${rng(x.shardrop_completing_report_ms)}; ${rng(x.garage_complete_wire_ms)}; ${rng(x.ratio_per_round, 2)} | ${f(x.garage_complete_with_js_sdk_ms.median)} | | |`,
      );
    }
    out.push("");
    out.push(`The ${Object.keys(p4b.summary).join(", ")}-part row comes from \`BENCH_P4_PARTS=10000 BENCH_ROUNDS=${p4b.rounds.length} BENCH_IGNORE_OTHER_BENCHMARKS=1 BENCH_P4_OUT=p4-10000.json ${p4b.command}\` (${p4b.when}), written to bench/results/p4-10000.json.`);
  }
  out.push("");
  out.push(`- Shardrop: ${p4.setup.measured_shardrop}.`);
  out.push(`- Garage: ${p4.setup.measured_garage}.`);
  out.push(`- Parts: ${p4.setup.parts}.`);
  out.push(`- Between measurements: ${p4.setup.between}.`);
  out.push(`- Order: ${p4.setup.order}.`);
  out.push("");
}

fs.writeFileSync(path.join(RESULTS, "P3-P4.md"), out.join("\n"));
console.error("wrote bench/results/P3-P4.md");
