// bench/memory.mjs's backend part: `shardrop serve` taking many uploads at once through the
// REST API (parts PUT from this process, reports as the API says), its RSS sampled from a
// worker thread (./measure.mjs), next to its RSS after one 1 MiB upload. Two shapes: the
// production one (PostgreSQL, Redis, Garage: bench/control's startShardrop) and the
// one-command default (embedded database, tracker and store).
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";

import { MIB, Server, call, retryAfter, signUp, sleep } from "../../tests/lib/shardrop.mjs";
import { stats, waitQuiet } from "../lib.mjs";
import { rssSampler } from "./measure.mjs";
import { BACKEND_SAMPLE_MS, BASE_BYTES, FILE_MIB, PARTS_IN_FLIGHT, PART_MIB, TARGET_MIB, UPLOADS, load, log, mib } from "./settings.mjs";

/**
 * How every API call here is sent: 429 (Retry-After), 503 and 408 waited out, 50 times at
 * most; a network error (a kept-alive connection the server had closed) sent again, 5 times
 * at most: every call here is idempotent but POST /uploads, whose retry is counted apart.
 * The counts go to api.retries, api.timeouts_408, api.network_retries, api.create_retries
 * and api.network_errors (the first five).
 */
const RETRY = {
  statuses: [429, 503, 408],
  attempts: 50,
  network: 5,
  wait: (attempt, answer) => (answer ? retryAfter(attempt, answer) : 200 * (attempt + 1)),
  onRetry: ({ status, error, method, path }) => {
    if (error) {
      api.network_retries = (api.network_retries ?? 0) + 1;
      if (method === "POST" && path === "/uploads") api.create_retries = (api.create_retries ?? 0) + 1;
      if ((api.network_errors ??= []).length < 5) api.network_errors.push(`${method} ${path.replace(/up_[\w-]+/, "{id}")}: ${error.cause?.message ?? error.message}`);
    } else {
      api.retries = (api.retries ?? 0) + 1;
      if (status === 408) api.timeouts_408 = (api.timeouts_408 ?? 0) + 1;
    }
  },
};

/** An API call as `token`, with JSON: `{status, json, text}`. */
const api = (base, method, path, token, body) => call(base, method, path, { token, body, retry: RETRY });

/** A new account's token. */
const signIn = async (base) => (await signUp(base, { prefix: "p5", retry: RETRY })).token;

/**
 * The content of test files without holding them: part `n` of file `i` is a shared random
 * block with its last 16 bytes set to (i, n), so every part and file differs. Part SHA-1s
 * come from a copy of the block's hash state; whole-file SHA-1s are hashed once, ahead.
 */
function contentMaker(partSize) {
  const block = randomBytes(partSize);
  const prefixes = new Map();
  const tag = (i, n) => {
    const t = Buffer.alloc(16);
    t.writeUInt32BE(0x5035_0000, 0);
    t.writeUInt32BE(i, 4);
    t.writeUInt32BE(n, 8);
    t.writeUInt32BE(process.pid, 12);
    return t;
  };
  const prefixHash = (size) => {
    if (!prefixes.has(size)) prefixes.set(size, createHash("sha1").update(block.subarray(0, size - 16)));
    return prefixes.get(size);
  };
  const part = (i, n, size) => {
    const buf = Buffer.allocUnsafe(size);
    block.copy(buf, 0, 0, size - 16);
    tag(i, n).copy(buf, size - 16);
    return buf;
  };
  const partSha1 = (i, n, size) => prefixHash(size).copy().update(tag(i, n)).digest("base64");
  const sizes = (fileSize) => {
    const out = [];
    for (let off = 0; off < fileSize; off += partSize) out.push(Math.min(partSize, fileSize - off));
    return out;
  };
  const fileSha1 = (i, fileSize) => {
    const h = createHash("sha1");
    sizes(fileSize).forEach((size, k) => h.update(block.subarray(0, size - 16)).update(tag(i, k + 1)));
    return h.digest("hex");
  };
  return { part, partSha1, fileSha1, sizes };
}

/** One upload through the REST API: create, sign every part, then (after `go`) PUT and report. */
async function restUpload(base, token, content, i, size, sha1, go, counters) {
  const name = `p5-${i}.bin`;
  const created = await api(base, "POST", "/uploads", token, { name, size, content_type: "application/octet-stream", sha1 });
  if (created.status !== 201) throw new Error(`create ${name}: ${created.status} ${created.text}`);
  const up = created.json;
  const sizes = content.sizes(size);
  if (up.part_count !== sizes.length || (sizes.length > 1 && up.part_size !== sizes[0])) {
    throw new Error(`plan of ${name}: ${up.part_count} parts of ${up.part_size}, expected ${sizes.length} of ${sizes[0]}`);
  }
  const signed = await api(base, "POST", `/uploads/${up.upload_id}/parts/sign`, token, {
    parts: sizes.map((s, k) => ({ number: k + 1, sha1: content.partSha1(i, k + 1, s), size: s })),
  });
  if (signed.status !== 200) throw new Error(`sign ${name}: ${signed.status} ${signed.text}`);
  counters.signed++;
  await go;
  const t0 = Date.now();
  counters.uploads_active++;
  counters.max_uploads_active = Math.max(counters.max_uploads_active, counters.uploads_active);
  let file = null;
  let nextPart = 0;
  const sendOne = async (k) => {
    const p = signed.json.parts[k];
    const body = content.part(i, k + 1, sizes[k]);
    counters.puts_in_flight++;
    counters.max_puts_in_flight = Math.max(counters.max_puts_in_flight, counters.puts_in_flight);
    let res;
    try {
      // A network error (a kept-alive connection the server closed meanwhile, a reset)
      // is retried, as the engine retries a part; each is counted and the first kept.
      for (let attempt = 1; ; attempt++) {
        try {
          res = await fetch(new URL(p.url, base), { method: p.method, headers: p.headers, body });
          await res.arrayBuffer();
          if (res.status !== 408) break;
          // 408: the server gave up waiting for the request (sent again, as a browser would).
          counters.put_408++;
          await sleep(500 * attempt);
        } catch (e) {
          counters.put_retries++;
          if (counters.put_errors.length < 5) counters.put_errors.push(`${name} part ${k + 1}: ${e.message} (${e.cause?.code ?? e.cause?.message ?? ""})`);
          if (attempt >= 5) throw e;
          await sleep(500 * attempt);
        }
      }
    } finally {
      counters.puts_in_flight--;
    }
    if (!res.ok) throw new Error(`PUT ${name} part ${k + 1}: ${res.status}`);
    counters.part_bytes += sizes[k];
    const rep = await api(base, "PUT", `/uploads/${up.upload_id}/parts/${k + 1}`, token, {
      etag: res.headers.get("etag"),
      sha1: content.partSha1(i, k + 1, sizes[k]),
    });
    if (rep.status !== 200) throw new Error(`report ${name} part ${k + 1}: ${rep.status} ${rep.text}`);
    if (rep.json.state === "complete") file = rep.json.file;
  };
  const lane = async () => {
    while (nextPart < sizes.length) await sendOne(nextPart++);
  };
  await Promise.all(Array.from({ length: Math.min(PARTS_IN_FLIGHT, sizes.length) }, lane));
  counters.uploads_active--;
  // Several replicas, or racing reports, may answer `completing`: ask until it is complete.
  for (let k = 0; !file; k++) {
    const g = await api(base, "GET", `/uploads/${up.upload_id}`, token);
    if (g.json?.state === "complete") file = g.json.file;
    else if (k > 600) throw new Error(`${name} never completed: ${g.text}`);
    else await sleep(100);
  }
  return { upload_id: up.upload_id, file_id: file.file_id, ms: Date.now() - t0 };
}

/** Waits until every file is verified (its stored bytes hashed by the server). */
async function waitVerified(base, token, fileIds, limitMs = 900_000) {
  const t0 = Date.now();
  const left = new Set(fileIds);
  while (left.size) {
    for (const id of [...left]) {
      const f = await api(base, "GET", `/files/${id}`, token);
      if (f.status !== 200) throw new Error(`file ${id}: ${f.status} ${f.text}`);
      if (f.json.status === "verified") left.delete(id);
      else if (f.json.status === "corrupt") throw new Error(`file ${id} is corrupt`);
    }
    if (!left.size) break;
    if (Date.now() - t0 > limitMs) throw new Error(`${left.size} files still pending after ${limitMs} ms`);
    await sleep(250);
  }
  return Date.now() - t0;
}

export async function backendMode(mode, waited) {
  const L = await import("../control/lib.mjs");
  api.retries = 0;
  api.timeouts_408 = 0;
  api.network_retries = 0;
  api.create_retries = 0;
  api.network_errors = [];
  const partSize = PART_MIB * MIB;
  const fileSize = FILE_MIB * MIB;
  const work = mkdtempSync(join(tmpdir(), "shardrop-bench-p5-"));
  let server;
  let garage = null;
  let dbUrl = null;
  const DB = "shardrop_bench_p5";
  const redisPrefix = `shardrop-bench-p5-${process.pid}`;
  const env = { SHARDROP__UPLOADS__PART_SIZE: String(partSize) };
  try {
    if (mode === "garage") {
      garage = L.startGarage();
      dbUrl = L.freshDatabase(DB);
      const s = await L.startShardrop({ s3: garage, dbUrl, work, redisPrefix, prefix: `p5-${randomBytes(4).toString("hex")}/`, extraEnv: env });
      server = { base: s.base, pid: s.child.pid, stop: () => L.stopChild(s.child) };
    } else {
      // The one-command default: embedded database, in-memory tracker, local store.
      const web = join(work, "web");
      mkdirSync(web);
      const s = new Server({ storage: "local", env, web });
      await s.start();
      server = { base: s.origin, pid: s.proc.pid, stop: () => s.stop() };
    }
    log(`backend ${mode}: ${server.base} (pid ${server.pid})`);
    const content = contentMaker(partSize);
    const token = await signIn(server.base);
    const counters = { put_408: 0, put_retries: 0, put_errors: [], signed: 0, uploads_active: 0, max_uploads_active: 0, puts_in_flight: 0, max_puts_in_flight: 0, part_bytes: 0 };

    // Whole-file SHA-1s of the load's files, hashed ahead (the server checks them).
    const sha1s = Array.from({ length: UPLOADS }, (_, k) => content.fileSha1(k + 1, fileSize));

    // The baseline: one 1 MiB upload through the same API, verified, then 3 s idle.
    waited.push(await waitQuiet(`memory backend ${mode}`));
    const t0 = Date.now();
    const sampler = rssSampler(server.pid, t0);
    const one = await restUpload(server.base, token, content, 0, BASE_BYTES, content.fileSha1(0, BASE_BYTES), null, counters);
    await waitVerified(server.base, token, [one.file_id]);
    await sleep(1000);
    const baseFrom = sampler.samples.length;
    await sleep(2000);
    const baseSamples = sampler.samples.slice(baseFrom);
    const baseline = Math.max(...baseSamples.map((s) => s.VmRSS));
    const baselineHwm = baseSamples.at(-1).VmHWM;

    // The load: every upload created and signed first, then all sent at once.
    let start;
    const go = new Promise((r) => (start = r));
    const tCreate = Date.now();
    const loadFrom = sampler.samples.length;
    counters.signed = 0;
    const runs = sha1s.map((sha1, k) => restUpload(server.base, token, content, k + 1, fileSize, sha1, go, counters));
    let failed = null;
    runs.forEach((p) => p.catch((e) => (failed ??= e)));
    while (counters.signed < UPLOADS && !failed) await sleep(20);
    if (failed) throw failed;
    const loadBefore = load();
    // How late this process's event loop runs during the load (a slow client, not server).
    const loopDelay = monitorEventLoopDelay({ resolution: 20 });
    loopDelay.enable();
    const tGo = Date.now();
    start();
    const results = await Promise.all(runs);
    const tDone = Date.now();
    loopDelay.disable();
    const loadAfterUploads = load();
    const uploadSamplesTo = sampler.samples.length;
    const fileIds = results.map((r) => r.file_id);
    const verifyMs = await waitVerified(server.base, token, fileIds);
    const verifySamplesTo = sampler.samples.length;
    await sleep(5000);
    await sampler.stop();
    const settled = sampler.samples.at(-1);

    // Every upload complete, every file there.
    const checks = { complete: 0, files_found: 0, files_verified: 0 };
    for (const r of results) {
      const g = await api(server.base, "GET", `/uploads/${r.upload_id}`, token);
      if (g.json?.state === "complete" && g.json.file?.file_id === r.file_id) checks.complete++;
      const f = await api(server.base, "GET", `/files/${r.file_id}`, token);
      if (f.status === 200 && f.json.size === fileSize) checks.files_found++;
      if (f.json?.status === "verified") checks.files_verified++;
    }
    const listed = await api(server.base, "GET", "/files?limit=1000", token);
    checks.files_listed = listed.json.files.length;
    if (dbUrl) checks.sql_file_rows = Number(L.sql(dbUrl, "select count(*) from files"));
    if (checks.complete !== UPLOADS || checks.files_found !== UPLOADS || checks.files_verified !== UPLOADS) {
      throw new Error(`not all uploads completed: ${JSON.stringify(checks)}`);
    }

    const during = sampler.samples.slice(loadFrom, uploadSamplesTo);
    const verifying = sampler.samples.slice(uploadSamplesTo, verifySamplesTo);
    const peakOf = (xs) => (xs.length ? Math.max(...xs.map((s) => s.VmRSS)) : null);
    const peakUploads = peakOf(during);
    const peakVerify = peakOf(verifying);
    const peak = Math.max(peakUploads, peakVerify ?? 0);
    const result = {
      shape:
        mode === "garage"
          ? "PostgreSQL + Redis tracker + Garage (S3): part bytes go from the client straight to Garage"
          : "the one-command default: embedded database, in-memory tracker, local store (part bytes stream through the backend)",
      pid: server.pid,
      uploads: UPLOADS,
      file_bytes: fileSize,
      part_bytes: partSize,
      parts_in_flight_per_upload: PARTS_IN_FLIGHT,
      max_uploads_sending_at_once: counters.max_uploads_active,
      max_part_puts_in_flight: counters.max_puts_in_flight,
      part_bytes_sent: counters.part_bytes,
      api_retries_408_429_503: api.retries ?? 0,
      api_408: api.timeouts_408,
      part_put_408: counters.put_408,
      client_event_loop_delay_max_ms: Math.round(loopDelay.max / 1e6),
      client_event_loop_delay_p99_ms: Math.round(loopDelay.percentile(99) / 1e6),
      api_retries_network: api.network_retries,
      api_create_retries: api.create_retries,
      api_network_errors: api.network_errors,
      part_put_retries: counters.put_retries,
      part_put_errors: counters.put_errors,
      sample_interval_ms: BACKEND_SAMPLE_MS,
      samples_n: sampler.samples.length,
      baseline_rss_mib: mib(baseline),
      baseline_hwm_mib: mib(baselineHwm),
      baseline_window: stats(baseSamples.map((s) => mib(s.VmRSS))),
      peak_rss_during_uploads_mib: mib(peakUploads),
      peak_rss_during_verification_mib: mib(peakVerify),
      peak_rss_mib: mib(peak),
      hwm_at_end_mib: mib(settled.VmHWM),
      growth_mib: mib(peak - baseline),
      growth_hwm_mib: mib(settled.VmHWM - baseline),
      target_met: peak - baseline <= TARGET_MIB * MIB,
      rss_5s_after_verified_mib: mib(settled.VmRSS),
      rss_anon_peak_mib: mib(Math.max(...sampler.samples.map((s) => s.RssAnon ?? 0))),
      uploads_wall_ms: tDone - tGo,
      creates_and_signs_ms: tGo - tCreate,
      verification_ms: verifyMs,
      upload_ms: stats(results.map((r) => r.ms)),
      loadavg_before: loadBefore,
      loadavg_after_uploads: loadAfterUploads,
      checks,
      timeline: sampler.samples
        .filter((_, k) => k % 5 === 0 || k === sampler.samples.length - 1)
        .map((s) => ({ t_ms: s.t_ms, rss_mib: mib(s.VmRSS), hwm_mib: mib(s.VmHWM) })),
      marks_ms: { baseline_end: baseSamples.at(-1).t_ms, go: tGo - t0, uploads_done: tDone - t0, verified: tDone - t0 + verifyMs },
    };
    log(`backend ${mode}: baseline ${result.baseline_rss_mib} MiB, peak ${result.peak_rss_mib} MiB (uploads ${result.peak_rss_during_uploads_mib}, verification ${result.peak_rss_during_verification_mib}), growth ${result.growth_mib} MiB; ${counters.max_uploads_active} uploads and ${counters.max_puts_in_flight} PUTs in flight at most`);
    // Clean up the stored files (Garage keeps its blocks otherwise).
    if (mode === "garage") for (const id of [one.file_id, ...fileIds]) await api(server.base, "DELETE", `/files/${id}`, token);
    return result;
  } finally {
    await server?.stop();
    if (dbUrl) {
      L.dropDatabase(DB);
      // The tracker's keys of this run (the verification queue's stream outlives the server).
      const redis = ["-u", process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379"];
      const keys = spawnSync("redis-cli", [...redis, "--scan", "--pattern", `${redisPrefix}*`], { encoding: "utf8" }).stdout?.split("\n").filter(Boolean) ?? [];
      if (keys.length) spawnSync("redis-cli", [...redis, "del", ...keys]);
    }
    rmSync(work, { recursive: true, force: true });
  }
}
