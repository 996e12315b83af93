#!/usr/bin/env node
// Issue 7, row P3: the control plane under load. Shardrop's sign (one part per request)
// and part report, next to Uppy Companion's S3 multipart signing route, with the same load
// generator (autocannon, in this process), the same concurrency and the same Garage, in
// the same run, interleaved over several rounds. Writes bench/results/p3.json.
//
//   node bench/control/p3.mjs
//
// Needs: target/release/shardrop (cargo build --release --bin shardrop), Garage
// (scripts/install-tools.sh garage; infra/garage/dev.sh start is run here), PostgreSQL at
// postgres://postgres@127.0.0.1:5432 and Redis at 127.0.0.1:6379.
// Knobs (environment): BENCH_ROUNDS (3), BENCH_DURATION_S (10), BENCH_WARMUP_S (3),
// BENCH_CONNECTIONS (16), BENCH_UPLOADS (16), BENCH_NO_WAIT=1 (do not wait for the test suite),
// BENCH_P3_OUT (p3.json; e.g. `BENCH_CONNECTIONS=4 BENCH_P3_OUT=p3-c4.json` for a lighter load).
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { call, signUp } from "../../tests/lib/shardrop.mjs";
import * as L from "./lib.mjs";

L.ensureDeps();
const { default: autocannon } = await import("autocannon");

const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const DURATION = Number(process.env.BENCH_DURATION_S || 10);
const WARMUP = Number(process.env.BENCH_WARMUP_S || 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS || 16);
const UPLOADS = Number(process.env.BENCH_UPLOADS || 16);
const PART_SIZE = 5 * L.MIB;
const PARTS = 10_000;
const DB = "shardrop_bench_p3";

const work = fs.mkdtempSync(path.join(os.tmpdir(), "shardrop-bench-p3-"));
const sha1b64 = crypto.createHash("sha1").update("a part").digest("base64");
const etag = `"${crypto.createHash("md5").update("a part").digest("hex")}"`;

/** One autocannon run; latencies recorded exactly (autocannon's histogram keeps whole ms). */
function load(opts, seconds) {
  return new Promise((resolve, reject) => {
    const lat = [];
    const statuses = {};
    const inst = autocannon({ connections: CONNECTIONS, pipelining: 1, duration: seconds, ...opts }, (err, res) => {
      if (err) return reject(err);
      lat.sort((a, b) => a - b);
      const q = (p) => (lat.length ? lat[Math.min(lat.length - 1, Math.ceil((p / 100) * lat.length) - 1)] : null);
      const ok = lat.length;
      resolve({
        requests_per_s: L.r3(ok / seconds),
        total_ok: ok,
        non_2xx: res.non2xx,
        errors: res.errors,
        timeouts: res.timeouts,
        statuses,
        latency_ms: { p50: L.r3(q(50)), p90: L.r3(q(90)), p99: L.r3(q(99)), max: L.r3(lat[lat.length - 1]), mean: L.r3(lat.reduce((a, b) => a + b, 0) / (ok || 1)) },
      });
    });
    inst.on("response", (_client, status, _bytes, ms) => {
      statuses[status] = (statuses[status] || 0) + 1;
      if (status >= 200 && status < 300) lat.push(ms);
    });
  });
}

/** A request factory that spreads connections over the uploads and varies part numbers. */
function rotating(build) {
  let conn = 0;
  return (req, ctx) => {
    if (ctx.i === undefined) {
      ctx.i = conn++;
      ctx.n = 0;
    }
    ctx.n += 1;
    return build(req, ctx.i, ctx.n);
  };
}

let succeeded = false;
async function main() {
  await L.waitForBinary();
  const quiet = await L.waitForQuietMachine("p3");
  const garage = L.startGarage();
  const s3 = garage;
  L.log(`garage: ${s3.endpoint}, bucket ${s3.bucket}`);
  const dbUrl = L.freshDatabase(DB);
  const redisPrefix = `shardrop-bench-p3-${process.pid}`;
  const machine = L.machineFacts();
  let shardrop, companion;
  try {
    shardrop = await L.startShardrop({ s3, dbUrl, work, redisPrefix });
    companion = await L.startCompanion({ s3, dir: path.join(work, "companion"), logFile: path.join(work, "companion.log") });
    L.log(`shardrop on ${shardrop.base} (pid ${shardrop.child.pid}), companion on ${companion.base} (pid ${companion.child.pid})`);

    // Shardrop: one user, UPLOADS uploads of 10,000 parts of 5 MiB each.
    const { token } = await signUp(shardrop.base, { prefix: "bench" });
    const uploads = [];
    for (let i = 0; i < UPLOADS; i++) {
      const r = await call(shardrop.base, "POST", "/uploads", {
        token,
        body: { name: `p3-${i}.bin`, size: PARTS * PART_SIZE, content_type: "application/octet-stream" },
      });
      if (r.status !== 201 || r.json.part_count !== PARTS) throw new Error(`create upload: ${r.status} ${r.text}`);
      uploads.push(r.json.upload_id);
    }
    // Companion: the same number of multipart uploads through its own route.
    const cUploads = [];
    for (let i = 0; i < UPLOADS; i++) {
      const r = await fetch(`${companion.base}/s3/multipart`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ filename: `p3-${i}.bin`, type: "application/octet-stream", metadata: {} }),
      });
      const j = await r.json();
      if (!r.ok || !j.uploadId) throw new Error(`companion create: ${r.status} ${JSON.stringify(j)}`);
      cUploads.push(j);
    }
    // Sanity: each route answers as expected once, and the Companion URL is a real presign.
    const probe = await call(shardrop.base, "POST", `/uploads/${uploads[0]}/parts/sign`, {
      token,
      body: { parts: [{ number: 1, sha1: sha1b64, size: PART_SIZE }] },
    });
    if (probe.status !== 200 || !probe.json.parts[0].url.includes("X-Amz-Signature")) throw new Error(`sign: ${probe.status} ${probe.text}`);
    const cprobe = await (await fetch(`${companion.base}/s3/multipart/${encodeURIComponent(cUploads[0].uploadId)}/1?key=${encodeURIComponent(cUploads[0].key)}`)).json();
    if (!String(cprobe.url).includes("X-Amz-Signature")) throw new Error(`companion sign: ${JSON.stringify(cprobe)}`);

    const auth = { authorization: `Bearer ${token}`, "content-type": "application/json" };
    const cases = {
      shardrop_sign: {
        url: shardrop.base,
        requests: [
          {
            method: "POST",
            headers: auth,
            setupRequest: rotating((req, i, n) => ({
              ...req,
              path: `/api/v1/uploads/${uploads[i % UPLOADS]}/parts/sign`,
              body: JSON.stringify({ parts: [{ number: ((n * 7919 + i) % PARTS) + 1, sha1: sha1b64, size: PART_SIZE }] }),
            })),
          },
        ],
      },
      // Parts 1..9,999 only: part 10,000 is never reported, so no upload ever completes
      // and every report is the Redis path (no storage call).
      shardrop_report: {
        url: shardrop.base,
        requests: [
          {
            method: "PUT",
            headers: auth,
            setupRequest: rotating((req, i, n) => ({
              ...req,
              path: `/api/v1/uploads/${uploads[i % UPLOADS]}/parts/${((n * 7919 + i) % (PARTS - 1)) + 1}`,
              body: JSON.stringify({ etag, sha1: sha1b64 }),
            })),
          },
        ],
      },
      companion_sign: {
        url: companion.base,
        requests: [
          {
            method: "GET",
            setupRequest: rotating((req, i, n) => {
              const u = cUploads[i % UPLOADS];
              return { ...req, path: `/s3/multipart/${encodeURIComponent(u.uploadId)}/${((n * 7919 + i) % PARTS) + 1}?key=${encodeURIComponent(u.key)}` };
            }),
          },
        ],
      },
    };
    const names = Object.keys(cases);
    // Warm-up (discarded): JIT, connection pools, caches.
    for (const name of names) {
      L.log(`warm-up ${name} ${WARMUP} s`);
      await load(cases[name], WARMUP);
    }
    const rounds = [];
    const discarded = [];
    for (let r = 0; r < ROUNDS; r++) {
      await L.waitForQuietMachine(`p3 round ${r + 1}`);
      const order = names.map((_, k) => names[(k + r) % names.length]); // rotate the order
      const round = { round: r + 1, order, loadavg_before: os.loadavg().map(L.r3), results: {} };
      const guard = L.startGuard();
      for (const name of order) {
        await L.waitIdle([garage.pid, shardrop.child.pid, companion.child.pid], { pct: 10, maxMs: 20_000 });
        const res = await load(cases[name], DURATION);
        round.results[name] = res;
        L.log(`round ${r + 1} ${name}: ${res.requests_per_s} req/s, p50 ${res.latency_ms.p50} ms, p99 ${res.latency_ms.p99} ms, non-2xx ${res.non_2xx}, errors ${res.errors}`);
        if (res.non_2xx || res.errors) L.log(`  statuses ${JSON.stringify(res.statuses)}`);
      }
      guard.stop();
      if (guard.disturbed && discarded.length < 5) {
        L.log(`round ${r + 1} overlapped ${guard.by.join(" and ")}: discarded, taken again`);
        discarded.push({ ...round, disturbed_by: guard.by });
        r -= 1;
        continue;
      }
      rounds.push(round);
    }

    const summary = {};
    for (const name of names) {
      const rs = rounds.map((x) => x.results[name]);
      summary[name] = {
        requests_per_s: L.spread(rs.map((x) => x.requests_per_s)),
        p50_ms: L.spread(rs.map((x) => x.latency_ms.p50)),
        p99_ms: L.spread(rs.map((x) => x.latency_ms.p99)),
        non_2xx_total: rs.reduce((a, x) => a + x.non_2xx, 0),
        errors_total: rs.reduce((a, x) => a + x.errors, 0),
      };
    }
    const ratios = rounds.map((x) => x.results.shardrop_sign.requests_per_s / x.results.companion_sign.requests_per_s);
    const ratioOfMedians = summary.shardrop_sign.requests_per_s.median / summary.companion_sign.requests_per_s.median;
    const p99 = summary.shardrop_sign.p99_ms.median;
    const p99r = summary.shardrop_report.p99_ms.median;
    const result = {
      benchmark: "P3 control plane: sign + report of parts",
      command: "node bench/control/p3.mjs",
      when: new Date().toISOString(),
      setup: {
        shardrop: "target/release/shardrop serve, production-like: PostgreSQL (own database), Redis tracker, Garage S3; default workers (one per core = 2), SHARDROP_LOG=warn, http.sign_rate=0, uploads.part_size=5 MiB",
        companion: "@uppy/companion express app (companion.app(options)), one Node process (its default), s3 {key, secret, bucket, region, endpoint, forcePathStyle}, metrics on (default), no access log",
        storage: `the same Garage for both (${s3.endpoint}, bucket ${s3.bucket}); signing touches no storage on either side`,
        load_generator: `autocannon ${machine.versions.autocannon}, in the benchmark's Node process on the same machine, ${CONNECTIONS} connections, pipelining 1, ${DURATION} s per measurement, ${WARMUP} s warm-up per case, ${ROUNDS} rounds with the order rotated; latencies recorded exactly per 2xx response (client side, loopback)`,
        requests: {
          shardrop_sign: `POST /api/v1/uploads/{id}/parts/sign with one part {number, sha1, size}, Bearer token; ${UPLOADS} uploads of 10,000 parts, connections spread over them, part numbers varied`,
          shardrop_report: `PUT /api/v1/uploads/{id}/parts/{n} {etag, sha1}, n in 1..9,999 (never completes: Redis + SQL path only)`,
          companion_sign: `GET /s3/multipart/{uploadId}/{partNumber}?key=... (one part per request, as Uppy's client asks); ${UPLOADS} uploads made with POST /s3/multipart`,
          companion_report: "none: Companion has no part-report route (Uppy's client keeps the part list and sends it to /complete)",
        },
      },
      machine,
      waited_for_test_suite_s: quiet.waited_s,
      summary,
      ratio_sign_shardrop_over_companion: {
        of_medians: L.r3(ratioOfMedians),
        per_round: L.spread(ratios),
      },
      targets: {
        sign_ratio_ge_3x: { target: 3, measured: L.r3(ratioOfMedians), met: ratioOfMedians >= 3 },
        shardrop_sign_p99_le_10ms: { target_ms: 10, measured_ms: p99, met: p99 <= 10 },
        shardrop_report_p99_le_10ms: { target_ms: 10, measured_ms: p99r, met: p99r <= 10 },
      },
      rounds,
      discarded_rounds: discarded,
    };
    L.writeJson(process.env.BENCH_P3_OUT || "p3.json", result);
    // Leave nothing behind in storage: abort the uploads on both sides.
    for (const id of uploads) await call(shardrop.base, "DELETE", `/uploads/${id}`, { token });
    for (const u of cUploads) await fetch(`${companion.base}/s3/multipart/${encodeURIComponent(u.uploadId)}?key=${encodeURIComponent(u.key)}`, { method: "DELETE" });
    succeeded = true;
  } finally {
    await L.stopAll();
    L.cleanUp(DB, work, succeeded);
  }
}

L.run(main);
