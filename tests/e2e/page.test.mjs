// The drag-and-drop page (www/) in headless Chromium against `shardrop serve`, driven as a
// person does: an account created and signed into through the page's own form, then real
// drops (Chromium's own drag machinery through the DevTools protocol, files and folders),
// pause, resume, cancel, reload, duplicates, downloads, sign-out, a second account, and
// errors from the backend, with screenshots saved to tests/artifacts/ (ignored by git). Each
// page is a fresh browser profile: it signs in. The README's picture, docs/screenshot.png,
// is tests/artifacts/page-finished.png copied by hand: scripts/screenshot.sh.

import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";

import { MIB, ROOT, Server, sha1Of, sleep, tempDir } from "../lib/shardrop.mjs";
import { browser, drop, makeFile, tallyPartPuts } from "./harness.mjs";

const ARTIFACTS = join(ROOT, "tests", "artifacts");
const WEB = join(ROOT, "www", "dist");
const DESKTOP = { width: 1100, height: 900 };
const PHONE = { width: 390, height: 800 };

/** Credentials for an account a test creates through the page. */
const person = (name) => ({ username: `${name}-${randomBytes(3).toString("hex")}`, password: randomBytes(12).toString("base64url") });

/** Opens the page; with `user`, signs in through its form (the account must exist). */
async function openApp(chromium, server, { user, viewport = DESKTOP } = {}) {
  const page = await chromium.newPage({ viewport });
  page.on("pageerror", (e) => console.error("page error:", e));
  tallyPartPuts(page);
  await page.goto(`${server.origin}/`);
  await authSettled(page);
  if (user) await signIn(page, user);
  return page;
}

/**
 * The page at phone width (signed in as `user` when given): a screenshot to tests/artifacts/
 * `shot`, and no sideways scrolling (`message` if there is).
 */
async function atPhoneWidth(chromium, server, { user, shot, message }) {
  const phone = await openApp(chromium, server, { user, viewport: PHONE });
  await phone.screenshot({ path: join(ARTIFACTS, shot) });
  const overflow = await phone.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  assert.equal(overflow, false, message);
  await phone.close();
}

/** Waits until the page knows whether it is signed in (a kept token is checked first). */
async function authSettled(page) {
  await page.waitForFunction(() => window.shardropPage && document.body.dataset.auth);
}

/** Fills the sign-in form and presses "Sign in" ("Create account" with `create`); waits for the answer. */
async function submitForm(page, { username, password }, { create = false } = {}) {
  await page.getByLabel("Username", { exact: true }).fill(username);
  await page.getByLabel("Password", { exact: true }).fill(password);
  const answered = page.waitForResponse((r) => r.url().endsWith("/api/v1/sessions") || (create && r.url().endsWith("/api/v1/users")));
  await page.getByRole("button", { name: create ? "Create account" : "Sign in", exact: true }).click();
  await answered;
}

async function signIn(page, user, options) {
  await submitForm(page, user, options);
  await page.waitForFunction(() => document.body.dataset.auth === "signed-in", null, { timeout: 10_000 });
}

/** The session token the page keeps (what a reload signs in with). */
const tokenOf = (page) => page.evaluate(() => localStorage.getItem("shardrop.token"));

/** Clicks a stored file's Download button; answers the SHA-1 of what the browser saved. */
async function download(page, name) {
  const [saved] = await Promise.all([
    page.waitForEvent("download", { timeout: 120_000 }),
    page.getByRole("button", { name: `Download ${name}`, exact: true }).click(),
  ]);
  return sha1Of(await saved.createReadStream());
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
  // Made through the page's "Create account" by the second test; every later page signs in as it.
  const user = person("ada");
  let server, chromium, dir, files;
  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    // No web_dir: the page built into the binary, as `shardrop serve` alone serves it.
    server = await new Server({ web: null }).start();
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

  test("signed out, only the sign-in panel shows, on a desktop and a phone", async () => {
    const page = await openApp(chromium, server);
    assert.equal(await page.evaluate(() => document.body.dataset.auth), "signed-out");
    assert.ok(await page.getByRole("heading", { name: "Sign in", exact: true }).isVisible());
    assert.equal(await page.isHidden("#workspace"), true, "no drop zone, queue or file list");
    assert.equal(await page.isHidden("#account"), true);
    await page.screenshot({ path: join(ARTIFACTS, "page-sign-in.png") });
    await atPhoneWidth(chromium, server, { shot: "page-sign-in-phone.png", message: "no sideways scrolling at phone width" });
    await page.close();
  });

  test("shardrop serve alone serves the page, built into the binary", async () => {
    const index = await fetch(`${server.origin}/`);
    assert.equal(index.status, 200);
    assert.match(index.headers.get("content-type"), /^text\/html/);
    assert.match(index.headers.get("content-security-policy"), /frame-ancestors 'none'/);
    assert.equal(index.headers.get("x-frame-options"), "DENY");
    const html = await index.text();
    assert.match(html, /<title>/);
    const etag = index.headers.get("etag");
    assert.ok(etag, "an ETag");
    assert.equal((await fetch(`${server.origin}/`, { headers: { "if-none-match": etag } })).status, 304);
    const js = await fetch(`${server.origin}/app.js`);
    assert.equal(js.status, 200);
    assert.match(js.headers.get("content-type"), /javascript/);
    const missing = await fetch(`${server.origin}/no-such-file.js`);
    assert.equal(missing.status, 404);
    assert.equal((await missing.json()).code, "not-found");
  });

  test("an account created on the page is signed in, with an empty workspace", async () => {
    const page = await openApp(chromium, server);
    await signIn(page, user, { create: true });
    assert.equal(await page.textContent("#who"), user.username);
    assert.equal(await page.isHidden("#sign-in"), true);
    assert.equal(await page.textContent("#total"), "Nothing yet");
    assert.ok(await page.isVisible("#files-empty"));
    assert.equal(await page.isHidden("#usage"), true, "no quota on this server: no usage shown");
    assert.ok(await tokenOf(page), "the token is kept for reloads");
    await page.screenshot({ path: join(ARTIFACTS, "page-empty.png") });
    await atPhoneWidth(chromium, server, { user, shot: "page-empty-phone.png", message: "no sideways scrolling at phone width, signed in" });
    await page.close();
  });

  test("three dropped files all finish, and each download hashes to its source", async () => {
    const page = await openApp(chromium, server, { user });
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
    // What the browser saves from each Download button (a signed URL the page asks for).
    for (const f of [files.big, files.doc, files.small]) {
      assert.equal(await download(page, f.name), f.sha1, `${f.name} through its Download button`);
    }
    assert.match(await page.textContent("#total"), /^3 of 3 done/);
    await sleep(400);
    // The README's picture: scripts/screenshot.sh copies it to docs/screenshot.png.
    await page.screenshot({ path: join(ARTIFACTS, "page-finished.png"), fullPage: true });
    await page.close();
  });

  test("a dropped folder uploads every file in it, with its path", async () => {
    const page = await openApp(chromium, server, { user });
    await drop(page, [files.folder]);
    const names = ["photos/cover.jpg", "photos/2026/beach.jpg", "photos/2026/summer/sunset.jpg"];
    for (const n of names) await waitState(page, n, ["complete"]);
    // The list is asked again at most every 2 s, whatever the number of files finishing.
    await page.waitForFunction(
      (names) => {
        const listed = [...document.querySelectorAll("#files tbody tr")].map((tr) => tr.cells[0].textContent);
        return names.every((n) => listed.includes(n));
      },
      names,
      { timeout: 10_000 },
    );
    // Delete one from the list: gone from the page and from the backend.
    const delCover = page.getByRole("button", { name: "Delete photos/cover.jpg", exact: true });
    const id = await page.locator("#files tbody tr", { has: delCover }).getAttribute("data-file-id");
    await delCover.click();
    await page.waitForFunction(() => !document.querySelector('button[aria-label="Delete photos/cover.jpg"]'));
    assert.equal((await server.api(`/files/${id}`, { token: await tokenOf(page) })).status, 404);
    await page.close();
  });

  test("pause all stops every upload; resume all finishes them", async () => {
    const page = await openApp(chromium, server, { user });
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
    const page = await openApp(chromium, server, { user });
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
    assert.equal((await server.api(`/uploads/${uploadId}`, { token: await tokenOf(page) })).status, 404, "the cancelled upload is gone");
    await waitState(page, "pause-me.bin", ["complete"]);
    await sleep(400);
    assert.equal(await rowOf(page, "cancel-me.bin").locator(".state").textContent(), "Cancelled");
    await page.close();
  });

  test("reload mid-upload: the file is listed to give again, and given, finishes with fewer PUTs than parts", async () => {
    const parts = Math.ceil(files.reload.size / (8 * MIB));
    let page = await openApp(chromium, server, { user });
    await page.setInputFiles("#pick-files", files.reload.path);
    await page.waitForFunction(() => {
      const r = window.shardropPage.rows[0];
      return r.progress.sent > 0.4 * r.progress.total;
    }, null, { timeout: 120_000 });
    await page.reload();
    await authSettled(page);
    assert.equal(await page.textContent("#who"), user.username, "still signed in after the reload");
    // Picked through an <input>, the page has no handle to it: it names the file to give again.
    await page.waitForSelector("#unfinished:not([hidden])");
    assert.match(await page.textContent("#unfinished-text"), /Give this file again/);
    assert.match(await page.textContent("#unfinished-list"), /reload-me\.bin/);
    assert.ok(await page.isHidden("#resume-unfinished"), "nothing to resume without the file");
    page.partPuts = 0;
    await page.setInputFiles("#give-again", files.reload.path);
    await waitState(page, "reload-me.bin", ["complete"]);
    assert.ok(page.partPuts > 0 && page.partPuts < parts, `${page.partPuts} PUTs for ${parts} parts after the reload`);
    assert.ok(await page.isHidden("#unfinished"), "nothing left unfinished");
    await page.close();
  });

  test("a duplicate shows 'already stored' and sends no part", async () => {
    const page = await openApp(chromium, server, { user });
    // Instant upload needs content the server has verified.
    await page.waitForFunction(
      async () => {
        const headers = { authorization: `Bearer ${localStorage.getItem("shardrop.token")}` };
        const list = await (await fetch("/api/v1/files", { headers })).json();
        return list.files.find((f) => f.name === "holiday-video.mp4")?.verified;
      },
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

  test("the stored files come a page at a time and are found by name", async () => {
    const page = await openApp(chromium, server, { user });
    const many = join(dir, "many");
    mkdirSync(many);
    const made = [];
    for (let i = 0; i < 101; i++) made.push(await makeFile(many, `many-${String(i).padStart(3, "0")}.txt`, 10 + i));
    await page.setInputFiles("#pick-files", made.map((f) => f.path));
    await page.waitForFunction(() => window.shardropPage.totals().done === 101, null, { timeout: 120_000 });
    const stored = (await (await server.api("/files?limit=1000", { token: await tokenOf(page) })).json()).files.length;
    assert.ok(stored > 101, `${stored} files stored`);
    // The first page, then the rest with "Show more".
    await page.waitForFunction(() => document.querySelectorAll("#files tbody tr").length === 100 && !document.getElementById("files-more").hidden);
    await page.getByRole("button", { name: "Show more", exact: true }).click();
    await page.waitForFunction((n) => document.querySelectorAll("#files tbody tr").length === n, stored);
    assert.ok(await page.isHidden("#files-more"), "no more after the last page");
    // A search by name (any case) lists what the server finds, and says when it finds nothing.
    await page.getByLabel("Find stored files by name").fill("MANY-07");
    const expected = made.filter((f) => f.name.includes("many-07")).map((f) => f.name).sort();
    await page.waitForFunction((n) => document.querySelectorAll("#files tbody tr").length === n, expected.length);
    const found = await page.$$eval("#files tbody tr", (trs) => trs.map((tr) => tr.cells[0].textContent).sort());
    assert.deepEqual(found, expected);
    await page.getByLabel("Find stored files by name").fill("no file is called this");
    await page.waitForSelector("#files-empty:not([hidden])");
    assert.match(await page.textContent("#files-empty"), /No stored file's name contains/);
    await page.getByLabel("Find stored files by name").fill("");
    await page.waitForFunction(() => document.querySelectorAll("#files tbody tr").length === 100);
    await page.close();
  });

  test("a reload stays signed in; signing out shows the sign-in panel and the files are gone", async () => {
    const page = await openApp(chromium, server, { user });
    await page.waitForFunction(() => document.querySelectorAll("#files tbody tr").length > 0);
    const token = await tokenOf(page);
    await page.reload();
    await authSettled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.auth), "signed-in");
    assert.equal(await page.textContent("#who"), user.username);
    await page.waitForFunction(() => document.querySelectorAll("#files tbody tr").length > 0);

    await page.getByRole("button", { name: "Sign out", exact: true }).click();
    await page.waitForFunction(() => document.body.dataset.auth === "signed-out");
    assert.ok(await page.getByRole("heading", { name: "Sign in", exact: true }).isVisible());
    assert.equal(await page.isHidden("#workspace"), true);
    assert.equal(await page.locator("#files tbody tr").count(), 0, "the file list is gone");
    assert.equal(await tokenOf(page), null, "the token is forgotten");
    assert.equal((await server.api("/files", { token })).status, 401, "and revoked on the server");
    await page.reload();
    await authSettled(page);
    assert.equal(await page.evaluate(() => document.body.dataset.auth), "signed-out", "a reload stays signed out");
    await page.close();
  });

  test("a second account, on a fresh page, sees an empty file list", async () => {
    const page = await openApp(chromium, server);
    const listed = page.waitForResponse((r) => r.url().includes("/api/v1/files?"));
    await signIn(page, person("grace"), { create: true });
    const list = await (await listed).json();
    assert.deepEqual(list.files, [], "none of the first account's files");
    assert.equal(await page.locator("#files tbody tr").count(), 0);
    assert.ok(await page.isVisible("#files-empty"));
    await page.close();
  });

  test("a wrong password, or a taken name, shows the server's words", async () => {
    const page = await openApp(chromium, server);
    const error = page.getByRole("alert");
    await submitForm(page, { ...user, password: `${user.password}x` });
    await page.waitForFunction(() => document.getElementById("auth-error").textContent);
    assert.equal(await error.getAttribute("data-code"), "invalid-credentials");
    assert.equal(await page.evaluate(() => document.body.dataset.auth), "signed-out");
    assert.equal(await tokenOf(page), null);
    await page.screenshot({ path: join(ARTIFACTS, "page-sign-in-error.png") });
    await submitForm(page, user, { create: true });
    await page.waitForFunction(() => document.getElementById("auth-error").dataset.code === "username-taken");
    assert.ok((await error.textContent()).length > 0);
    await page.close();
  });
});

test("errors from the backend show in words: a file too large, a full quota", async () => {
  // The quota holds the too-large file, so that only its size can refuse it.
  const env = { SHARDROP__UPLOADS__MAX_FILE_SIZE: String(1024 * 1024), SHARDROP__AUTH__QUOTA_BYTES: "2500000" };
  const server = await new Server({ web: WEB, env }).start();
  const chromium = await browser();
  try {
    const dir = tempDir();
    const file = await makeFile(dir, "too-big.bin", 2 * MIB);
    const page = await openApp(chromium, server, { user: await server.user() });
    assert.equal(await page.textContent("#usage"), "0 B of 2.50 MB used");
    await page.setInputFiles("#pick-files", file.path);
    await waitState(page, "too-big.bin", ["failed"], 30_000);
    const error = rowOf(page, "too-big.bin").locator(".error");
    await page.waitForFunction(() => document.querySelector(".row .error")?.textContent);
    const text = await error.textContent();
    assert.equal(text, "This file (2.10 MB) is larger than the server accepts (at most 1.05 MB).");
    await page.screenshot({ path: join(ARTIFACTS, "page-error.png") });

    // Two files of 1 MB fill 2 MB of the 2.5 MB quota; a third does not fit.
    const fill = [await makeFile(dir, "fill-1.bin", 1_000_000), await makeFile(dir, "fill-2.bin", 1_000_000)];
    await page.setInputFiles("#pick-files", fill.map((f) => f.path));
    for (const f of fill) await waitState(page, f.name, ["complete"], 60_000);
    await page.waitForFunction(() => document.getElementById("usage").textContent === "2.00 MB of 2.50 MB used");
    const over = await makeFile(dir, "over-quota.bin", 1_000_000);
    await page.setInputFiles("#pick-files", over.path);
    await waitState(page, over.name, ["failed"], 30_000);
    const overError = rowOf(page, over.name).locator(".error");
    await page.waitForFunction(() => document.querySelectorAll(".row .error:not([hidden])").length === 2);
    assert.equal(await overError.textContent(), "This file (1.00 MB) does not fit in what is left of your storage quota.");
    assert.equal(await page.evaluate(() => window.shardropPage.rows.find((r) => r.name === "over-quota.bin").error.code), "quota-exceeded");
    // The queue's filters: "Failed" shows the two that failed, with "Retry failed" for them.
    await page.locator('label[for="filter-failed"]').click();
    await page.waitForFunction(() => document.querySelectorAll("#queue .row").length === 2);
    assert.deepEqual((await page.$$eval("#queue .row", (rows) => rows.map((r) => r.dataset.state))).sort(), ["failed", "failed"]);
    assert.equal(await page.textContent('label[for="filter-failed"] .count'), "2");
    assert.equal(await page.textContent('label[for="filter-done"] .count'), "2");
    // Retried, each is asked of the server again, which still refuses it.
    const creates = [];
    page.on("request", (r) => r.method() === "POST" && r.url().endsWith("/api/v1/uploads") && creates.push(r.url()));
    await page.getByRole("button", { name: "Retry failed", exact: true }).click();
    for (let i = 0; creates.length < 2 && i < 100; i++) await sleep(100);
    await page.waitForFunction(() => window.shardropPage.totals().failed === 2 && !window.shardropPage.totals().active);
    assert.equal(creates.length, 2, "both asked again");
  } finally {
    await chromium.close();
    await server.stop();
  }
});
