// P5: memory. Two parts, each next to a 1 MiB upload's baseline measured the same way in
// the same run (target: at most 64 MiB growth each).
//
// Browser: headless Chromium (the harness's), the upload benchmarks' page, the engine
// (the package's Uploader on its worker) uploading one file of GiB (4 by default) to a
// `shardrop serve` (embedded store; --garage: S3 on Garage). With --files N, N files of
// GiB each (distinct content: no file is instant) are given to the one Uploader at once,
// every upload() called together as a drop of N files does; the engine's queue is what
// bounds its part buffers across them. Every ~250 ms, over the
// DevTools protocol (the worker reached through the page's Target.setAutoAttach), the
// page's and the worker's JS heap (Runtime.getHeapUsage: used size, and the ArrayBuffer
// backing stores outside the heap) and the worker's wasm linear memory; and from /proc, the RSS and PSS of every Chromium
// process (browser, renderer, GPU, network and other utilities), so that Blob and network
// buffers outside the JS heaps show too. The baseline is the same, in a fresh context of
// the same browser, while and after uploading a 1 MiB file. Growth = the peak during the
// big upload(s) minus the baseline's peak, per measure. With N files, each must end
// `complete` (not `instant`) with its SHA-1 and every byte sent, or the part fails.
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
//   node bench/memory.mjs [GiB=4] [--files N] [--garage] [--browser-only | --backend-only]
//
// e.g. 20 files of 1 GiB at once, browser only: node bench/memory.mjs 1 --browser-only --files 20
// (needs N x GiB free on the temp dir for the files, and as much again for the embedded
// store's copy).
// Needs the release build, web-wasm/build.sh, /usr/bin/chromium (npm packages: bench/deps.mjs
// installs them), and for the backend's production shape PostgreSQL (127.0.0.1:5432,
// db `test`), Redis (127.0.0.1:6379) and Garage (infra/garage/dev.sh start is run here).
// Knobs (environment): BENCH_P5_FILES (1: what --files sets; --files wins),
// BENCH_P5_UPLOADS (100), BENCH_P5_FILE_MIB (40), BENCH_P5_PART_MIB
// (8), BENCH_P5_PARTS_IN_FLIGHT (1, per upload), BENCH_P5_SAMPLE_MS (250, browser),
// BENCH_P5_BACKENDS (garage,local: the backend shapes to run).
// BENCH_SMOKE=1: 64 MiB (per file) in the browser (unless GiB is given), 10 uploads of
// 16 MiB, nothing waited for; it checks that the script works and measures nothing
// (BENCH_SMOKE=1 node bench/memory.mjs --browser-only --files 3: 3 files of 64 MiB at once).
// Writes bench/results/memory.json (with N > 1 files: memory-files-N.json).
//
// In parts: memory/settings.mjs (the command line and the knobs above), memory/measure.mjs
// (how memory is read and sampled), memory/browser.mjs and memory/backend.mjs (the two
// parts); what /proc says comes from proc.mjs, the server and its API from tests/lib/.

import "./deps.mjs";
// Loaded after ./deps.mjs has installed what they import.
const { browserPart } = await import("./memory/browser.mjs");
const { backendMode } = await import("./memory/backend.mjs");
const { backendModes, doBackend, doBrowser, FILES, load, log, SMOKE, TARGET_MIB } = await import("./memory/settings.mjs");
const { command, machine, writeResult } = await import("./lib.mjs");

// ---- main ------------------------------------------------------------------------------

const waited = [];
const out = {
  what: "P5: memory while uploading. Browser: the page and its worker (DevTools protocol) and every Chromium process (RSS/PSS) while the engine uploads a big file (or, with --files N, N big files given at once to one Uploader), next to a 1 MiB upload. Backend: `shardrop serve` RSS taking many uploads at once, next to its RSS after one 1 MiB upload.",
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
writeResult(FILES > 1 ? `memory-files-${FILES}` : "memory", out);
process.exit(failed ? 1 : 0);
