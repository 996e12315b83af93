// A big drop through one Uploader, in real headless Chromium against a real `shardrop serve`
// on default settings (the signing rate limit on): thousands of small files in nested folders
// with spaces and non-Latin letters in their names, plus one larger file, all given at once.
// Every file is stored with the SHA-1 the page computed, none fails, part PUTs in flight
// never pass the Uploader's `concurrency` across all files, and a small file costs three
// requests (start with its part signed, PUT, report).

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Server } from "../lib/shardrop.mjs";
import { browser, openPage } from "./harness.mjs";

const SMALL_FILES = Number(process.env.SHARDROP_DROP_FILES || 3000);
const BIG = 60e6;
const CONCURRENCY = 4;

describe("a drop of thousands of files", () => {
  let server, chromium;
  before(async () => {
    server = await new Server({ storage: "local" }).start();
    chromium = await browser();
  });
  after(async () => {
    await chromium?.close();
    await server?.stop();
  });

  test(`${SMALL_FILES} small files and a ${BIG / 1e6} MB one, given at once, are all stored`, async () => {
    const page = await openPage(chromium, server);
    const seen = { create: 0, sign: 0, report: 0, patch: 0, complete: 0, put: 0, tooMany: 0 };
    let inFlight = 0;
    let mostInFlight = 0;
    const isPart = (r) => r.method() === "PUT" && !r.url().includes("/api/v1/uploads/");
    page.on("request", (r) => {
      const url = r.url();
      if (isPart(r)) {
        seen.put++;
        mostInFlight = Math.max(mostInFlight, ++inFlight);
      } else if (r.method() === "POST" && url.endsWith("/api/v1/uploads")) seen.create++;
      else if (url.endsWith("/parts/sign")) seen.sign++;
      else if (r.method() === "PUT") seen.report++;
      else if (r.method() === "PATCH") seen.patch++;
      else if (url.endsWith("/complete")) seen.complete++;
    });
    // Its answer's headers end a PUT for the engine, which then frees its slot.
    page.on("response", (r) => isPart(r.request()) && inFlight--);
    page.on("requestfailed", (r) => isPart(r) && inFlight--);
    page.on("response", (r) => r.status() === 429 && seen.tooMany++);

    const started = Date.now();
    const outcome = await page.evaluate(
      async ({ n, big, concurrency, token }) => {
        const names = ["photos", "données", "фото", "写真", "raw files"];
        // getRandomValues gives at most 64 KiB a call.
        const random = (size) => {
          const b = new Uint8Array(size);
          for (let off = 0; off < size; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
          return b;
        };
        const files = [];
        for (let i = 0; i < n; i++) {
          // 1 B to 256 KiB, most of them small, a few at the top.
          const size = i % 50 === 0 ? 256 * 1024 : 1 + ((i * 7919) % 40000);
          const bytes = random(size);
          const dir = `${names[i % names.length]}/day ${i % 7}/${names[(i >> 3) % names.length]}`;
          files.push({ file: new File([bytes], `f${i}.bin`), name: `${dir}/shot ${i} ✓.bin`, bytes });
        }
        const bigBytes = random(big);
        files.push({ file: new File([bigBytes], "big.bin"), name: "big one.bin", bytes: bigBytes });
        const hex = async (b) =>
          [...new Uint8Array(await crypto.subtle.digest("SHA-1", b))].map((x) => x.toString(16).padStart(2, "0")).join("");
        const uploader = new window.shardrop.Uploader({ concurrency, token });
        const tasks = files.map((f) => uploader.upload(f.file, { name: f.name }));
        const results = await Promise.allSettled(tasks.map((t) => t.done));
        const failed = results.filter((r) => r.status === "rejected").map((r) => `${r.reason.code}: ${r.reason.message}`);
        let wrong = 0;
        const ids = [];
        for (let i = 0; i < files.length; i++) {
          if (results[i].status !== "fulfilled") continue;
          ids.push(results[i].value.file_id);
          if (results[i].value.sha1 !== (await hex(files[i].bytes))) wrong++;
        }
        return { failed: failed.slice(0, 5), failures: failed.length, wrong, ids, bigId: ids.at(-1) };
      },
      { n: SMALL_FILES, big: BIG, concurrency: CONCURRENCY, token: page.token },
    );
    const secs = (Date.now() - started) / 1000;
    console.log(
      `# ${SMALL_FILES + 1} files in ${secs.toFixed(1)} s (${((SMALL_FILES + 1) / secs).toFixed(0)} files/s); ` +
        `requests: ${JSON.stringify(seen)}; most part PUTs in flight: ${mostInFlight}`,
    );
    assert.equal(outcome.failures, 0, `failed: ${outcome.failed.join("; ")}`);
    assert.equal(outcome.wrong, 0, "every file's SHA-1 is the page's own");
    assert.equal(new Set(outcome.ids).size, SMALL_FILES + 1, "a file each");
    assert.ok(mostInFlight <= CONCURRENCY, `at most ${CONCURRENCY} part PUTs in flight across files: ${mostInFlight}`);
    // Small files: start (with the part signed), PUT, report; only the big file signs,
    // gives its SHA-1 afterwards and completes on its own.
    assert.equal(seen.create, SMALL_FILES + 1);
    assert.ok(seen.sign <= Math.ceil(BIG / (8 * 1024 * 1024)), `sign requests: ${seen.sign}`);
    assert.ok(seen.patch <= 1 && seen.complete <= 1, JSON.stringify(seen));
    assert.equal(seen.report, seen.put, "one report per part PUT");
    // The server holds every file, listed in pages, and the big one's bytes are right.
    let listed = 0;
    for (let cursor = ""; ; ) {
      const page = await (await server.api(`/files?limit=1000${cursor && `&cursor=${cursor}`}`)).json();
      listed += page.files.length;
      if (!page.next_cursor) break;
      cursor = encodeURIComponent(page.next_cursor);
    }
    assert.equal(listed, SMALL_FILES + 1);
    await page.close();
  });
});
