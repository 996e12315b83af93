// P8: a folder of 10,000 small files (1 B to 256 KiB, nested folders, names with spaces and
// non-Latin letters; bench/p8-page/folder.mjs makes it on disk, the same on every run) given
// to a page in headless Chromium, uploaded to the same single-node Garage bucket by two
// contenders in the same run:
//
//   shardrop  Shardrop's own page (www/dist, served by `target/release/shardrop serve` with
//             web_dir pointing at it; S3 storage on the Garage, SQLite and the in-process
//             tracker: its defaults otherwise). Signed in as an account made through the
//             API, its token put in localStorage (`shardrop.token`) before the page loads.
//             The folder goes to its folder input: setInputFiles("#pick-folder", dir).
//             Done: window.shardropPage.totals().done === N (or, on a page without
//             totals(), N rows "complete" or "instant"), polled in the page every 50 ms.
//   uppy      Uppy 5's Dashboard + @uppy/aws-s3 with `endpoint` at a real Companion
//             (@uppy/companion's standalone server, its own Node process on 127.0.0.1:
//             bench/p8-page/companion.mjs, S3 options on the same bucket and keys), page
//             bench/p8-page/uppy.html bundled with esbuild, served by a plain static server
//             here. The folder goes to the Dashboard's hidden folder input
//             (input.uppy-Dashboard-input[webkitdirectory]); `autoProceed: true` starts the
//             upload. Done: Uppy's `complete` event with N successful.
//
// Each run gets a fresh Chromium (so memory starts from the same place), a fresh backend or
// Companion, a fresh account, and a key prefix of its own, deleted afterwards.
//
// Measured per run:
//   files/s      N over the wall time from giving the folder (the setInputFiles call here,
//                which includes Chromium making the FileList: ~0.2 ms a file) to done as this
//                process hears it (the page's poll that saw it, every 50 ms; Uppy's
//                `complete`). The page's own time from its input's `change` event (a capture
//                listener injected before the page's scripts) to done is kept too.
//   memory       every Chromium process's RSS and PSS from /proc (bench/memory/measure.mjs's
//                browserSample, every second, with the page's JS heap over CDP): growth =
//                peak during the run minus the median of 2 s of samples just before the
//                folder is given. Judged on the PSS of all Chromium processes summed.
//   longest task the longest main-thread task of the page, from a CDP trace
//                (bench/p8-page/longest-task.mjs: `ThreadControllerImpl::RunTask` complete
//                events on the thread that marked the start, between the page's
//                "p8:given" and "p8:done" console.timeStamp marks). Tracing costs time and
//                its buffers live in Chromium's browser process, so it runs in a separate
//                traced run of each contender; files/s and memory are judged on the
//                untraced runs. Every run also records the Long Tasks API's entries
//                (PerformanceObserver "longtask", >= 50 ms) as a cross-check.
//   CPU seconds  of Chromium's process tree, Garage, the backend or Companion, and this
//                process (bench/proc.mjs), over each run.
//   checks       the bucket holds N objects and the folder's bytes under the run's prefix;
//                Shardrop's API lists N files; failures, instants, HTTP errors by route.
//
// A round is: both contenders untraced, then both traced; the order alternates per round. A
// run during which cargo, scripts/test.sh or a `node --test` ran is run once more (the second
// stands either way, with what disturbed it recorded).
// Targets (issue 15): Shardrop's files/s >= 1.5x Uppy's (same round), its longest task
// < 100 ms, its growth <= 64 MiB.
//
//   node bench/p8.mjs [files=10000] [rounds=1]       (BENCH_SMOKE=1: 200 files, 1 round)
//   BENCH_P8_ONLY=shardrop|uppy runs one contender (for trying things; no ratio).
//   BENCH_P8_OUT=name writes bench/results/<name>.json instead (e.g. p8-1000 for 1,000 files).
//
// Run full measurements under `flock /tmp/bench.lock` so benchmarks do not overlap. Waits
// (bench/lib.mjs waitQuiet, then up to 30 min for `node --test` too) before each run. Needs target/release/shardrop, www/dist (built by
// www/build.sh from web-wasm/pkg: run here only if www/dist is missing and the package
// exists), Garage (~/.cache/shardrop/tools/bin/garage; infra/garage/dev.sh start is run
// here), /usr/bin/chromium, and bench/'s npm packages (installed with `npm ci` if missing).
// Writes bench/results/p8.json (p8.smoke.json for a smoke run; BENCH_P8_OUT renames it).

import "./deps.mjs";
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, createWriteStream, existsSync, mkdirSync, readFileSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import http from "node:http";
import { loadavg } from "node:os";
import { extname, join } from "node:path";

import { BIN, ROOT, Server, freePort, sleep, tempDir } from "../tests/lib/shardrop.mjs";
import { HZ, processTable, readProc, treeTicks, waitIdle } from "./proc.mjs";

const HERE = join(ROOT, "bench");
// bench/node_modules from before P8 lacks Companion and the Dashboard: install the lock file's set.
if (!["@uppy/companion", "@uppy/dashboard"].every((p) => existsSync(join(HERE, "node_modules", p, "package.json")))) {
  console.error("# bench/node_modules lacks @uppy/companion or @uppy/dashboard: npm ci --prefix bench");
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--prefix", HERE], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm ci --prefix bench failed");
}

const {
  AbortMultipartUploadCommand,
  DeleteObjectsCommand,
  GetBucketCorsCommand,
  ListMultipartUploadsCommand,
  ListObjectsV2Command,
  PutBucketCorsCommand,
  S3Client,
} = await import("@aws-sdk/client-s3");
const esbuild = await import("esbuild");
const { browser } = await import("../tests/e2e/harness.mjs");
const { startGarage, garageBin } = await import("./control/lib.mjs");
const { ARGS, command, machine, stats, waitQuiet, writeResult } = await import("./lib.mjs");
const { BROWSER_MEASURES, browserSample, devtools, peaks } = await import("./memory/measure.mjs");
const { makeFolder } = await import("./p8-page/folder.mjs");
const { startTrace, longestTask } = await import("./p8-page/longest-task.mjs");

const SMOKE = process.env.BENCH_SMOKE === "1";
// Stopped from outside: exit, so that tests/lib/shardrop.mjs's exit handler kills the servers
// and removes the temp dirs (Playwright's own handler would keep the process alive).
for (const sig of ["SIGTERM", "SIGINT"]) process.on(sig, () => process.exit(130));
const N = Number(ARGS[0] ?? (SMOKE ? 200 : 10_000));
const ROUNDS = Number(ARGS[1] ?? 1);
const ONLY = process.env.BENCH_P8_ONLY || null;
const CONTENDERS = ONLY ? [ONLY] : ["shardrop", "uppy"];
const TIMEOUT_MS = Number(process.env.BENCH_P8_TIMEOUT_S || 3600) * 1000;
const SETTLE_MS = 2000;
// Memory samples: each reads every Chromium process's smaps_rollup (~1 ms per 100 MB of RSS)
// and asks the page over CDP, which costs this process CPU on a 2-core machine where runs
// last minutes: once a second (P5, whose uploads last seconds, samples every 250 ms).
const SAMPLE_MS = Number(process.env.BENCH_P8_SAMPLE_MS || (SMOKE ? 250 : 1000));
const TARGETS = { files_per_s_ratio: 1.5, longest_task_ms: 100, growth_mib: 64 };
const WWW_DIST = join(ROOT, "www", "dist");
const MIB = 1024 * 1024;
const r3 = (x) => (x == null ? null : Math.round(x * 1000) / 1000);
const mib = (b) => (b == null ? null : Math.round((b / MIB) * 10) / 10);
const log = (...a) => console.error(`# [${new Date().toISOString().slice(11, 19)}]`, ...a);
const uptime = () => execFileSync("uptime", { encoding: "utf8" }).trim();
const pkgVersion = (name) => JSON.parse(readFileSync(join(HERE, "node_modules", name, "package.json"), "utf8")).version;

if (!Number.isInteger(N) || N < 1) throw new Error(`files must be a whole number, not ${ARGS[0]}`);
if (ONLY && !["shardrop", "uppy"].includes(ONLY)) throw new Error(`BENCH_P8_ONLY is shardrop or uppy, not ${ONLY}`);

// ---- what must exist -------------------------------------------------------------------

for (const [what, path] of [
  ...(CONTENDERS.includes("shardrop") ? [["the release backend (cargo build --release --bin shardrop)", BIN]] : []),
  ["Chromium (scripts/install-tools.sh chromium)", process.env.CHROMIUM ?? "/usr/bin/chromium"],
  ["Garage (scripts/install-tools.sh garage)", garageBin()],
]) {
  if (!existsSync(path)) throw new Error(`${path} is missing: ${what}`);
}
if (CONTENDERS.includes("shardrop") && !existsSync(join(WWW_DIST, "index.html"))) {
  // www/build.sh would run web-wasm/build.sh (cargo) without the package: only build the page.
  if (!existsSync(join(ROOT, "web-wasm", "pkg", "index.js"))) throw new Error("www/dist and web-wasm/pkg are missing: run web-wasm/build.sh, then www/build.sh");
  log("www/dist is missing: www/build.sh");
  execFileSync(join(ROOT, "www", "build.sh"), { stdio: "inherit" });
}
/** Whether www/dist has the sources of www/src as they are now (else the page measured is older). */
function distMatchesSrc() {
  try {
    const src = join(ROOT, "www", "src");
    const files = execFileSync("find", [src, "-type", "f", "-printf", "%P\\n"], { encoding: "utf8" }).trim().split("\n");
    return files.every((f) => existsSync(join(WWW_DIST, f)) && readFileSync(join(src, f)).equals(readFileSync(join(WWW_DIST, f))));
  } catch {
    return null;
  }
}

// ---- Garage, its bucket, the S3 client ---------------------------------------------------

const garage = startGarage();
log(`garage pid ${garage.pid}, S3 ${garage.endpoint}, bucket ${garage.bucket}`);
const Bucket = garage.bucket;
const s3 = new S3Client({
  endpoint: garage.endpoint,
  region: garage.region,
  credentials: { accessKeyId: garage.access_key_id, secretAccessKey: garage.secret_access_key },
  forcePathStyle: true,
  requestChecksumCalculation: "WHEN_REQUIRED",
  responseChecksumValidation: "WHEN_REQUIRED",
});

/** Every key and its size under `prefix`. */
async function listAll(prefix) {
  const out = [];
  let token;
  do {
    const r = await s3.send(new ListObjectsV2Command({ Bucket, Prefix: prefix, ContinuationToken: token }));
    for (const o of r.Contents ?? []) out.push({ key: o.Key, size: o.Size });
    token = r.IsTruncated ? r.NextContinuationToken : undefined;
  } while (token);
  return out;
}

/** Deletes every object (1,000 a request) and aborts every multipart upload under `prefix`. */
async function purge(prefix) {
  const keys = (await listAll(prefix)).map((o) => o.key);
  for (let i = 0; i < keys.length; i += 1000) {
    await s3.send(new DeleteObjectsCommand({ Bucket, Delete: { Objects: keys.slice(i, i + 1000).map((Key) => ({ Key })), Quiet: true } }));
  }
  const u = await s3.send(new ListMultipartUploadsCommand({ Bucket, Prefix: prefix }));
  for (const x of u.Uploads ?? []) await s3.send(new AbortMultipartUploadCommand({ Bucket, Key: x.Key, UploadId: x.UploadId }));
  return keys.length;
}

/**
 * The bucket's CORS rules plus one for Uppy's page: Companion gives it presigned POSTs (a
 * form upload), which the rule Shardrop's backend writes at start-up (PUT, GET, HEAD for
 * its own origin) does not allow. Kept rules are the backend's; written before each Uppy run
 * because each backend start writes its own again.
 */
async function allowUppyOrigin(origin) {
  let rules = [];
  try {
    rules = (await s3.send(new GetBucketCorsCommand({ Bucket }))).CORSRules ?? [];
  } catch {}
  rules = rules.filter((r) => !(r.AllowedOrigins ?? []).includes(origin));
  rules.push({
    AllowedOrigins: [origin],
    AllowedMethods: ["GET", "HEAD", "PUT", "POST"],
    AllowedHeaders: ["*"],
    ExposeHeaders: ["ETag", "Location"],
    MaxAgeSeconds: 3600,
  });
  await s3.send(new PutBucketCorsCommand({ Bucket, CORSConfiguration: { CORSRules: rules } }));
}

// What a P8 run that was killed left in the bucket (each run deletes its own objects).
const left = await purge("p8-bench/");
if (left) log(`deleted ${left} objects an earlier P8 run left under p8-bench/`);

// ---- the folder, the Uppy page -------------------------------------------------------------

const work = tempDir("shardrop-bench-p8-");
// The servers' and Companions' logs: BENCH_P8_LOGS=dir keeps them (else they go with the temp dir).
const LOGS = process.env.BENCH_P8_LOGS || join(work, "logs");
mkdirSync(LOGS, { recursive: true });
log(`making the folder: ${N} files under ${work}`);
const folder = makeFolder(work, N);
log(`folder: ${folder.files.length} files, ${folder.bytes} B, ${folder.folders} folders, fingerprint ${folder.fingerprint}`);

const uppyDir = join(work, "uppy-page");
log("bundling Uppy with esbuild");
await esbuild.build({
  entryPoints: [join(HERE, "p8-page", "uppy-entry.js")],
  bundle: true,
  format: "esm",
  platform: "browser",
  target: "es2022",
  minify: true,
  define: { "process.env.NODE_ENV": '"production"' },
  outdir: uppyDir,
  entryNames: "uppy-bundle",
  logLevel: "warning",
});
cpSync(join(HERE, "p8-page", "uppy.html"), join(uppyDir, "uppy.html"));

const TYPES = { ".html": "text/html; charset=utf-8", ".js": "text/javascript", ".css": "text/css", ".map": "application/json" };
const pageServer = http.createServer(async (req, res) => {
  const path = decodeURIComponent(new URL(req.url, "http://x").pathname).replace(/^\/+/, "") || "uppy.html";
  if (path.includes("..")) return res.writeHead(403).end();
  try {
    const body = await readFile(join(uppyDir, path));
    res.writeHead(200, { "content-type": TYPES[extname(path)] ?? "application/octet-stream", "cache-control": "no-store" }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => pageServer.listen(0, "127.0.0.1", r));
const UPPY_ORIGIN = `http://127.0.0.1:${pageServer.address().port}`;

// ---- Companion -----------------------------------------------------------------------------

/** A fresh Companion (its standalone server) on 127.0.0.1 storing under `prefix`. */
async function startCompanion(prefix) {
  const port = await freePort();
  const dir = tempDir("shardrop-bench-p8-companion-");
  const env = {
    ...process.env,
    NODE_ENV: "production",
    COMPANION_PORT: String(port),
    COMPANION_DOMAIN: `127.0.0.1:${port}`,
    COMPANION_PROTOCOL: "http",
    COMPANION_DATADIR: dir,
    COMPANION_SECRET: randomBytes(32).toString("hex"),
    COMPANION_PREAUTH_SECRET: randomBytes(32).toString("hex"),
    COMPANION_CLIENT_ORIGINS: UPPY_ORIGIN,
    // Required in production; used only by its upload-from-URL routes, which P8 does not call.
    COMPANION_UPLOAD_URLS: `${garage.endpoint}/`,
    COMPANION_AWS_KEY: garage.access_key_id,
    COMPANION_AWS_SECRET: garage.secret_access_key,
    COMPANION_AWS_BUCKET: Bucket,
    COMPANION_AWS_REGION: garage.region,
    COMPANION_AWS_ENDPOINT: garage.endpoint,
    COMPANION_AWS_FORCE_PATH_STYLE: "true",
    COMPANION_AWS_PREFIX: prefix,
  };
  const logFile = join(LOGS, `${prefix.split("/").slice(-2, -1)[0]}-companion.log`);
  const out = createWriteStream(logFile, { flags: "a" });
  const proc = spawn(process.execPath, [join(HERE, "p8-page", "companion.mjs")], { env, stdio: ["ignore", "pipe", "pipe"] });
  proc.stderr.pipe(out, { end: false });
  await new Promise((resolve, reject) => {
    let text = "";
    const t = setTimeout(() => reject(new Error(`Companion did not start in 20 s; log: ${logFile}`)), 20_000);
    proc.stdout.on("data", (d) => {
      out.write(d);
      if (text === null) return;
      text += d;
      if (text.includes("companion listening on")) {
        clearTimeout(t);
        text = null;
        resolve();
      }
    });
    proc.once("exit", (c) => reject(new Error(`Companion exited (${c}) before listening; log: ${logFile}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    pid: proc.pid,
    logFile,
    stop: async () => {
      if (proc.exitCode === null && proc.signalCode === null) {
        const gone = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGTERM");
        await Promise.race([gone, sleep(3000)]);
        proc.kill("SIGKILL");
      }
      out.end();
    },
  };
}

// ---- the pages ---------------------------------------------------------------------------

/**
 * Injected before any script of either page: the token (Shardrop's page reads it at load),
 * the start mark (first `change` of a file input, capture phase, so before the page's own
 * listener), and the Long Tasks API's entries.
 */
function probes(token) {
  if (token) {
    try {
      localStorage.setItem("shardrop.token", token);
    } catch {}
  }
  const p8 = (window.__p8 = { given: null, given_files: null, done: null, longtasks: [], longtask_count: 0 });
  addEventListener(
    "change",
    (e) => {
      const t = e.target;
      if (p8.given === null && t instanceof HTMLInputElement && t.type === "file") {
        p8.given = performance.now();
        p8.given_files = t.files.length;
        console.timeStamp("p8:given");
      }
    },
    true,
  );
  try {
    new PerformanceObserver((list) => {
      for (const e of list.getEntries()) {
        p8.longtask_count++;
        if (p8.longtasks.length < 5000) p8.longtasks.push([e.startTime, e.duration]);
      }
    }).observe({ type: "longtask", buffered: true });
  } catch {}
}

/** In Shardrop's page: resolves when every file is done (or has ended failed). */
function shardropWait(n) {
  const sp = window.shardropPage;
  const count = () => {
    if (typeof sp.totals === "function") {
      const t = sp.totals();
      return { via: "totals()", done: t.done, failed: t.failed ?? 0, files: t.files ?? sp.rows.length };
    }
    let done = 0;
    let failed = 0;
    for (const r of sp.rows) {
      if (r.state === "complete" || r.state === "instant") done++;
      else if (r.state === "failed" || r.state === "cancelled") failed++;
    }
    return { via: "rows", done, failed, files: sp.rows.length };
  };
  return new Promise((resolve) => {
    const tick = () => {
      const c = count();
      if (c.done >= n || (c.files >= n && c.done + c.failed >= n)) {
        window.__p8.done = performance.now();
        console.timeStamp("p8:done");
        const states = {};
        for (const r of sp.rows) states[r.state] = (states[r.state] ?? 0) + 1;
        const errors = sp.rows
          .filter((r) => r.error)
          .slice(0, 10)
          .map((r) => `${r.name}: ${r.error.code} ${r.error.message}`);
        resolve({ ...c, states, instant: states.instant ?? 0, errors, totals: typeof sp.totals === "function" ? sp.totals() : null });
        return;
      }
      setTimeout(tick, 50);
    };
    tick();
  });
}

const CONTENDER = {
  shardrop: {
    input: "#pick-folder",
    async open(chromium, ctx) {
      const context = await chromium.newContext({ viewport: { width: 1100, height: 900 } });
      await context.addInitScript(probes, ctx.token);
      const page = await context.newPage();
      await page.goto(`${ctx.server.origin}/`);
      await page.waitForFunction(() => window.shardropPage && document.body.dataset.auth === "signed-in", null, { timeout: 30_000 });
      const info = await page.evaluate(() => ({ totals_function: typeof window.shardropPage.totals === "function" }));
      return { context, page, info };
    },
    wait: (page) => page.evaluate(shardropWait, N),
  },
  uppy: {
    input: "input.uppy-Dashboard-input[webkitdirectory]",
    async open(chromium, ctx) {
      const context = await chromium.newContext({ viewport: { width: 1100, height: 900 } });
      await context.addInitScript(probes, null);
      const page = await context.newPage();
      await page.goto(`${UPPY_ORIGIN}/uppy.html?companion=${encodeURIComponent(ctx.companion.url)}`);
      await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
      const info = { versions: await page.evaluate(() => window.p8Versions) };
      return { context, page, info };
    },
    wait: (page) => page.evaluate((n) => window.p8Wait(n), N),
  },
};

/** Counts requests and HTTP errors by kind: storage (Garage), api (Shardrop), companion, page. */
function watchRequests(page, origins) {
  const kinds = {};
  const kindOf = (url) => {
    const u = new URL(url);
    const o = u.origin;
    if (o === origins.storage) return `storage ${u.pathname.startsWith(`/${Bucket}`) ? "" : "?"}`.trim();
    if (o === origins.companion) return `companion ${u.pathname.replace(/\/[^/]*[0-9][^/]{8,}/g, "/{id}")}`;
    if (o === origins.api) return `api ${u.pathname.replace(/\/(up|f|file)_[\w-]+/g, "/{id}").replace(/\/\d+$/, "/{n}")}`;
    return "other";
  };
  const get = (r) => {
    const k = `${r.method()} ${kindOf(r.url())}`;
    return (kinds[k] ??= { requests: 0, statuses: {} });
  };
  page.on("request", (r) => get(r).requests++);
  page.on("response", (res) => {
    const s = res.status();
    if (s >= 300) {
      const k = get(res.request());
      k.statuses[s] = (k.statuses[s] ?? 0) + 1;
    }
  });
  // Failed without an answer: Chromium also calls a part PUT "failed" once the engine has
  // read its ETag and dropped the rest (bench/lib.mjs countPartPuts), which is no failure.
  page.on("requestfailed", async (r) => {
    if (await r.response().catch(() => null)) return;
    const k = get(r);
    k.failed = (k.failed ?? 0) + 1;
  });
  return kinds;
}

// ---- CPU time, and whether something else started meanwhile --------------------------------

function cpuReading(pids) {
  const procs = processTable();
  const u = process.cpuUsage();
  return {
    chromium: treeTicks(procs, pids.chromium) / HZ,
    garage: (procs.get(pids.garage)?.own ?? 0) / HZ,
    server: (procs.get(pids.server)?.own ?? 0) / HZ,
    node: (u.user + u.system) / 1e6,
  };
}
const cpuSince = (a, b) => Object.fromEntries(Object.keys(a).map((k) => [k, r3(b[k] - a[k])]));

// What else loads this shared machine: builds, the test suite, and browser tests run by hand
// (`node --test`), which flock /tmp/bench.lock does not hold off.
const BUSY = [
  [["-x", "cargo"], "cargo"],
  [["-f", "scripts/test.sh"], "scripts/test.sh"],
  [["-f", "node --test"], "node --test"],
];

/** Waits (polling every 30 s, at most BENCH_P8_WAIT_S = 1800 s) while any of BUSY runs; answers seconds waited. */
async function waitNoTests(label) {
  if (SMOKE) return 0;
  const t0 = Date.now();
  const running = () => BUSY.filter(([args]) => spawnSync("pgrep", args).status === 0).map(([, n]) => n);
  for (let r = running(); r.length; r = running()) {
    if (Date.now() - t0 > Number(process.env.BENCH_P8_WAIT_S || 1800) * 1000) {
      log(`${label}: ${r.join(", ")} still running after the wait; going on`);
      break;
    }
    log(`${label}: waiting for ${r.join(", ")} to end`);
    await sleep(30_000);
  }
  return (Date.now() - t0) / 1000;
}

/** Watches (every 2 s) whether any of BUSY starts during a run. */
function guard() {
  const g = { by: new Set() };
  if (SMOKE) return { by: g.by, stop() {} };
  const t = setInterval(() => {
    for (const [args, name] of BUSY) execFile("pgrep", args, (err) => !err && g.by.add(name));
  }, 2000);
  return { by: g.by, stop: () => clearInterval(t) };
}

let chromiumVersion = null;
function chromiumPid() {
  const procs = processTable();
  const pid = [...procs].find(([pid, p]) => p.ppid === process.pid && (readProc(pid, "cmdline") ?? "").includes("chrom"))?.[0];
  if (!pid) throw new Error("could not find Chromium's browser process among this process's children");
  return pid;
}

// ---- one run -----------------------------------------------------------------------------

/** Takes a sample every SAMPLE_MS until `done` settles, and one after; answers them. */
async function sampleWhile(done, take) {
  const samples = [];
  let over = false;
  done.finally(() => (over = true)).catch(() => {});
  while (!over) {
    const t = Date.now();
    samples.push(await take());
    await Promise.race([sleep(Math.max(0, SAMPLE_MS - (Date.now() - t))), done.catch(() => {})]);
  }
  samples.push(await take());
  return samples;
}

const median = (xs) => {
  const s = xs.filter((x) => x != null).sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : null;
};

async function run(contender, round, traced) {
  const tag = `${contender}-r${round}${traced ? "-traced" : ""}`;
  const prefix = `p8-bench/${process.pid}/${tag}/`;
  const ctx = {};
  const closers = [];
  try {
    if (contender === "shardrop") {
      ctx.server = new Server({
        storage: "s3",
        s3: garage,
        prefix,
        web: null,
        log: join(LOGS, `${tag}-server.log`),
        env: { SHARDROP__WEB_DIR: WWW_DIST },
      });
      closers.push(() => ctx.server.stop());
      await ctx.server.start();
      ctx.token = (await ctx.server.user()).token;
      ctx.serverPid = ctx.server.proc.pid;
    } else {
      ctx.companion = await startCompanion(prefix);
      closers.push(() => ctx.companion.stop());
      ctx.serverPid = ctx.companion.pid;
      await allowUppyOrigin(UPPY_ORIGIN);
    }
    const chromium = await browser();
    chromiumVersion ??= chromium.version();
    closers.push(() => chromium.close());
    const pids = { chromium: chromiumPid(), garage: garage.pid, server: ctx.serverPid };
    const c = CONTENDER[contender];
    const { page, info } = await c.open(chromium, ctx);
    page.on("pageerror", (e) => log(`${tag} page error: ${e}`));
    const requests = watchRequests(page, {
      storage: new URL(garage.endpoint).origin,
      api: ctx.server?.origin,
      companion: ctx.companion?.url,
    });
    const dt = await devtools(page);
    closers.push(() => dt.detach());

    await waitIdle([garage.pid, ctx.serverPid], { maxMs: 60_000, log });
    await sleep(SETTLE_MS);
    const trace = traced ? await startTrace(await page.context().newCDPSession(page)) : null;
    const t0 = Date.now();
    const take = () => browserSample(dt, page, t0);
    const before = await sampleWhile(sleep(SETTLE_MS), take);

    const watch = guard();
    const up0 = uptime();
    const cpu0 = cpuReading(pids);
    const wall0 = performance.now();
    await page.setInputFiles(c.input, folder.dir);
    const finished = Promise.race([
      c.wait(page),
      sleep(TIMEOUT_MS).then(() => Promise.reject(new Error(`not done after ${TIMEOUT_MS / 1000} s`))),
    ]);
    let wall1 = null;
    finished.then(() => (wall1 = performance.now())).catch(() => {});
    const during = await sampleWhile(finished, take);
    const outcome = await finished;
    const wallMs = wall1 - wall0;
    const cpu = cpuSince(cpu0, cpuReading(pids));
    const up1 = uptime();
    watch.stop();
    const marks = await page.evaluate(() => ({ ...window.__p8, longtasks: window.__p8.longtasks }));
    // A long run's trace is millions of events: if reading it fails, say so and go on.
    let trace_result = null;
    if (trace) {
      const t = Date.now();
      try {
        trace_result = longestTask(await Promise.race([trace.stop(), sleep(20 * 60_000).then(() => Promise.reject(new Error("the trace did not arrive in 20 min")))]));
      } catch (e) {
        trace_result = { error: String(e?.message ?? e) };
      }
      trace_result.read_s = r3((Date.now() - t) / 1000);
    }

    // Memory: peak during the run minus the median before it, per measure.
    const base = Object.fromEntries(Object.entries(BROWSER_MEASURES).map(([k, f]) => [k, median(before.map(f))]));
    const peak = peaks(during, BROWSER_MEASURES);
    const growth = Object.fromEntries(Object.keys(BROWSER_MEASURES).map((k) => [k, base[k] == null || peak[k] == null ? null : mib(peak[k] - base[k])]));

    // The page's own clock: from the input's change to done.
    const pageMs = marks.done - marks.given;
    const inWindow = marks.longtasks.filter(([s, d]) => s < marks.done && s + d > marks.given).map(([, d]) => d);

    // Checks: what the bucket (and Shardrop's API) holds.
    const objects = await listAll(prefix);
    let apiFiles = null;
    if (contender === "shardrop") {
      apiFiles = 0;
      for (let cursor = ""; ; ) {
        const r = await (await ctx.server.api(`/files?limit=1000${cursor && `&cursor=${encodeURIComponent(cursor)}`}`)).json();
        apiFiles += r.files.length;
        if (!r.next_cursor) break;
        cursor = r.next_cursor;
      }
    }
    const result = {
      contender,
      round,
      traced,
      files: N,
      bytes: folder.bytes,
      done: outcome.done,
      failed: outcome.failed,
      instant: outcome.instant ?? 0,
      ok: outcome.done === N && (outcome.failed ?? 0) === 0,
      seconds: r3(wallMs / 1000),
      files_per_s: r3(N / (wallMs / 1000)),
      mb_s: r3(folder.bytes / 1e6 / (wallMs / 1000)),
      page_seconds_change_to_done: r3(pageMs / 1000),
      page_files_per_s: r3(N / (pageMs / 1000)),
      files_seen_by_input: marks.given_files,
      memory_growth_mib: growth,
      memory_before_mib: Object.fromEntries(Object.entries(base).map(([k, v]) => [k, mib(v)])),
      memory_peak_mib: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, mib(v)])),
      memory_samples: during.length,
      longest_task: trace_result,
      long_tasks_api: {
        note: "PerformanceObserver 'longtask' (tasks of 50 ms or more) in the page, over the same window",
        count: inWindow.length,
        longest_ms: inWindow.length ? r3(Math.max(...inWindow)) : "< 50",
      },
      cpu_s: cpu,
      uptime_before: up0,
      uptime_after: up1,
      disturbed_by: [...watch.by],
      checks: {
        objects_under_prefix: objects.length,
        bytes_under_prefix: objects.reduce((s, o) => s + o.size, 0),
        stored_all: objects.length === N && objects.reduce((s, o) => s + o.size, 0) === folder.bytes,
        api_files: apiFiles,
      },
      requests,
      page: { ...info, outcome },
    };
    log(
      `${tag}: ${result.done}/${N} done, ${result.failed} failed in ${result.seconds} s = ${result.files_per_s} files/s; ` +
        `growth PSS ${growth.chromium_pss_total} MiB (RSS ${growth.chromium_rss_total}); ` +
        `longest task ${trace_result ? trace_result.longest_ms : "(untraced)"} ms, long-task API ${result.long_tasks_api.longest_ms} ms; ` +
        `CPU ${JSON.stringify(cpu)}; stored ${objects.length}; ${up1}`,
    );
    return result;
  } finally {
    for (const close of closers.reverse()) await close().catch((e) => log(`closing: ${e}`));
    const gone = await purge(prefix).catch((e) => log(`purge ${prefix}: ${e}`));
    if (gone) log(`${tag}: deleted ${gone} objects`);
  }
}

// ---- the rounds ------------------------------------------------------------------------------

const started = new Date().toISOString();
const machineStart = await machine(null);
const uptimeStart = uptime();
const waited = [];
const runs = [];
let failed = false;
try {
  for (let round = 1; round <= ROUNDS; round++) {
    const order = round % 2 ? CONTENDERS : [...CONTENDERS].reverse();
    for (const traced of [false, true]) {
      for (const contender of order) {
        for (let attempt = 1; ; attempt++) {
          waited.push((await waitQuiet(`p8 ${contender} r${round}`)) + (await waitNoTests(`p8 ${contender} r${round}`)));
          const r = await run(contender, round, traced);
          r.attempt = attempt;
          runs.push(r);
          if (!r.disturbed_by.length || attempt >= 2) break;
          log(`${contender} r${round}: ${r.disturbed_by.join(", ")} ran meanwhile: once more`);
        }
      }
    }
  }
} catch (e) {
  console.error(e);
  failed = true;
}

// ---- summary -------------------------------------------------------------------------------

/** The runs that count: per contender, round and kind, the last attempt (the first undisturbed one). */
const kept = (contender, traced) =>
  runs.filter((r) => r.contender === contender && r.traced === traced && !runs.some((x) => x.contender === contender && x.traced === traced && x.round === r.round && x.attempt > r.attempt));
const summary = {};
for (const c of CONTENDERS) {
  const plain = kept(c, false);
  const tr = kept(c, true);
  if (!plain.length) continue;
  summary[c] = {
    all_ok: [...plain, ...tr].every((r) => r.ok && r.checks.stored_all),
    files_per_s: stats(plain.map((r) => r.files_per_s)),
    seconds: stats(plain.map((r) => r.seconds)),
    memory_growth_mib: {
      chromium_pss_total: stats(plain.map((r) => r.memory_growth_mib.chromium_pss_total)),
      chromium_rss_total: stats(plain.map((r) => r.memory_growth_mib.chromium_rss_total)),
      renderer_rss: stats(plain.map((r) => r.memory_growth_mib.renderer_rss ?? 0)),
      browser_process_rss: stats(plain.map((r) => r.memory_growth_mib.browser_process_rss ?? 0)),
      js_heap_page: stats(plain.map((r) => r.memory_growth_mib.js_heap_page ?? 0)),
    },
    longest_task_ms: tr.some((r) => typeof r.longest_task?.longest_ms === "number") ? stats(tr.map((r) => r.longest_task?.longest_ms).filter((x) => typeof x === "number")) : null,
    long_tasks_api_longest_ms_untraced: plain.map((r) => r.long_tasks_api.longest_ms),
    traced_files_per_s: tr.length ? stats(tr.map((r) => r.files_per_s)) : null,
    cpu_s_untraced_median: Object.fromEntries(Object.keys(plain[0].cpu_s).map((k) => [k, median(plain.map((r) => r.cpu_s[k]))])),
  };
}
let ratios = null;
let targets = null;
if (summary.shardrop && summary.uppy) {
  const perRound = [...new Set(runs.map((r) => r.round))].map((round) => {
    const s = kept("shardrop", false).find((r) => r.round === round);
    const u = kept("uppy", false).find((r) => r.round === round);
    return s && u ? r3(s.files_per_s / u.files_per_s) : null;
  });
  ratios = {
    shardrop_files_per_s_over_uppy: {
      of_medians: r3(summary.shardrop.files_per_s.median / summary.uppy.files_per_s.median),
      per_round: perRound,
    },
  };
}
if (summary.shardrop) {
  const s = summary.shardrop;
  targets = {
    files_per_s_ratio: ratios && { target: `>= ${TARGETS.files_per_s_ratio}`, value: ratios.shardrop_files_per_s_over_uppy.of_medians, met: ratios.shardrop_files_per_s_over_uppy.of_medians >= TARGETS.files_per_s_ratio },
    longest_task_ms: s.longest_task_ms && { target: `< ${TARGETS.longest_task_ms}`, value: s.longest_task_ms.max, met: s.longest_task_ms.max < TARGETS.longest_task_ms },
    growth_mib_pss: { target: `<= ${TARGETS.growth_mib}`, value: s.memory_growth_mib.chromium_pss_total.max, met: s.memory_growth_mib.chromium_pss_total.max <= TARGETS.growth_mib },
  };
}

writeResult(process.env.BENCH_P8_OUT || "p8", {
  what: "P8: a folder of small files (1 B to 256 KiB, nested, names with spaces and non-Latin letters) from headless Chromium to single-node Garage: Shardrop's page (www/dist on shardrop serve) vs Uppy 5 Dashboard + @uppy/aws-s3 + Companion (standalone), same folder, same bucket, same run",
  target: "Shardrop files/s >= 1.5x Uppy's; Shardrop's longest main-thread task < 100 ms; Shardrop's browser memory growth <= 64 MiB",
  command: command(),
  smoke: SMOKE,
  started,
  ended: new Date().toISOString(),
  uptime_start: uptimeStart,
  uptime_end: uptime(),
  machine: machineStart,
  waited_for_quiet_s: waited,
  folder: { files: N, bytes: folder.bytes, folders: folder.folders, fingerprint_sha1: folder.fingerprint, name: folder.name },
  versions: {
    chromium: chromiumVersion,
    shardrop_binary_mtime: existsSync(BIN) ? statSync(BIN).mtime.toISOString() : null,
    www_dist_app_js_mtime: existsSync(join(WWW_DIST, "app.js")) ? statSync(join(WWW_DIST, "app.js")).mtime.toISOString() : null,
    www_dist_matches_www_src: distMatchesSrc(),
    "@uppy/core": pkgVersion("@uppy/core"),
    "@uppy/dashboard": pkgVersion("@uppy/dashboard"),
    "@uppy/aws-s3": pkgVersion("@uppy/aws-s3"),
    "@uppy/companion": pkgVersion("@uppy/companion"),
    esbuild: pkgVersion("esbuild"),
    "playwright-core": JSON.parse(readFileSync(join(ROOT, "tests", "e2e", "node_modules", "playwright-core", "package.json"), "utf8")).version,
    garage: (() => {
      try {
        return execFileSync(garageBin(), ["--version"], { encoding: "utf8" }).trim();
      } catch {
        return null;
      }
    })(),
  },
  how: {
    files_per_s: "N / wall seconds from the setInputFiles call to done as this process hears it; done = totals().done === N (polled in the page every 50 ms) for Shardrop, Uppy's `complete` event for Uppy. page_files_per_s: the same over the page's clock from its input's change event",
    memory: `every Chromium process's RSS and PSS from /proc/<pid>/smaps_rollup every ${SAMPLE_MS} ms (bench/memory/measure.mjs browserSample); growth = peak during the run - median of 2 s before the folder is given; judged on chromium_pss_total, untraced runs`,
    longest_task: "CDP Tracing (categories toplevel, devtools.timeline; ReportEvents), longest ThreadControllerImpl::RunTask complete event on the thread that emitted the page's console.timeStamp('p8:given') (CrRendererMain), overlapping [p8:given, p8:done]; traced runs only",
    cpu_note: "CPU seconds over the run: chromium = the browser's process tree; garage; server = shardrop serve or Companion; node = this process (Playwright, sampling)",
  },
  ratios,
  targets,
  summary,
  runs,
});

await new Promise((r) => pageServer.close(r));
process.exit(failed ? 1 : 0);
