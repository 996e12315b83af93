// bench/memory.mjs's command line and knobs (its head says what each means), and the
// small helpers its parts share.
import { loadavg } from "node:os";

import { MIB } from "../../tests/lib/shardrop.mjs";
import { ARGS, flag } from "../lib.mjs";

export const SMOKE = process.env.BENCH_SMOKE === "1";
const GIB = Number(ARGS[0] ?? 4);
export const browserStorage = flag("--garage") ? "s3" : "local";
export const doBrowser = !flag("--backend-only");
export const doBackend = !flag("--browser-only");
// BENCH_P5_BACKENDS=local (or garage) runs one of the backend's two shapes only.
export const backendModes = (process.env.BENCH_P5_BACKENDS || "garage,local").split(",");

export const TARGET_MIB = 64;
// A smoke run uploads 64 MiB unless a size is given.
export const BIG_BYTES = SMOKE && ARGS[0] === undefined ? 64 * MIB : Math.round(GIB * 1024) * MIB;
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
