// What a benchmark needs before it can load its modules: the pinned npm packages of bench/
// (hash-wasm, Uppy, the AWS SDK, esbuild) and of the browser-test harness it builds on
// (tests/e2e: playwright-core). Installed with `npm ci` when missing, so each benchmark is
// one command from a fresh clone. Imported first, before anything that needs them is
// imported (dynamically): a static import of a missing package fails before any code runs.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");

for (const dir of ["bench", join("tests", "e2e")]) {
  if (existsSync(join(ROOT, dir, "node_modules", ".package-lock.json"))) continue;
  console.error(`# ${dir}/node_modules is missing: npm ci --prefix ${dir}`);
  const r = spawnSync("npm", ["ci", "--no-audit", "--no-fund", "--prefix", join(ROOT, dir)], { stdio: "inherit" });
  if (r.status !== 0) throw new Error(`npm ci --prefix ${dir} failed`);
}
