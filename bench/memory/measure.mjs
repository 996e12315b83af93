// How bench/memory.mjs reads memory. In the browser: every Chromium process's RSS and PSS
// (/proc, through ../proc.mjs), and the page's and its worker's JS heaps and wasm memory
// over the DevTools protocol, taken together as one sample; the measures a sample gives;
// sampling while something runs; peaks, and whether a measure grows with the bytes sent.
// In the backend: a pid's RSS sampled from a worker thread.
import { Worker } from "node:worker_threads";

import { sleep } from "../../tests/lib/shardrop.mjs";
import { descendants, kbFields, processTable, readProc } from "../proc.mjs";
import { BACKEND_SAMPLE_MS, SAMPLE_MS, mib } from "./settings.mjs";

// ---- Chromium's processes, from /proc ------------------------------------------------------

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
export async function devtools(page) {
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
export async function browserSample(dt, page, t0) {
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
export const BROWSER_MEASURES = {
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
export async function sampleWhile(done, take) {
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

export function peaks(samples, measures) {
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
export function growthWithSize(samples, f) {
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

// ---- the backend ---------------------------------------------------------------------------

/**
 * Samples a pid's /proc status every 100 ms in a worker thread, so neither this process's
 * busy event loop (hashing, copying part bodies) nor its timers ever delay a sample.
 * `samples` reads what has been taken so far; `stop()` answers them all.
 */
export function rssSampler(pid, t0) {
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
