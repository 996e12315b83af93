// Resume after a crash without picking files again, in Chromium with File System Access.
//
// A file of 400 MB picked through `showOpenFilePicker()`, then a folder of 600 small files
// in nested folders (non-Latin names) through `showDirectoryPicker()`: the page keeps both
// handles in IndexedDB. Mid-drop the browser is closed; launched again on the same profile,
// the page lists the unfinished uploads, and one click on "Resume" reads every file again
// through the kept handle and finishes them, sending no part the server had been told of.
//
// The files live in the origin's private file system (OPFS), whose handles are the same
// FileSystemDirectoryHandle a person's pick gives and survive a restart in the profile:
// the test replaces only the pickers' dialogs (which headless Chromium cannot show) by
// functions answering those handles. Everything after the pick is the page's own code.

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import { Server, tempDir } from "../lib/shardrop.mjs";
import { browserWithProfile, openSignedIn } from "./harness.mjs";

const SMALL = 600;
const BIG = 400e6;

/** Fills OPFS: the folder "drop" of small files, and the big file; answers each file's name on the page and its SHA-1. */
function fillFolder({ small, big }) {
  return (async () => {
    const root = await navigator.storage.getDirectory();
    const top = await root.getDirectoryHandle("drop", { create: true });
    const hex = async (b) => [...new Uint8Array(await crypto.subtle.digest("SHA-1", b))].map((x) => x.toString(16).padStart(2, "0")).join("");
    const random = (size) => {
      const b = new Uint8Array(size);
      for (let off = 0; off < size; off += 65536) crypto.getRandomValues(b.subarray(off, off + 65536));
      return b;
    };
    const write = async (dir, name, bytes) => {
      const w = await (await dir.getFileHandle(name, { create: true })).createWritable();
      await w.write(bytes);
      await w.close();
    };
    const names = ["photos", "données", "фото", "写真"];
    const sha1 = {};
    for (let i = 0; i < small; i++) {
      const sub = await top.getDirectoryHandle(names[i % names.length], { create: true });
      const bytes = random(1 + ((i * 7919) % 200_000));
      await write(sub, `shot ${i}.bin`, bytes);
      sha1[`drop/${names[i % names.length]}/shot ${i}.bin`] = await hex(bytes);
    }
    const bytes = random(big);
    await write(root, "big one.bin", bytes);
    sha1["big one.bin"] = await hex(bytes);
    return sha1;
  })();
}

describe("resume after the browser closed", () => {
  let server, profile, context;
  before(async () => {
    server = await new Server({ storage: "local", web: null }).start();
    profile = tempDir("shardrop-profile-");
  });
  after(async () => {
    await context?.close();
    await server?.stop();
  });

  test("closed mid-drop, reopened: one click on Resume finishes every file, sending no reported part again", async () => {
    const { token } = await server.user();
    context = await browserWithProfile(profile);
    let page = await openSignedIn(context, server, token);
    const expected = await page.evaluate(fillFolder, { small: SMALL, big: BIG });
    const total = Object.keys(expected).length;

    // Parts the server was told of (reports), before and after the restart.
    const reported = (p, into) =>
      p.on("response", (r) => {
        const m = /\/api\/v1\/uploads\/([^/]+)\/parts\/(\d+)$/.exec(r.url());
        if (m && r.request().method() === "PUT" && r.ok()) into.push(`${m[1]}#${m[2]}`);
      });
    const sentBefore = [];
    reported(page, sentBefore);
    // The pickers' dialogs answer the big file, then the folder: the big one is queued first.
    await page.evaluate(() => {
      window.showOpenFilePicker = async () => [await (await navigator.storage.getDirectory()).getFileHandle("big one.bin")];
      window.showDirectoryPicker = async () => (await navigator.storage.getDirectory()).getDirectoryHandle("drop");
    });
    await page.getByText("Choose files", { exact: true }).click();
    await page.waitForFunction(() => window.shardropPage.totals().files === 1);
    await page.getByText("Choose a folder", { exact: true }).click();
    await page.waitForFunction((n) => window.shardropPage.totals().files === n, total, { timeout: 60_000 });
    // Mid-drop: a part of the big one stored, not all of it (some small files done by then too).
    await page.waitForFunction(
      () => {
        const big = window.shardropPage.rows.find((r) => r.name === "big one.bin");
        return window.shardropPage.totals().done >= 20 && big.progress.sent > 0 && big.progress.sent < big.size * 0.75;
      },
      null,
      { timeout: 300_000, polling: 20 },
    );
    const doneBefore = await page.evaluate(() => window.shardropPage.rows.filter((r) => ["complete", "instant"].includes(r.state)).map((r) => r.name));
    assert.ok(!doneBefore.includes("big one.bin") && doneBefore.length < total - 1, `closed mid-drop: ${doneBefore.length} of ${total} done`);
    await context.close();

    context = await browserWithProfile(profile);
    page = await openSignedIn(context, server, token);
    const sentAfter = [];
    reported(page, sentAfter);
    await page.waitForSelector("#unfinished:not([hidden])");
    const text = await page.textContent("#unfinished-text");
    assert.match(text, /can go on from here/, text);
    assert.ok(await page.isHidden("#give-again-label"), "no file needs giving again");
    await page.getByRole("button", { name: "Resume", exact: true }).click();
    await page.waitForFunction(
      () => {
        const t = window.shardropPage.totals();
        return document.getElementById("unfinished").hidden && t.files > 0 && !t.active;
      },
      null,
      { timeout: 300_000, polling: 250 },
    );
    const end = await page.evaluate(() => window.shardropPage.totals());
    assert.equal(end.failed, 0);
    assert.ok(await page.isHidden("#unfinished"), "nothing left unfinished");
    const again = sentAfter.filter((p) => sentBefore.includes(p));
    assert.deepEqual(again, [], "no part reported before the restart is sent again");
    const resumedNames = await page.evaluate(() => window.shardropPage.rows.map((r) => r.name));
    // Files in flight when it closed (8 at most at once) may have been stored meanwhile.
    assert.ok(resumedNames.length >= total - doneBefore.length - 8, `${resumedNames.length} resumed`);
    for (const n of resumedNames) assert.ok(!doneBefore.includes(n), `${n} was stored before the restart and is not queued again`);

    // Every file once, with its bytes' SHA-1.
    const list = await (await server.api("/files?limit=1000", { token })).json();
    assert.equal(list.files.length, total, "a file each, none twice");
    for (const f of list.files) assert.equal(f.sha1, expected[f.name], f.name);
    // What the page kept for the restart is gone with the uploads.
    await page.waitForFunction(
      () =>
        new Promise((ok) => {
          const req = indexedDB.open("shardrop-page");
          req.onsuccess = () => {
            const all = req.result.transaction("files").objectStore("files").count();
            all.onsuccess = () => ok(all.result === 0);
          };
        }),
      null,
      { timeout: 10_000, polling: 250 },
    );
    console.log(
      `# ${doneBefore.length} of ${total} stored before the restart; ${resumedNames.length} resumed with one click; ` +
        `${sentBefore.length} parts reported before, ${sentAfter.length} after`,
    );
  });
});
