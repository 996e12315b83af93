// The package as a third-party app gets it: `npm pack` of web-wasm/pkg, installed into a
// fresh Vite app, built with `vite build`, served, and used in Chromium to upload a file.
// The app signs in itself (an account made through the API here) and gives the Uploader
// the session token.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { MIB, ROOT, Server, tempDir } from "../lib/shardrop.mjs";
import { browser, makeFile } from "./harness.mjs";

let server, chromium, app;

before(async () => {
  const dir = tempDir("shardrop-vite-");
  const tarball = execFileSync("npm", ["pack", join(ROOT, "web-wasm", "pkg"), "--pack-destination", dir], { encoding: "utf8" })
    .trim()
    .split("\n")
    .pop();
  app = join(dir, "app");
  cpSync(join(ROOT, "tests", "e2e", "vite-app"), app, { recursive: true });
  const vite = JSON.parse(readFileSync(join(ROOT, "tests", "e2e", "package.json"), "utf8")).devDependencies.vite;
  writeFileSync(
    join(app, "package.json"),
    JSON.stringify({ name: "fresh-vite-app", private: true, type: "module", dependencies: { shardrop: `file:${join(dir, tarball)}` }, devDependencies: { vite } }),
  );
  const run = (...args) => execFileSync("npm", args, { cwd: app, stdio: ["ignore", "ignore", "inherit"] });
  run("install", "--no-audit", "--no-fund", "--prefer-offline");
  run("exec", "--", "vite", "build", "--logLevel", "warn");
  server = await new Server({ web: join(app, "dist") }).start();
  chromium = await browser();
});

after(async () => {
  await chromium?.close();
  await server?.stop();
});

test("a Vite app built with the packed tarball uploads a file", async () => {
  const file = await makeFile(tempDir(), "from-vite.bin", 20 * MIB + 3);
  const user = await server.user();
  const page = await chromium.newPage();
  page.on("pageerror", (e) => console.error("page error:", e));
  await page.goto(`${server.origin}/`);
  await page.fill("#username", user.username);
  await page.fill("#password", user.password);
  await page.setInputFiles("#pick", file.path);
  await page.click("#go");
  await page.waitForFunction(() => document.getElementById("result").textContent !== "", null, { timeout: 120_000 });
  const text = await page.textContent("#result");
  assert.ok(text.startsWith("{"), text);
  const result = JSON.parse(text);
  assert.equal(result.sha1, file.sha1);
  assert.equal(result.instant, false);
  assert.equal(await server.storedSha1(result.file_id), file.sha1);
  assert.equal(await page.textContent("#state"), "complete");
});
