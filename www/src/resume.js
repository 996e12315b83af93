// Unfinished uploads across reloads and browser restarts, without picking files again.
//
// Where the browser hands out file handles (File System Access, Chromium: a drop's
// `getAsFileSystemHandle()`, `showDirectoryPicker()`, `showOpenFilePicker()`), the page keeps
// in IndexedDB, for every file not yet stored, the handle it came from (the dropped or picked
// folder or file: its "root") and its path inside it. After a reload the "Unfinished uploads"
// panel lists them with the server's open uploads (`GET /uploads`). One "Resume" asks the
// browser's read permission for each root (Chromium restores every kept handle's permission
// with one prompt), reads the files again and queues them: the engine finds each upload and
// sends only the parts the storage lacks. Uploads the server has and no handle reaches are
// listed by name; files given again are matched to them by name, size and modification time.
// Every failure of IndexedDB here is soft: the page works as before, with files given again.

import { bytes } from "./format.js";
import { api } from "./session.js";

const $ = (id) => document.getElementById(id);
const DB = "shardrop-page";
/**
 * Kept files: key "account\0name\0size\0lastModified" -> {account, name, size, lastModified,
 * root, path, uploadId once the server has an upload for it}.
 */
const FILES = "files";
/** Roots: auto id -> a FileSystemHandle (a folder or a file). */
const ROOTS = "roots";
/** Open uploads asked of the server: pages of 1000, at most this many pages. */
const SERVER_PAGES = 10;
/** Names listed in the panel; the rest are counted. */
const LISTED = 20;

export const keyOf = (account, name, size, lastModified) => `${account}\u0000${name}\u0000${size}\u0000${lastModified}`;

const done = (req) =>
  new Promise((ok, fail) => {
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
  });

let opened = null;
function db() {
  opened ??= new Promise((ok, fail) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => {
      req.result.createObjectStore(FILES);
      req.result.createObjectStore(ROOTS, { autoIncrement: true });
    };
    req.onsuccess = () => ok(req.result);
    req.onerror = () => fail(req.error);
  }).catch(() => null);
  return opened;
}

/** Runs `fn(stores)` in one transaction; answers its result, or null when IndexedDB fails. */
async function tx(mode, fn) {
  const d = await db();
  if (!d) return null;
  try {
    const t = d.transaction([FILES, ROOTS], mode);
    const result = fn({ files: t.objectStore(FILES), roots: t.objectStore(ROOTS) });
    await new Promise((ok, fail) => {
      t.oncomplete = ok;
      t.onerror = t.onabort = () => fail(t.error);
    });
    return result instanceof IDBRequest ? result.result : await result;
  } catch {
    return null;
  }
}

/** Keeps a dropped or picked handle; answers its id, or null. */
export async function keepRoot(handle) {
  return tx("readwrite", (s) => s.roots.add(handle));
}

/** Keeps files being queued: `[{name, size, lastModified, root, path}]`. */
export async function keep(account, files) {
  await tx("readwrite", (s) => {
    for (const f of files) s.files.put({ account, ...f }, keyOf(account, f.name, f.size, f.lastModified));
  });
}

/** Notes the server's upload of a kept file: after a crash, it tells a stored file from one to send. */
export function started(key, uploadId) {
  tx("readwrite", (s) => {
    const req = s.files.get(key);
    req.onsuccess = () => req.result && s.files.put({ ...req.result, uploadId }, key);
  });
}

/** Forgets a file that is stored (or cancelled): at once, so that a crash a moment later never queues it again. */
export function forget(key) {
  tx("readwrite", (s) => s.files.delete(key));
}

async function keptFiles(account) {
  const all = (await tx("readonly", (s) => s.files.getAll())) ?? [];
  return all.filter((f) => f.account === account);
}

async function openUploads() {
  const out = [];
  let cursor = "";
  for (let i = 0; i < SERVER_PAGES; i++) {
    const page = await api("GET", `/uploads?limit=1000${cursor && `&cursor=${encodeURIComponent(cursor)}`}`);
    out.push(...page.uploads);
    if (!(cursor = page.next_cursor)) break;
  }
  return out;
}

/** The file a kept entry names, read through its root; null where it cannot be read. */
async function fileOf(root, path) {
  try {
    let h = root;
    const parts = path ? path.split("/") : [];
    for (let i = 0; i < parts.length; i++) {
      h = i === parts.length - 1 ? await h.getFileHandle(parts[i]) : await h.getDirectoryHandle(parts[i]);
    }
    return await h.getFile();
  } catch {
    return null;
  }
}

/** Read permission for a handle: asked only when not already granted (a click must be on the stack). */
async function readable(handle) {
  try {
    const opts = { mode: "read" };
    if ((await handle.queryPermission?.(opts)) === "granted") return true;
    return (await handle.requestPermission?.(opts)) === "granted";
  } catch {
    return false;
  }
}

/**
 * The "Unfinished uploads" panel. `queue(files)` queues `[{file, name, root?, path?}]`;
 * `queued(key)` says whether this page already has that file in its queue.
 */
export function createResume({ queue, queued, announce }) {
  let account = null;
  let kept = []; // kept files with a root, not in the queue
  let wanted = []; // open uploads on the server no kept file covers
  let busy = false;

  function show() {
    const n = kept.length + wanted.length;
    $("unfinished").hidden = !n;
    if (!n) return;
    const size = [...kept, ...wanted].reduce((s, f) => s + f.size, 0);
    let text = `${n} ${n === 1 ? "upload" : "uploads"} did not finish (${bytes(size)}).`;
    if (kept.length) text += ` ${kept.length} can go on from here: press Resume.`;
    if (wanted.length) text += ` Give ${wanted.length === 1 ? "this file" : `these ${wanted.length} files`} again to finish ${wanted.length === 1 ? "it" : "them"}:`;
    $("unfinished-text").textContent = text;
    $("resume-unfinished").hidden = !kept.length;
    $("give-again-label").hidden = !wanted.length;
    const items = wanted.slice(0, LISTED).map((u) => {
      const li = document.createElement("li");
      li.textContent = `${u.name} (${bytes(u.size)})`;
      return li;
    });
    if (wanted.length > LISTED) {
      const li = document.createElement("li");
      li.textContent = `and ${wanted.length - LISTED} more`;
      items.push(li);
    }
    $("unfinished-list").replaceChildren(...items);
  }

  /** Looks again: what is kept here and what the server holds open, less what is queued. */
  async function load(who) {
    account = who;
    let files = [];
    let uploads = [];
    try {
      [files, uploads] = await Promise.all([keptFiles(who), openUploads()]);
    } catch {
      files = await keptFiles(who); // the server's list failed: show what this browser kept
    }
    if (account !== who) return; // signed out or in as another meanwhile
    kept = files.filter((f) => !queued(keyOf(who, f.name, f.size, f.lastModified)));
    const covered = new Set(files.map((f) => keyOf(who, f.name, f.size, f.lastModified)));
    wanted = uploads.filter((u) => {
      const key = keyOf(who, u.name, u.size, u.last_modified);
      return !covered.has(key) && !queued(key);
    });
    show();
  }

  async function resume() {
    if (busy || !kept.length) return;
    busy = true;
    $("resume-unfinished").disabled = true;
    try {
      const roots = new Map();
      for (const f of kept) if (!roots.has(f.root)) roots.set(f.root, null);
      const handles = await tx("readonly", (s) => Promise.all([...roots.keys()].map((id) => done(s.roots.get(id)))));
      [...roots.keys()].forEach((id, i) => roots.set(id, handles?.[i] ?? null));
      // Asked one after another: each may show the browser's prompt.
      for (const [id, h] of roots) if (!h || !(await readable(h))) roots.delete(id);
      const ready = kept.filter((f) => roots.has(f.root));
      let found = [];
      const settled = new Set(); // kept entries resumed or found changed
      const gone = [];
      for (let i = 0; i < ready.length; i += 64) {
        const batch = ready.slice(i, i + 64);
        const files = await Promise.all(batch.map((f) => fileOf(roots.get(f.root), f.path)));
        batch.forEach((f, j) => {
          const file = files[j];
          settled.add(f);
          // A file changed since would be another upload: the person decides what to do with it.
          if (file && file.size === f.size && file.lastModified === f.lastModified) {
            found.push({ file, name: f.name, root: f.root, path: f.path });
          } else gone.push(f);
        });
      }
      // A file whose upload is no longer open may have been stored just before the crash,
      // before the page could forget it: the server says, and a stored one is not sent again.
      const open = new Set((await openUploads().catch(() => [])).map((u) => u.upload_id));
      const stored = new Set();
      for (const f of ready) {
        if (!f.uploadId || open.has(f.uploadId)) continue;
        const u = await api("GET", `/uploads/${encodeURIComponent(f.uploadId)}`).catch(() => null);
        if (u?.state === "complete") {
          stored.add(f.name);
          forget(keyOf(account, f.name, f.size, f.lastModified));
        }
      }
      found = found.filter((f) => !stored.has(f.name));
      kept = kept.filter((f) => !settled.has(f));
      // What no handle reaches any more joins the files to give again.
      wanted.push(...gone.map((f) => ({ name: f.name, size: f.size, last_modified: f.lastModified })));
      show();
      await queue(found);
      announce(`${found.length} unfinished ${found.length === 1 ? "upload goes" : "uploads go"} on` + (gone.length ? `; ${gone.length} must be given again` : ""));
    } finally {
      busy = false;
      $("resume-unfinished").disabled = false;
    }
  }

  /** Files given again: each one matching an open upload takes its name, so the upload goes on. */
  async function givenAgain(input) {
    const byFile = new Map(wanted.map((u) => [`${u.name.split("/").pop()}\u0000${u.size}\u0000${u.last_modified}`, u]));
    const files = [...input.files].map((file) => {
      const u = byFile.get(`${file.name}\u0000${file.size}\u0000${file.lastModified}`);
      if (u) wanted = wanted.filter((w) => w !== u);
      return { file, name: u?.name ?? (file.webkitRelativePath || file.name) };
    });
    input.value = "";
    show();
    await queue(files);
  }

  /** Stops the open uploads on the server and forgets what this browser kept. */
  async function discard() {
    const who = account;
    const keys = kept.map((f) => keyOf(who, f.name, f.size, f.lastModified));
    await tx("readwrite", (s) => keys.forEach((k) => s.files.delete(k)));
    const uploads = await openUploads().catch(() => []);
    const drop = new Set([...kept, ...wanted].map((f) => keyOf(who, f.name, f.size, f.lastModified ?? f.last_modified)));
    for (const u of uploads) {
      if (drop.has(keyOf(who, u.name, u.size, u.last_modified))) await api("DELETE", `/uploads/${encodeURIComponent(u.upload_id)}`).catch(() => {});
    }
    kept = [];
    wanted = [];
    show();
    announce("Unfinished uploads stopped and forgotten");
  }

  $("resume-unfinished").addEventListener("click", resume);
  $("give-again").addEventListener("change", (e) => givenAgain(e.target));
  $("forget-unfinished").addEventListener("click", discard);

  return {
    load,
    /** Leaves out what the queue has taken since. */
    refilter() {
      if (!account) return;
      const before = kept.length + wanted.length;
      kept = kept.filter((f) => !queued(keyOf(account, f.name, f.size, f.lastModified)));
      wanted = wanted.filter((u) => !queued(keyOf(account, u.name, u.size, u.last_modified)));
      if (kept.length + wanted.length !== before) show();
    },
    clear() {
      account = null;
      kept = [];
      wanted = [];
      show();
    },
  };
}
