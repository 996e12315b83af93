// What /proc says about the processes a benchmark weighs: the process table (parents and
// CPU ticks), a process's descendants and their CPU time, kB fields of a status or
// smaps_rollup file, and waiting until some processes are idle. bench/memory (Chromium's
// memory), bench/p2.mjs (CPU time per contender) and bench/control (idle before each
// measurement) read it the same way. Node built-ins only: bench/control imports it before
// `npm ci` has run.
import { execFileSync } from "node:child_process";
import { readFileSync, readdirSync } from "node:fs";

/** Clock ticks per second of the CPU times in /proc/<pid>/stat. */
export const HZ = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim());

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** /proc/<pid>/<file>, or null once the process is gone. */
export function readProc(pid, file) {
  try {
    return readFileSync(`/proc/${pid}/${file}`, "utf8");
  } catch {
    return null;
  }
}

/** kB fields of /proc/<pid>/status or smaps_rollup, in bytes (null for no text). */
export function kbFields(text, names) {
  const out = {};
  if (!text) return null;
  for (const name of names) {
    const m = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(text);
    out[name] = m ? Number(m[1]) * 1024 : null;
  }
  return out;
}

/** The fields of /proc/<pid>/stat after the command's name (state first), or null. */
function statFields(pid) {
  const s = readProc(pid, "stat");
  return s ? s.slice(s.lastIndexOf(")") + 2).split(" ") : null;
}

/** pid → {ppid, own: utime+stime, children: cutime+cstime} of every process, in ticks. */
export function processTable() {
  const m = new Map();
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    const f = statFields(d);
    if (!f) continue;
    m.set(Number(d), { ppid: Number(f[1]), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) });
  }
  return m;
}

/** ppid → the pids of its children, in a processTable(). */
function childrenOf(table) {
  const kids = new Map();
  for (const [pid, p] of table) {
    if (!kids.has(p.ppid)) kids.set(p.ppid, []);
    kids.get(p.ppid).push(pid);
  }
  return kids;
}

/** Every descendant of `root` in a processTable(). */
export function descendants(root, table) {
  const kids = childrenOf(table);
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

/**
 * Ticks of a process and all its descendants, with the reaped children's time (cutime,
 * cstime) of each: a difference of two readings is the tree's CPU time in between, also
 * of processes that started and ended in between (their parent reaps them).
 */
export function treeTicks(table, root) {
  const kids = childrenOf(table);
  let sum = 0;
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop();
    const p = table.get(pid);
    if (!p) continue;
    sum += p.own + p.children;
    stack.push(...(kids.get(pid) ?? []));
  }
  return sum;
}

/** utime+stime of one process, in ticks; null once it is gone. */
function ownTicks(pid) {
  const f = statFields(pid);
  return f ? Number(f[11]) + Number(f[12]) : null;
}

/**
 * Waits until each of `pids` uses under `pct`% of one core over 500 ms; at most `maxMs`,
 * then goes on (saying so through `log`). Answers the ms waited.
 */
export async function waitIdle(pids, { pct = 5, maxMs = 120_000, log = () => {} } = {}) {
  const start = Date.now();
  for (;;) {
    const a = pids.map(ownTicks);
    await sleep(500);
    const b = pids.map(ownTicks);
    const busy = pids.filter((_, i) => a[i] != null && b[i] != null && ((b[i] - a[i]) / HZ / 0.5) * 100 >= pct);
    if (busy.length === 0) return Date.now() - start;
    if (Date.now() - start > maxMs) {
      log(`waitIdle: pids ${busy.join(",")} still busy after ${maxMs} ms; going on`);
      return Date.now() - start;
    }
  }
}
