// The stored files: every one of the account's files, a page at a time (the API's cursor),
// found by name with the search box. After uploads the list is asked again at most every
// two seconds, however many files finish: a drop of 10,000 costs a few requests, not 10,000.

import { bytes } from "./format.js";
import { api, currentToken } from "./session.js";

const $ = (id) => document.getElementById(id);
const PAGE = 100;
/** Most rows a refresh asks for at once (the API's largest page). */
const MOST = 1000;
const REFRESH_EVERY = 2000;

const STATUS_WORDS = {
  pending: "being checked",
  verified: "verified",
  corrupt: "corrupt: the stored bytes do not match this SHA-1; upload the file again",
};

/** `onChange()` hears of a delete (the storage used changed); `announce(text)` speaks. */
export function createFileList({ announce, onChange }) {
  let shown = [];
  let cursor = null;
  let query = "";
  let asked = 0; // answers to older questions are dropped

  function render() {
    $("files").querySelector("tbody").replaceChildren(...shown.map(fileRow));
    $("files").hidden = !shown.length;
    $("files-empty").hidden = !!shown.length;
    $("files-empty").textContent = query ? `No stored file's name contains “${query}”.` : "No files stored yet.";
    $("files-more").hidden = !cursor;
  }

  /** The first `limit` files of the search again; `more` appends the next page instead. */
  async function load({ more = false, limit = PAGE } = {}) {
    const mine = currentToken();
    if (!mine) return;
    const n = ++asked;
    const params = new URLSearchParams({ limit: String(limit) });
    if (query) params.set("q", query);
    if (more && cursor) params.set("cursor", cursor);
    let page;
    try {
      page = await api("GET", `/files?${params}`);
    } catch {
      return;
    }
    // An answer for a session that has ended since, or for an older search, is not shown.
    if (currentToken() !== mine || n !== asked) return;
    shown = more ? shown.concat(page.files) : page.files;
    cursor = page.next_cursor ?? null;
    render();
  }

  let timer = 0;
  let last = 0;
  /** Asks again soon, keeping as many rows as are shown (up to the API's largest page). */
  function refresh() {
    if (timer) return;
    const wait = Math.max(0, last + REFRESH_EVERY - Date.now());
    timer = setTimeout(() => {
      timer = 0;
      last = Date.now();
      load({ limit: Math.min(MOST, Math.max(PAGE, shown.length)) });
    }, wait);
  }

  let typing = 0;
  $("files-search").addEventListener("input", (e) => {
    clearTimeout(typing);
    typing = setTimeout(() => {
      query = e.target.value.trim();
      cursor = null;
      load();
    }, 250);
  });
  $("files-more").addEventListener("click", () => load({ more: true }));

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
      shown = shown.filter((x) => x.file_id !== f.file_id);
      render();
    } catch (e) {
      if (e.status !== 401) announce(`${f.name} could not be deleted: ${e.message}`);
    }
    onChange();
  }

  return {
    load,
    refresh,
    clear() {
      shown = [];
      cursor = null;
      query = "";
      $("files-search").value = "";
      clearTimeout(timer);
      timer = 0;
      render();
    },
  };
}
