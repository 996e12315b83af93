// The upload queue as a person sees it: every file of every drop as a row of data, shown
// through a window of at most a screenful of DOM rows (10,000 files cost ~20 elements and
// scroll like 20), with totals for the whole queue, filters and "retry failed".
//
// Rows are plain objects that app.js owns and changes (state, progress, error); it calls
// `changed()` after. The view redraws at most 4 times a second, and then only the rows in
// the window: a drop of any size costs the main thread the same few milliseconds.

import { bytes, duration } from "./format.js";

/** A row's height in pixels, gap included: the window's arithmetic (`.row` in style.css is 114 high). */
const ROW_H = 122;
/** Rows drawn above and below the window, so that a quick scroll shows no blank. */
const OVERSCAN = 6;
/** How far back the queue's speed looks, in ms. */
const SPEED_WINDOW = 5000;

export const FINISHED = new Set(["complete", "instant"]);
const MOVING = new Set(["hashing", "uploading", "completing"]);
const ACTIVE = new Set(["queued", "paused", ...MOVING]);

const FILTERS = {
  all: () => true,
  active: (r) => ACTIVE.has(r.state),
  failed: (r) => r.state === "failed",
  done: (r) => FINISHED.has(r.state),
};

export const STATE_WORDS = {
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

/**
 * The queue's view. `els`: `scroller` (the element that scrolls), `list` (the `<ol>`),
 * `template` (a row's `<template>`), `total` (the totals line), `filters` (radio inputs
 * named by their value). `onAct(row, act)` hears a row's button; `errorWords(row)` says a
 * failed row's error.
 */
export function createQueue(els, { onAct, errorWords }) {
  const rows = [];
  let filter = "all";
  let view = []; // the rows the filter keeps, in order
  let viewStale = true;
  let dirty = true;
  const drawn = new Map(); // row -> its <li>, for the rows in the window
  const spare = []; // <li>s out of the window, kept for reuse
  let samples = []; // [ms, bytes sent] of the last SPEED_WINDOW, while something moves

  function sentOf(r) {
    return FINISHED.has(r.state) ? r.size : r.progress?.sent ?? 0;
  }

  function totals() {
    const t = { files: 0, done: 0, failed: 0, active: 0, moving: 0, bytes: 0, sent: 0 };
    for (const r of rows) {
      if (r.state === "cancelled") continue;
      t.files++;
      t.bytes += r.size;
      t.sent += sentOf(r);
      if (FINISHED.has(r.state)) t.done++;
      else if (r.state === "failed") t.failed++;
      else t.active++;
      if (MOVING.has(r.state)) t.moving++;
    }
    return t;
  }

  /** Bytes a second over the last few seconds of movement: a pause starts the measure anew. */
  function speed(t, now) {
    if (!t.moving) {
      samples = [];
      return 0;
    }
    samples.push([now, t.sent]);
    while (samples.length > 2 && now - samples[0][0] > SPEED_WINDOW) samples.shift();
    const [t0, s0] = samples[0];
    return now - t0 >= 1000 ? ((t.sent - s0) * 1000) / (now - t0) : 0;
  }

  function renderTotals() {
    const t = totals();
    const rate = speed(t, performance.now());
    for (const input of els.filters) {
      const n = { all: t.files, active: t.active, failed: t.failed, done: t.done }[input.value];
      input.nextElementSibling.querySelector(".count").textContent = String(n);
    }
    els.retryFailed.hidden = !t.failed;
    if (!t.files) return (els.total.textContent = "Nothing yet");
    let text = `${t.done} of ${t.files} done`;
    if (t.failed) text += ` · ${t.failed} failed`;
    text += ` · ${bytes(t.sent)} of ${bytes(t.bytes)}`;
    if (rate > 0) text += ` · ${bytes(rate)}/s · ${duration((t.bytes - t.sent) / rate)}`;
    els.total.textContent = text;
  }

  function bind(li, row) {
    li.row = row;
    const slash = row.name.lastIndexOf("/");
    const name = li.querySelector(".name");
    name.querySelector(".dir").textContent = slash < 0 ? "" : row.name.slice(0, slash + 1);
    name.querySelector(".base").textContent = row.name.slice(slash + 1);
    name.title = row.name;
    li.querySelector(".size").textContent = bytes(row.size);
    li.querySelector(".bar").setAttribute("aria-label", `${row.name} progress`);
    for (const btn of li.querySelectorAll("button")) btn.setAttribute("aria-label", `${btn.textContent} ${row.name}`);
  }

  function fill(li, row) {
    const { progress: p, state } = row;
    li.dataset.state = state;
    const done = FINISHED.has(state);
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
    const words = row.error ? errorWords(row) : "";
    err.hidden = !words;
    err.textContent = words;
    err.title = words;
  }

  /** Draws the rows in the window, reusing the `<li>`s of rows that left it. */
  function paint() {
    if (viewStale) {
      view = rows.filter(FILTERS[filter]);
      viewStale = false;
    }
    els.list.style.height = `${view.length * ROW_H}px`;
    const top = els.scroller.scrollTop;
    const first = Math.max(0, Math.floor(top / ROW_H) - OVERSCAN);
    const end = Math.min(view.length, Math.ceil((top + els.scroller.clientHeight) / ROW_H) + OVERSCAN);
    const keep = new Set(view.slice(first, end));
    for (const [row, li] of drawn) {
      if (!keep.has(row)) {
        drawn.delete(row);
        li.remove();
        spare.push(li);
      }
    }
    for (let i = first; i < end; i++) {
      const row = view[i];
      let li = drawn.get(row);
      if (!li) {
        li = spare.pop() ?? els.template.content.firstElementChild.cloneNode(true);
        bind(li, row);
        drawn.set(row, li);
        els.list.append(li);
      }
      li.style.transform = `translateY(${i * ROW_H}px)`;
      li.setAttribute("aria-posinset", String(i + 1));
      li.setAttribute("aria-setsize", String(view.length));
      fill(li, row);
    }
  }

  let frame = 0;
  const paintSoon = () => (frame ||= requestAnimationFrame(() => ((frame = 0), paint())));

  els.scroller.addEventListener("scroll", paintSoon, { passive: true });
  els.list.addEventListener("click", (e) => {
    const btn = e.target.closest("button[data-act]");
    const row = btn?.closest("li")?.row;
    if (row) onAct(row, btn.dataset.act);
  });
  for (const input of els.filters) {
    input.addEventListener("change", () => {
      filter = input.value;
      viewStale = true;
      els.scroller.scrollTop = 0;
      paint();
    });
  }
  els.retryFailed.addEventListener("click", () => rows.filter((r) => r.state === "failed").forEach((r) => onAct(r, "retry")));

  setInterval(() => {
    if (!dirty && !samples.length) return;
    dirty = false;
    paint();
    renderTotals();
  }, 250);

  return {
    rows,
    totals,
    add(row) {
      rows.push(row);
      viewStale = dirty = true;
    },
    /** A row's progress changed, or its state too (which may move it in or out of the filter). */
    changed(stateChanged = false) {
      dirty = true;
      viewStale ||= stateChanged && filter !== "all";
    },
    clear() {
      rows.length = 0;
      view = [];
      viewStale = dirty = true;
      for (const li of drawn.values()) li.remove();
      drawn.clear();
      samples = [];
      paint();
      renderTotals();
    },
  };
}
