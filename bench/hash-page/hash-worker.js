// In a dedicated worker, as the engine hashes: the same File read in 8 MiB slices, each
// slice fed to an incremental whole-file SHA-1. Contenders: the engine's Rust/wasm hasher,
// hash-wasm's createSHA1 (the reference), and WebCrypto's one-shot digest per slice (what
// the engine uses for part hashes; it cannot hash a whole file incrementally).
import init, { Sha1Hasher } from "./pkg/shardrop_engine.js";
import { createSHA1 } from "./hash-wasm.esm.js";

const SLICE = 8 * 1024 * 1024;

async function slices(blob, each) {
  for (let off = 0; off < blob.size; off += SLICE) {
    each(new Uint8Array(await blob.slice(off, off + SLICE).arrayBuffer()));
  }
}

const contenders = {
  engine: async (blob) => {
    const h = new Sha1Hasher();
    await slices(blob, (b) => h.update(b));
    return h.digest_hex();
  },
  "hash-wasm": async (blob) => {
    const h = await createSHA1();
    h.init();
    await slices(blob, (b) => h.update(b));
    return h.digest("hex");
  },
  "webcrypto-per-slice": async (blob) => {
    let last = "";
    for (let off = 0; off < blob.size; off += SLICE) {
      const d = await crypto.subtle.digest("SHA-1", await blob.slice(off, off + SLICE).arrayBuffer());
      last = [...new Uint8Array(d)].map((x) => x.toString(16).padStart(2, "0")).join("");
    }
    return last;
  },
  "read-only": async (blob) => {
    let n = 0;
    await slices(blob, (b) => (n += b[0]));
    return String(n);
  },
};

// Diagnostics (`node bench/hash.mjs … --diag`): the engine's hasher fed the same slices in
// smaller pieces, to see what the size of each copy into wasm memory costs. 1 MiB is what
// the upload task feeds (web-wasm/src/web/task.rs, CHUNK); hash-wasm copies 16 KiB at a time.
const fedIn = (piece) => async (blob) => {
  const h = new Sha1Hasher();
  await slices(blob, (b) => {
    for (let i = 0; i < b.length; i += piece) h.update(b.subarray(i, i + piece));
  });
  return h.digest_hex();
};
const diagnostics = {
  "engine-fed-1MiB": fedIn(1024 * 1024),
  "engine-fed-64KiB": fedIn(64 * 1024),
  "engine-fed-16KiB": fedIn(16 * 1024),
};

self.onmessage = async ({ data: { file, rounds, diag } }) => {
  try {
    await init();
    const times = {};
    const digests = {};
    // Interleave contenders round by round, so machine noise hits all alike.
    for (let r = 0; r < rounds; r++) {
      for (const [name, fn] of Object.entries(diag ? { ...contenders, ...diagnostics } : contenders)) {
        const t0 = performance.now();
        digests[name] = await fn(file);
        (times[name] ??= []).push(performance.now() - t0);
      }
    }
    self.postMessage({ bytes: file.size, times, digests });
  } catch (e) {
    self.postMessage({ error: String(e?.stack ?? e) });
  }
};
