// P6: a duplicate of a 1 GiB file the server holds and has verified: the part bytes it
// sends (target 0) and the time from upload() to done (target: at most 1.1x hashing the
// file alone, measured in the same worker of the same page, same run). Two duplicates per
// round: by the owner (the server answers `instant` at once once the hash is known) and by
// a second user, new each round (who must answer a proof-of-possession challenge from the
// file's bytes).
//
//   node bench/dedup.mjs [MiB=1024] [rounds=3] [--garage]
//
// after web-wasm/build.sh and the release build (npm packages: bench/deps.mjs). Embedded
// store by default; --garage uploads to the S3 server named by SHARDROP_TEST_S3_* (e.g.
// `eval "$(infra/garage/dev.sh start --export)"`). Writes bench/results/dedup.json.

import "./deps.mjs";
import { MIB, sleep, tempDir } from "../tests/lib/shardrop.mjs";
const { makeFile, openPage } = await import("../tests/e2e/harness.mjs");
const { ARGS, STORAGE: storage, countPartPuts, stats, uploadBench, waitQuiet, writeResult } = await import("./lib.mjs");

const mib = Number(ARGS[0] ?? 1024);
const rounds = Number(ARGS[1] ?? 3);
// Tier the wasm up in each fresh worker before timing anything in it.
const WARMUP = 32 * MIB;

const { waited, server, chromium, head, close } = await uploadBench("dedup", storage, { SHARDROP__DEDUP__SCOPE: "all" }); // the other-user rows need it
try {
  const file = await makeFile(tempDir("shardrop-bench-"), "dedup-bench.bin", mib * MIB);
  const owner = await server.user();

  // A page of its own (a fresh browser context: no IndexedDB memory of the file) per upload.
  async function session(token) {
    const page = await openPage(chromium, server, { token });
    const puts = countPartPuts(page);
    const proofs = [];
    page.on("request", (r) => r.url().endsWith("/proof") && proofs.push(r.url()));
    await page.setInputFiles("#pick", file.path);
    await page.evaluate((token) => window.makeUploader({ token }), token);
    return { page, puts, proofs };
  }

  // The original upload: all parts go.
  const first = await session(owner.token);
  const stored = await first.page.evaluate(() => window.uploadTimed());
  await sleep(500);
  if (stored.error || stored.result.sha1 !== file.sha1) throw new Error(`first upload: ${JSON.stringify(stored)}`);
  const original = {
    upload_ms: Math.round(stored.page_ms),
    state: stored.state,
    part_puts: first.puts.requests,
    part_bytes: first.puts.bytes,
  };
  await first.page.close();
  const t0 = Date.now();
  for (;;) {
    const f = await (await server.api(`/files/${stored.result.file_id}`)).json();
    if (f.status === "verified") break;
    if (f.status === "corrupt" || Date.now() - t0 > 600_000) throw new Error(`stored file: ${JSON.stringify(f)}`);
    await sleep(100);
  }
  original.verified_after_ms = Date.now() - t0;

  const runs = { reference: [], owner: [], other_user: [] };
  for (let r = 0; r < rounds; r++) {
    waited.push(await waitQuiet(`dedup round ${r + 1}`));
    // A new second user each round: once they hold a file of this content they are an owner
    // too, and no challenge would come.
    const other = await server.signUp();
    for (const [who, token] of r % 2 ? [["other_user", other.token], ["owner", owner.token]] : [["owner", owner.token], ["other_user", other.token]]) {
      const s = await session(token);
      await s.page.evaluate((limit) => window.hashAlone(limit), WARMUP);
      // Alternate which goes first in a page, so neither always gets the warmer cache.
      let ref, dup;
      if (r % 2) {
        dup = await s.page.evaluate(() => window.uploadTimed());
        ref = await s.page.evaluate(() => window.hashAlone());
      } else {
        ref = await s.page.evaluate(() => window.hashAlone());
        dup = await s.page.evaluate(() => window.uploadTimed());
      }
      await sleep(300);
      if (ref.sha1 !== file.sha1) throw new Error(`reference digest ${ref.sha1} != ${file.sha1}`);
      if (dup.error) throw new Error(`${who} duplicate failed: ${JSON.stringify(dup.error)}`);
      if (s.proofs.length !== (who === "owner" ? 0 : 1)) throw new Error(`${who}: ${s.proofs.length} proofs`);
      runs.reference.push({ round: r + 1, page: who, page_ms: ref.page_ms, worker_ms: ref.worker_ms });
      runs[who].push({
        round: r + 1,
        page_ms: dup.page_ms,
        state: dup.state,
        instant: dup.result.instant,
        sha1_ok: dup.result.sha1 === file.sha1,
        part_puts: s.puts.requests,
        part_bytes: s.puts.bytes,
        proofs: s.proofs.length,
        states: dup.states.map(([st, ms]) => `${st}@${Math.round(ms)}`),
        ratio_to_reference: dup.page_ms / ref.page_ms,
      });
      console.error(`# round ${r + 1} ${who}: duplicate ${Math.round(dup.page_ms)} ms (${dup.state}, ${s.puts.requests} part PUTs, ${s.proofs.length} proofs), hashing alone ${Math.round(ref.page_ms)} ms`);
      await s.page.close();
    }
  }

  const mbps = (ms) => file.size / 1e6 / (ms / 1000);
  const refMs = stats(runs.reference.map((x) => x.page_ms));
  const summary = (xs) => {
    const ms = stats(xs.map((x) => x.page_ms));
    const ratio = stats(xs.map((x) => x.ratio_to_reference));
    return {
      time_ms: ms,
      part_puts_total: xs.reduce((a, x) => a + x.part_puts, 0),
      part_bytes_total: xs.reduce((a, x) => a + x.part_bytes, 0),
      all_instant: xs.every((x) => x.state === "instant" && x.instant && x.sha1_ok),
      ratio_of_medians: ms.median / refMs.median,
      ratio_per_round: ratio,
      // Any part PUT at all misses "0 part bytes"; the time is judged on the paired ratios.
      target_met: xs.every((x) => x.part_puts === 0 && x.part_bytes === 0 && x.state === "instant") && ratio.median <= 1.1,
    };
  };
  writeResult("dedup", {
    what: "P6: a duplicate of a stored, verified file: part bytes sent and time from upload() to done, next to hashing the file alone with the engine's own whole-file loop (sha1_file: 8 MiB parts, the next read while one is hashed) in the same worker",
    target: "0 part bytes; <= 1.1x hashing time",
    ...(await head()),
    file_bytes: file.size,
    rounds,
    warmup_bytes_per_worker: WARMUP,
    original,
    reference: { time_ms: refMs, median_mb_s: mbps(refMs.median) },
    owner: summary(runs.owner),
    other_user: summary(runs.other_user),
    runs,
  });
} finally {
  await close();
}
