// The drag-and-drop page (www/) in headless Chromium against `shardrop serve`: real drops
// (Chromium's own drag machinery through the DevTools protocol, files and folders), pause,
// resume, cancel, reload, duplicates and a backend error, with screenshots saved to
// tests/artifacts/ (and the README's screenshot to docs/screenshot.png).

import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { MIB, ROOT, Server, browser, makeFile, sleep, tempDir } from "./harness.mjs";

const ARTIFACTS = join(ROOT, "tests", "artifacts");
const WEB = join(ROOT, "www", "dist");

async function openApp(chromium, server, viewport = { width: 1100, height: 900 }) {
  const page = await chromium.newPage({ viewport });
  page.on("pageerror", (e) => console.error("page error:", e));
  page.partPuts = 0;
  page.on("request", (r) => {
    if (r.method() === "PUT" && !r.url().includes("/api/v1/uploads/")) page.partPuts++;
  });
  await page.goto(`${server.origin}/`);
  await page.waitForFunction(() => window.shardropPage);
  return page;
}

/** Drops paths (files or folders) on the page the way a person's drag does. */
async function drop(page, paths) {
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ["dragEnter", "dragOver", "drop"]) {
    await cdp.send("Input.dispatchDragEvent", { type, x: 400, y: 300, data });
  }
  await cdp.detach();
}

const rowOf = (page, name) => page.locator(".row", { has: page.locator(".name", { hasText: new RegExp(`^${name}$`) }) });

async function waitState(page, name, states, timeout = 300_000) {
  await page.waitForFunction(
    ({ name, states }) => window.shardropPage.rows.some((r) => r.name === name && states.includes(r.state)),
    { name, states },
    { timeout, polling: 100 },
  );
}

async function sent(page, name) {
  return page.evaluate((n) => window.shardropPage.rows.find((r) => r.name === n).progress.sent, name);
}

describe("the page", () => {
  let server, chromium, dir, files;
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    server = await new Server({ web: WEB }).start();
    chromium = await browser();
    dir = tempDir();
    files = {
      big: await makeFile(dir, "holiday-video.mp4", 300e6),
      doc: await makeFile(dir, "report.pdf", 5 * MIB + 7),
      small: await makeFile(dir, "notes.txt", 1234),
      pause: await makeFile(dir, "pause-me.bin", 300e6),
      cancel: await makeFile(dir, "cancel-me.bin", 300e6),
      reload: await makeFile(dir, "reload-me.bin", 160 * MIB),
    };
    const folder = join(dir, "photos");
    mkdirSync(join(folder, "2026", "summer"), { recursive: true });
    files.folder = folder;
    files.inFolder = [
      await makeFile(folder, "cover.jpg", 300_000),
      await makeFile(join(folder, "2026"), "beach.jpg", 2 * MIB),
      await makeFile(join(folder, "2026", "summer"), "sunset.jpg", 9 * MIB),
    ];
  });
  after(async () => {
    await chromium?.close();
    await server?.stop();
  });

  test("empty page, on a desktop and a phone", async () => {
    const page = await openApp(chromium, server);
    await page.screenshot({ path: join(ARTIFACTS, "page-empty.png") });
    assert.equal(await page.textContent("#total"), "Nothing yet");
    const phone = await openApp(chromium, server, { width: 390, height: 800 });
    await phone.screenshot({ path: join(ARTIFACTS, "page-empty-phone.png") });
    const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
    assert.equal(overflow, false, "no sideways scrolling at phone width");
    await page.close();
    await phone.close();
  });

  test("three dropped files all finish, and each download hashes to its source", async () => {
    const page = await openApp(chromium, server);
    await drop(page, [files.big.path, files.doc.path, files.small.path]);
    await page.waitForFunction(() => window.shardropPage.rows.length === 3);
    // Mid-upload: the queue as a person sees it.
    await page.waitForFunction(() => {
      const r = window.shardropPage.rows.find((x) => x.name === "holiday-video.mp4");
      return r.progress.sent > 0.3 * r.progress.total;
    }, null, { timeout: 120_000 });
    await sleep(300);
    await page.screenshot({ path: join(ARTIFACTS, "page-uploading.png") });
    for (const f of [files.big, files.doc, files.small]) await waitState(page, f.name, ["complete"]);
    await page.waitForFunction(() => document.querySelectorAll("#files tbody tr").length === 3);
    const links = await page.$$eval("#files tbody tr", (trs) =>
      trs.map((tr) => ({ name: tr.cells[0].textContent, href: tr.querySelector("a").href })),
    );
    for (const f of [files.big, files.doc, files.small]) {
      const link = links.find((l) => l.name === f.name);
      assert.ok(link, `${f.name} is listed`);
      const id = decodeURIComponent(new URL(link.href).pathname.split("/")[4]);
      assert.equal(await server.storedSha1(id), f.sha1, `${f.name} through its download link`);
    }
    assert.match(await page.textContent("#total"), /^3 of 3 done/);
    await sleep(400);
    await page.screenshot({ path: join(ARTIFACTS, "page-finished.png"), fullPage: true });
    copyFileSync(join(ARTIFACTS, "page-finished.png"), join(ROOT, "docs", "screenshot.png"));
    await page.close();
  });

  test("a dropped folder uploads every file in it, with its path", async () => {
    const page = await openApp(chromium, server);
    await drop(page, [files.folder]);
    const names = ["photos/cover.jpg", "photos/2026/beach.jpg", "photos/2026/summer/sunset.jpg"];
    for (const n of names) await waitState(page, n, ["complete"]);
    const listed = await page.$$eval("#files tbody tr", (trs) => trs.map((tr) => tr.cells[0].textContent));
    for (const n of names) assert.ok(listed.includes(n), `${n} is stored`);
    // Delete one from the list: gone from the page and from the backend.
    const href = await page.getAttribute('a[aria-label="Download photos/cover.jpg"]', "href");
    await page.getByRole("button", { name: "Delete photos/cover.jpg" }).click();
    await page.waitForFunction(() => !document.querySelector('a[aria-label="Download photos/cover.jpg"]'));
    assert.equal((await server.api(href.replace("/api/v1", "").replace("/content", ""))).status, 404);
    await page.close();
  });

  test("pause all stops every upload; resume all finishes them", async () => {
    const page = await openApp(chromium, server);
    const a = await makeFile(dir, "all-a.bin", 160 * MIB);
    const b = await makeFile(dir, "all-b.bin", 160 * MIB);
    await page.setInputFiles("#pick-files", [a.path, b.path]);
    await waitState(page, "all-a.bin", ["uploading"]);
    await page.getByRole("button", { name: "Pause all", exact: true }).click();
    for (const n of ["all-a.bin", "all-b.bin"]) await waitState(page, n, ["paused"]);
    await page.getByRole("button", { name: "Resume all", exact: true }).click();
    for (const n of ["all-a.bin", "all-b.bin"]) await waitState(page, n, ["complete"]);
    await page.close();
  });

  test("pause then resume finishes; cancel removes the upload from the backend", async () => {
    const page = await openApp(chromium, server);
    await page.setInputFiles("#pick-files", [files.pause.path, files.cancel.path]);
    await waitState(page, "pause-me.bin", ["uploading"]);
    await rowOf(page, "pause-me.bin").getByRole("button", { name: "Pause pause-me.bin" }).click();
    await waitState(page, "pause-me.bin", ["paused"]);
    await sleep(300); // a report of a part stored just before the pause may still land
    const atPause = await sent(page, "pause-me.bin");
    await sleep(1000);
    assert.equal(await sent(page, "pause-me.bin"), atPause, "nothing is sent while paused");
    assert.ok(atPause < files.pause.size);
    await rowOf(page, "pause-me.bin").getByRole("button", { name: "Resume pause-me.bin" }).click();

    await waitState(page, "cancel-me.bin", ["uploading", "hashing"]);
    await page.waitForFunction(() => window.shardropPage.rows.find((r) => r.name === "cancel-me.bin").task.upload_id);
    const uploadId = await page.evaluate(() => window.shardropPage.rows.find((r) => r.name === "cancel-me.bin").task.upload_id);
    await rowOf(page, "cancel-me.bin").getByRole("button", { name: "Cancel cancel-me.bin" }).click();
    await waitState(page, "cancel-me.bin", ["cancelled"]);
    assert.equal((await server.api(`/uploads/${uploadId}`)).status, 404, "the cancelled upload is gone");
    await waitState(page, "pause-me.bin", ["complete"]);
    await sleep(400);
    assert.equal(await rowOf(page, "cancel-me.bin").locator(".state").textContent(), "Cancelled");
    await page.close();
  });

  test("reload mid-upload, give the file again: it finishes with fewer PUTs than parts", async () => {
    const parts = Math.ceil(files.reload.size / (8 * MIB));
    let page = await openApp(chromium, server);
    await page.setInputFiles("#pick-files", files.reload.path);
    await page.waitForFunction(() => {
      const r = window.shardropPage.rows[0];
      return r.progress.sent > 0.4 * r.progress.total;
    }, null, { timeout: 120_000 });
    await page.reload();
    await page.waitForFunction(() => window.shardropPage);
    page.partPuts = 0;
    await page.setInputFiles("#pick-files", files.reload.path);
    await waitState(page, "reload-me.bin", ["complete"]);
    assert.ok(page.partPuts > 0 && page.partPuts < parts, `${page.partPuts} PUTs for ${parts} parts after the reload`);
    await page.close();
  });

  test("a duplicate shows 'already stored' and sends no part", async () => {
    const page = await openApp(chromium, server);
    // Instant upload needs content the server has verified.
    await page.waitForFunction(
      async () => (await (await fetch("/api/v1/files")).json()).files.find((f) => f.name === "holiday-video.mp4")?.verified,
      null,
      { polling: 200, timeout: 60_000 },
    );
    await page.setInputFiles("#pick-files", files.big.path);
    await waitState(page, "holiday-video.mp4", ["instant", "complete"]);
    // What a person reads (the page renders a few times a second).
    await page.waitForFunction(() => document.querySelector(".row .state")?.textContent !== "Hashing");
    assert.equal(await rowOf(page, "holiday-video.mp4").locator(".state").textContent(), "Already stored, 0 bytes sent");
    assert.equal(page.partPuts, 0);
    await page.close();
  });
});

test("an error from the backend shows in words", async () => {
  const server = await new Server({ web: WEB, env: { SHARDROP__UPLOADS__MAX_FILE_SIZE: String(1024 * 1024) } }).start();
  const chromium = await browser();
  try {
    const file = await makeFile(tempDir(), "too-big.bin", 2 * MIB);
    const page = await openApp(chromium, server);
    await page.setInputFiles("#pick-files", file.path);
    await waitState(page, "too-big.bin", ["failed"], 30_000);
    const error = rowOf(page, "too-big.bin").locator(".error");
    await page.waitForFunction(() => document.querySelector(".row .error")?.textContent);
    const text = await error.textContent();
    assert.equal(text, "This file (2.10 MB) is larger than the server accepts (at most 1.05 MB).");
    await page.screenshot({ path: join(ARTIFACTS, "page-error.png") });
  } finally {
    await chromium.close();
    await server.stop();
  }
});
