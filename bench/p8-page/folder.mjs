// P8's folder: `count` files of 1 B to 256 KiB in nested folders whose names have spaces and
// non-Latin letters, made on disk the same way on every run (a fixed seed: the same names,
// sizes and bytes each time). Node built-ins only.
//
// Sizes: the first 8 files are 1, 2, 3, 4, 5, 6, 7 B and 256 KiB (both ends of the range);
// the rest log-uniform between 8 B and 256 KiB, so most are small, as in a folder of
// documents, and there are some of every size up to the top. Mean about 25 KB: ~250 MB
// for 10,000 files.
//
// Bytes: AES-128-CTR of zeros under a fixed key with the file's number as the counter
// block, with the number also written into the first 4 bytes of every file of 4 B or
// more; the 1 to 3 B files are different single values. So no two files have the same
// content: Shardrop has nothing to deduplicate ("instant" uploads would be free wins).
//
// Names: the folder is "P8 drop · données 写真"; below it 1 to 3 levels of folders from a
// list mixing Latin, Cyrillic, Greek, Japanese, Arabic and Devanagari names with spaces;
// file names likewise, each with its number, and extensions a page does not treat as
// images (no thumbnails in either page).
import { createCipheriv, createHash } from "node:crypto";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export const MIN_SIZE = 1;
export const MAX_SIZE = 256 * 1024;
export const ROOT_NAME = "P8 drop · données 写真";

const FOLDERS = ["photos", "données", "фото", "写真", "raw files", "Ελληνικά", "مستندات", "दस्तावेज़", "year 2026", "notes & drafts"];
const STEMS = ["shot", "нота", "ファイル", "résumé", "καταγραφή", "ملف", "फ़ाइल", "draft copy", "日記", "scan"];
const EXTENSIONS = [".bin", ".txt", ".dat", ".log", ".csv"];

/** mulberry32: a small seeded PRNG, the same numbers on every machine. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const KEY = Buffer.from("shardrop-bench-p8", "utf8").subarray(0, 16);

/** The bytes of file `i` (deterministic, distinct per file). */
function content(i, size) {
  if (size < 4) return Buffer.from(Array.from({ length: size }, (_, k) => (i * 7 + k * 31 + size * 101) & 0xff));
  const iv = Buffer.alloc(16);
  iv.writeUInt32BE(i, 0);
  const bytes = createCipheriv("aes-128-ctr", KEY, iv).update(Buffer.alloc(size));
  bytes.writeUInt32LE(i, 0);
  return bytes;
}

/** The plan: every file's relative path (below the folder) and size. Pure. */
export function plan(count, seed = 8) {
  const rnd = prng(seed);
  const pick = (xs) => xs[Math.floor(rnd() * xs.length)];
  const files = [];
  const fixed = [1, 2, 3, 4, 5, 6, 7, MAX_SIZE];
  const logMin = Math.log(8);
  const logMax = Math.log(MAX_SIZE);
  for (let i = 0; i < count; i++) {
    const size = i < fixed.length ? fixed[i] : Math.min(MAX_SIZE, Math.max(8, Math.round(Math.exp(logMin + rnd() * (logMax - logMin)))));
    const depth = 1 + Math.floor(rnd() * 3);
    const dirs = [];
    for (let d = 0; d < depth; d++) dirs.push(d === 1 ? `day ${1 + Math.floor(rnd() * 28)}` : pick(FOLDERS));
    const name = `${pick(STEMS)} ${i}${pick(EXTENSIONS)}`;
    files.push({ index: i, rel: [...dirs, name].join("/"), size });
  }
  return files;
}

/**
 * Writes the folder under `parent` (removing what was there). Answers {dir, name, files,
 * bytes, folders, fingerprint}: `dir` the folder to give, `files` [{index, rel, size}],
 * `fingerprint` a SHA-1 over every path, size and content (the same on every run).
 */
export function makeFolder(parent, count) {
  const dir = join(parent, ROOT_NAME);
  rmSync(dir, { recursive: true, force: true });
  const files = plan(count);
  const fp = createHash("sha1");
  const made = new Set();
  let bytes = 0;
  for (const f of files) {
    const path = join(dir, f.rel);
    const folder = path.slice(0, path.lastIndexOf("/"));
    if (!made.has(folder)) {
      mkdirSync(folder, { recursive: true });
      made.add(folder);
    }
    const body = content(f.index, f.size);
    writeFileSync(path, body);
    fp.update(`${f.rel}\0${f.size}\0`).update(body);
    bytes += f.size;
  }
  return { dir, name: ROOT_NAME, files, bytes, folders: made.size, fingerprint: fp.digest("hex") };
}
