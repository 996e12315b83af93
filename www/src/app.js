// The drag-and-drop page. It holds no upload logic: every byte goes through the `shardrop`
// package's Uploader (a wasm engine in a worker, one queue for all its files). This file
// turns drops and picks into tasks and wires the parts of the page: the queue (queue.js),
// the unfinished uploads of earlier visits (resume.js) and the stored files (files.js).
// Everything here belongs to the signed-in account (account.js): the uploader is made with
// its session's token on sign-in and stopped on sign-out, with the queue and the file list.

import { Uploader } from "shardrop";

import { refreshUsage, sessionEnded, startAccount } from "./account.js";
import { createFileList } from "./files.js";
import { bytes } from "./format.js";
import { createQueue } from "./queue.js";
import { createResume, forget, keep, keepRoot, keyOf, started } from "./resume.js";
import { API, currentToken } from "./session.js";

// Null while signed out: nothing can be queued then.
let uploader = null;
let account = null;
const $ = (id) => document.getElementById(id);
/** Files queued per turn of the event loop: a drop of 10,000 never blocks the page. */
const ADD_BATCH = 250;

const ERROR_WORDS = {
  "network-error": "The connection to the server was lost and did not come back.",
  "storage-refused": "The storage refused part of the file.",
  "file-unreadable": "The file could not be read. Was it moved, changed or deleted?",
  "etag-not-readable": "The storage hides the ETag header from browsers (its CORS rule must expose it).",
  "invalid-name": "The server does not accept this file name.",
  unavailable: "The server's storage or database is unavailable. Try again shortly.",
  "worker-error": "The upload engine could not start in this browser.",
};

function errorWords({ error, size }) {
  if (error?.code === "file-too-large") {
    // The backend says "… this server accepts at most N": say it in sizes a person reads.
    const max = /at most (\d+)/.exec(error.message ?? "")?.[1];
    return `This file (${bytes(size)}) is larger than the server accepts${max ? ` (at most ${bytes(Number(max))})` : ""}.`;
  }
  if (error?.code === "quota-exceeded") return `This file (${bytes(size)}) does not fit in what is left of your storage quota.`;
  return ERROR_WORDS[error?.code] ?? (error?.message || "Something went wrong.");
}

function announce(text) {
  $("announce").textContent = text;
}

const queue = createQueue(
  {
    scroller: $("queue-scroll"),
    list: $("queue"),
    template: $("row"),
    total: $("total"),
    filters: [...document.querySelectorAll('input[name="queue-filter"]')],
    retryFailed: $("retry-failed"),
  },
  { onAct: act, errorWords },
);
const rows = queue.rows;
const files = createFileList({ announce, onChange: refreshUsage });
const resume = createResume({ queue: addAll, queued: (key) => queuedKeys.has(key), announce });
/** Keys (resume.js's) of the files in this page's queue. */
const queuedKeys = new Set();

// ---- the queue -------------------------------------------------------------------

/**
 * Queues files: `[{file, name, root?, path?}]`, `root` and `path` where a file handle
 * reaches it again after a reload. A few hundred a turn, so the page stays responsive.
 */
async function addAll(list) {
  if (!uploader || !list.length) return;
  const mine = uploader;
  for (let i = 0; i < list.length; i += ADD_BATCH) {
    if (uploader !== mine) return; // signed out meanwhile
    const batch = list.slice(i, i + ADD_BATCH);
    const keepable = batch.filter((f) => f.root != null);
    // Kept before the upload starts: a crash a moment later still finds it.
    if (keepable.length) {
      await keep(account, keepable.map(({ file, name, root, path }) => ({ name, size: file.size, lastModified: file.lastModified, root, path })));
    }
    for (const { file, name } of batch) add(file, name);
    resume.refilter();
    await new Promise((ok) => setTimeout(ok));
  }
  announce(`${list.length} ${list.length === 1 ? "file" : "files"} added`);
}

function add(file, name) {
  const key = keyOf(account, name, file.size, file.lastModified);
  const row = { file, name, key, size: file.size, task: null, progress: null, state: "queued", error: null };
  queuedKeys.add(key);
  queue.add(row);
  start(row);
}

function start(row) {
  row.error = null;
  row.startedNoted = false;
  row.progress = { total: row.size, hashed: 0, sent: 0, bytes_per_sec: 0, eta_secs: null };
  const mine = uploader;
  row.task = uploader.upload(row.file, {
    name: row.name,
    onProgress: (p) => {
      row.progress = p;
      queue.changed();
    },
    onStateChange: (state) => {
      // Sending: the server has an upload for it, which a resume after a crash asks about.
      if (state === "uploading" && !row.startedNoted && row.task.upload_id) {
        row.startedNoted = true;
        started(row.key, row.task.upload_id);
      }
      setState(row, state);
    },
  });
  setState(row, "queued");
  row.task.done.then(
    () => {
      forget(row.key);
      files.refresh();
      allDone();
    },
    (e) => {
      // The worker's calls carry the token too: a 401 there ends the session like the page's.
      if (e.status === 401 && uploader === mine) return sessionEnded();
      if (e.code === "cancelled") forget(row.key);
      else {
        row.error = { code: e.code, message: e.message };
        announce(`${row.name}: ${errorWords(row)}`);
      }
      queue.changed(true);
      refreshUsage(); // a cancelled upload gives back the bytes it held of the quota
      allDone();
    },
  );
}

function setState(row, state) {
  row.state = state;
  queue.changed(true);
}

/** Says once when the whole queue has settled (looked at twice a second at most). */
let settling = 0;
function allDone() {
  settling ||= setTimeout(() => {
    settling = 0;
    const t = queue.totals();
    if (t.active) return;
    refreshUsage();
    announce(t.failed ? `${t.done} of ${t.files} done, ${t.failed} failed` : `All ${t.files} done`);
  }, 500);
}

function act(row, what) {
  if (what === "retry") return start(row);
  row.task?.[what]();
}

$("pause-all").addEventListener("click", () => rows.forEach((r) => ["queued", "hashing", "uploading"].includes(r.state) && r.task.pause()));
$("resume-all").addEventListener("click", () => rows.forEach((r) => r.state === "paused" && r.task.resume()));

// ---- dropping and picking ----------------------------------------------------------

function pick(input) {
  addAll([...input.files].map((file) => ({ file, name: file.webkitRelativePath || file.name })));
  input.value = "";
}
$("pick-files").addEventListener("change", (e) => pick(e.target));
$("pick-folder").addEventListener("change", (e) => pick(e.target));

// Where the browser has File System Access, the buttons pick handles instead, which are
// kept so that a reload can resume without asking for the files again; the inputs stay
// for every other browser (and for a picker that fails).
async function pickHandles(e, folder) {
  const picker = folder ? window.showDirectoryPicker : window.showOpenFilePicker;
  if (!picker || !uploader) return;
  e.preventDefault();
  let picked;
  try {
    picked = folder ? [await window.showDirectoryPicker({ mode: "read" })] : await window.showOpenFilePicker({ multiple: true });
  } catch (err) {
    // Refused (not cancelled): the plain picker, while the click still counts.
    if (err?.name !== "AbortError") {
      try {
        e.target.showPicker();
      } catch {}
    }
    return;
  }
  const found = [];
  for (const handle of picked) await fromHandle(handle, found);
  addAll(found);
}
$("pick-files").addEventListener("click", (e) => pickHandles(e, false));
$("pick-folder").addEventListener("click", (e) => pickHandles(e, true));

/** Every file under a handle (a folder's name leads its files' paths, as a folder input gives them). */
async function fromHandle(handle, out) {
  const root = await keepRoot(handle);
  if (handle.kind === "file") {
    out.push({ file: await handle.getFile(), name: handle.name, root, path: "" });
    return;
  }
  const found = [];
  await walkHandle(handle, "", found);
  for (let i = 0; i < found.length; i += 64) {
    const files = await Promise.all(found.slice(i, i + 64).map((f) => f.handle.getFile()));
    files.forEach((file, j) => {
      const { path } = found[i + j];
      out.push({ file, name: `${handle.name}/${path}`, root, path });
    });
  }
}

async function walkHandle(dir, prefix, out) {
  for await (const h of dir.values()) {
    if (h.kind === "file") out.push({ handle: h, path: prefix + h.name });
    else await walkHandle(h, `${prefix}${h.name}/`, out);
  }
}

// Every file under a dropped entry, with its path inside the drop.
async function walk(entry, prefix, out) {
  if (entry.isFile) {
    out.push({ file: await new Promise((ok, fail) => entry.file(ok, fail)), name: prefix + entry.name });
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (;;) {
      const batch = await new Promise((ok, fail) => reader.readEntries(ok, fail));
      if (!batch.length) break;
      for (const child of batch) await walk(child, `${prefix}${entry.name}/`, out);
    }
  }
}

let depth = 0;
document.addEventListener("dragenter", (e) => {
  if (!uploader || ![...(e.dataTransfer?.types ?? [])].includes("Files")) return;
  depth++;
  document.body.classList.add("dragging");
});
document.addEventListener("dragleave", () => {
  depth = Math.max(0, depth - 1);
  if (!depth) document.body.classList.remove("dragging");
});
document.addEventListener("dragover", (e) => e.preventDefault());
document.addEventListener("drop", async (e) => {
  e.preventDefault();
  depth = 0;
  document.body.classList.remove("dragging");
  if (!uploader) return;
  // Entries and handles must be asked for while the event lasts; reading them may take longer.
  const items = [...(e.dataTransfer?.items ?? [])].filter((i) => i.kind === "file");
  const entries = items.map((i) => i.webkitGetAsEntry?.() ?? null);
  const handles = items.map((i) => i.getAsFileSystemHandle?.().catch(() => null) ?? null);
  if (!entries.some(Boolean)) {
    addAll([...(e.dataTransfer?.files ?? [])].map((file) => ({ file, name: file.name })));
    return;
  }
  const found = [];
  for (let i = 0; i < entries.length; i++) {
    const entry = entries[i];
    if (!entry) continue;
    const handle = await handles[i];
    const root = handle ? await keepRoot(handle) : null;
    const from = found.length;
    await walk(entry, "", found);
    // A dropped file is its own root; a dropped folder's files are found by their path in it.
    for (const f of found.slice(from)) Object.assign(f, { root, path: entry.isDirectory ? f.name.slice(entry.name.length + 1) : "" });
  }
  addAll(found);
});

// ---- the account ----------------------------------------------------------------------

function signedIn(user) {
  uploader?.terminate();
  uploader = new Uploader({ endpoint: API, concurrency: 4, token: currentToken() });
  account = user.username;
  files.load();
  resume.load(account);
}

// Stops every upload (they resume when their files are given again after signing in) and
// takes away what belonged to the account: its queue, its unfinished list and its files.
function signedOut() {
  uploader?.terminate();
  uploader = null;
  account = null;
  queuedKeys.clear();
  queue.clear();
  resume.clear();
  files.clear();
}

startAccount({ onSignIn: signedIn, onSignOut: signedOut });
window.shardropPage = {
  rows,
  /** `{files, done, failed, active, moving, bytes, sent}` of the queue (cancelled rows left out). */
  totals: () => queue.totals(),
  get uploader() {
    return uploader;
  },
};
