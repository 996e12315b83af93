// Shared harness of the browser tests: a real `shardrop serve` per test file (embedded
// defaults, or S3 against the Garage that scripts/test.sh started), the engine's test page
// served by it, headless Chromium, and files on disk whose SHA-1 is known. Every upload and
// file belongs to an account: each server has a default user, signed up on first use, whose
// token `server.api()` and the engine's test page send unless a test names another.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { cpSync, createWriteStream, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
const BIN = process.env.SHARDROP_BIN ?? join(ROOT, "target", "release", "shardrop");
export const MIB = 1024 * 1024;

export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
    srv.on("error", reject);
  });
}

// Every temp dir made here (test files of hundreds of MB, server data) goes when the
// test process ends, whatever way it ends: runs must not fill the disk.
const made = [];
process.on("exit", () => {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = "shardrop-e2e-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/**
 * POSTs JSON to an auth route. Waits out `429 rate-limited` (sign-up and login share a
 * per-IP limit) and a 502/503 of a proxy whose replica is restarting.
 */
async function authCall(origin, path, body) {
  for (let attempt = 0; ; attempt++) {
    const res = await fetch(`${origin}/api/v1${path}`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (![429, 502, 503].includes(res.status) || attempt >= 5) {
      const text = await res.text();
      if (res.status !== 201) throw new Error(`POST ${path}: ${res.status} ${text}`);
      return JSON.parse(text);
    }
    await res.arrayBuffer();
    await sleep(1000 * (Number(res.headers.get("retry-after")) || 1));
  }
}

/**
 * Creates an account (a random unique name unless `username` is given) and signs it in,
 * through the API of the server at `origin`. Answers `{username, password, token, user}`.
 */
export async function signUp(origin, username = `e2e-${randomBytes(6).toString("hex")}`) {
  const password = randomBytes(12).toString("base64url");
  await authCall(origin, "/users", { username, password });
  const session = await authCall(origin, "/sessions", { username, password });
  return { username: session.user.username, password, token: session.token, user: session.user };
}

/** A `shardrop serve` that can be killed and started again on the same port and data. */
export class Server {
  #user;

  /** `web`: the folder to serve at / (default: the engine's test page with the package). */
  /** `s3`: the prefix of the env vars naming the S3 server (Garage by default, or RGW). */
  constructor({ storage = "local", env = {}, web, s3 = "SHARDROP_TEST_S3_" } = {}) {
    this.s3 = s3;
    this.dir = tempDir();
    this.web = join(this.dir, "web");
    if (web) {
      cpSync(web, this.web, { recursive: true });
    } else {
      cpSync(join(ROOT, "tests", "e2e", "page"), this.web, { recursive: true });
      cpSync(join(ROOT, "web-wasm", "pkg"), join(this.web, "pkg"), { recursive: true });
    }
    this.storage = storage;
    this.extraEnv = env;
    // Fixed for the server's life: a restart must find its objects again.
    this.prefix = `e2e-${randomBytes(6).toString("hex")}/`;
  }

  async start() {
    this.port ??= await freePort();
    this.origin = `http://127.0.0.1:${this.port}`;
    const env = {
      ...process.env,
      SHARDROP_LISTEN: `127.0.0.1:${this.port}`,
      SHARDROP_DATA_DIR: join(this.dir, "data"),
      SHARDROP__WEB_DIR: this.web,
      SHARDROP_LOG: process.env.SHARDROP_LOG ?? "warn",
      ...this.extraEnv,
    };
    if (this.storage === "s3") {
      const need = (k) => process.env[k] ?? (() => { throw new Error(`${k} is not set: run through scripts/test.sh`); })();
      Object.assign(env, {
        SHARDROP__STORAGE__KIND: "s3",
        SHARDROP__STORAGE__S3__ENDPOINT: need(`${this.s3}ENDPOINT`),
        SHARDROP__STORAGE__S3__REGION: need(`${this.s3}REGION`),
        SHARDROP__STORAGE__S3__BUCKET: need(`${this.s3}BUCKET`),
        SHARDROP__STORAGE__S3__ACCESS_KEY_ID: need(`${this.s3}ACCESS_KEY_ID`),
        SHARDROP__STORAGE__S3__SECRET_ACCESS_KEY: need(`${this.s3}SECRET_ACCESS_KEY`),
        SHARDROP__STORAGE__S3__PREFIX: this.prefix,
        SHARDROP__STORAGE__S3__CORS_ORIGINS: JSON.stringify([this.origin]),
      });
    }
    this.proc = spawn(BIN, ["serve"], { env, stdio: ["ignore", "inherit", "inherit"] });
    for (let i = 0; i < 200; i++) {
      try {
        if ((await fetch(`${this.origin}/healthz`)).ok) return this;
      } catch {}
      await sleep(50);
    }
    throw new Error("shardrop serve did not come up");
  }

  /** SIGKILL: the process dies mid-request, as a crashed machine would. */
  async kill() {
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGKILL");
    await exited;
  }

  async stop() {
    if (this.proc && this.proc.exitCode === null) await this.kill();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** A new account on this server: `{username, password, token, user}`. */
  signUp(username) {
    return signUp(this.origin, username);
  }

  /** The account this server's tests act as unless they name another; signed up on first use. */
  user() {
    // Sessions live in SQL, so the token still works after a kill and restart.
    this.#user ??= this.signUp();
    return this.#user;
  }

  /**
   * fetch of an API path, as the default user. `token` sends another user's token instead,
   * or none when null; the other fields are fetch's.
   */
  async api(path, { token, ...init } = {}) {
    if (token === undefined) token = (await this.user()).token;
    const headers = new Headers(init.headers);
    if (token) headers.set("authorization", `Bearer ${token}`);
    return fetch(`${this.origin}/api/v1${path}`, { ...init, headers });
  }

  /** Sum of a counter over the lines whose labels contain every `match` string. */
  async metric(name, ...match) {
    const text = await (await fetch(`${this.origin}/metrics`)).text();
    return text
      .split("\n")
      .filter((l) => l.startsWith(name) && match.every((m) => l.includes(m)))
      .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
  }


  /**
   * SHA-1 of a stored file (the default user's, or the one whose `token` is given), fetched
   * through its download redirect. The redirect is followed by hand: the bearer token goes
   * to the API only, never to the storage, even where the storage is on the same origin
   * (the embedded store), where fetch would send it along.
   */
  async storedSha1(fileId, { token } = {}) {
    const redirect = await this.api(`/files/${fileId}/content`, { token, redirect: "manual" });
    if (redirect.status !== 302) throw new Error(`download answered ${redirect.status}: ${await redirect.text()}`);
    const res = await fetch(new URL(redirect.headers.get("location"), redirect.url));
    if (!res.ok) throw new Error(`the storage answered ${res.status}`);
    return sha1Of(res.body);
  }
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Hex SHA-1 of a stream of bytes (a fetch body, a file stream). */
export async function sha1Of(stream) {
  const hash = createHash("sha1");
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest("hex");
}

/** A file of `size` random bytes on disk; answers its path and SHA-1. */
export async function makeFile(dir, name, size) {
  const path = join(dir, name);
  const hash = createHash("sha1");
  const out = createWriteStream(path);
  for (let left = size; left > 0; ) {
    const chunk = randomBytes(Math.min(left, 4 * MIB));
    hash.update(chunk);
    if (!out.write(chunk)) await new Promise((r) => out.once("drain", r));
    left -= chunk.length;
  }
  await new Promise((r, j) => out.end((e) => (e ? j(e) : r())));
  return { path, name, size, sha1: hash.digest("hex") };
}

export async function browser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
    // launch() gives every browser a fresh, empty profile of its own (and refuses --user-data-dir).
  });
}

/**
 * Opens the engine's test page. `page.partPuts` counts part PUTs its worker starts.
 * `page.token` is the token its uploads send: `token`, or the server's default user's
 * (`server` may be a plain `{origin}`, such as a cluster behind nginx: pass `token` then).
 */
export async function openPage(b, server, { token } = {}) {
  const page = await b.newPage();
  page.token = token !== undefined ? token : (await server.user()).token;
  page.on("pageerror", (e) => console.error("page error:", e));
  page.partPuts = 0;
  // Part PUTs go to storage (or the local store); reports are PUTs to /api/v1/uploads/.
  page.on("request", (r) => {
    if (r.method() === "PUT" && !r.url().includes("/api/v1/uploads/")) page.partPuts++;
  });
  await page.goto(`${server.origin}/index.html`);
  await page.waitForFunction(() => window.ready === true);
  return page;
}

/**
 * Picks `file` in the page and starts uploading it. The task lives in `window.tasks[name]`;
 * answers when it started (or `until` holds for the task).
 */
export async function startUpload(page, file, { concurrency = 4 } = {}) {
  await page.setInputFiles("#pick", file.path);
  await page.evaluate(
    ({ name, concurrency, token }) => {
      window.tasks ??= {};
      window.uploader ??= new window.shardrop.Uploader({ concurrency, token: token ?? undefined });
      const f = [...document.querySelector("#pick").files].find((x) => x.name === name);
      const task = window.uploader.upload(f);
      task.done.then(
        (r) => (task.result = r),
        (e) => (task.error = { code: e.code, message: e.message, status: e.status }),
      );
      window.tasks[name] = task;
    },
    { name: file.name, concurrency, token: page.token },
  );
}

/** Waits for the task to end; answers {result, error, state, timings, upload_id}. */
export async function finished(page, name) {
  await page.waitForFunction((n) => window.tasks[n].result || window.tasks[n].error, name, { timeout: 300_000, polling: 100 });
  return page.evaluate((n) => {
    const t = window.tasks[n];
    return { result: t.result, error: t.error, state: t.state, timings: t.timings, upload_id: t.upload_id, progress: t.progress };
  }, name);
}

/** Waits until `sent` passes `fraction` of the file. */
export async function sentAtLeast(page, name, fraction) {
  await page.waitForFunction(
    ({ n, f }) => window.tasks[n].progress.sent >= f * window.tasks[n].progress.total,
    { n: name, f: fraction },
    { timeout: 300_000, polling: 50 },
  );
}
