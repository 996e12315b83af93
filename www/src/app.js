// The drag-and-drop page. It holds no upload logic: every byte goes through the `shardrop`
// package's Uploader (a wasm engine in a worker). This file turns drops and picks into
// tasks and renders their state, throttled so that a multi-GiB file costs the page nothing.

import { Uploader } from "shardrop";

const API = "/api/v1";
const uploader = new Uploader({ endpoint: API, concurrency: 4 });
const $ = (id) => document.getElementById(id);

const STATE_WORDS = {
  hashing: "Hashing",
  uploading: "Uploading",
  paused: "Paused",
  completing: "Finishing",
  complete: "Done",
  instant: "Already stored, 0 bytes sent",
  failed: "Failed",
  cancelled: "Cancelled",
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

// ---- formatting ------------------------------------------------------------------

const UNITS = ["B", "KB", "MB", "GB", "TB"];
function bytes(n) {
  let i = 0;
  while (n >= 1000 && i < UNITS.length - 1) {
    n /= 1000;
    i++;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)} ${UNITS[i]}`;
}
function duration(secs) {
  if (secs == null || !Number.isFinite(secs)) return "";
  secs = Math.round(secs);
  if (secs < 60) return `${secs} s left`;
  const m = Math.floor(secs / 60);
  if (m < 60) return `${m} min ${secs % 60} s left`;
  return `${Math.floor(m / 60)} h ${m % 60} min left`;
}
function errorWords(error, size) {
  if (error?.code === "file-too-large") {
    // The backend says "… this server accepts at most N": say it in sizes a person reads.
    const max = /at most (\d+)/.exec(error.message ?? "")?.[1];
    return `This file (${bytes(size)}) is larger than the server accepts${max ? ` (at most ${bytes(Number(max))})` : ""}.`;
  }
  return ERROR_WORDS[error?.code] ?? (error?.message || "Something went wrong.");
}

// ---- the queue -------------------------------------------------------------------

const rows = [];
let dirty = new Set();

function announce(text) {
  $("announce").textContent = text;
}

function addToQueue(file, name = file.name) {
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
    () => loadFiles(),
    (e) => {
      if (e.code !== "cancelled") row.error = { code: e.code, message: e.message };
      dirty.add(row);
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

$("pause-all").addEventListener("click", () => rows.forEach((r) => ["hashing", "uploading"].includes(r.state) && r.task.pause()));
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
  if (![...(e.dataTransfer?.types ?? [])].includes("Files")) return;
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

async function loadFiles() {
  let list;
  try {
    list = await (await fetch(`${API}/files?limit=200`)).json();
  } catch {
    return;
  }
  const body = $("files").querySelector("tbody");
  body.replaceChildren(
    ...list.files.map((f) => {
      const tr = document.createElement("tr");
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
      const actions = document.createElement("td");
      actions.className = "actions";
      const a = document.createElement("a");
      a.href = `${API}/files/${encodeURIComponent(f.file_id)}/content`;
      a.textContent = "Download";
      a.setAttribute("aria-label", `Download ${f.name}`);
      const del = document.createElement("button");
      del.type = "button";
      del.className = "button small quiet";
      del.textContent = "Delete";
      del.setAttribute("aria-label", `Delete ${f.name}`);
      del.addEventListener("click", async () => {
        await fetch(`${API}/files/${encodeURIComponent(f.file_id)}`, { method: "DELETE" });
        announce(`${f.name} deleted`);
        loadFiles();
      });
      actions.append(a, del);
      tr.append(actions);
      return tr;
    }),
  );
  $("files").hidden = !list.files.length;
  $("files-empty").hidden = !!list.files.length;
}

loadFiles();
window.shardropPage = { rows, uploader };
