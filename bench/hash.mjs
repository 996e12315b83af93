// P1: incremental whole-file SHA-1 in a Chromium worker, the engine next to hash-wasm in
// the same run. `node bench/hash.mjs [MiB] [rounds]` after
// web-wasm/build.sh. Writes bench/results/hash.json.
import "./deps.mjs";
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

import { MIB, ROOT, Server, median, tempDir } from "../tests/lib/shardrop.mjs";
const { browser, makeFile, openPage } = await import("../tests/e2e/harness.mjs");
const { ARGS, command, flag, machine, waitQuiet } = await import("./lib.mjs");

const mib = Number(ARGS[0] ?? 512);
const rounds = Number(ARGS[1] ?? 5);
// --diag: also the engine's hasher fed in smaller pieces; results go to hash-diag.json.
const diag = flag("--diag");

const waited = await waitQuiet("hash");
const server = new Server();
cpSync(join(ROOT, "bench", "hash-page"), server.web, { recursive: true });
cpSync(join(ROOT, "bench", "node_modules", "hash-wasm", "dist", "index.esm.js"), join(server.web, "hash-wasm.esm.js"));
await server.start();
const chromium = await browser();
try {
  const file = await makeFile(tempDir(), "hash-bench.bin", mib * MIB);
  const page = await openPage(chromium, server);
  await page.setInputFiles("#pick", file.path);
  const out = await page.evaluate((o) => window.run(o), { rounds, diag });
  for (const [name, digest] of Object.entries(out.digests)) {
    if ((name.startsWith("engine") || name.startsWith("hash-wasm")) && digest !== file.sha1) {
      throw new Error(`${name}: the digest is wrong`);
    }
  }
  const mbps = (ms) => out.bytes / 1e6 / (ms / 1000);
  const rows = Object.fromEntries(
    Object.entries(out.times).map(([k, ts]) => [
      k,
      // The upper middle of an even count of rounds, as this benchmark has always taken it.
      { median_mb_s: mbps(median(ts, { upper: true })), min_mb_s: mbps(Math.max(...ts)), max_mb_s: mbps(Math.min(...ts)), times_ms: ts.map(Math.round) },
    ]),
  );
  if (out.digests.engine !== out.digests["hash-wasm"]) throw new Error(`digests differ: ${JSON.stringify(out.digests)}`);
  const result = {
    what: "incremental whole-file SHA-1 in a dedicated worker, 8 MiB slices of a File on disk",
    bytes: out.bytes,
    rounds,
    command: command(),
    machine: await machine(chromium),
    waited_for_quiet_s: waited,
    chromium: (await chromium.version()),
    results: rows,
    ratio_engine_to_hash_wasm: rows.engine.median_mb_s / rows["hash-wasm"].median_mb_s,
    // Round by round (the two ran back to back): noise on a shared machine hits both alike.
    ratio_per_round: out.times["hash-wasm"].map((t, i) => t / out.times.engine[i]),
    // The hash functions alone, each in the same loop: what the loop (read-ahead) gives and
    // what the compression function gives, told apart.
    ratio_same_plain_loop: rows["engine-plain-loop"].median_mb_s / rows["hash-wasm"].median_mb_s,
    ratio_same_read_ahead_loop: rows.engine.median_mb_s / rows["hash-wasm-read-ahead"].median_mb_s,
  };
  mkdirSync(join(ROOT, "bench", "results"), { recursive: true });
  writeFileSync(join(ROOT, "bench", "results", diag ? "hash-diag.json" : "hash.json"), JSON.stringify(result, null, 2));
  console.log(JSON.stringify(result, null, 2));
} finally {
  await chromium.close();
  await server.stop();
}
