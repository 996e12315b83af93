// P5: memory. Two parts, each next to a 1 MiB upload's baseline measured the same way in
// the same run (target: at most 64 MiB growth each).
//
// Browser: headless Chromium (the harness's), the upload benchmarks' page, the engine
// (the package's Uploader on its worker) uploading one file of GiB (4 by default) to a
// `shardrop serve` (embedded store; --garage: S3 on Garage). Every ~250 ms, over the
// DevTools protocol (the worker reached through the page's Target.setAutoAttach), the
// page's and the worker's JS heap (Runtime.getHeapUsage: used size, and the ArrayBuffer
// backing stores outside the heap) and the worker's wasm linear memory; and from /proc, the RSS and PSS of every Chromium
// process (browser, renderer, GPU, network and other utilities), so that Blob and network
// buffers outside the JS heaps show too. The baseline is the same, in a fresh context of
// the same browser, while and after uploading a 1 MiB file. Growth = the peak during the
// big upload minus the baseline's peak, per measure.
//
// Backend: `shardrop serve` taking 100 uploads at once (100 files of 40 MiB in 8 MiB
// parts, one user, one part PUT in flight per upload, all 100 uploads started together),
// the parts PUT from this Node process to the signed URLs, reports as the API says. Its
// VmRSS and VmHWM sampled every 100 ms from /proc; growth = the peak minus the RSS after
// one 1 MiB upload through the same API. Twice: the production shape (PostgreSQL, Redis
// tracker, Garage: part bytes go to storage, never through the backend), and the
// one-command default (embedded database, tracker and local store: part bytes stream
// through the backend into its own part storage).
//
//   node bench/memory.mjs [GiB=4] [--garage] [--browser-only | --backend-only]
//
// Needs the release build, web-wasm/build.sh, /usr/bin/chromium (npm packages: bench/deps.mjs
// installs them), and for the backend's production shape PostgreSQL (127.0.0.1:5432,
// db `test`), Redis (127.0.0.1:6379) and Garage (infra/garage/dev.sh start is run here).
// Knobs (environment): BENCH_P5_UPLOADS (100), BENCH_P5_FILE_MIB (40), BENCH_P5_PART_MIB
// (8), BENCH_P5_PARTS_IN_FLIGHT (1, per upload), BENCH_P5_SAMPLE_MS (250, browser),
// BENCH_P5_BACKENDS (garage,local: the backend shapes to run).
// BENCH_SMOKE=1: 64 MiB in the browser (unless GiB is given), 10 uploads of 16 MiB, nothing
// waited for; it checks that the script works and measures nothing.
// Writes bench/results/memory.json.

import "./deps.mjs";
import { spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Worker } from "node:worker_threads";
import { join } from "node:path";

const { MIB, Server, makeFile, openPage, sleep, tempDir } = await import("../tests/e2e/harness.mjs");
const { command, machine, stats, uploadBench, waitQuiet, writeResult } = await import("./lib.mjs");

const SMOKE = process.env.BENCH_SMOKE === "1";
const args = process.argv.slice(2).filter((a) => !a.startsWith("--"));
const GIB = Number(args[0] ?? 4);
const flag = (f) => process.argv.includes(f);
const browserStorage = flag("--garage") ? "s3" : "local";
const doBrowser = !flag("--backend-only");
const doBackend = !flag("--browser-only");
// BENCH_P5_BACKENDS=local (or garage) runs one of the backend's two shapes only.
const backendModes = (process.env.BENCH_P5_BACKENDS || "garage,local").split(",");

const TARGET_MIB = 64;
// A smoke run uploads 64 MiB unless a size is given.
const BIG_BYTES = SMOKE && args[0] === undefined ? 64 * MIB : Math.round(GIB * 1024) * MIB;
const BASE_BYTES = 1 * MIB;
const SAMPLE_MS = Number(process.env.BENCH_P5_SAMPLE_MS || 250);
const BACKEND_SAMPLE_MS = 100;
const UPLOADS = Number(process.env.BENCH_P5_UPLOADS || (SMOKE ? 10 : 100));
const FILE_MIB = Number(process.env.BENCH_P5_FILE_MIB || (SMOKE ? 16 : 40));
const PART_MIB = Number(process.env.BENCH_P5_PART_MIB || 8);
const PARTS_IN_FLIGHT = Number(process.env.BENCH_P5_PARTS_IN_FLIGHT || 1);

const log = (...a) => console.error(`# [${new Date().toISOString().slice(11, 19)}]`, ...a);
const mib = (b) => (b == null ? null : Math.round((b / MIB) * 10) / 10);
const load = () => loadavg().map((x) => Math.round(x * 100) / 100);

// ---- /proc ----------------------------------------------------------------------------

function readProc(pid, file) {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return null;
  }
}

/** kB fields of /proc/<pid>/status or smaps_rollup, in bytes. */
function kbFields(text, names) {
  const out = {};
  if (!text) return null;
  for (const name of names) {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    out[name] = m ? Number(m[1]) * 1024 : null;
  }
  return out;
}

/** Every process: pid → ppid. */
function processTable() {
  const table = new Map();
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const stat = readProc(name, "stat");
    if (!stat) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
    table.set(Number(name), ppid);
  }
  return table;
}

function descendants(root, table) {
  const kids = new Map();
  for (const [pid, ppid] of table) {
    if (!kids.has(ppid)) kids.set(ppid, []);
    kids.get(ppid).push(pid);
  }
  const out = [];
  const stack = [root];
  while (stack.length) {
    const p = stack.pop();
    for (const k of kids.get(p) ?? []) {
      out.push(k);
      stack.push(k);
    }
  }
  return out;
}

/** What kind of Chromium process a command line is. */
function chromiumKind(cmdline) {
  const type = /--type=([\w-]+)/.exec(cmdline)?.[1];
  if (!type) return /crashpad/.test(cmdline) ? "crashpad" : "browser";
  if (type === "utility") {
    const sub = /--utility-sub-type=([\w.]+)/.exec(cmdline)?.[1] ?? "";
    if (sub.startsWith("network.")) return "network";
    if (sub.startsWith("storage.")) return "storage";
    return "utility";
  }
  if (type === "gpu-process") return "gpu";
  return type; // renderer, zygote, broker, ...
}

/**
 * The Chromium processes this script started: the descendants of this Node process whose
 * executable is Chromium's (so not the `shardrop serve` it also started).
 */
function chromiumProcesses() {
  const table = processTable();
  const out = [];
  for (const pid of descendants(process.pid, table)) {
    const cmd = (readProc(pid, "cmdline") ?? "").split("\0").join(" ");
    if (!/chrom/i.test(cmd.split(" ")[0] ?? "")) continue;
    out.push({ pid, kind: chromiumKind(cmd) });
  }
  return out;
}

/** RSS and PSS (smaps_rollup) of each Chromium process, summed by kind and in all. */
function chromiumMemory() {
  const byKind = {};
  const total = { rss: 0, pss: 0, private: 0, processes: 0 };
  for (const { pid, kind } of chromiumProcesses()) {
    const f = kbFields(readProc(pid, "smaps_rollup"), ["Rss", "Pss", "Private_Clean", "Private_Dirty"]);
    if (!f || f.Rss == null) continue;
    const k = (byKind[kind] ??= { rss: 0, pss: 0, private: 0, processes: 0 });
    const priv = (f.Private_Clean ?? 0) + (f.Private_Dirty ?? 0);
    for (const t of [k, total]) {
      t.rss += f.Rss;
      t.pss += f.Pss ?? 0;
      t.private += priv;
      t.processes += 1;
    }
  }
  return { total, byKind };
}

// ---- the DevTools protocol on the page and its worker ------------------------------------

/**
 * A CDP session on the page and, through it, on its dedicated worker. Playwright's
 * sessions cannot address a child session of flat mode, so the worker is reached the
 * older way: auto-attach without flatten, messages wrapped in Target.sendMessageToTarget.
 */
async function devtools(page) {
  const s = await page.context().newCDPSession(page);
  const workers = [];
  const pending = new Map();
  let next = 1;
  s.on("Target.attachedToTarget", (e) => {
    if (e.targetInfo.type === "worker") workers.push({ sessionId: e.sessionId, url: e.targetInfo.url });
  });
  s.on("Target.detachedFromTarget", (e) => {
    const i = workers.findIndex((w) => w.sessionId === e.sessionId);
    if (i >= 0) workers.splice(i, 1);
  });
  s.on("Target.receivedMessageFromTarget", ({ message }) => {
    const m = JSON.parse(message);
    const p = pending.get(m.id);
    if (!p) return;
    pending.delete(m.id);
    m.error ? p.reject(new Error(`${m.error.message}`)) : p.resolve(m.result);
  });
  await s.send("Target.setAutoAttach", { autoAttach: true, waitForDebuggerOnStart: false, flatten: false });
  const withTimeout = (p, ms, what) =>
    Promise.race([p, sleep(ms).then(() => Promise.reject(new Error(`${what}: no answer in ${ms} ms`)))]);
  const toWorker = (method, params = {}) => {
    const w = workers.at(-1);
    if (!w) return Promise.reject(new Error("no worker attached"));
    const id = next++;
    const answer = new Promise((resolve, reject) => pending.set(id, { resolve, reject }));
    s.send("Target.sendMessageToTarget", { sessionId: w.sessionId, message: JSON.stringify({ id, method, params }) }).catch(
      (e) => pending.get(id)?.reject(e),
    );
    return withTimeout(answer, 2000, method).finally(() => pending.delete(id));
  };
  return {
    workers,
    page: (method, params = {}) => withTimeout(s.send(method, params), 2000, method),
    worker: toWorker,
    detach: () => s.detach().catch(() => {}),
  };
}

/** One browser sample: JS heaps (page, worker), wasm memory, Chromium RSS/PSS, progress. */
async function browserSample(dt, page, t0) {
  const heap = (h) =>
    h ? { used: h.usedSize, total: h.totalSize, backing: h.backingStorageSize ?? null, embedder: h.embedderHeapUsedSize ?? null } : null;
  const soft = (p) => p.catch(() => null);
  const [pageHeap, workerHeap, wasm, progress] = await Promise.all([
    soft(dt.page("Runtime.getHeapUsage")),
    soft(dt.worker("Runtime.getHeapUsage")),
    soft(dt.worker("Runtime.evaluate", { expression: "self.benchWasm?.memory?.buffer.byteLength ?? null", returnByValue: true })),
    soft(page.evaluate(() => (window.task ? { ...window.task.progress, state: window.task.state } : null))),
  ]);
  const mem = chromiumMemory();
  return {
    t_ms: Date.now() - t0,
    sent: progress?.sent ?? null,
    hashed: progress?.hashed ?? null,
    state: progress?.state ?? null,
    page_heap: heap(pageHeap),
    worker_heap: heap(workerHeap),
    wasm_memory: wasm?.result?.value ?? null,
    chromium: mem.total,
    by_kind: mem.byKind,
  };
}

/** The measures a browser sample gives, in bytes (null where unknown). */
const BROWSER_MEASURES = {
  // Judged: what the page and its worker hold, as the DevTools protocol tells it.
  page_plus_worker: (s) => {
    const parts = [s.page_heap?.used, s.page_heap?.backing, s.worker_heap?.used, s.worker_heap?.backing, wasmOutsideBacking(s)];
    if (s.page_heap == null || s.worker_heap == null) return null;
    return parts.reduce((a, b) => a + (b ?? 0), 0);
  },
  js_heap_page: (s) => s.page_heap?.used ?? null,
  js_heap_worker: (s) => s.worker_heap?.used ?? null,
  array_buffers_page: (s) => s.page_heap?.backing ?? null,
  array_buffers_worker: (s) => s.worker_heap?.backing ?? null,
  wasm_memory_worker: (s) => s.wasm_memory,
  renderer_rss: (s) => s.by_kind.renderer?.rss ?? null,
  renderer_pss: (s) => s.by_kind.renderer?.pss ?? null,
  chromium_rss_total: (s) => s.chromium.rss,
  chromium_pss_total: (s) => s.chromium.pss,
  browser_process_rss: (s) => s.by_kind.browser?.rss ?? null,
  network_process_rss: (s) => s.by_kind.network?.rss ?? null,
  gpu_process_rss: (s) => s.by_kind.gpu?.rss ?? null,
};

// Chromium's backingStorageSize leaves a wasm memory out (checked with Chromium 156: a
// worker holding a 50 MiB Uint8Array and a 6.25 MiB WebAssembly.Memory reports 50 MiB).
function wasmOutsideBacking(s) {
  return s.wasm_memory ?? 0;
}

/** Samples every SAMPLE_MS until `done` settles; answers the samples. */
async function sampleWhile(done, take) {
  const samples = [];
  let finished = false;
  done.finally(() => (finished = true)).catch(() => {});
  while (!finished) {
    const t = Date.now();
    samples.push(await take());
    await Promise.race([sleep(Math.max(0, SAMPLE_MS - (Date.now() - t))), done.catch(() => {})]);
  }
  samples.push(await take());
  return samples;
}

function peaks(samples, measures) {
  const out = {};
  for (const [k, f] of Object.entries(measures)) {
    const xs = samples.map(f).filter((x) => x != null);
    out[k] = xs.length ? Math.max(...xs) : null;
  }
  return out;
}

/**
 * Whether a measure grows with the bytes sent: its peak over the first and the last
 * quarter of the upload (by bytes sent), and the least-squares slope in MiB per GiB sent.
 */
function growthWithSize(samples, f) {
  const xs = samples.filter((s) => s.sent != null && f(s) != null && s.state === "uploading");
  if (xs.length < 8) return null;
  const total = Math.max(...xs.map((s) => s.sent));
  const q = (a, b) => xs.filter((s) => s.sent >= a * total && s.sent <= b * total).map(f);
  const first = q(0, 0.25);
  const last = q(0.75, 1);
  const n = xs.length;
  const mx = xs.reduce((a, s) => a + s.sent, 0) / n;
  const my = xs.reduce((a, s) => a + f(s), 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const s of xs) {
    sxy += (s.sent - mx) * (f(s) - my);
    sxx += (s.sent - mx) ** 2;
  }
  const slope = sxx ? sxy / sxx : 0; // bytes per byte
  return {
    peak_first_quarter_mib: first.length ? mib(Math.max(...first)) : null,
    peak_last_quarter_mib: last.length ? mib(Math.max(...last)) : null,
    slope_mib_per_gib_sent: Math.round(slope * 1024 * 100) / 100,
  };
}

// ---- browser part ----------------------------------------------------------------------

async function ensureS3Env() {
  if (process.env.SHARDROP_TEST_S3_ENDPOINT) return;
  const { startGarage } = await import("./control/lib.mjs");
  const g = startGarage();
  for (const k of ["endpoint", "region", "bucket", "access_key_id", "secret_access_key"]) {
    process.env[`SHARDROP_TEST_S3_${k.toUpperCase()}`] = g[k];
  }
}

async function browserPart(waited) {
  if (browserStorage === "s3") await ensureS3Env();
  const { waited: w, server, chromium } = await uploadBench("memory browser", browserStorage);
  waited.push(...w);
  const dir = tempDir("shardrop-bench-");
  try {
    const { token } = await server.user();
    const base = await makeFile(dir, "memory-baseline.bin", BASE_BYTES);
    log(`making a ${mib(BIG_BYTES)} MiB file`);
    const big = await makeFile(dir, "memory-big.bin", BIG_BYTES);

    async function run(file, label) {
      waited.push(await waitQuiet(`memory browser ${label}`));
      // A fresh context (openPage → newPage): nothing of the earlier upload in it.
      const page = await openPage(chromium, server, { token });
      const dt = await devtools(page);
      await page.setInputFiles("#pick", file.path);
      await page.evaluate((token) => window.makeUploader({ token }), token);
      if (!dt.workers.length) throw new Error("the worker did not attach over the DevTools protocol");
      const t0 = Date.now();
      // Idle before: 2 s of samples with the worker loaded and nothing sent.
      const before = await sampleWhile(sleep(2000), () => browserSample(dt, page, t0));
      const loadBefore = load();
      const upload = page.evaluate(() => window.uploadTimed());
      const during = await sampleWhile(upload, () => browserSample(dt, page, t0));
      const r = await upload;
      const loadAfter = load();
      // Idle after: 3 s more (what stays once the upload is done).
      const after = await sampleWhile(sleep(3000), () => browserSample(dt, page, t0));
      if (r.error || r.result?.sha1 !== file.sha1) throw new Error(`${label} upload: ${JSON.stringify(r.error ?? r.result)}`);
      const all = [...before, ...during, ...after];
      const missing = all.filter((s) => s.worker_heap == null || s.page_heap == null).length;
      log(`${label}: ${Math.round(r.page_ms)} ms, ${all.length} samples (${missing} without a heap reading)`);
      await dt.detach();
      await page.context().close();
      return {
        file_bytes: file.size,
        upload_ms: Math.round(r.page_ms),
        state: r.state,
        sha1_ok: r.result.sha1 === file.sha1,
        loadavg_before: loadBefore,
        loadavg_after: loadAfter,
        samples_n: all.length,
        samples_without_heap_reading: missing,
        backing_storage_reported: all.some((s) => s.worker_heap?.backing != null),
        peaks_mib: Object.fromEntries(Object.entries(peaks(all, BROWSER_MEASURES)).map(([k, v]) => [k, mib(v)])),
        idle_before_mib: Object.fromEntries(Object.entries(peaks(before, BROWSER_MEASURES)).map(([k, v]) => [k, mib(v)])),
        idle_after_mib: Object.fromEntries(Object.entries(peaks(after.slice(-4), BROWSER_MEASURES)).map(([k, v]) => [k, mib(v)])),
        grows_with_size: Object.fromEntries(Object.entries(BROWSER_MEASURES).map(([k, f]) => [k, growthWithSize(during, f)])),
        samples: all.map((s) => ({
          t_ms: s.t_ms,
          sent_mib: mib(s.sent),
          state: s.state,
          ...Object.fromEntries(Object.entries(BROWSER_MEASURES).map(([k, f]) => [k, mib(f(s))])),
        })),
      };
    }

    const baseline = await run(base, "baseline 1 MiB");
    const bigRun = await run(big, `${mib(BIG_BYTES)} MiB`);
    const growth = Object.fromEntries(
      Object.keys(BROWSER_MEASURES).map((k) => [
        k,
        bigRun.peaks_mib[k] == null || baseline.peaks_mib[k] == null ? null : Math.round((bigRun.peaks_mib[k] - baseline.peaks_mib[k]) * 10) / 10,
      ]),
    );
    rmSync(dir, { recursive: true, force: true });
    return {
      storage: browserStorage === "s3" ? `S3 at ${process.env.SHARDROP_TEST_S3_ENDPOINT}` : "embedded local store",
      chromium: await chromium.version(),
      machine: await machine(chromium),
      sample_interval_ms: SAMPLE_MS,
      judged_on:
        "page_plus_worker: JS heap used (Runtime.getHeapUsage usedSize) plus ArrayBuffer backing stores outside the heap (backingStorageSize), of the page and of the worker, plus the worker's wasm linear memory (not among the backing stores)",
      growth_mib: growth,
      target_met: growth.page_plus_worker != null && growth.page_plus_worker <= TARGET_MIB,
      baseline,
      big: bigRun,
    };
  } finally {
    await chromium.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

// ---- backend part ----------------------------------------------------------------------

/** VmRSS, VmHWM, RssAnon, RssFile of a pid, in bytes. */
const procStatus = (pid) => kbFields(readProc(pid, "status"), ["VmRSS", "VmHWM", "RssAnon", "RssFile"]);

/**
 * Samples a pid's /proc status every 100 ms in a worker thread, so neither this process's
 * busy event loop (hashing, copying part bodies) nor its timers ever delay a sample.
 * `samples` reads what has been taken so far; `stop()` answers them all.
 */
function rssSampler(pid, t0) {
  const code = `
    const { parentPort, workerData: { pid, t0, every } } = require("node:worker_threads");
    const { readFileSync } = require("node:fs");
    const kb = (text, name) => { const l = text.split("\\n").find((x) => x.startsWith(name + ":")); return l ? parseInt(l.slice(name.length + 1), 10) * 1024 : null; };
    const take = () => {
      try {
        const t = readFileSync("/proc/" + pid + "/status", "utf8");
        parentPort.postMessage({ t_ms: Date.now() - t0, VmRSS: kb(t, "VmRSS"), VmHWM: kb(t, "VmHWM"), RssAnon: kb(t, "RssAnon"), RssFile: kb(t, "RssFile") });
      } catch {}
    };
    take();
    const timer = setInterval(take, every);
    parentPort.on("message", () => { clearInterval(timer); take(); parentPort.postMessage("stopped"); });
  `;
  const w = new Worker(code, { eval: true, workerData: { pid, t0, every: BACKEND_SAMPLE_MS } });
  const samples = [];
  let stopped;
  const done = new Promise((r) => (stopped = r));
  w.on("message", (m) => (m === "stopped" ? stopped() : samples.push(m)));
  return {
    samples,
    stop: async () => {
      w.postMessage("stop");
      await done;
      await w.terminate();
      return samples;
    },
  };
}

/** fetch of the API as `token`, with JSON; waits out 429 (Retry-After) and 503. */
async function api(base, method, path, token, body) {
  for (let attempt = 0; ; attempt++) {
    let res, text;
    try {
      res = await fetch(`${base}/api/v1${path}`, {
        method,
        headers: {
          ...(token ? { authorization: `Bearer ${token}` } : {}),
          ...(body !== undefined ? { "content-type": "application/json" } : {}),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      text = await res.text();
    } catch (e) {
      // A kept-alive connection the server had closed: sent again (every call here is
      // idempotent but POST /uploads, whose retry is counted apart).
      api.network_retries = (api.network_retries ?? 0) + 1;
      if (method === "POST" && path === "/uploads") api.create_retries = (api.create_retries ?? 0) + 1;
      if ((api.network_errors ??= []).length < 5) api.network_errors.push(`${method} ${path.replace(/up_[\w-]+/, "{id}")}: ${e.cause?.message ?? e.message}`);
      if (attempt >= 5) throw e;
      await sleep(200 * (attempt + 1));
      continue;
    }
    if ((res.status === 429 || res.status === 503 || res.status === 408) && attempt < 50) {
      api.retries = (api.retries ?? 0) + 1;
      if (res.status === 408) api.timeouts_408 = (api.timeouts_408 ?? 0) + 1;
      await sleep(1000 * (Number(res.headers.get("retry-after")) || 1));
      continue;
    }
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    return { status: res.status, json, text };
  }
}

async function signIn(base) {
  const username = `p5-${randomBytes(5).toString("hex")}`;
  const password = randomBytes(12).toString("base64url");
  const u = await api(base, "POST", "/users", null, { username, password });
  if (u.status !== 201) throw new Error(`sign-up: ${u.status} ${u.text}`);
  const s = await api(base, "POST", "/sessions", null, { username, password });
  if (s.status !== 201) throw new Error(`sign-in: ${s.status} ${s.text}`);
  return s.json.token;
}

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

async function backendMode(mode, waited) {
  const L = await import("./control/lib.mjs");
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
      const s = await L.startShardrop({
        s3: garage,
        dbUrl,
        dataDir: join(work, "data"),
        redisPrefix,
        extraEnv: { ...env, SHARDROP__STORAGE__S3__PREFIX: `p5-${randomBytes(4).toString("hex")}/` },
        logFile: join(work, "shardrop.log"),
      });
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

// ---- main ------------------------------------------------------------------------------

const waited = [];
const out = {
  what: "P5: memory while uploading. Browser: the page and its worker (DevTools protocol) and every Chromium process (RSS/PSS) while the engine uploads a big file, next to a 1 MiB upload. Backend: `shardrop serve` RSS taking many uploads at once, next to its RSS after one 1 MiB upload.",
  target: `browser growth <= ${TARGET_MIB} MiB (page + worker); backend growth <= ${TARGET_MIB} MiB RSS`,
  command: command(),
  smoke: SMOKE,
};
// A part that fails is recorded as failed; the others still run and are written.
let failed = false;
const attempt = async (what, f) => {
  try {
    return await f();
  } catch (e) {
    failed = true;
    console.error(`${what} failed:`, e);
    return { error: String(e?.stack ?? e) };
  }
};
if (doBrowser) {
  out.browser = await attempt("browser", () => browserPart(waited));
  if (out.browser.growth_mib) log(`browser growth (MiB): ${JSON.stringify(out.browser.growth_mib)}`);
}
if (doBackend) {
  out.backend = {};
  for (const mode of backendModes) out.backend[mode] = await attempt(`backend ${mode}`, () => backendMode(mode, waited));
}
out.machine = out.browser?.machine ?? (await machine(null));
if (out.browser) delete out.browser.machine;
out.waited_for_quiet_s = waited;
out.loadavg_at_end = load();
writeResult("memory", out);
process.exit(failed ? 1 : 0);
