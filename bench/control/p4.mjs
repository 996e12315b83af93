#!/usr/bin/env node
// Issue 7, row P4: completion latency for 10, 100, 1,000 and 10,000 parts. Shardrop's
// completing part report (ListParts + CompleteMultipartUpload + SQL) next to Garage's own
// CompleteMultipartUpload sent directly for an identical upload (same part size, same
// bytes, SHA-1 checksum algorithm, the same part list with per-part SHA-1), in the same
// run, over several rounds with the order alternated. Writes bench/results/p4.json.
//
//   node bench/control/p4.mjs
//
// Parts are made with S3 UploadPartCopy from one 5 MiB source object (Garage reuses its
// blocks: no N x 5 MiB over the wire, and no new disk use). Needs what p3.mjs needs.
// Knobs: BENCH_ROUNDS (3), BENCH_P4_PARTS ("10,100,1000,10000"), BENCH_COPY_CONCURRENCY (4),
// BENCH_NO_WAIT=1.
import crypto from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { performance } from "node:perf_hooks";
import { call, signUp } from "../../tests/lib/shardrop.mjs";
import * as L from "./lib.mjs";

L.ensureDeps();
const S3 = await import("@aws-sdk/client-s3");

const ROUNDS = Number(process.env.BENCH_ROUNDS || 3);
const SIZES = (process.env.BENCH_P4_PARTS || "10,100,1000,10000").split(",").map(Number);
const COPY_CONCURRENCY = Number(process.env.BENCH_COPY_CONCURRENCY || 4);
const PART_SIZE = 5 * L.MIB;
const DB = "shardrop_bench_p4";
const work = fs.mkdtempSync(path.join(os.tmpdir(), "shardrop-bench-p4-"));
const OUT = process.env.BENCH_P4_OUT || "p4.json";
const RUN = `bench-p4/${process.pid}-${Date.now()}`;

/** Runs `fn` over `items` with at most `n` at once; answers the results in order. */
async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i], i);
      }
    }),
  );
  return out;
}

function s3Client(s3) {
  const client = new S3.S3Client({
    region: s3.region,
    endpoint: s3.endpoint,
    forcePathStyle: true,
    credentials: { accessKeyId: s3.access_key_id, secretAccessKey: s3.secret_access_key },
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
    maxAttempts: 1,
  });
  // Time on the wire: from handing the signed request to the HTTP handler to the response
  // head (Garage answers Complete in one piece), without the SDK's XML building/parsing.
  client.wire = { last: null };
  client.middlewareStack.add(
    (next) => async (args) => {
      const t0 = performance.now();
      const out = await next(args);
      client.wire.last = performance.now() - t0;
      return out;
    },
    { step: "finalizeRequest", priority: "low", name: "benchWireTimer" },
  );
  return client;
}

/** Fills a multipart upload with `n` parts copied from the source object. */
async function fillParts(client, bucket, key, uploadId, n, sourceKey, sourceSha1) {
  return pool(
    Array.from({ length: n }, (_, i) => i + 1),
    COPY_CONCURRENCY,
    async (number) => {
      const out = await client.send(
        new S3.UploadPartCopyCommand({
          Bucket: bucket,
          Key: key,
          UploadId: uploadId,
          PartNumber: number,
          CopySource: `${bucket}/${sourceKey}`,
        }),
      );
      // Garage's CopyPartResult carries no checksum, but it stores the part's SHA-1 (the
      // upload's checksum algorithm): ListParts shows it, and Complete checks it.
      return { PartNumber: number, ETag: out.CopyPartResult.ETag, ChecksumSHA1: sourceSha1 };
    },
  );
}

let succeeded = false;
async function main() {
  await L.waitForBinary();
  const quiet = await L.waitForQuietMachine("p4");
  const s3 = L.startGarage();
  L.log(`garage: ${s3.endpoint}, bucket ${s3.bucket}`);
  const machine = L.machineFacts();
  const client = s3Client(s3);
  const dbUrl = L.freshDatabase(DB);
  const redisPrefix = `shardrop-bench-p4-${process.pid}`;
  let shardrop;
  const start = async () => {
    shardrop = await L.startShardrop({ s3, dbUrl, work, redisPrefix, extraEnv: { SHARDROP__STORAGE__S3__PART_CHECK: "sha1" } });
    return shardrop;
  };
  const source = crypto.randomBytes(PART_SIZE);
  const sourceSha1 = crypto.createHash("sha1").update(source).digest("base64");
  const sourceKey = `${RUN}/source-5mib`;
  const leftovers = [];
  try {
    await start();
    const { token } = await signUp(shardrop.base, { prefix: "bench" });
    await client.send(new S3.PutObjectCommand({ Bucket: s3.bucket, Key: sourceKey, Body: source }));
    let warmSteps = {};
    await warmUp();

    /** Garage's own CompleteMultipartUpload for n parts. */
    async function garageOwn(n, round) {
      const key = `${RUN}/direct-${n}-r${round}`;
      const up = await client.send(
        new S3.CreateMultipartUploadCommand({ Bucket: s3.bucket, Key: key, ContentType: "application/octet-stream", ChecksumAlgorithm: "SHA1" }),
      );
      leftovers.push({ key, uploadId: up.UploadId });
      const t = performance.now();
      const parts = await fillParts(client, s3.bucket, key, up.UploadId, n, sourceKey, sourceSha1);
      const setup = performance.now() - t;
      await L.waitIdle([s3.pid, shardrop.child.pid]);
      // The storage's own ListParts of the same parts (Shardrop's check before composing), timed apart.
      let t0 = performance.now();
      let listed = 0;
      let listWire = 0;
      for (let marker; ; ) {
        const page = await client.send(new S3.ListPartsCommand({ Bucket: s3.bucket, Key: key, UploadId: up.UploadId, PartNumberMarker: marker }));
        listWire += client.wire.last;
        listed += page.Parts?.length ?? 0;
        if (!page.IsTruncated) break;
        marker = page.NextPartNumberMarker;
      }
      if (listed !== n) throw new Error(`ListParts listed ${listed} parts of ${n}`);
      await L.waitIdle([s3.pid, shardrop.child.pid]);
      t0 = performance.now();
      await client.send(
        new S3.CompleteMultipartUploadCommand({ Bucket: s3.bucket, Key: key, UploadId: up.UploadId, MultipartUpload: { Parts: parts } }),
      );
      const total = performance.now() - t0;
      const wire = client.wire.last;
      const head = await client.send(new S3.HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
      if (head.ContentLength !== n * PART_SIZE) throw new Error(`direct object is ${head.ContentLength} bytes`);
      await client.send(new S3.DeleteObjectCommand({ Bucket: s3.bucket, Key: key }));
      return { wire_ms: L.r3(wire), sdk_ms: L.r3(total), list_parts_wire_ms: L.r3(listWire), setup_s: L.r3(setup / 1000) };
    }

    /** Shardrop's completing report for n parts (the other n-1 reported before). */
    async function shardropOwn(n, round) {
      const r = await call(shardrop.base, "POST", "/uploads", {
        token,
        body: { name: `p4-${n}-r${round}.bin`, size: n * PART_SIZE, content_type: "application/octet-stream" },
      });
      if (r.status !== 201 || r.json.part_count !== n || r.json.part_size !== PART_SIZE) throw new Error(`create: ${r.status} ${r.text}`);
      const id = r.json.upload_id;
      const [key, uploadId] = L.sql(dbUrl, `SELECT storage_key, storage_upload_id FROM uploads WHERE id = '${id}'`).split("\t");
      const t = performance.now();
      const parts = await fillParts(client, s3.bucket, key, uploadId, n, sourceKey, sourceSha1);
      await pool(parts.slice(0, n - 1), 8, async (p) => {
        const a = await call(shardrop.base, "PUT", `/uploads/${id}/parts/${p.PartNumber}`, { token, body: { etag: p.ETag, sha1: sourceSha1 } });
        if (a.status !== 200 || a.json.state !== "uploading") throw new Error(`report ${p.PartNumber}: ${a.status} ${a.text}`);
      });
      const setup = performance.now() - t;
      const last = parts[n - 1];
      await L.waitIdle([s3.pid, shardrop.child.pid]);
      const t0 = performance.now();
      const a = await call(shardrop.base, "PUT", `/uploads/${id}/parts/${n}`, { token, body: { etag: last.ETag, sha1: sourceSha1 } });
      const took = performance.now() - t0;
      if (a.status !== 200 || a.json.state !== "complete") throw new Error(`completing report: ${a.status} ${a.text}`);
      // Where the time went, from the server's own clock: its step sums now, less those of
      // the warm-up completions before.
      const sums = await stepSums();
      const steps_ms = Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, L.r3(v - (warmSteps[k] ?? 0))]));
      const head = await client.send(new S3.HeadObjectCommand({ Bucket: s3.bucket, Key: key }));
      if (head.ContentLength !== n * PART_SIZE) throw new Error(`composed object is ${head.ContentLength} bytes`);
      const d = await call(shardrop.base, "DELETE", `/files/${a.json.file.file_id}`, { token });
      if (d.status !== 204) throw new Error(`delete file: ${d.status} ${d.text}`);
      // The verifier reads every completed object back (N x 5 MiB) in the background; a
      // fresh process drops that work so it cannot load the next measurement (the deleted
      // file's queued job is acknowledged as gone later).
      await L.stopChild(shardrop.child);
      await start();
      await warmUp();
      return { ms: L.r3(took), steps_ms, setup_s: L.r3(setup / 1000) };
    }

    /**
     * Two small uploads (2 parts each) completed through the same path, after each restart:
     * a server that has run for a while has its SQL connections open and its statements
     * prepared; a fresh process pays for both on its first completion (~10 ms, seen in the
     * steps of a first completion). The step sums after the warm-up are kept, so the
     * measured completion's steps are the differences.
     */
    async function warmUp() {
      for (let i = 0; i < 2; i++) {
        const r = await call(shardrop.base, "POST", "/uploads", {
          token,
          body: { name: `p4-warm-${i}.bin`, size: 2 * PART_SIZE, content_type: "application/octet-stream" },
        });
        if (r.status !== 201) throw new Error(`warm-up create: ${r.status} ${r.text}`);
        const id = r.json.upload_id;
        const [key, uploadId] = L.sql(dbUrl, `SELECT storage_key, storage_upload_id FROM uploads WHERE id = '${id}'`).split("\t");
        const parts = await fillParts(client, s3.bucket, key, uploadId, 2, sourceKey, sourceSha1);
        let a;
        for (const p of parts) a = await call(shardrop.base, "PUT", `/uploads/${id}/parts/${p.PartNumber}`, { token, body: { etag: p.ETag, sha1: sourceSha1 } });
        if (a.status !== 200 || a.json.state !== "complete") throw new Error(`warm-up: ${a.status} ${a.text}`);
        await call(shardrop.base, "DELETE", `/files/${a.json.file.file_id}`, { token });
      }
      warmSteps = await stepSums();
    }

    /** The server's completion step sums so far, in ms. */
    async function stepSums() {
      const metrics = await (await fetch(`${shardrop.base}/metrics`)).text();
      const sums = {};
      for (const m of metrics.matchAll(/^shardrop_completion_step_seconds_sum\{step="(\w+)"\} (\S+)$/gm)) sums[m[1]] = Number(m[2]) * 1000;
      return sums;
    }

    const rounds = Array.from({ length: ROUNDS }, (_, k) => ({ round: k + 1, shardrop_first: (k + 1) % 2 === 0, by_parts: {} }));
    const summary = {};
    const done = [];
    const discarded = [];
    const report = () => {
      const r1000 = summary[1000]?.ratio_of_medians ?? null;
      return {
        benchmark: "P4 completion latency",
        command: "node bench/control/p4.mjs",
        when: new Date().toISOString(),
        complete: done.length === SIZES.length,
        part_counts_measured: done,
        setup: {
          shardrop: "target/release/shardrop serve, production-like: PostgreSQL (own database), Redis tracker, Garage S3; default workers (2), SHARDROP_LOG=warn, uploads.part_size=5 MiB, storage.s3.part_check=sha1 (skips the start-up probe only)",
          measured_shardrop: "client-side time of the completing PUT /api/v1/uploads/{id}/parts/{N} (the other N-1 reported before): tracker count, completion claim, SQL state change, ListParts (pages of 1,000), CompleteMultipartUpload with each part's ETag and SHA-1, file row, queueing the verification",
          measured_garage: "Garage's own CompleteMultipartUpload for an identical upload (CreateMultipartUpload with ChecksumAlgorithm SHA1, the same N parts of 5 MiB, Complete listing each part's ETag and ChecksumSHA1, as Shardrop sends), timed on the wire (signed request handed to the HTTP handler until the response); the time including the JS SDK's XML building and parsing is kept too",
          parts: "S3 UploadPartCopy from one 5 MiB random source object into each multipart upload (Garage reuses the blocks), for both sides; Shardrop's storage upload id read from its database",
          between: "before each timed request: wait until Garage and shardrop are idle (<5% CPU over 500 ms); after each Shardrop completion the file is deleted and shardrop restarted, so its verifier's read-back of the whole object does not load the next measurement, then warmed up with two 2-part completions (open SQL connections, prepared statements, as in a server that has been running)",
          order: "for each part count, rounds alternate: Garage first on odd rounds, Shardrop first on even rounds",
          storage: `${s3.endpoint}, bucket ${s3.bucket}`,
        },
        machine,
        waited_for_test_suite_s: quiet.waited_s,
        summary,
        targets: { ratio_at_1000_parts_le_1_2: { target: 1.2, measured: r1000, met: r1000 == null ? null : r1000 <= 1.2 } },
        rounds,
        discarded_measurements: discarded,
      };
    };
    for (const n of SIZES) {
      for (const res of rounds) {
        const round = res.round;
        let x;
        for (let attempt = 1; ; attempt++) {
          await L.waitForQuietMachine(`p4 ${n} parts round ${round}`);
          x = { loadavg_before: os.loadavg().map(L.r3) };
          const guard = L.startGuard();
          if (res.shardrop_first) {
            x.shardrop = await shardropOwn(n, round);
            x.garage = await garageOwn(n, round);
          } else {
            x.garage = await garageOwn(n, round);
            x.shardrop = await shardropOwn(n, round);
          }
          guard.stop();
          x.other_benchmarks_running = L.otherBenchmarks();
          if (!guard.disturbed || attempt >= 4) break;
          L.log(`${n} parts round ${round} overlapped ${guard.by.join(" and ")}: discarded (shardrop ${x.shardrop.ms} ms, garage ${x.garage.wire_ms} ms), taken again`);
          discarded.push({ parts: n, round, ...x, disturbed_by: guard.by });
        }
        x.ratio = L.r3(x.shardrop.ms / x.garage.wire_ms);
        res.by_parts[n] = x;
        L.log(`${n} parts, round ${round}: shardrop ${x.shardrop.ms} ms (steps ${JSON.stringify(x.shardrop.steps_ms)}), garage ${x.garage.wire_ms} ms on the wire (${x.garage.sdk_ms} ms with the JS SDK; its ListParts ${x.garage.list_parts_wire_ms} ms), ratio ${x.ratio}; setup ${x.shardrop.setup_s} s + ${x.garage.setup_s} s`);
      }
      const rs = rounds.map((r) => r.by_parts[n]);
      const ours = L.spread(rs.map((x) => x.shardrop.ms));
      const theirs = L.spread(rs.map((x) => x.garage.wire_ms));
      summary[n] = {
        shardrop_completing_report_ms: ours,
        garage_complete_wire_ms: theirs,
        garage_complete_with_js_sdk_ms: L.spread(rs.map((x) => x.garage.sdk_ms)),
        ratio_of_medians: L.r3(ours.median / theirs.median),
        ratio_per_round: L.spread(rs.map((x) => x.ratio)),
        // Medians of the server's own step times, and of Garage's ListParts of the same parts.
        shardrop_steps_median_ms: Object.fromEntries(
          Object.keys(rs[0].shardrop.steps_ms).map((k) => [k, L.median(rs.map((x) => x.shardrop.steps_ms[k] ?? 0))]),
        ),
        garage_list_parts_wire_ms: L.spread(rs.map((x) => x.garage.list_parts_wire_ms)),
      };
      done.push(n);
      L.writeJson(OUT, report()); // after each part count: partial results survive
    }
    const result = report();
    L.writeJson(OUT, result);
    succeeded = true;
  } finally {
    await L.stopAll();
    try {
      await client.send(new S3.DeleteObjectCommand({ Bucket: s3.bucket, Key: sourceKey }));
      for (const l of leftovers) {
        await client.send(new S3.AbortMultipartUploadCommand({ Bucket: s3.bucket, Key: l.key, UploadId: l.uploadId })).catch(() => {});
      }
    } catch (e) {
      L.log(`cleanup: ${e.message}`);
    }
    L.cleanUp(DB, work, succeeded);
  }
}

L.run(main);
