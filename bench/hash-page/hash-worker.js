// In a dedicated worker: the same File read in 8 MiB slices, each slice fed to an
// incremental whole-file SHA-1. Contenders:
// - "engine": the engine's own whole-file hashing (`sha1_file`, the code an upload runs):
//   8 MiB parts, each read while the one before is hashed, fed in 1 MiB chunks.
// - "hash-wasm": hash-wasm's createSHA1 (the reference) in the plain loop its README shows:
//   read a slice, hash it, read the next.
// - "engine-plain-loop" / "hash-wasm-read-ahead": each hasher in the other's loop, to tell
//   the loop's share of a difference from the hash function's.
// - WebCrypto's one-shot digest per slice (what the engine uses for part hashes; it cannot
//   hash a whole file incrementally), and a read-only pass.
import init, { Sha1Hasher, sha1_file } from "./pkg/shardrop_engine.js";
import { createSHA1 } from "./hash-wasm.esm.js";

const SLICE = 8 * 1024 * 1024;

const read = (blob, off) => blob.slice(off, off + SLICE).arrayBuffer();

async function slices(blob, each) {
  for (let off = 0; off < blob.size; off += SLICE) {
    each(new Uint8Array(await read(blob, off)));
  }
}

/** As `slices`, with the next slice's read started before the current one is hashed. */
async function slicesReadAhead(blob, each) {
  let next = blob.size > 0 ? read(blob, 0) : null;
  for (let off = 0; off < blob.size; off += SLICE) {
    const bytes = new Uint8Array(await next);
    next = off + SLICE < blob.size ? read(blob, off + SLICE) : null;
    each(bytes);
  }
}

const hashWasm = (loop) => async (blob) => {
  const h = await createSHA1();
  h.init();
  await loop(blob, (b) => h.update(b));
  return h.digest("hex");
};

const contenders = {
  engine: (blob) => sha1_file(blob),
  "hash-wasm": hashWasm(slices),
  "engine-plain-loop": async (blob) => {
    const h = new Sha1Hasher();
    await slices(blob, (b) => h.update(b));
    return h.digest_hex();
  },
  "hash-wasm-read-ahead": hashWasm(slicesReadAhead),
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
