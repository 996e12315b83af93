// The drag-and-drop page. It holds no upload logic: every byte goes through the `shardrop`
// package's Uploader (a wasm engine in a worker). This file turns drops and picks into
// tasks and renders their state, throttled so that a multi-GiB file costs the page nothing.
// Everything here belongs to the signed-in account (account.js): the uploader is made with
// its session's token on sign-in and stopped on sign-out, with the queue and the file list.

import { Uploader } from "shardrop";

import { refreshUsage, sessionEnded, startAccount } from "./account.js";
import { bytes, duration } from "./format.js";
import { API, api, currentToken } from "./session.js";

// Null while signed out: nothing can be queued then.
let uploader = null;
const $ = (id) => document.getElementById(id);

const STATE_WORDS = {
  queued: "Waiting",
  hashing: "Hashing",
  uploading: "Uploading",
  paused: "Paused",
  completing: "Finishing",
  complete: "Done",
  instant: "Already stored, 0 bytes sent",
  failed: "Failed",
  cancelled: "Cancelled",
};

const STATUS_WORDS = {
  pending: "being checked",
  verified: "verified",
  corrupt: "corrupt: the stored bytes do not match this SHA-1; upload the file again",
};

const ERROR_WORDS = {
  "network-error": "The connection to the server was lost and did not come back.",
  "storage-refused": "The storage refused part of the file.",
  "file-unreadable": "The file could not be read. Was it moved, changed or deleted?",
  "etag-not-readable": "The storage hides the ETag header from browsers (its CORS rule must expose it).",
  "invalid-name": "The server does not accept this file name.",
  unavailable: "The server's storage or database is unavailable. Try again shortly.",
  "worker-error": "The upload engine could not start in this browser.",
};

// ---- words ------------------------------------------------------------------------

function errorWords(error, size) {
  if (error?.code === "file-too-large") {
    // The backend says "… this server accepts at most N": say it in sizes a person reads.
    const max = /at most (\d+)/.exec(error.message ?? "")?.[1];
    return `This file (${bytes(size)}) is larger than the server accepts${max ? ` (at most ${bytes(Number(max))})` : ""}.`;
  }
  if (error?.code === "quota-exceeded") return `This file (${bytes(size)}) does not fit in what is left of your storage quota.`;
  return ERROR_WORDS[error?.code] ?? (error?.message || "Something went wrong.");
}

// ---- the queue -------------------------------------------------------------------

const rows = [];
let dirty = new Set();

function announce(text) {
  $("announce").textContent = text;
}

function addToQueue(file, name = file.name) {
  if (!uploader) return;
  const li = $("row").content.firstElementChild.cloneNode(true);
  const row = { file, name, li, task: null, progress: null, state: "hashing", error: null };
  li.querySelector(".name").textContent = name;
  li.querySelector(".size").textContent = bytes(file.size);
  li.querySelector(".bar").setAttribute("aria-label", `${name} progress`);
  for (const btn of li.querySelectorAll("button")) {
    btn.setAttribute("aria-label", `${btn.textContent} ${name}`);
    btn.addEventListener("click", () => act(row, btn.dataset.act));
  }
  $("queue").append(li);
  rows.push(row);
  start(row);
}

function start(row) {
  row.error = null;
  row.progress = { total: row.file.size, hashed: 0, sent: 0, bytes_per_sec: 0, eta_secs: null };
  const mine = uploader;
  row.task = uploader.upload(row.file, {
    name: row.name,
    onProgress: (p) => {
      row.progress = p;
      dirty.add(row);
    },
    onStateChange: (state) => setState(row, state),
  });
  setState(row, "hashing");
  row.task.done.then(
    () => refresh(),
    (e) => {
      // The worker's calls carry the token too: a 401 there ends the session like the page's.
      if (e.status === 401 && uploader === mine) return sessionEnded();
      if (e.code !== "cancelled") row.error = { code: e.code, message: e.message };
      dirty.add(row);
      refreshUsage(); // a cancelled upload gives back the bytes it held of the quota
    },
  );
}

function setState(row, state) {
  if (row.state !== state) announce(`${row.name}: ${STATE_WORDS[state] ?? state}`);
  row.state = state;
  dirty.add(row);
}

function act(row, what) {
  if (what === "retry") return start(row);
  row.task?.[what]();
}

$("pause-all").addEventListener("click", () => rows.forEach((r) => ["queued", "hashing", "uploading"].includes(r.state) && r.task.pause()));
$("resume-all").addEventListener("click", () => rows.forEach((r) => r.state === "paused" && r.task.resume()));

// Rendering: at most ~4 times a second, only rows that changed.
function render(row) {
  const { li, progress: p, state } = row;
  li.dataset.state = state;
  const done = state === "complete" || state === "instant";
  const pct = done ? 100 : p.total ? Math.floor((p.sent / p.total) * 100) : 0;
  li.querySelector(".fill").style.width = `${pct}%`;
  li.querySelector(".fill-hashed").style.width = `${p.total ? (p.hashed / p.total) * 100 : 0}%`;
  li.querySelector(".bar").setAttribute("aria-valuenow", String(pct));
  li.querySelector(".state").textContent = STATE_WORDS[state] ?? state;
  li.querySelector(".pct").textContent = `${pct}%`;
  const moving = state === "uploading" && p.bytes_per_sec > 0;
  li.querySelector(".speed").textContent = moving ? `${bytes(p.bytes_per_sec)}/s` : "";
  li.querySelector(".eta").textContent = moving ? duration(p.eta_secs) : "";
  const err = li.querySelector(".error");
  err.hidden = !row.error;
  err.textContent = row.error ? errorWords(row.error, row.file.size) : "";
}

function renderTotal() {
  const live = rows.filter((r) => r.state !== "cancelled");
  if (!live.length) return ($("total").textContent = "Nothing yet");
  const total = live.reduce((s, r) => s + r.file.size, 0);
  const sent = live.reduce((s, r) => s + (["complete", "instant"].includes(r.state) ? r.file.size : r.progress.sent), 0);
  const finished = live.filter((r) => ["complete", "instant"].includes(r.state)).length;
  const speed = live.reduce((s, r) => s + (r.state === "uploading" ? r.progress.bytes_per_sec : 0), 0);
  $("total").textContent =
    `${finished} of ${live.length} done · ${bytes(sent)} of ${bytes(total)}` + (speed > 0 ? ` · ${bytes(speed)}/s` : "");
}

setInterval(() => {
  if (!dirty.size) return;
  for (const row of dirty) render(row);
  dirty = new Set();
  renderTotal();
}, 250);

// ---- dropping and picking ----------------------------------------------------------

function pick(input) {
  for (const file of input.files) addToQueue(file, file.webkitRelativePath || file.name);
  input.value = "";
}
$("pick-files").addEventListener("change", (e) => pick(e.target));
$("pick-folder").addEventListener("change", (e) => pick(e.target));

// Every file under the dropped entries, with its path inside the drop.
async function walk(entry, prefix, out) {
  if (entry.isFile) {
    out.push({ file: await new Promise((ok, fail) => entry.file(ok, fail)), path: prefix + entry.name });
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
  // Entries must be taken while the event lasts; reading them may take longer.
  const entries = [...(e.dataTransfer?.items ?? [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  if (!entries.length) {
    for (const file of e.dataTransfer?.files ?? []) addToQueue(file);
    return;
  }
  const found = [];
  for (const entry of entries) await walk(entry, "", found);
  for (const { file, path } of found) addToQueue(file, path);
});

// ---- stored files -------------------------------------------------------------------

function refresh() {
  if (!currentToken()) return; // signed out meanwhile: nothing to show
  loadFiles();
  refreshUsage();
}

async function loadFiles() {
  const mine = currentToken();
  let list;
  try {
    list = await api("GET", "/files?limit=200");
  } catch {
    return;
  }
  // An answer for a session that has ended since (signed out, or another account) is not shown.
  if (currentToken() !== mine) return;
  showFiles(list.files);
}

function showFiles(files) {
  $("files").querySelector("tbody").replaceChildren(...files.map(fileRow));
  $("files").hidden = !files.length;
  $("files-empty").hidden = !!files.length;
}

function fileRow(f) {
  const tr = document.createElement("tr");
  tr.dataset.fileId = f.file_id;
  const cells = [
    [f.name, "name"],
    [bytes(f.size), "num"],
    [f.sha1 ?? "", "sha"],
    [new Date(f.created_at).toLocaleString(), "num"],
  ];
  for (const [text, cls] of cells) {
    const td = document.createElement("td");
    td.textContent = text;
    td.className = cls;
    tr.append(td);
  }
  // The server hashes the stored bytes after each upload: say what it found.
  const check = document.createElement("span");
  check.className = `check check-${f.status}`;
  check.textContent = STATUS_WORDS[f.status] ?? f.status;
  tr.children[2].append(" ", check);
  const actions = document.createElement("td");
  actions.className = "actions";
  actions.append(
    actionButton("Download", "link", f, () => download(f)),
    actionButton("Delete", "button small quiet", f, () => remove(f)),
  );
  tr.append(actions);
  return tr;
}

function actionButton(text, className, f, onClick) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = className;
  b.textContent = text;
  b.setAttribute("aria-label", `${text} ${f.name}`);
  b.addEventListener("click", onClick);
  return b;
}

// A plain link cannot carry the bearer token, so the page asks for a short-lived signed URL
// and goes there; the storage answers it with `Content-Disposition: attachment`, so the
// browser saves the file and the page stays.
async function download(f) {
  try {
    const { url } = await api("GET", `/files/${encodeURIComponent(f.file_id)}/download-url`);
    location.assign(url);
  } catch (e) {
    if (e.status !== 401) announce(`${f.name} could not be downloaded: ${e.message}`);
  }
}

async function remove(f) {
  try {
    await api("DELETE", `/files/${encodeURIComponent(f.file_id)}`);
    announce(`${f.name} deleted`);
  } catch (e) {
    if (e.status !== 401) announce(`${f.name} could not be deleted: ${e.message}`);
  }
  refresh();
}

// ---- the account ----------------------------------------------------------------------

function signedIn() {
  uploader?.terminate();
  uploader = new Uploader({ endpoint: API, concurrency: 4, token: currentToken() });
  loadFiles();
}

// Stops every upload (they resume when their files are given again after signing in) and
// takes away what belonged to the account: its queue and its file list.
function signedOut() {
  uploader?.terminate();
  uploader = null;
  rows.length = 0;
  dirty = new Set();
  $("queue").replaceChildren();
  renderTotal();
  showFiles([]);
}

startAccount({ onSignIn: signedIn, onSignOut: signedOut });
window.shardropPage = {
  rows,
  get uploader() {
    return uploader;
  },
};
