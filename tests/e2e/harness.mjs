// The browser side of the browser tests: headless Chromium, the engine's test page opened
// in it (served by a `shardrop serve` of ../lib/shardrop.mjs, which holds the server, its
// API and the other Node-only helpers the benchmarks share), uploads started and watched
// there, and files on disk whose SHA-1 is known. The test page sends the token of the
// server's default user unless a test names another.

import { createHash, randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

import { MIB } from "../lib/shardrop.mjs";

/** A file of `size` random bytes on disk; answers its path and SHA-1. */
export async function makeFile(dir, name, size) {
  const path = join(dir, name);
  const hash = createHash("sha1");
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const chunk = randomBytes(Math.min(left, 4 * MIB));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
    left -= chunk.length;
  }
  await new Promise((r, j) => out.end((e) => (e ? j(e) : r())));
  return { path, name, size, sha1: hash.digest("hex") };
}

const LAUNCH = {
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
};

/** Headless Chromium with a fresh, empty profile of its own (launch() refuses --user-data-dir). */
export async function browser() {
  return chromium.launch(LAUNCH);
}

/**
 * Headless Chromium on the profile in `dir` (IndexedDB, localStorage, the origin's private
 * file system): closed and launched again on the same `dir`, it is the same browser after a
 * restart. Answers its one context.
 */
export async function browserWithProfile(dir, options = {}) {
  return chromium.launchPersistentContext(dir, { ...LAUNCH, ...options });
}

/**
 * Counts in `page.partPuts` the part PUTs the page and its workers start (a test may set it
 * back to 0). Part PUTs go to storage (or the local store); reports are PUTs to /api/v1/uploads/.
 */
export function tallyPartPuts(page) {
  page.partPuts = 0;
  page.on("request", (r) => {
    if (r.method() === "PUT" && !r.url().includes("/api/v1/uploads/")) page.partPuts++;
  });
}

/**
 * Opens the engine's test page. `page.partPuts` counts part PUTs its worker starts.
 * `page.token` is the token its uploads send: `token`, or the server's default user's
 * (`server` may be a plain `{origin}`, such as a cluster behind nginx: pass `token` then).
 */
export async function openPage(b, server, { token } = {}) {
  const page = await b.newPage();
  page.token = token !== undefined ? token : (await server.user()).token;
  page.on("pageerror", (e) => console.error("page error:", e));
  tallyPartPuts(page);
  await page.goto(`${server.origin}/index.html`);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

/**
 * Picks `file` in the page and starts uploading it. The task lives in `window.tasks[name]`;
 * answers when it started (or `until` holds for the task).
 */
export async function startUpload(page, file, { concurrency = 4 } = {}) {
  await page.setInputFiles("#pick", file.path);
  await page.evaluate(
    ({ name, concurrency, token }) => {
      window.tasks ??= {};
      window.uploader ??= new window.shardrop.Uploader({ concurrency, token: token ?? undefined });
      const f = [...document.querySelector("#pick").files].find((x) => x.name === name);
      const task = window.uploader.upload(f);
      task.done.then(
        (r) => (task.result = r),
        (e) => (task.error = { code: e.code, message: e.message, status: e.status }),
      );
      window.tasks[name] = task;
    },
    { name: file.name, concurrency, token: page.token },
  );
}

/** Waits for the task to end; answers {result, error, state, timings, upload_id}. */
export async function finished(page, name) {
  await page.waitForFunction((n) => window.tasks[n].result || window.tasks[n].error, name, { timeout: 300_000, polling: 100 });
  return page.evaluate((n) => {
    const t = window.tasks[n];
    return { result: t.result, error: t.error, state: t.state, timings: t.timings, upload_id: t.upload_id, progress: t.progress };
  }, name);
}

/** Waits until `sent` passes `fraction` of the file. */
export async function sentAtLeast(page, name, fraction) {
  await page.waitForFunction(
    ({ n, f }) => window.tasks[n].progress.sent >= f * window.tasks[n].progress.total,
    { n: name, f: fraction },
    { timeout: 300_000, polling: 50 },
  );
}

/** Drops paths (files or folders) on the page the way a person's drag does. */
export async function drop(page, paths) {
  const cdp = await page.context().newCDPSession(page);
  const data = { items: [], files: paths, dragOperationsMask: 1 };
  for (const type of ["dragEnter", "dragOver", "drop"]) {
    await cdp.send("Input.dispatchDragEvent", { type, x: 400, y: 300, data });
  }
  await cdp.detach();
}

/**
 * Opens the drag-and-drop page (served at / by `server`) in `where` (a browser or a
 * context), signed in with `token` as a kept session; waits until the page has checked it.
 */
export async function openSignedIn(where, server, token, { viewport = { width: 1100, height: 900 } } = {}) {
  const page = await where.newPage({ viewport });
  page.on("pageerror", (e) => console.error("page error:", e));
  tallyPartPuts(page);
  await page.goto(`${server.origin}/`);
  await page.evaluate((t) => localStorage.setItem("shardrop.token", t), token);
  await page.reload();
  await page.waitForFunction(() => document.body.dataset.auth === "signed-in");
  return page;
}
