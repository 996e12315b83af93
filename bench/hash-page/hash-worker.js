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

self.onmessage = async ({ data: { file, rounds } }) => {
  try {
    await init();
    const times = {};
    const digests = {};
    // Interleave contenders round by round, so machine noise hits all alike.
    for (let r = 0; r < rounds; r++) {
      for (const [name, fn] of Object.entries(contenders)) {
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
