// The page's longest main-thread task, from a DevTools-protocol trace (CDP `Tracing`).
//
// How: `Tracing.start` on the page's CDP session with only the categories needed
// (TASK_CATEGORIES), events streamed to this process as they are flushed
// (`transferMode: "ReportEvents"`, `Tracing.dataCollected`) and folded as they arrive, so
// the trace is never held whole. A task is one complete event named TASK_EVENT: Chromium's
// scheduler wraps every task a thread runs in one (`ThreadControllerImpl::RunTask`,
// category `toplevel`; DevTools' Performance panel shows the same spans as "Task"). The
// page marks the window with `console.timeStamp("p8:given")` when its file input changes
// and `console.timeStamp("p8:done")` when all is done (TimeStamp events, category
// `devtools.timeline`). The page's main thread is the thread that emitted "p8:given" (its
// pid and tid; its thread_name metadata says CrRendererMain), and the figure is the longest
// task on that thread overlapping the window. Tasks of 1 ms and more are kept for the
// details (the five longest, how many passed 50 ms); shorter ones are only counted.
//
// Node built-ins only: the session is a Playwright CDPSession given by the caller.

/** The event a task is, and the categories recorded. */
export const TASK_EVENT = "ThreadControllerImpl::RunTask";
/** Also folded, for comparison: DevTools' own name for a task where Chromium emits it. */
export const ALSO = ["RunTask"];
export const TASK_CATEGORIES = ["toplevel", "devtools.timeline"];
const KEEP_US = 1000;

/** Starts tracing on `session` (a CDPSession of the page); answers {stop()} → the folded trace. */
export async function startTrace(session) {
  const threads = new Map(); // "pid:tid" → {names: {event: {count, sum_us, max_us, kept: [[ts, dur, name]]}}, open: [] }
  const threadNames = new Map();
  const marks = [];
  const usage = { max_percent_full: 0, samples: 0 };
  let events = 0;
  let eventsBeforeEnd = null;
  const folded = (pid, tid) => {
    const k = `${pid}:${tid}`;
    let t = threads.get(k);
    if (!t) threads.set(k, (t = { pid, tid, names: {}, open: [] }));
    return t;
  };
  const add = (t, name, ts, dur) => {
    const n = (t.names[name] ??= { count: 0, sum_us: 0, max_us: 0, kept: [] });
    n.count++;
    n.sum_us += dur;
    if (dur > n.max_us) n.max_us = dur;
    if (dur >= KEEP_US) n.kept.push([ts, dur]);
  };
  const wanted = new Set([TASK_EVENT, ...ALSO]);
  // What ran inside tasks: devtools.timeline's complete events of 2 ms or more (function
  // calls with their script and line, timers, event dispatches, style, layout, paint).
  const detail = new Map(); // "pid:tid" → [[ts, dur, name, what]]
  const what = (e) => {
    const d = e.args?.data ?? e.args?.beginData ?? {};
    const where = d.url ? `${d.url.split("/").pop()}:${d.lineNumber ?? ""}` : "";
    return [d.functionName, d.type, where].filter(Boolean).join(" ") || null;
  };
  const byName = new Map();
  const ingest = (e) => {
    events++;
    const k = `${e.cat} ${e.name}`;
    byName.set(k, (byName.get(k) ?? 0) + 1);
    if (e.ph === "M" && e.name === "thread_name") {
      threadNames.set(`${e.pid}:${e.tid}`, e.args?.name);
      return;
    }
    if (e.name === "TimeStamp") {
      const message = e.args?.data?.message ?? e.args?.message;
      if (typeof message === "string" && message.startsWith("p8:")) marks.push({ message, pid: e.pid, tid: e.tid, ts: e.ts });
      return;
    }
    if (e.ph === "X" && e.cat === "devtools.timeline" && (e.dur ?? 0) >= 2000) {
      const k = `${e.pid}:${e.tid}`;
      if (!detail.has(k)) detail.set(k, []);
      detail.get(k).push([e.ts, e.dur, e.name, what(e)]);
      return;
    }
    if (!wanted.has(e.name)) return;
    const t = folded(e.pid, e.tid);
    if (e.ph === "X") add(t, e.name, e.ts, e.dur ?? 0);
    else if (e.ph === "B") t.open.push([e.name, e.ts]);
    else if (e.ph === "E") {
      const i = t.open.findLastIndex(([n]) => n === e.name);
      if (i >= 0) {
        const [, ts] = t.open.splice(i, 1)[0];
        add(t, e.name, ts, e.ts - ts);
      }
    }
  };
  session.on("Tracing.dataCollected", ({ value }) => {
    for (const e of value) ingest(e);
  });
  session.on("Tracing.bufferUsage", (u) => {
    usage.samples++;
    usage.max_percent_full = Math.max(usage.max_percent_full, u.percentFull ?? 0);
  });
  const complete = new Promise((resolve) => session.once("Tracing.tracingComplete", resolve));
  await session.send("Tracing.start", {
    transferMode: "ReportEvents",
    bufferUsageReportingInterval: 1000,
    // 1 GiB: a 10,000-file run fills a good part of the default 200 MB (data loss is reported).
    traceConfig: { recordMode: "recordUntilFull", traceBufferSizeInKb: 1024 * 1024, includedCategories: TASK_CATEGORIES, excludedCategories: ["*"] },
  });
  return {
    /** Ends the trace; answers everything folded, for longestTask(). */
    async stop() {
      eventsBeforeEnd = events;
      await session.send("Tracing.end");
      const { dataLossOccurred } = await complete;
      const commonest = [...byName].sort((a, b) => b[1] - a[1]).slice(0, 8);
      return { threads, threadNames, detail, marks, usage, events, events_before_end: eventsBeforeEnd, commonest, data_loss: dataLossOccurred ?? null };
    },
  };
}

const ms = (us) => Math.round(us / 10) / 100;

/**
 * The longest task on the page's main thread (the thread of the "p8:given" mark) that
 * overlaps ["p8:given", "p8:done"]. Answers the figure and how it was found, or
 * {error} when the marks are missing.
 */
export function longestTask(trace) {
  const given = trace.marks.find((m) => m.message === "p8:given");
  const done = trace.marks.find((m) => m.message === "p8:done" && given && m.pid === given.pid);
  const base = {
    event: TASK_EVENT,
    categories: TASK_CATEGORIES,
    trace_events: trace.events,
    trace_events_streamed_before_end: trace.events_before_end,
    trace_commonest_events: Object.fromEntries(trace.commonest),
    trace_data_loss: trace.data_loss,
    trace_buffer_max_percent_full: trace.usage.max_percent_full,
  };
  if (!given || !done) return { ...base, error: `marks missing: ${JSON.stringify(trace.marks.map((m) => m.message))}` };
  const key = `${given.pid}:${given.tid}`;
  const t = trace.threads.get(key);
  const out = {
    ...base,
    main_thread: { pid: given.pid, tid: given.tid, name: trace.threadNames.get(key) ?? null },
    window_ms: ms(done.ts - given.ts),
  };
  for (const name of [TASK_EVENT, ...ALSO]) {
    const n = t?.names[name];
    if (!n) {
      out[name] = null;
      continue;
    }
    // Kept tasks (>= 1 ms) that overlap the window; if none, the thread's max stands
    // (every task shorter than 1 ms, the window's longest included).
    const inWindow = n.kept.filter(([ts, dur]) => ts < done.ts && ts + dur > given.ts).sort((a, b) => b[1] - a[1]);
    const longest = inWindow[0]?.[1] ?? null;
    // The task the folder arrived in: the DevTools command that set the input's files,
    // which makes the FileList (Chromium's work, the same for any page) and then dispatches
    // `change` synchronously, so the page's handler runs inside it. Split at the mark.
    const givenTask = inWindow.find(([ts, dur]) => ts <= given.ts && ts + dur >= given.ts) ?? null;
    const others = inWindow.filter((x) => x !== givenTask);
    out[name] = {
      longest_ms: longest === null ? `< ${KEEP_US / 1000}` : ms(longest),
      task_with_change: givenTask && {
        ms: ms(givenTask[1]),
        before_change_ms: ms(given.ts - givenTask[0]),
        from_change_ms: ms(givenTask[0] + givenTask[1] - given.ts),
      },
      longest_other_ms: others.length ? ms(others[0][1]) : `< ${KEEP_US / 1000}`,
      longest_at_ms: inWindow[0] ? ms(inWindow[0][0] - given.ts) : null,
      // The five longest, each with what ran inside it (devtools.timeline events >= 2 ms).
      top5_ms: inWindow.slice(0, 5).map(([ts, dur]) => ({
        ms: ms(dur),
        at_ms: ms(ts - given.ts),
        inside: (trace.detail.get(key) ?? [])
          .filter(([t, d]) => t >= ts && t + d <= ts + dur)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 6)
          .map(([t, d, n, w]) => ({ ms: ms(d), at_ms: ms(t - given.ts), event: n, what: w })),
      })),
      over_50ms: inWindow.filter(([, d]) => d > 50_000).length,
      over_16ms: inWindow.filter(([, d]) => d > 16_000).length,
      tasks_on_thread_whole_trace: n.count,
      busy_ms_on_thread_whole_trace: ms(n.sum_us),
    };
  }
  const main = out[TASK_EVENT];
  out.longest_ms = typeof main?.longest_ms === "number" ? main.longest_ms : null;
  // The page's own: the longest task but for the part of the folder's task before `change`.
  if (main) {
    const parts = [main.task_with_change?.from_change_ms, main.longest_other_ms].filter((x) => typeof x === "number");
    out.page_longest_ms = parts.length ? Math.max(...parts) : null;
  }
  return out;
}
