// bench/memory.mjs's browser part: the engine in headless Chromium uploads a 1 MiB file for
// the baseline, then (in a fresh context of the same browser) the big file, or with
// `--files N` N big files given to the one Uploader at once; each run sampled before,
// during and after (./measure.mjs); growth = the big run's peak minus the baseline's, per
// measure.
import { createHash, randomBytes } from "node:crypto";
import { createWriteStream, rmSync } from "node:fs";
import { join } from "node:path";

import { makeFile, openPage } from "../../tests/e2e/harness.mjs";
import { MIB, sleep, tempDir } from "../../tests/lib/shardrop.mjs";
import { machine, storageLabel, uploadBench, waitQuiet } from "../lib.mjs";
import { BROWSER_MEASURES, browserSample, devtools, growthWithSize, peaks, sampleWhile } from "./measure.mjs";
import { BASE_BYTES, BIG_BYTES, FILES, SAMPLE_MS, TARGET_MIB, browserStorage, load, log, mib } from "./settings.mjs";

const CHUNK = 4 * MIB;

/**
 * `n` files of `size` bytes with different content, made without drawing n x size random
 * bytes: one random block (64 MiB at most) is written round and round, each file starting
 * it at a different offset, and every 4 MiB of every file begins with a stamp of its own
 * (16 random bytes of the file, its number and the offset). So no two files share their
 * whole-file SHA-1 or their content probe (the first window holds the stamp), and no
 * 8 MiB part repeats within a file or across files. Answers [{path, name, size, sha1}].
 */
async function makeDistinctFiles(dir, n, size) {
  const block = randomBytes(Math.min(size, 64 * MIB));
  const files = [];
  for (let i = 0; i < n; i++) {
    const name = `memory-big-${String(i + 1).padStart(String(n).length, "0")}.bin`;
    const path = join(dir, name);
    const salt = randomBytes(16);
    const start = (i * (MIB + 4099)) % block.length;
    const hash = createHash("sha1");
    const out = createWriteStream(path);
    for (let off = 0; off < size; off += CHUNK) {
      const chunk = Buffer.allocUnsafe(Math.min(CHUNK, size - off));
      for (let at = 0; at < chunk.length; ) {
        const from = (start + off + at) % block.length;
        at += block.copy(chunk, at, from, Math.min(block.length, from + chunk.length - at));
      }
      const stamp = Buffer.alloc(32);
      salt.copy(stamp, 0);
      stamp.writeUInt32BE(i, 16);
      stamp.writeBigUInt64BE(BigInt(off), 20);
      stamp.copy(chunk, 0, 0, Math.min(stamp.length, chunk.length));
      hash.update(chunk);
      if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
    }
    await new Promise((r, j) => out.end((e) => (e ? j(e) : r())));
    files.push({ path, name, size, sha1: hash.digest("hex") });
  }
  return files;
}

/**
 * In the page: a worker and an Uploader on it, made as the page's own makeUploader makes
 * them (its uploader is out of reach of page.evaluate), and window.uploadAllTimed(), which
 * gives every picked file to that Uploader at once (all upload() calls in one go, as a drop
 * of those files does) and answers when all have ended. While they run, window.task stands
 * for them all as ./measure.mjs reads it: progress summed over the files; state
 * "uploading" while any file uploads (else the busiest state any is in).
 */
async function installMany(page, token) {
  await page.evaluate(async ({ token }) => {
    const { Uploader } = await import(new URL("./pkg/index.js", location.href).href);
    const worker = new Worker("./bench-worker.js", { type: "module" });
    const uploader = new Uploader({ worker, token, concurrency: 4 });
    await new Promise((resolve) => {
      const on = ({ data }) => {
        if (data.bench !== "pong") return;
        worker.removeEventListener("message", on);
        resolve();
      };
      worker.addEventListener("message", on);
      worker.postMessage({ type: "bench-ping" });
    });
    window.uploadAllTimed = async () => {
      const files = [...document.getElementById("pick").files];
      const wall0 = Date.now();
      const t0 = performance.now();
      const events = [];
      const tasks = files.map((file, i) =>
        uploader.upload(file, { onStateChange: (s) => events.push([i, s, Math.round(performance.now() - t0)]) }),
      );
      const busiest = ["uploading", "completing", "hashing", "paused", "queued"];
      window.task = {
        get progress() {
          const p = { total: 0, hashed: 0, sent: 0 };
          for (const t of tasks) for (const k of Object.keys(p)) p[k] += t.progress[k] ?? 0;
          return p;
        },
        get state() {
          return busiest.find((s) => tasks.some((t) => t.state === s)) ?? (tasks.every((t) => t.state === "complete") ? "complete" : tasks[0].state);
        },
      };
      const settled = await Promise.allSettled(tasks.map((t) => t.done));
      const page_ms = performance.now() - t0;
      return {
        page_ms,
        wall0,
        events,
        files: tasks.map((t, i) => ({
          name: files[i].name,
          size: files[i].size,
          state: t.state,
          sent: t.progress.sent,
          result: settled[i].status === "fulfilled" ? settled[i].value : null,
          error: settled[i].status === "rejected" ? { code: settled[i].reason?.code, message: settled[i].reason?.message } : null,
          end_ms: events.findLast(([j]) => j === i)?.[2] ?? null,
        })),
      };
    };
  }, { token });
}

/** From the state changes [file, state, ms]: the most files in each state at one time. */
function mostAtOnce(events) {
  const now = new Map();
  const most = {};
  const count = (pred) => [...now.values()].filter(pred).length;
  for (const [i, s] of [...events].sort((a, b) => a[2] - b[2])) {
    now.set(i, s);
    for (const k of ["queued", "hashing", "uploading", "completing"]) most[k] = Math.max(most[k] ?? 0, count((x) => x === k));
    most.active = Math.max(most.active ?? 0, count((x) => x === "hashing" || x === "uploading" || x === "completing"));
  }
  return most;
}

async function ensureS3Env() {
  if (process.env.SHARDROP_TEST_S3_ENDPOINT) return;
  const { startGarage } = await import("../control/lib.mjs");
  const g = startGarage();
  for (const k of ["endpoint", "region", "bucket", "access_key_id", "secret_access_key"]) {
    process.env[`SHARDROP_TEST_S3_${k.toUpperCase()}`] = g[k];
  }
}

export async function browserPart(waited) {
  if (browserStorage === "s3") await ensureS3Env();
  const { waited: w, server, chromium, close } = await uploadBench("memory browser", browserStorage);
  waited.push(...w);
  const dir = tempDir("shardrop-bench-");
  try {
    const { token } = await server.user();
    const base = await makeFile(dir, "memory-baseline.bin", BASE_BYTES);
    let bigFiles;
    if (FILES === 1) {
      log(`making a ${mib(BIG_BYTES)} MiB file`);
      bigFiles = [await makeFile(dir, "memory-big.bin", BIG_BYTES)];
    } else {
      log(`making ${FILES} files of ${mib(BIG_BYTES)} MiB`);
      const t = Date.now();
      bigFiles = await makeDistinctFiles(dir, FILES, BIG_BYTES);
      log(`made them in ${Math.round((Date.now() - t) / 1000)} s`);
    }

    // `many`: the files go through installMany's Uploader, all at once; else the page's own
    // makeUploader and uploadTimed, one file (as this benchmark always did).
    async function run(files, label, many) {
      waited.push(await waitQuiet(`memory browser ${label}`));
      // A fresh context (openPage → newPage): nothing of the earlier upload in it.
      const page = await openPage(chromium, server, { token });
      const dt = await devtools(page);
      if (many) await page.evaluate(() => (document.getElementById("pick").multiple = true));
      await page.setInputFiles("#pick", files.map((f) => f.path));
      if (many) await installMany(page, token);
      else await page.evaluate((token) => window.makeUploader({ token }), token);
      if (!dt.workers.length) throw new Error("the worker did not attach over the DevTools protocol");
      const t0 = Date.now();
      // Each sample also carries the machine's 1-minute load (the machine is shared).
      const take = async () => ({ ...(await browserSample(dt, page, t0)), load_1m: load()[0] });
      // Idle before: 2 s of samples with the worker loaded and nothing sent.
      const before = await sampleWhile(sleep(2000), take);
      const loadBefore = load();
      page.partPuts = 0;
      const upload = page.evaluate(() => (window.uploadAllTimed ?? window.uploadTimed)());
      const during = await sampleWhile(upload, take);
      const r = await upload;
      const loadAfter = load();
      // Idle after: 3 s more (what stays once the upload is done).
      const after = await sampleWhile(sleep(3000), take);
      const partPuts = page.partPuts;
      let perFile;
      if (many) {
        // Every file stored, with its own SHA-1, none instant (which would mean its bytes
        // were never sent), every byte sent.
        const byName = new Map(files.map((f) => [f.name, f]));
        perFile = r.files.map((x) => {
          const f = byName.get(x.name);
          return {
            name: x.name,
            size: x.size,
            state: x.state,
            sent_bytes: x.sent,
            end_ms: x.end_ms,
            sha1_ok: x.result != null && x.result.sha1 === f?.sha1,
            instant: x.result?.instant ?? null,
            ...(x.error ? { error: x.error } : {}),
          };
        });
        const bad = perFile.filter((x) => !(x.state === "complete" && x.sha1_ok && x.instant === false && x.sent_bytes === x.size));
        const ids = new Set(r.files.map((x) => x.result?.file_id));
        if (bad.length || perFile.length !== files.length || ids.size !== files.length) {
          throw new Error(`${label} upload: ${bad.length} of ${perFile.length} files not stored as sent: ${JSON.stringify(bad.slice(0, 5))}`);
        }
      } else if (r.error || r.result?.sha1 !== files[0].sha1) throw new Error(`${label} upload: ${JSON.stringify(r.error ?? r.result)}`);
      const all = [...before, ...during, ...after];
      const missing = all.filter((s) => s.worker_heap == null || s.page_heap == null).length;
      const loads = during.map((s) => s.load_1m);
      log(`${label}: ${Math.round(r.page_ms)} ms, ${all.length} samples (${missing} without a heap reading)`);
      await dt.detach();
      await page.context().close();
      const bytes = files.reduce((a, f) => a + f.size, 0);
      return {
        files_n: files.length,
        file_bytes: bytes,
        upload_ms: Math.round(r.page_ms),
        mb_per_s: Math.round(bytes / 1e3 / r.page_ms),
        state: many ? [...new Set(perFile.map((x) => x.state))].join(",") : r.state,
        sha1_ok: many ? perFile.every((x) => x.sha1_ok) : r.result.sha1 === files[0].sha1,
        ...(many
          ? {
              instant_n: perFile.filter((x) => x.instant).length,
              part_puts: partPuts,
              most_files_at_once: mostAtOnce(r.events),
              per_file: perFile,
            }
          : {}),
        loadavg_before: loadBefore,
        loadavg_after: loadAfter,
        load_1m_during: { min: Math.min(...loads), max: Math.max(...loads) },
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
          load_1m: s.load_1m,
          ...Object.fromEntries(Object.entries(BROWSER_MEASURES).map(([k, f]) => [k, mib(f(s))])),
        })),
      };
    }

    const baseline = await run([base], "baseline 1 MiB", false);
    const bigRun = await run(bigFiles, FILES === 1 ? `${mib(BIG_BYTES)} MiB` : `${FILES} x ${mib(BIG_BYTES)} MiB at once`, FILES > 1);
    const growth = Object.fromEntries(
      Object.keys(BROWSER_MEASURES).map((k) => [
        k,
        bigRun.peaks_mib[k] == null || baseline.peaks_mib[k] == null ? null : Math.round((bigRun.peaks_mib[k] - baseline.peaks_mib[k]) * 10) / 10,
      ]),
    );
    rmSync(dir, { recursive: true, force: true });
    return {
      storage: storageLabel(browserStorage),
      chromium: await chromium.version(),
      machine: await machine(chromium),
      sample_interval_ms: SAMPLE_MS,
      files: FILES,
      file_mib: mib(BIG_BYTES),
      judged_on:
        "page_plus_worker: JS heap used (Runtime.getHeapUsage usedSize) plus ArrayBuffer backing stores outside the heap (backingStorageSize), of the page and of the worker, plus the worker's wasm linear memory (not among the backing stores)",
      growth_mib: growth,
      target_met: growth.page_plus_worker != null && growth.page_plus_worker <= TARGET_MIB,
      baseline,
      big: bigRun,
    };
  } finally {
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}
