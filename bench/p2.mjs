// P2: a file from headless Chromium to single-node Garage, drop to stored, hashing on
// (the engine always hashes: each part's SHA-1, checked by Garage, and the whole file's).
// Three contenders on the same file, the same Garage and bucket, the same part size and
// the same concurrency, each timed from the start of its upload call to "stored" (the
// object complete in the bucket):
//
//   engine  Shardrop's Uploader (web-wasm/pkg, its own worker, its defaults) against
//           `target/release/shardrop serve` with S3 storage on that Garage. Stored: the
//           task's `done` (the backend's CompleteMultipartUpload has answered).
//   uppy    Uppy 5 (@uppy/core + @uppy/aws-s3 multipart, bundled with esbuild at start) in
//           the same Chromium, page served by the same backend (so the bucket's CORS rule,
//           written by the backend, allows it). Its callbacks POST to a small signer in
//           this Node process (@aws-sdk/client-s3 + s3-request-presigner): Create, presigned
//           UploadPart URLs, Complete, Abort. Part size via getChunkSize, concurrency via
//           `limit` (Uppy's one queue, shared by its sign requests and part PUTs). Stored:
//           Uppy's `complete` event.
//   native  Outside the browser, in this Node process: CreateMultipartUpload, then
//           presigned UploadPart PUTs with Node's http module (keep-alive agent, as many
//           sockets as the concurrency), each body an fs.createReadStream of the part's
//           byte range of the file on disk, then CompleteMultipartUpload. No hashing.
//
// Part size: what the backend answers for a file of this size (POST /uploads); concurrency:
// the Uploader's default (DEFAULT_CONCURRENCY in web-wasm/pkg/index.js).
//
// Two network settings, each with a backend of its own (a new `shardrop serve` per round
// and setting, so the file is never known to it, with its bucket CORS for its origin):
//   throttled  every contender's S3 traffic (part PUTs, Create/Complete, the backend's own
//              calls) goes through a TCP proxy (bench/p2-page/throttle-proxy.mjs, a child
//              process) limiting each direction to 125,000,000 B/s over all connections:
//              a 1 Gbit/s link. Its counts (bytes, busiest 1 s) are kept per run.
//   loopback   straight to Garage's S3 port on 127.0.0.1.
//
// Each round runs every contender back to back per setting, the contender order rotated
// and the setting order alternated per round. CPU time (utime+stime, /proc) is taken over
// each timed window for: Chromium's process tree, Garage, the backend, the proxy, and this
// Node process (signer, native client, Playwright). Checks: every stored object's size
// (HEAD); the engine's server-verified SHA-1 equals the file's. Objects are deleted after
// each run.
//
//   node bench/p2.mjs [MiB=1024] [rounds=3]        (BENCH_SMOKE=1: 64 MiB, 1 round)
//
// Needs target/release/shardrop, web-wasm/pkg, Garage (~/.cache/shardrop/tools/bin/garage;
// infra/garage/dev.sh start is run here), /usr/bin/chromium (npm packages: bench/deps.mjs installs them).
// Writes bench/results/p2.json.
//
// Why one file of some 600 lines: it is one run, read top to bottom. Garage, the throttling
// proxy, Uppy's signer, the file, the Uppy bundle and the Chromium whose CPU is counted are
// set up once at the top, and the three contenders, the rounds and the summary all use them
// (the S3 clients, the bucket, the part size, the concurrency). Split by contender, every
// module would take all of that as arguments and one measurement would be read across four
// files. What other benchmarks share lives apart: the server and its API in
// tests/lib/shardrop.mjs, /proc in bench/proc.mjs, the page and the proxy in bench/p2-page/.

import "./deps.mjs";
import { execFileSync, fork } from "node:child_process";
import { cpSync, createReadStream, existsSync, readFileSync, statSync } from "node:fs";
import http from "node:http";
import { loadavg } from "node:os";
import { join } from "node:path";

import { BIN, MIB, ROOT, Server, sleep, tempDir } from "../tests/lib/shardrop.mjs";
import { HZ, processTable, readProc, treeTicks, waitIdle } from "./proc.mjs";

const {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadObjectCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  ListPartsCommand,
  S3Client,
  UploadPartCommand,
} = await import("@aws-sdk/client-s3");
const { getSignedUrl } = await import("@aws-sdk/s3-request-presigner");
const esbuild = await import("esbuild");

const { browser, makeFile, openPage } = await import("../tests/e2e/harness.mjs");
const { startGarage } = await import("./control/lib.mjs");
const { ARGS, command, machine, stats, waitQuiet, writeResult } = await import("./lib.mjs");

const SMOKE = process.env.BENCH_SMOKE === "1";
const mib = Number(ARGS[0] ?? (SMOKE ? 64 : 1024));
const rounds = Number(ARGS[1] ?? (SMOKE ? 1 : 3));
const RATE = 125_000_000; // bytes per second: 1 Gbit/s
const GIB = 2 ** 30;
const HERE = join(ROOT, "bench");
const PKG = join(ROOT, "web-wasm", "pkg");
const CONTENDERS = ["engine", "uppy", "native"];
const SETTINGS = ["throttled", "loopback"];
const log = (...a) => console.error(`# [${new Date().toISOString().slice(11, 19)}]`, ...a);

for (const [what, path] of [
  ["the release backend (cargo build --release --bin shardrop)", BIN],
  ["the engine's package (web-wasm/build.sh)", join(PKG, "index.js")],
  ["Chromium", process.env.CHROMIUM ?? "/usr/bin/chromium"],
]) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${what}`);
}

// ---- CPU time from /proc (bench/proc.mjs) ----------------------------------------------

/** A CPU reading of everything P2 runs; `cpuSince(reading)` gives seconds since it. */
function cpuReading(pids) {
  const procs = processTable();
  const own = (pid) => (procs.get(pid)?.own ?? 0) / HZ;
  const u = process.cpuUsage();
  return {
    chromium: treeTicks(procs, pids.chromium) / HZ,
    garage: own(pids.garage),
    backend: pids.backend ? own(pids.backend) : 0,
    proxy: own(pids.proxy),
    node: (u.user + u.system) / 1e6,
  };
}
const cpuSince = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, r3(b[k] - a[k])]));
const r3 = (x) => Math.round(x * 1000) / 1000;

// ---- Garage, the proxy, the signer ----------------------------------------------------

const garage = startGarage();
log(`garage pid ${garage.pid}, S3 ${garage.endpoint}, bucket ${garage.bucket}`);
const garagePort = Number(new URL(garage.endpoint).port);

const proxy = fork(join(HERE, "p2-page", "throttle-proxy.mjs"), ["0", "127.0.0.1", String(garagePort), String(RATE)], {
  stdio: ["ignore", "inherit", "inherit", "ipc"],
});
const proxyPort = await new Promise((resolve, reject) => {
  proxy.once("message", (m) => (m.type === "listening" ? resolve(m.port) : reject(new Error(JSON.stringify(m)))));
  proxy.once("exit", (c) => reject(new Error(`the proxy exited (${c})`)));
});
const proxyStats = (reset = false) =>
  new Promise((resolve) => {
    proxy.once("message", resolve);
    proxy.send({ type: "stats", reset });
  });
const ENDPOINTS = { throttled: `http://127.0.0.1:${proxyPort}`, loopback: garage.endpoint };
log(`throttling proxy (pid ${proxy.pid}) on ${ENDPOINTS.throttled} → ${garage.endpoint} at ${RATE} B/s each way`);

// The backend reads its S3 settings from env vars named by a prefix: one set per setting.
for (const [prefix, endpoint] of [["SHARDROP_TEST_S3_", garage.endpoint], ["P2_THROTTLED_S3_", ENDPOINTS.throttled]]) {
  process.env[`${prefix}ENDPOINT`] = endpoint;
  process.env[`${prefix}REGION`] = garage.region;
  process.env[`${prefix}BUCKET`] = garage.bucket;
  process.env[`${prefix}ACCESS_KEY_ID`] = garage.access_key_id;
  process.env[`${prefix}SECRET_ACCESS_KEY`] = garage.secret_access_key;
}
const S3_PREFIX = { throttled: "P2_THROTTLED_S3_", loopback: "SHARDROP_TEST_S3_" };

const s3For = (endpoint) =>
  new S3Client({
    endpoint,
    region: garage.region,
    credentials: { accessKeyId: garage.access_key_id, secretAccessKey: garage.secret_access_key },
    forcePathStyle: true,
    // No checksum of the SDK's own in presigned URLs or requests: a plain presigned PUT.
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  });
const S3 = { throttled: s3For(ENDPOINTS.throttled), loopback: s3For(ENDPOINTS.loopback) };
const Bucket = garage.bucket;
const direct = S3.loopback;
const presignPart = (s3, Key, UploadId, PartNumber) =>
  getSignedUrl(s3, new UploadPartCommand({ Bucket, Key, UploadId, PartNumber }), { expiresIn: 3600 });

// Uppy's signer: JSON in, JSON out, any origin. `signer.s3` is the current setting's client.
const signer = { s3: null, requests: {} };
const signerServer = http.createServer(async (req, res) => {
  const cors = {
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "POST, OPTIONS",
    "access-control-allow-headers": "content-type",
    "access-control-max-age": "3600",
  };
  if (req.method === "OPTIONS") return res.writeHead(204, cors).end();
  let body = "";
  for await (const c of req) body += c;
  const route = new URL(req.url, "http://x").pathname;
  signer.requests[route] = (signer.requests[route] ?? 0) + 1;
  try {
    const b = JSON.parse(body || "{}");
    const s3 = signer.s3;
    let out;
    if (route === "/create") {
      const r = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key: b.key, ContentType: b.type || "application/octet-stream" }));
      out = { uploadId: r.UploadId, key: r.Key ?? b.key };
    } else if (route === "/sign") {
      out = { url: await presignPart(s3, b.key, b.uploadId, b.partNumber), method: "PUT" };
    } else if (route === "/complete") {
      const Parts = b.parts.map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag })).sort((x, y) => x.PartNumber - y.PartNumber);
      const r = await s3.send(new CompleteMultipartUploadCommand({ Bucket, Key: b.key, UploadId: b.uploadId, MultipartUpload: { Parts } }));
      out = { location: r.Location ?? null };
    } else if (route === "/abort") {
      await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: b.key, UploadId: b.uploadId }));
      out = {};
    } else if (route === "/list") {
      const r = await s3.send(new ListPartsCommand({ Bucket, Key: b.key, UploadId: b.uploadId }));
      out = (r.Parts ?? []).map((p) => ({ PartNumber: p.PartNumber, ETag: p.ETag, Size: p.Size }));
    } else {
      res.writeHead(404, cors).end();
      return;
    }
    res.writeHead(200, { ...cors, "content-type": "application/json" }).end(JSON.stringify(out));
  } catch (e) {
    log(`signer ${route}: ${e}`);
    res.writeHead(500, { ...cors, "content-type": "text/plain" }).end(String(e));
  }
});
await new Promise((r) => signerServer.listen(0, "127.0.0.1", r));
const SIGNER = `http://127.0.0.1:${signerServer.address().port}`;

/** Deletes every object and aborts every multipart upload under `prefix`. */
async function purge(prefix) {
  let token;
  do {
    const r = await direct.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) await direct.send(new DeleteObjectCommand({ Bucket, Key: o.Key }));
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  const u = await direct.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix }));
  for (const x of u.Uploads ?? []) await direct.send(new AbortMultipartUploadCommand({ Bucket, Key: x.Key, UploadId: x.UploadId }));
}
const headSize = async (Key) => (await direct.send(new HeadObjectCommand({ Bucket, Key }))).ContentLength;

// ---- the native client -------------------------------------------------------------

function putRange(url, path, start, end, agent) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: "PUT", agent, headers: { "content-length": end - start } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (d) => (text += d));
      res.on("end", () => (res.statusCode === 200 ? resolve(res.headers.etag) : reject(new Error(`part PUT: ${res.statusCode} ${text}`))));
    });
    req.on("error", reject);
    createReadStream(path, { start, end: end - 1, highWaterMark: MIB }).on("error", reject).pipe(req);
  });
}

async function nativeUpload(s3, file, Key, partSize, concurrency) {
  const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
  const n = Math.max(1, Math.ceil(file.size / partSize));
  const etags = new Array(n);
  let next = 0;
  let inFlight = 0;
  let maxInFlight = 0;
  const t0 = performance.now();
  const { UploadId } = await s3.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType: "application/octet-stream" }));
  const lane = async () => {
    while (next < n) {
      const i = next++;
      const url = await presignPart(s3, Key, UploadId, i + 1);
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      etags[i] = await putRange(url, file.path, i * partSize, Math.min(file.size, (i + 1) * partSize), agent);
      inFlight--;
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(concurrency, n) }, lane));
    await s3.send(
      new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }),
    );
  } catch (e) {
    await s3.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => {});
    throw e;
  } finally {
    agent.destroy();
  }
  return { ms: performance.now() - t0, parts: n, max_parts_in_flight: maxInFlight };
}

// ---- the page's part PUTs ----------------------------------------------------------------

/** Counts part PUTs (PUTs other than the backend's part reports) and the most in flight at once. */
function watchPuts(page) {
  const w = { requests: 0, answered: 0, inFlight: 0, max_in_flight: 0, statuses: {} };
  const open = new Set();
  const isPart = (r) => r.method() === "PUT" && !new URL(r.url()).pathname.startsWith("/api/v1/");
  page.on("request", (r) => {
    if (!isPart(r)) return;
    w.requests++;
    open.add(r);
    w.max_in_flight = Math.max(w.max_in_flight, open.size);
  });
  // Ended at the answer: the engine reads only the ETag, so Chromium may call the rest aborted.
  page.on("response", (res) => {
    const r = res.request();
    if (!isPart(r) || !open.delete(r)) return;
    w.answered++;
    w.statuses[res.status()] = (w.statuses[res.status()] ?? 0) + 1;
  });
  page.on("requestfailed", (r) => isPart(r) && open.delete(r));
  return w;
}

// ---- the run -----------------------------------------------------------------------------

const waited = [await waitQuiet("p2")];
const work = tempDir("shardrop-bench-p2-");
log(`bundling Uppy with esbuild into ${work}`);
await esbuild.build({
  entryPoints: [join(HERE, "p2-page", "uppy-entry.js")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  define: { "process.env.NODE_ENV": '"production"' },
  outfile: join(work, "uppy-bundle.js"),
  logLevel: "warning",
});
const pkgVersion = (name) => JSON.parse(readFileSync(join(HERE, "node_modules", name, "package.json"), "utf8")).version;

const concurrencyMatch = /DEFAULT_CONCURRENCY\s*=\s*(\d+)/.exec(readFileSync(join(PKG, "index.js"), "utf8"));
if (!concurrencyMatch) throw new Error("no DEFAULT_CONCURRENCY in web-wasm/pkg/index.js: how does the Uploader pick its concurrency now?");
const CONCURRENCY = Number(concurrencyMatch[1]);

log(`making a ${mib} MiB file`);
const file = await makeFile(work, "p2-bench.bin", mib * MIB);
const chromium = await browser();
const cmdline = (pid) => readProc(pid, "cmdline") ?? "";
const chromiumPid = [...processTable()].find(([pid, p]) => p.ppid === process.pid && cmdline(pid).includes("chrom"))?.[0];
if (!chromiumPid) throw new Error("could not find Chromium's browser process among this process's children");
const machineStart = await machine(chromium);
const runs = [];
const servers = new Set();
let partSize = null;
let proxyBurst = null;
let partCount = null;

/** A new backend for one setting, serving P2's page, the package and the Uppy bundle. */
async function startServer(setting) {
  // Uppy's signer is another origin than the page's: the page's policy must allow it.
  const server = new Server({ storage: "s3", s3: S3_PREFIX[setting], env: { SHARDROP__PAGE_CONNECT_SRC: `["${SIGNER}"]` } });
  cpSync(join(HERE, "p2-page", "index.html"), join(server.web, "index.html"));
  cpSync(join(work, "uppy-bundle.js"), join(server.web, "uppy-bundle.js"));
  servers.add(server);
  await server.start();
  const { token } = await server.user();
  return { server, token };
}

async function stopServer(server) {
  await server.stop();
  servers.delete(server);
  await purge(server.prefix);
}

/** The part size the backend gives a file of this size (an upload made and dropped). */
async function askPartSize(server) {
  const r = await server.api("/uploads", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: "p2-part-size-probe.bin", size: file.size, content_type: "application/octet-stream" }),
  });
  const u = await r.json();
  if (r.status !== 201 || !u.part_size) throw new Error(`POST /uploads: ${r.status} ${JSON.stringify(u)}`);
  await server.api(`/uploads/${u.upload_id}`, { method: "DELETE" });
  return { part_size: u.part_size, part_count: u.part_count };
}

/**
 * One contender's timed window, the same for all three: once Garage and the backend are
 * idle, the CPU reading and the proxy's counters start, `upload` runs, and both are read.
 */
async function timed(pids, upload) {
  await waitIdle([pids.garage, pids.backend], { maxMs: 60_000 });
  const before = cpuReading(pids);
  await proxyStats(true);
  const r = await upload();
  const cpu = cpuSince(before, cpuReading(pids));
  return { r, cpu, link: await proxyStats() };
}

async function engineRun(ctx, pids) {
  const { server, token } = ctx;
  const page = await openPage(chromium, server, { token });
  const puts = watchPuts(page);
  await page.setInputFiles("#pick", file.path);
  // The Uploader made as a page makes it at load; its worker's wasm loaded before the clock.
  const wasm = page.waitForEvent("requestfinished", { predicate: (r) => r.url().endsWith(".wasm"), timeout: 15_000 }).catch(() => null);
  await page.evaluate((token) => window.makeEngine({ token }), token);
  const wasmSeen = (await wasm) !== null;
  await sleep(1000);
  const { r, cpu, link } = await timed(pids, () => page.evaluate(() => window.engineUpload()));
  await page.close();
  if (r.error) throw new Error(`engine upload failed: ${JSON.stringify(r)}`);
  if (r.state !== "complete") throw new Error(`engine upload ended ${r.state}, not complete (instant would mean the server knew the file)`);
  // Correctness: the server's own SHA-1 of the stored bytes (once verified), the object's size.
  const t0 = Date.now();
  let f;
  for (;;) {
    f = await (await server.api(`/files/${r.result.file_id}`)).json();
    if (f.status === "verified" || f.status === "corrupt" || Date.now() - t0 > 600_000) break;
    await sleep(200);
  }
  const verifiedAfterMs = Date.now() - t0;
  const listed = await direct.send(new ListObjectsV2Command({ Bucket, Prefix: server.prefix }));
  const objects = (listed.Contents ?? []).map((o) => o.Key);
  const size = objects.length === 1 ? await headSize(objects[0]) : null;
  const upload = await (await server.api(`/uploads/${r.upload_id}`)).json().catch(() => null);
  const checks = {
    server_status: f.status,
    server_sha1_ok: f.status === "verified" && f.sha1 === file.sha1,
    client_sha1_ok: r.result.sha1 === file.sha1,
    objects_under_prefix: objects.length,
    stored_size_ok: size === file.size,
    part_size_used: upload?.part_size ?? null,
    part_puts: puts.requests,
    part_puts_answered: puts.answered,
    part_put_statuses: puts.statuses,
    max_part_puts_in_flight: puts.max_in_flight,
    wasm_load_seen_before_clock: wasmSeen,
    verified_after_ms: verifiedAfterMs,
  };
  if (!checks.server_sha1_ok || !checks.stored_size_ok) throw new Error(`engine: stored file wrong: ${JSON.stringify({ f, checks })}`);
  const del = await server.api(`/files/${r.result.file_id}`, { method: "DELETE" });
  if (del.status !== 204) throw new Error(`DELETE /files: ${del.status}`);
  await purge(server.prefix);
  return { ms: r.ms, cpu, link, checks, states: r.states };
}

async function uppyRun(ctx, pids, setting, key) {
  const { server, token } = ctx;
  signer.s3 = S3[setting];
  signer.requests = {};
  const page = await openPage(chromium, server, { token });
  const puts = watchPuts(page);
  await page.setInputFiles("#pick", file.path);
  const versions = await page.evaluate((o) => window.makeUppy(o), { signer: SIGNER, partSize, limit: CONCURRENCY, key });
  await sleep(1000);
  const { r, cpu, link } = await timed(pids, () => page.evaluate(() => window.uppyUpload()));
  await page.close();
  if (r.error || r.successful !== 1 || r.failed.length) throw new Error(`uppy upload failed: ${JSON.stringify(r)}`);
  const size = await headSize(key);
  const checks = {
    stored_size_ok: size === file.size,
    part_puts: puts.requests,
    part_puts_answered: puts.answered,
    part_put_statuses: puts.statuses,
    max_part_puts_in_flight: puts.max_in_flight,
    signer_requests: signer.requests,
    versions,
  };
  if (!checks.stored_size_ok) throw new Error(`uppy: stored size ${size} != ${file.size}`);
  await direct.send(new DeleteObjectCommand({ Bucket, Key: key }));
  return { ms: r.ms, cpu, link, checks };
}

async function nativeRun(pids, setting, key) {
  const { r, cpu, link } = await timed(pids, () => nativeUpload(S3[setting], file, key, partSize, CONCURRENCY));
  const size = await headSize(key);
  const checks = { stored_size_ok: size === file.size, part_puts: r.parts, max_part_puts_in_flight: r.max_parts_in_flight };
  if (!checks.stored_size_ok) throw new Error(`native: stored size ${size} != ${file.size}`);
  await direct.send(new DeleteObjectCommand({ Bucket, Key: key }));
  return { ms: r.ms, cpu, link, checks };
}

const KEYS = `p2-bench/${process.pid}/`;
let failed = false;
try {
  for (let round = 1; round <= rounds; round++) {
    waited.push(await waitQuiet(`p2 round ${round}`));
    const settings = round % 2 ? SETTINGS : [...SETTINGS].reverse();
    for (const setting of settings) {
      const ctx = await startServer(setting);
      if (partSize === null) ({ part_size: partSize, part_count: partCount } = await askPartSize(ctx.server));
      log(`round ${round} ${setting}: backend ${ctx.server.origin} (pid ${ctx.server.proc.pid}), part size ${partSize}, concurrency ${CONCURRENCY}`);
      const pids = { chromium: chromiumPid, garage: garage.pid, backend: ctx.server.proc.pid, proxy: proxy.pid };
      const k = (round - 1) % CONTENDERS.length;
      const order = [...CONTENDERS.slice(k), ...CONTENDERS.slice(0, k)];
      try {
        for (const [i, contender] of order.entries()) {
          const key = `${KEYS}${contender}-r${round}-${setting}.bin`;
          const res =
            contender === "engine"
              ? await engineRun(ctx, pids)
              : contender === "uppy"
                ? await uppyRun(ctx, pids, setting, key)
                : await nativeRun(pids, setting, key);
          const s = res.ms / 1000;
          const run = {
            round,
            setting,
            contender,
            position: i + 1,
            seconds: r3(s),
            mb_s: r3(file.size / 1e6 / s),
            cpu_s: res.cpu,
            cpu_s_per_gib: Object.fromEntries(Object.entries(res.cpu).map(([k, v]) => [k, r3(v / (file.size / GIB))])),
            link: {
              up_bytes: res.link.up_bytes,
              down_bytes: res.link.down_bytes,
              up_mb_s_over_window: r3(res.link.up_bytes / 1e6 / res.link.seconds_since_reset),
              up_busiest_1s_mb_s: r3(res.link.up_busiest_1s_bytes / 1e6),
              down_busiest_1s_mb_s: r3(res.link.down_busiest_1s_bytes / 1e6),
            },
            loadavg_1m_after: r3(loadavg()[0]),
            checks: res.checks,
            ...(res.states ? { states: res.states } : {}),
          };
          proxyBurst = res.link.burst_bytes;
          runs.push(run);
          log(
            `round ${round} ${setting} ${contender}: ${run.seconds} s, ${run.mb_s} MB/s; CPU s/GiB ${JSON.stringify(run.cpu_s_per_gib)}; ` +
              `via proxy ${run.link.up_bytes} B up (busiest 1 s ${run.link.up_busiest_1s_mb_s} MB/s); load ${run.loadavg_1m_after}`,
          );
        }
      } finally {
        await stopServer(ctx.server);
      }
    }
  }

  // ---- summary -------------------------------------------------------------------------
  const pick = (setting, contender) => runs.filter((r) => r.setting === setting && r.contender === contender);
  const perContender = (setting) =>
    Object.fromEntries(
      CONTENDERS.map((c) => {
        const xs = pick(setting, c);
        return [
          c,
          {
            seconds: stats(xs.map((x) => x.seconds)),
            mb_s: stats(xs.map((x) => x.mb_s)),
            cpu_s_per_gib: Object.fromEntries(Object.keys(xs[0].cpu_s_per_gib).map((k) => [k, stats(xs.map((x) => x.cpu_s_per_gib[k]))])),
            cpu_s_per_gib_total_median: r3(
              stats(xs.map((x) => Object.values(x.cpu_s_per_gib).reduce((a, b) => a + b, 0))).median,
            ),
          },
        ];
      }),
    );
  const paired = (setting, a, b, f) =>
    [...new Set(runs.map((r) => r.round))].map((round) => {
      const x = runs.find((r) => r.round === round && r.setting === setting && r.contender === a);
      const y = runs.find((r) => r.round === round && r.setting === setting && r.contender === b);
      return f(x, y);
    });
  const summary = { throttled: perContender("throttled"), loopback: perContender("loopback") };
  const timeRatio = paired("throttled", "engine", "uppy", (e, u) => e.seconds / u.seconds);
  const tputRatio = paired("loopback", "engine", "native", (e, n) => e.mb_s / n.mb_s);
  const ratios = {
    throttled_engine_time_over_uppy: {
      target: "<= 1.05",
      of_medians: r3(summary.throttled.engine.seconds.median / summary.throttled.uppy.seconds.median),
      per_round: stats(timeRatio),
      target_met: summary.throttled.engine.seconds.median / summary.throttled.uppy.seconds.median <= 1.05,
    },
    loopback_engine_throughput_over_native: {
      target: ">= 0.7",
      of_medians: r3(summary.loopback.engine.mb_s.median / summary.loopback.native.mb_s.median),
      per_round: stats(tputRatio),
      target_met: summary.loopback.engine.mb_s.median / summary.loopback.native.mb_s.median >= 0.7,
    },
    // Not targets; for reading the two above.
    throttled_engine_time_over_native: r3(summary.throttled.engine.seconds.median / summary.throttled.native.seconds.median),
    loopback_engine_time_over_uppy: r3(summary.loopback.engine.seconds.median / summary.loopback.uppy.seconds.median),
    loopback_uppy_throughput_over_native: r3(summary.loopback.uppy.mb_s.median / summary.loopback.native.mb_s.median),
  };
  const throttledRuns = runs.filter((r) => r.setting === "throttled");
  const throttle = {
    rate_b_s: RATE,
    how: "TCP proxy (bench/p2-page/throttle-proxy.mjs) in front of Garage's S3 port, token bucket per direction over all connections",
    max_up_mb_s_over_window: Math.max(...throttledRuns.map((r) => r.link.up_mb_s_over_window)),
    max_up_busiest_1s_mb_s: Math.max(...throttledRuns.map((r) => r.link.up_busiest_1s_mb_s)),
    // Every throttled run's part bytes went through the proxy (at least the file's size)...
    all_throttled_runs_through_proxy: throttledRuns.every((r) => r.link.up_bytes >= file.size),
    // ...and no loopback run's did.
    loopback_runs_bytes_through_proxy: runs.filter((r) => r.setting === "loopback").reduce((a, r) => a + r.link.up_bytes, 0),
  };
  // A token bucket passes at most RATE * T + burst bytes in any T seconds.
  throttle.burst_bytes = proxyBurst;
  throttle.at_most_rate =
    throttle.max_up_mb_s_over_window <= RATE / 1e6 && throttle.max_up_busiest_1s_mb_s <= (RATE + proxyBurst) / 1e6;

  writeResult("p2", {
    what: "P2: a file from headless Chromium to single-node Garage, drop to stored, hashing on; Shardrop's engine vs Uppy 5 (@uppy/aws-s3 multipart) vs a native presigned-PUT client (Node http), same file, Garage, part size and concurrency",
    target: "throttled to 1 Gbit/s: engine time <= 1.05x Uppy's; loopback: engine throughput >= 0.7x native",
    command: command(),
    machine: { start: machineStart, end: await machine(chromium) },
    waited_for_quiet_s: waited,
    file_bytes: file.size,
    rounds,
    part_size: partSize,
    part_count: partCount,
    concurrency: CONCURRENCY,
    versions: {
      // The engine and backend change often: when were the ones measured built?
      shardrop_binary_mtime: statSync(BIN).mtime.toISOString(),
      engine_wasm_mtime: statSync(join(PKG, "shardrop_engine_bg.wasm")).mtime.toISOString(),
      "@uppy/core": pkgVersion("@uppy/core"),
      "@uppy/aws-s3": pkgVersion("@uppy/aws-s3"),
      esbuild: pkgVersion("esbuild"),
      "@aws-sdk/client-s3": pkgVersion("@aws-sdk/client-s3"),
      garage: (() => {
        try {
          return execFileSync(process.env.GARAGE_BIN ?? join(process.env.HOME, ".cache/shardrop/tools/bin/garage"), ["--version"], { encoding: "utf8" }).trim();
        } catch {
          return null;
        }
      })(),
    },
    clk_tck: HZ,
    cpu_note: "CPU seconds over each timed window: chromium = the browser's whole process tree (incl. reaped children); garage, backend (shardrop serve; idle for uppy/native), proxy = those processes; node = this process (signer, native client, Playwright)",
    throttle,
    ratios,
    summary,
    runs,
  });
} catch (e) {
  console.error(e);
  failed = true;
} finally {
  await chromium.close().catch(() => {});
  for (const s of servers) await s.stop().catch(() => {});
  await purge(KEYS).catch((e) => log(`purge: ${e}`));
  proxy.kill();
  signerServer.close();
}
// The proxy's IPC channel and the S3 clients' sockets would keep the process alive.
process.exit(failed ? 1 : 0);
