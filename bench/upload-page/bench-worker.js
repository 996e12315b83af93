// The engine's worker, plus one command for benchmarks: hash a File alone with the
// engine's own whole-file SHA-1 (`sha1_file`: the loop an upload runs, 8 MiB parts each
// read while the one before is hashed), as bench/hash-page/hash-worker.js does for P1. Uploads go to the engine
// exactly as pkg/worker.js forwards them (the same few lines: importing that file too would
// start the wasm twice), so a reference and an upload run in one and the same worker.
import init, { Engine, Sha1Hasher, sha1_file } from "./pkg/shardrop_engine.js";

const SLICE = 8 * 1024 * 1024;
const ready = init();
// The wasm exports (their `memory` is the engine's linear memory), for bench/memory.mjs to
// read over the DevTools protocol: its size never shrinks, so the last reading is the peak.
ready.then((wasm) => (self.benchWasm = wasm));
let engine;

async function hashAlone(file, limit) {
  const end = Math.min(file.size, limit ?? file.size);
  const t0 = performance.now();
  if (end === file.size) return { sha1: await sha1_file(file), bytes: end, worker_ms: performance.now() - t0 };
  const h = new Sha1Hasher();
  for (let off = 0; off < end; off += SLICE) {
    h.update(new Uint8Array(await file.slice(off, Math.min(off + SLICE, end)).arrayBuffer()));
  }
  const sha1 = h.digest_hex();
  h.free();
  return { sha1, bytes: end, worker_ms: performance.now() - t0 };
}

self.onmessage = async ({ data: m }) => {
  await ready;
  if (m.type === "bench-hash") {
    try {
      self.postMessage({ bench: "hash", ...(await hashAlone(m.file, m.limit)) });
    } catch (e) {
      self.postMessage({ bench: "hash", error: String(e?.stack ?? e) });
    }
    return;
  }
  if (m.type === "bench-ping") return self.postMessage({ bench: "pong" });
  engine ??= new Engine((event) => self.postMessage(event));
  if (m.type === "upload") engine.upload(m.task, m.file, m.endpoint, m.token ?? undefined, m.concurrency, m.name ?? undefined);
  else if (m.type === "pause" || m.type === "resume" || m.type === "cancel") engine[m.type](m.task);
};
