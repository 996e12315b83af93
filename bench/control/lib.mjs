// Shared pieces of p3.mjs and p4.mjs: dependencies, waiting for a quiet machine, Garage,
// PostgreSQL, the production-like `shardrop serve` and Companion, small statistics. The
// server itself, its API and the median are tests/lib/shardrop.mjs's; /proc is ../proc.mjs.
// Only Node built-ins are imported here (and there), so it works before `npm ci` has run.
import { execFile, execFileSync, spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { BIN, MIB, Server, freePort, median, sleep } from "../../tests/lib/shardrop.mjs";
import { waitIdle as waitIdleOf } from "../proc.mjs";

export { MIB, median, sleep };
export const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = path.resolve(HERE, "../..");
export const RESULTS = path.join(REPO, "bench/results");
export const SHARDROP_BIN = BIN;

export const log = (...a) => console.error(`[${new Date().toISOString().slice(11, 19)}]`, ...a);

/** Installs the pinned packages (package-lock.json) when node_modules is missing. */
export function ensureDeps() {
  if (fs.existsSync(path.join(HERE, "node_modules/@uppy/companion/package.json"))) return;
  log("node_modules missing: npm ci --prefix bench/control");
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--prefix", HERE], { stdio: "inherit" });
  if (r.status !== 0) throw new Error("npm ci failed");
}

/**
 * The machine is shared with a test suite: wait (polling every 30 s) until neither
 * `scripts/test.sh` nor `cargo` runs. BENCH_NO_WAIT=1 skips this (for trying the scripts).
 */
export async function waitForQuietMachine(what) {
  if (process.env.BENCH_NO_WAIT === "1") return { waited_s: 0, skipped: true };
  const started = Date.now();
  for (;;) {
    const busy = [];
    if (spawnSync("pgrep", ["-f", "scripts/test.sh"]).status === 0) busy.push("scripts/test.sh");
    if (spawnSync("pgrep", ["-x", "cargo"]).status === 0) busy.push("cargo");
    // Other benchmarks (bench/*.mjs outside bench/control) load the machine too: wait for
    // them as well, but at most BENCH_OTHER_WAIT_S (300 s) in all, then go on and say so.
    const others = process.env.BENCH_IGNORE_OTHER_BENCHMARKS === "1" ? [] : otherBenchmarks();
    if (others.length && (Date.now() - started) / 1000 < Number(process.env.BENCH_OTHER_WAIT_S || 300)) {
      busy.push(`other benchmarks (${others.join("; ")})`);
    }
    if (busy.length === 0) break;
    log(`${what}: waiting for ${busy.join(" and ")} to finish (polling every 30 s)`);
    await sleep(30_000);
  }
  return { waited_s: Math.round((Date.now() - started) / 1000), skipped: false, other_benchmarks_running: otherBenchmarks() };
}

/** Command lines of benchmark scripts of others (bench/... but not bench/control). */
export function otherBenchmarks() {
  const r = spawnSync("pgrep", ["-af", "bench/"], { encoding: "utf8" });
  return (r.stdout || "")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.includes("bench/control") && !l.startsWith(`${process.pid} `) && !/\bpgrep\b/.test(l))
    .map((l) => l.split(" ").slice(1).join(" ").slice(0, 80));
}

/**
 * Watches (every 2 s, without blocking the event loop) whether the test suite or a cargo
 * starts meanwhile, so a measurement it disturbed can be thrown away and taken again.
 */
export function startGuard() {
  const g = { disturbed: false, by: new Set() };
  if (process.env.BENCH_NO_WAIT === "1") return { ...g, stop() {} };
  const check = (args, name) =>
    execFile("pgrep", args, (err) => {
      if (!err) {
        g.disturbed = true;
        g.by.add(name);
      }
    });
  const t = setInterval(() => {
    check(["-f", "scripts/test.sh"], "scripts/test.sh");
    check(["-x", "cargo"], "cargo");
    if (process.env.BENCH_IGNORE_OTHER_BENCHMARKS !== "1") execFile("pgrep", ["-af", "bench/"], (err, stdout) => {
      const others = String(stdout || "")
        .split("\n")
        .filter((l) => l.trim() && !l.includes("bench/control") && !/\bpgrep\b/.test(l));
      if (others.length) {
        g.disturbed = true;
        g.by.add("another benchmark");
      }
    });
  }, 2000);
  return { get disturbed() { return g.disturbed; }, get by() { return [...g.by]; }, stop: () => clearInterval(t) };
}

export async function waitForBinary() {
  while (!fs.existsSync(SHARDROP_BIN)) {
    log(`${SHARDROP_BIN} does not exist yet: waiting (cargo build --release --bin shardrop makes it)`);
    await sleep(30_000);
  }
}

function sh(cmd, args, opts = {}) {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], ...opts }).trim();
}
function trySh(cmd, args) {
  try {
    return sh(cmd, args);
  } catch {
    return null;
  }
}

export function machineFacts() {
  const cpuinfo = fs.readFileSync("/proc/cpuinfo", "utf8");
  const model = (cpuinfo.match(/^model name\s*:\s*(.*)$/m) || [])[1] || os.cpus()[0]?.model;
  const pkg = (name) => {
    try {
      return JSON.parse(fs.readFileSync(path.join(HERE, "node_modules", name, "package.json"), "utf8")).version;
    } catch {
      return null;
    }
  };
  return {
    nproc: Number(trySh("nproc", [])),
    cpu_model: model,
    mem_total_gib: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    kernel: os.release(),
    loadavg_at_start: os.loadavg().map((x) => Math.round(x * 100) / 100),
    note: "one shared, noisy 2-core VM; the load generator, both servers, Garage, PostgreSQL and Redis all run on it",
    versions: {
      node: process.version,
      shardrop: (fs.readFileSync(path.join(REPO, "Cargo.toml"), "utf8").match(/^version\s*=\s*"([^"]+)"/m) || [])[1] ?? null,
      shardrop_binary_mtime: fs.existsSync(SHARDROP_BIN) ? fs.statSync(SHARDROP_BIN).mtime.toISOString() : null,
      shardrop_commit: trySh("git", ["-C", REPO, "rev-parse", "HEAD"]),
      shardrop_worktree_dirty: (trySh("git", ["-C", REPO, "status", "--porcelain", "--", "backend", "web-wasm/src"]) || "") !== "",
      garage: trySh(garageBin(), ["--version"]),
      postgres: trySh("psql", [PG_ADMIN_URL, "-tAc", "show server_version"]),
      redis: (trySh("redis-cli", ["-h", "127.0.0.1", "info", "server"]) || "").match(/redis_version:(\S+)/)?.[1] ?? null,
      "@uppy/companion": pkg("@uppy/companion"),
      autocannon: pkg("autocannon"),
      "@aws-sdk/client-s3": pkg("@aws-sdk/client-s3"),
    },
  };
}

// ---- Garage -------------------------------------------------------------------------

export function garageBin() {
  if (process.env.GARAGE_BIN) return process.env.GARAGE_BIN;
  const onPath = trySh("sh", ["-c", "command -v garage"]);
  return onPath || path.join(os.homedir(), ".cache/shardrop/tools/bin/garage");
}

/**
 * Starts (idempotently) the dev Garage of infra/garage/dev.sh, with a bucket of the
 * benchmark's own (GARAGE_BUCKET=shardrop-bench), and answers its S3 settings and pid.
 * BENCH_GARAGE_DIR picks another instance (with GARAGE_S3_PORT etc. for its ports).
 */
export function startGarage() {
  const args = ["start"];
  if (process.env.BENCH_GARAGE_DIR) args.push(process.env.BENCH_GARAGE_DIR);
  const out = sh(path.join(REPO, "infra/garage/dev.sh"), args, {
    env: { ...process.env, GARAGE_BUCKET: process.env.GARAGE_BUCKET || "shardrop-bench" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const env = Object.fromEntries(
    out
      .split("\n")
      .map((l) => l.match(/^(SHARDROP_TEST_S3_\w+)=(.*)$/))
      .filter(Boolean)
      .map((m) => [m[1].replace("SHARDROP_TEST_S3_", "").toLowerCase(), m[2]]),
  );
  const dir = process.env.BENCH_GARAGE_DIR || path.join(REPO, "target/garage-dev");
  const pid = Number(fs.readFileSync(path.join(dir, "garage.pid"), "utf8").trim());
  return { ...env, pid, dir };
}

// ---- CPU of a process (for waiting until background work has settled) ----------------

/** Waits until each pid uses under `pct`% of one core over 500 ms (at most `maxMs`, then says so). */
export const waitIdle = (pids, { pct = 5, maxMs = 120_000 } = {}) => waitIdleOf(pids, { pct, maxMs, log });

// ---- PostgreSQL ---------------------------------------------------------------------

export const PG_ADMIN_URL = process.env.BENCH_PG_ADMIN_URL || "postgres://postgres@127.0.0.1:5432/test";

/** Drops and creates a database of the benchmark's own; answers its URL. */
export function freshDatabase(name) {
  sh("psql", [PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
  sh("psql", [PG_ADMIN_URL, "-v", "ON_ERROR_STOP=1", "-qc", `CREATE DATABASE ${name}`]);
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return u.toString();
}
export function dropDatabase(name) {
  trySh("psql", [PG_ADMIN_URL, "-qc", `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`]);
}
export function sql(url, query) {
  return sh("psql", [url, "-v", "ON_ERROR_STOP=1", "-tAF", "\t", "-c", query]);
}

// ---- processes ------------------------------------------------------------------------

const children = new Set();
function track(child, name) {
  children.add(child);
  child.on("exit", () => children.delete(child));
  child.benchName = name;
  return child;
}
/** Stops what this script started (by pid), also on Ctrl-C or an error. */
export async function stopAll() {
  await Promise.all([...children].map((c) => stopChild(c)));
}
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});
for (const sig of ["SIGINT", "SIGTERM"]) {
  process.on(sig, async () => {
    await stopAll();
    process.exit(130);
  });
}

export async function stopChild(child, graceMs = 10_000) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const done = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const t = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await done;
  clearTimeout(t);
}

async function waitHttp(url, child, name, timeoutMs = 60_000, anyStatus = false) {
  const start = Date.now();
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${name} exited (${child.exitCode}) before answering ${url}`);
    try {
      const r = await fetch(url);
      if (r.ok || anyStatus) return;
    } catch {}
    if (Date.now() - start > timeoutMs) throw new Error(`${name} did not answer ${url} within ${timeoutMs} ms`);
    await sleep(100);
  }
}

/**
 * `shardrop serve` in the production-like setup: PostgreSQL, Redis tracker, Garage (S3,
 * objects under `prefix`, none by default). Default worker count (one per core), logging
 * at warn, the sign rate limit off, 5 MiB parts; `extraEnv` on top. Its data and its log go
 * to `work`/shardrop and `work`/shardrop.log; it is up once /readyz answers. Answers
 * `{server, child, base, port}`; stopChild(child) or stopAll() stops it.
 */
export async function startShardrop({ s3, dbUrl, work, redisPrefix, prefix = "", extraEnv = {} }) {
  const server = new Server({
    storage: "s3",
    s3,
    prefix,
    web: null,
    dataDir: path.join(work, "shardrop"),
    log: path.join(work, "shardrop.log"),
    ready: "/readyz",
    readyTimeoutMs: 60_000,
    env: {
      SHARDROP_LOG: "warn",
      SHARDROP__DATABASE__URL: dbUrl,
      SHARDROP__TRACKER__KIND: "redis",
      SHARDROP__TRACKER__REDIS_URL: process.env.BENCH_REDIS_URL || "redis://127.0.0.1:6379",
      SHARDROP__TRACKER__PREFIX: redisPrefix,
      SHARDROP__HTTP__SIGN_RATE: "0",
      SHARDROP__UPLOADS__PART_SIZE: String(5 * MIB),
      ...extraEnv,
    },
  });
  try {
    await server.start();
  } finally {
    if (server.proc) track(server.proc, "shardrop");
  }
  return { server, child: server.proc, base: server.origin, port: server.port };
}

export async function startCompanion({ s3, dir, logFile }) {
  const port = await freePort();
  fs.mkdirSync(dir, { recursive: true });
  const env = {
    ...process.env,
    NODE_ENV: "production",
    BENCH_COMPANION_PORT: String(port),
    BENCH_S3_ENDPOINT: s3.endpoint,
    BENCH_S3_REGION: s3.region,
    BENCH_S3_BUCKET: s3.bucket,
    BENCH_S3_KEY_ID: s3.access_key_id,
    BENCH_S3_SECRET: s3.secret_access_key,
    BENCH_COMPANION_DIR: dir,
  };
  const out = fs.openSync(logFile, "a");
  const child = track(
    spawn(process.execPath, [path.join(HERE, "companion-server.mjs")], { env, cwd: HERE, stdio: ["ignore", out, out] }),
    "companion",
  );
  fs.closeSync(out);
  const base = `http://127.0.0.1:${port}`;
  // Any answer will do: the app has no route of its own at /.
  await waitHttp(`${base}/`, child, "companion", 60_000, true);
  return { child, base, port };
}

// ---- statistics ---------------------------------------------------------------------

export function spread(xs) {
  const m = median(xs);
  const min = Math.min(...xs);
  const max = Math.max(...xs);
  return { median: r3(m), min: r3(min), max: r3(max), rel_range_pct: m ? r3(((max - min) / m) * 100) : null, values: xs.map(r3) };
}
export const r3 = (x) => (x == null ? x : Math.round(x * 1000) / 1000);

export function writeJson(name, obj) {
  fs.mkdirSync(RESULTS, { recursive: true });
  const file = path.join(RESULTS, name);
  fs.writeFileSync(file, JSON.stringify(obj, null, 2) + "\n");
  log(`wrote ${path.relative(REPO, file)}`);
  return file;
}

/** Drops the run's database, and its work dir unless the run failed (its logs are kept). */
export function cleanUp(db, work, succeeded) {
  dropDatabase(db);
  if (succeeded) fs.rmSync(work, { recursive: true, force: true });
  else log(`logs kept in ${work}`);
}

/** Runs a benchmark's main; on an error, stops what it started and exits 1. */
export function run(main) {
  main().catch(async (e) => {
    console.error(e);
    await stopAll();
    process.exit(1);
  });
}
