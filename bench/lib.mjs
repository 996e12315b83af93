// What every benchmark here shares: its command line, waiting for a quiet machine (this one
// is shared with the test suite), the facts of the machine a figure was measured on, the
// exact command, and medians with their spread. Figures are only comparable inside one run.
// The server, its API and the median come from tests/lib/shardrop.mjs, the browser from
// tests/e2e/harness.mjs (which needs playwright-core: import this after ./deps.mjs).
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, loadavg, totalmem } from "node:os";
import { join, relative } from "node:path";

import { browser } from "../tests/e2e/harness.mjs";
import { ROOT, Server, median, sleep } from "../tests/lib/shardrop.mjs";

const SMOKE = process.env.BENCH_SMOKE === "1";

/** The words of the command line that are not --flags (a size, a number of rounds, ...). */
export const ARGS = process.argv.slice(2).filter((a) => !a.startsWith("--"));
export const flag = (f) => process.argv.includes(f);
/** Where an upload benchmark stores: --garage, the S3 server of SHARDROP_TEST_S3_*; else the embedded store. */
export const STORAGE = flag("--garage") ? "s3" : "local";
/** The storage, as a result file names it. */
export const storageLabel = (storage) => (storage === "s3" ? `S3 at ${process.env.SHARDROP_TEST_S3_ENDPOINT}` : "embedded local store");

/** Polls every 30 s until neither the test suite nor cargo runs; answers the seconds waited. */
export async function waitQuiet(label = "") {
  // A smoke run (BENCH_SMOKE=1, small sizes) only checks that a script works: it measures nothing.
  if (SMOKE) return 0;
  const busy = () =>
    [["-f", "scripts/test.sh"], ["-x", "cargo"]].some(([flag, pat]) => {
      try {
        execFileSync("pgrep", [flag, pat], { stdio: "ignore" });
        return true;
      } catch {
        return false;
      }
    });
  const t0 = Date.now();
  while (busy()) {
    console.error(`# ${label} waiting: scripts/test.sh or cargo runs (${Math.round((Date.now() - t0) / 1000)} s)`);
    await sleep(30_000);
  }
  return (Date.now() - t0) / 1000;
}

/** nproc, CPU, memory, load, versions: what a reader needs to weigh a figure. */
export async function machine(chromium) {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const git = (...args) => {
    try {
      return execFileSync("git", ["-C", ROOT, ...args], { encoding: "utf8" }).trim();
    } catch {
      return null;
    }
  };
  return {
    nproc: Number(execFileSync("nproc", { encoding: "utf8" }).trim()),
    cpu_model: /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1] ?? cpus()[0]?.model,
    mem_gib: Math.round((totalmem() / 2 ** 30) * 10) / 10,
    loadavg_1_5_15: loadavg().map((x) => Math.round(x * 100) / 100),
    kernel: execFileSync("uname", ["-r"], { encoding: "utf8" }).trim(),
    node: process.version,
    chromium: chromium ? await chromium.version() : null,
    // What else ran when the figure was taken (the machine is shared).
    top_processes: execFileSync("ps", ["-eo", "pcpu,etime,args", "--sort=-pcpu"], { encoding: "utf8" })
      .split("\n")
      .slice(1, 7)
      .map((l) => l.trim().slice(0, 140)),
    git_commit: git("rev-parse", "HEAD"),
    git_dirty: (git("status", "--porcelain") ?? "") !== "",
  };
}

/** The command as typed from the repository root. */
export function command() {
  const script = relative(ROOT, process.argv[1]);
  return ["node", script, ...process.argv.slice(2)].join(" ");
}

/** Median, min, max and the range as a share of the median, of a list of numbers. */
export function stats(xs) {
  const med = median(xs);
  const r = (x) => (x === null ? null : Math.round(x * 100) / 100);
  return {
    n: xs.length,
    median: r(med),
    min: r(Math.min(...xs)),
    max: r(Math.max(...xs)),
    spread_pct: r(((Math.max(...xs) - Math.min(...xs)) / med) * 100),
    all: xs.map(r),
  };
}

/** Writes bench/results/<name>.json and prints it. */
export function writeResult(name, result) {
  const dir = join(ROOT, "bench", "results");
  mkdirSync(dir, { recursive: true });
  const text = JSON.stringify(result, null, 2);
  writeFileSync(join(dir, `${name}${SMOKE ? ".smoke" : ""}.json`), text + "\n");
  console.log(text);
}

/**
 * Counts the part PUTs a page (and its workers) sends: every PUT but the part reports
 * (PUTs under /api/v1/uploads/), with the bytes of each body once it is sent.
 */
export function countPartPuts(page) {
  const c = { requests: 0, answered: 0, failed: 0, bytes: 0, first_request_wall_ms: null, first: null };
  // Not "any PUT outside /api/v1/": the embedded store takes parts at /api/v1/local/parts.
  const isPart = (r) => r.method() === "PUT" && !new URL(r.url()).pathname.startsWith("/api/v1/uploads/");
  page.on("request", (r) => {
    if (!isPart(r)) return;
    c.requests++;
    if (c.first === null) {
      c.first = r;
      c.first_request_wall_ms = Date.now();
    }
  });
  // Counted when the storage answers (the body has gone by then). Not on "requestfinished":
  // the engine reads only the ETag, so Chromium reports each part PUT as aborted after its
  // answer. A Blob body's size is not in the protocol's request (sizes() says 0): take the
  // Content-Length the browser sent, else the embedded store's `size` in the signed URL.
  page.on("response", async (res) => {
    const r = res.request();
    if (!isPart(r)) return;
    c.answered++;
    const sent = Number((await r.allHeaders())["content-length"]);
    c.bytes += Number.isFinite(sent) && sent > 0 ? sent : Number(new URL(r.url()).searchParams.get("size"));
  });
  page.on("requestfailed", async (r) => isPart(r) && !(await r.response()) && c.failed++);
  return c;
}

/**
 * Once the machine is quiet: a `shardrop serve` serving bench/upload-page (the package's
 * worker plus a hash command), and Chromium. `waited` starts the list of seconds waited;
 * `head()` answers the fields a result opens with after what it is (the command, the
 * storage, the machine, the waits); `close()` stops the browser and the server.
 */
export async function uploadBench(label, storage, env = {}) {
  const waited = [await waitQuiet(label)];
  const server = new Server({ storage, env });
  cpSync(join(ROOT, "bench", "upload-page"), server.web, { recursive: true });
  await server.start();
  const chromium = await browser();
  return {
    waited,
    server,
    chromium,
    head: async () => ({ command: command(), storage: storageLabel(storage), machine: await machine(chromium), waited_for_quiet_s: waited }),
    close: async () => {
      await chromium.close();
      await server.stop();
    },
  };
}
