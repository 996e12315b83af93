// The engine's worker, plus one command for benchmarks: hash a File alone with the
// engine's own incremental SHA-1, as bench/hash-page/hash-worker.js does for P1 (8 MiB
// slices read with Blob.arrayBuffer(), each fed to Sha1Hasher). Uploads go to the engine
// exactly as pkg/worker.js forwards them (the same few lines: importing that file too would
// start the wasm twice), so a reference and an upload run in one and the same worker.
import init, { Engine, Sha1Hasher } from "./pkg/shardrop_engine.js";

const SLICE = 8 * 1024 * 1024;
const ready = init();
let engine;

async function hashAlone(file, limit) {
  const end = Math.min(file.size, limit ?? file.size);
  const t0 = performance.now();
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
