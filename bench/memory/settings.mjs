// bench/memory.mjs's command line and knobs (its head says what each means), and the
// small helpers its parts share. The command line: [GiB] (per file), --files N (or
// BENCH_P5_FILES: how many files of GiB the browser part gives its one Uploader at once;
// 1 by default), --garage, --browser-only, --backend-only.
import { loadavg } from "node:os";

import { MIB } from "../../tests/lib/shardrop.mjs";
import { flag } from "../lib.mjs";

export const SMOKE = process.env.BENCH_SMOKE === "1";

// `--files N` (or `--files=N`) takes a value, so the words of the command line are read
// here rather than through lib.mjs's ARGS (which would take that N for the size).
const argv = process.argv.slice(2);
const filesAt = argv.indexOf("--files");
const filesArg = filesAt >= 0 ? argv[filesAt + 1] : argv.find((a) => a.startsWith("--files="))?.slice("--files=".length);
const POSITIONAL = argv.filter((a, i) => !a.startsWith("--") && !(filesAt >= 0 && i === filesAt + 1));
const GIB = Number(POSITIONAL[0] ?? 4);
if (!(GIB > 0)) throw new Error(`the size in GiB must be a positive number, not ${POSITIONAL[0]}`);

/** Browser: how many files of the size are given to the one Uploader at once (default 1). */
export const FILES = Number(filesArg ?? (process.env.BENCH_P5_FILES || 1));
if (!Number.isInteger(FILES) || FILES < 1) throw new Error(`--files (BENCH_P5_FILES) must be a whole number of 1 or more, not ${filesArg ?? process.env.BENCH_P5_FILES}`);
export const browserStorage = flag("--garage") ? "s3" : "local";
export const doBrowser = !flag("--backend-only");
export const doBackend = !flag("--browser-only");
// BENCH_P5_BACKENDS=local (or garage) runs one of the backend's two shapes only.
export const backendModes = (process.env.BENCH_P5_BACKENDS || "garage,local").split(",");

export const TARGET_MIB = 64;
// A smoke run uploads 64 MiB (per file) unless a size is given.
export const BIG_BYTES = SMOKE && POSITIONAL[0] === undefined ? 64 * MIB : Math.round(GIB * 1024) * MIB;
export const BASE_BYTES = 1 * MIB;
export const SAMPLE_MS = Number(process.env.BENCH_P5_SAMPLE_MS || 250);
export const BACKEND_SAMPLE_MS = 100;
export const UPLOADS = Number(process.env.BENCH_P5_UPLOADS || (SMOKE ? 10 : 100));
export const FILE_MIB = Number(process.env.BENCH_P5_FILE_MIB || (SMOKE ? 16 : 40));
export const PART_MIB = Number(process.env.BENCH_P5_PART_MIB || 8);
export const PARTS_IN_FLIGHT = Number(process.env.BENCH_P5_PARTS_IN_FLIGHT || 1);

export const log = (...a) => console.error(`# [${new Date().toISOString().slice(11, 19)}]`, ...a);
export const mib = (b) => (b == null ? null : Math.round((b / MIB) * 10) / 10);
export const load = () => loadavg().map((x) => Math.round(x * 100) / 100);
