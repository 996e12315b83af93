// A drop of any size, on the page, as a person makes it: a folder of 10,000 files (1 B to
// 256 KiB, nested folders, names with spaces and non-Latin letters) and two files of 200 MB,
// dropped at once through Chromium's own drag machinery on the drag-and-drop page, against
// a real `shardrop serve` on default settings (the signing rate limit on). Half-way, "Pause
// all" stops every transfer and "Resume all" finishes them. Every file is stored with the
// SHA-1 of its bytes and verified by the server, none fails, no error (a 429 or any other)
// ever reaches a row, part PUTs in flight never pass the page's 4 across all files, a small
// file costs three requests (start with its part signed, PUT, report), and the queue keeps
// a screenful of rows in the document, not 10,002.
//
// SHARDROP_DROP_FILES sets the number of small files (a quicker run while working on it).

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { MIB, Server, sleep, tempDir } from "../lib/shardrop.mjs";
import { browser, drop, makeFile, openSignedIn } from "./harness.mjs";

const SMALL_FILES = Number(process.env.SHARDROP_DROP_FILES || 10_000);
const BIG = 200e6;
const CONCURRENCY = 4; // the page's Uploader
const PART = 8 * MIB; // the server's default part size

/** Deterministic bytes (xorshift32): the same file on every run, distinct between files. */
function bytesOf(seed, size) {
  const out = Buffer.allocUnsafe(size);
  let x = seed * 2654435761 + 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** The folder of small files: answers its path and each file's name in the drop with its SHA-1. */
function smallFolder(dir, n) {
  const top = "day's folder";
  const names = ["photos", "données", "фото", "写真", "raw files"];
  const sha1 = new Map();
  for (let i = 0; i < n; i++) {
    // 1 B to 256 KiB, most of them small, a few at the top.
    const size = i % 50 === 0 ? 256 * 1024 : 1 + ((i * 7919) % 40000);
    const rel = `${names[i % names.length]}/day ${i % 7}/${names[(i >> 3) % names.length]}`;
    mkdirSync(join(dir, top, rel), { recursive: true });
    const bytes = bytesOf(i + 1, size);
    writeFileSync(join(dir, top, rel, `shot ${i} ✓.bin`), bytes);
    sha1.set(`${top}/${rel}/shot ${i} ✓.bin`, createHash("sha1").update(bytes).digest("hex"));
  }
  return { path: join(dir, top), sha1 };
}

describe("a drop of ten thousand files on the page", () => {
  let server, chromium, dir;
  before(async () => {
    server = await new Server({ storage: "local", web: null }).start();
    chromium = await browser();
    dir = tempDir();
  });
  after(async () => {
    await chromium?.close();
    await server?.stop();
  });

  test(`${SMALL_FILES} small files in folders and two of ${BIG / 1e6} MB, dropped at once, paused and resumed, are all stored and verified`, async () => {
    const folder = smallFolder(dir, SMALL_FILES);
    const bigs = [await makeFile(dir, "big one.bin", BIG), await makeFile(dir, "big два.bin", BIG)];
    const expected = new Map(folder.sha1);
    for (const b of bigs) expected.set(b.name, b.sha1);
    const total = expected.size;

    const { token } = await server.user();
    const page = await openSignedIn(chromium, server, token);
    // put: part PUTs started; stored: those the storage answered 2xx (a pause aborts PUTs in flight).
    const seen = { create: 0, sign: 0, report: 0, patch: 0, complete: 0, put: 0, stored: 0, tooMany: 0 };
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
    page.on("response", (r) => {
      if (!isPart(r.request())) return;
      inFlight--;
      if (r.ok()) seen.stored++;
    });
    page.on("requestfailed", (r) => isPart(r) && inFlight--);
    page.on("response", (r) => r.status() === 429 && seen.tooMany++);
    // Any row that ever shows an error: a 429 or anything else that reached the person.
    await page.evaluate(() => {
      window.errorsSeen = [];
      setInterval(() => {
        for (const r of window.shardropPage.rows) if (r.error && !window.errorsSeen.includes(r.name)) window.errorsSeen.push(`${r.name}: ${r.error.code}`);
      }, 200);
    });

    const started = Date.now();
    await drop(page, [folder.path, ...bigs.map((b) => b.path)]);
    const totals = () => page.evaluate(() => window.shardropPage.totals());
    await page.waitForFunction((n) => window.shardropPage.totals().files === n, total, { timeout: 120_000 });

    // The queue's document holds the rows in view, not every file; the last one scrolls into view.
    await page.waitForSelector("#queue .row");
    const drawn = await page.locator("#queue .row").count();
    assert.ok(drawn > 0 && drawn <= 40, `${drawn} rows in the document for ${total} files`);
    await page.waitForFunction((n) => {
      const s = document.getElementById("queue-scroll");
      s.scrollTop = s.scrollHeight; // again until the view has grown to every row (it redraws 4 times a second)
      return document.querySelector(`#queue .row[aria-posinset="${n}"]`);
    }, total);

    // Half-way: pause everything; nothing moves; resume everything.
    await page.waitForFunction((n) => window.shardropPage.totals().done >= n, Math.floor(total / 2), { timeout: 600_000, polling: 250 });
    await page.getByRole("button", { name: "Pause all", exact: true }).click();
    console.log(`# paused at ${JSON.stringify(await totals())}`);
    await page.waitForFunction(() => !window.shardropPage.totals().moving, null, { timeout: 60_000, polling: 100 });
    await sleep(1000); // a report of a part stored just before the pause may still land
    const atPause = await totals();
    const putsAtPause = seen.put;
    await sleep(3000);
    const paused = await totals();
    assert.equal(paused.sent, atPause.sent, "nothing is sent while paused");
    assert.equal(seen.put, putsAtPause, "no part PUT starts while paused");
    assert.ok(paused.done < total, "the pause came before the end");
    await page.getByRole("button", { name: "Resume all", exact: true }).click();
    console.log(`# resumed at ${JSON.stringify(await totals())}`);

    await page.waitForFunction((n) => window.shardropPage.totals().done + window.shardropPage.totals().failed === n, total, {
      timeout: 900_000,
      polling: 500,
    });
    const secs = (Date.now() - started) / 1000;
    const end = await totals();
    const errors = await page.evaluate(() => window.errorsSeen);
    console.log(
      `# ${total} files in ${secs.toFixed(1)} s (${(total / secs).toFixed(0)} files/s, pause included); ` +
        `requests: ${JSON.stringify(seen)}; most part PUTs in flight: ${mostInFlight}`,
    );
    assert.deepEqual(errors, [], "no row ever showed an error");
    assert.equal(end.failed, 0);
    assert.equal(end.done, total);
    // What the person reads (the totals are redrawn 4 times a second).
    await page.waitForFunction((t) => document.getElementById("total").textContent.startsWith(t), `${total} of ${total} done`, {
      timeout: 5000,
    });
    assert.ok(mostInFlight <= CONCURRENCY, `at most ${CONCURRENCY} part PUTs in flight across files: ${mostInFlight}`);
    // Small files: start (with the part signed), PUT, report; only the big ones sign, give
    // their SHA-1 afterwards and complete on their own.
    assert.equal(seen.create, total);
    assert.ok(seen.sign <= 2 * Math.ceil(BIG / PART) + 4, `sign requests: ${seen.sign}`);
    assert.ok(seen.patch <= 2 && seen.complete <= 2, JSON.stringify(seen));
    // One report per part; a PUT the pause cut off after the storage had it is sent again.
    const parts = SMALL_FILES + bigs.length * Math.ceil(BIG / PART);
    assert.equal(seen.report, parts, "one report per part");
    assert.ok(seen.stored - seen.report <= CONCURRENCY, `parts stored twice: ${seen.stored - seen.report}`);

    // The server holds every file, each with its bytes' SHA-1, and verifies every one.
    const stored = async () => {
      const all = [];
      for (let cursor = ""; ; ) {
        const p = await (await server.api(`/files?limit=1000${cursor && `&cursor=${encodeURIComponent(cursor)}`}`, { token })).json();
        all.push(...p.files);
        if (!p.next_cursor) return all;
        cursor = p.next_cursor;
      }
    };
    let files = await stored();
    assert.equal(files.length, total, "a file each");
    for (const f of files) assert.equal(f.sha1, expected.get(f.name), `${f.name}'s SHA-1`);
    for (let i = 0; files.some((f) => f.status !== "verified"); i++) {
      assert.ok(i < 240, `verified: ${files.filter((f) => f.status === "verified").length} of ${total}`);
      await sleep(500);
      files = await stored();
    }
    await page.close();
  });
});
