// bench/memory.mjs's browser part: the engine in headless Chromium uploads a big file, then
// (in a fresh context of the same browser) a 1 MiB one for the baseline, each sampled
// before, during and after (./measure.mjs); growth = the big upload's peak minus the
// baseline's, per measure.
import { rmSync } from "node:fs";

import { makeFile, openPage } from "../../tests/e2e/harness.mjs";
import { sleep, tempDir } from "../../tests/lib/shardrop.mjs";
import { machine, storageLabel, uploadBench, waitQuiet } from "../lib.mjs";
import { BROWSER_MEASURES, browserSample, devtools, growthWithSize, peaks, sampleWhile } from "./measure.mjs";
import { BASE_BYTES, BIG_BYTES, SAMPLE_MS, TARGET_MIB, browserStorage, load, log, mib } from "./settings.mjs";

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
      storage: storageLabel(browserStorage),
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
    await close();
    rmSync(dir, { recursive: true, force: true });
  }
}
