// What the browser tests (tests/e2e) and the benchmarks (bench/, bench/control) share to
// drive a real `shardrop serve` from Node: starting one (its env, its storage, its log,
// waiting until it answers), its REST API (sign-up, calls that surface the server's
// `{code, message}`, retries on a policy the caller picks), its metrics, and the small
// pieces both sides need (a free port, a temp dir that goes at exit, a median).
//
// Node built-ins and the global fetch only, no npm package: tests/e2e and bench/ (each with
// a package.json of its own) and bench/control (which must run before `npm ci`) import it
// by relative path. What needs a browser (Playwright) stays in tests/e2e/harness.mjs.

import { spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The `shardrop` binary: SHARDROP_BIN, else the release build. */
export const BIN = process.env.SHARDROP_BIN || join(ROOT, "target", "release", "shardrop");
export const MIB = 1024 * 1024;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * The middle of a list of numbers (null for none). For an even count, the mean of the two
 * middle ones; with `upper`, the upper of the two (what bench/hash.mjs has always reported).
 */
export function median(xs, { upper = false } = {}) {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 || upper ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** A TCP port on 127.0.0.1 that nothing listens on right now. */
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

// Every temp dir made here (test files of hundreds of MB, server data) and every server
// process still running goes when this process ends, whatever way it ends: runs must not
// fill the disk or leave servers behind.
const made = [];
const running = new Set();
process.on("exit", () => {
  for (const proc of running) proc.kill("SIGKILL");
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
});

export function tempDir(prefix = "shardrop-e2e-") {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/** Hex SHA-1 of a stream of bytes (a fetch body, a file stream). */
export async function sha1Of(stream) {
  const hash = createHash("sha1");
  for await (const chunk of stream) hash.update(chunk);
  return hash.digest("hex");
}

/** Copies the engine's test page (tests/e2e/page) with the package (web-wasm/pkg) into `dir`. */
export function copyEnginePage(dir) {
  cpSync(join(ROOT, "tests", "e2e", "page"), dir, { recursive: true });
  cpSync(join(ROOT, "web-wasm", "pkg"), join(dir, "pkg"), { recursive: true });
}

// ---- the REST API ------------------------------------------------------------------------

/**
 * A retry policy: which answers are sent again (`statuses`, at most `attempts` times), how
 * many network errors are (`network`), how long to wait before attempt `attempt + 1`
 * (`wait(attempt, answer)`, the answer null after a network error), a time limit per
 * attempt (`timeoutMs`), and `onRetry({attempt, status, error, method, path, url})` to count
 * them (`path` for an API call, `url` for any other). One count of attempts serves both kinds. Once out of attempts, a retried status is answered as is
 * and a network error thrown.
 */
export const NO_RETRY = { statuses: [], attempts: 0, network: 0 };

/** What the server asks for in Retry-After, else 1 s. */
export const retryAfter = (_attempt, answer) => 1000 * (Number(answer?.headers.get("retry-after")) || 1);

/**
 * Sign-up and login share a per-IP limit: wait out `429 rate-limited`, and a 502/503 of a
 * proxy whose replica is restarting; five times at most.
 */
export const AUTH_RETRY = { statuses: [429, 502, 503], attempts: 5, network: 0, wait: retryAfter };

/** Runs `send` (a fetch, or a fetch with its body read) under the policy `retry`; `what` is the request, for onRetry. */
async function attempts(send, retry = NO_RETRY, what = {}) {
  for (let attempt = 0; ; attempt++) {
    let answer;
    try {
      answer = await send(retry.timeoutMs ? AbortSignal.timeout(retry.timeoutMs) : undefined);
    } catch (error) {
      if (attempt >= (retry.network ?? 0)) throw error;
      retry.onRetry?.({ ...what, attempt, error });
      await sleep(retry.wait(attempt, null));
      continue;
    }
    if (!retry.statuses?.includes(answer.status) || attempt >= retry.attempts) return answer;
    // A Response's body is read out, so its connection goes back to the pool.
    if (answer instanceof Response) await answer.arrayBuffer();
    retry.onRetry?.({ ...what, attempt, status: answer.status });
    await sleep(retry.wait(attempt, answer));
  }
}

/** fetch of any URL (an API path, a signed storage URL) under a retry policy; answers the Response. */
export function request(url, init = {}, retry = NO_RETRY) {
  return attempts((signal) => fetch(url, signal ? { ...init, signal } : init), retry, { method: init.method ?? "GET", url });
}

/** The fetch init of an API request: `token` as the bearer token (none when falsy). */
function withToken({ token, ...init }) {
  const headers = new Headers(init.headers);
  if (token) headers.set("authorization", `Bearer ${token}`);
  return { ...init, headers };
}

/**
 * fetch of an API path of the server at `origin` (`/files` for `${origin}/api/v1/files`),
 * with `token` as the bearer token (none when falsy) and `retry` as the policy; the other
 * fields are fetch's. Answers the Response.
 */
export function apiFetch(origin, path, { retry, ...init } = {}) {
  return request(`${origin}/api/v1${path}`, withToken(init), retry);
}

/**
 * An API call with a JSON `body` (none when undefined), as apiFetch. The body of the answer
 * is read inside each attempt (a connection reset while reading is a network error too).
 * Answers `{status, ok, headers, text, json}` (json null when the body is empty or not
 * JSON), and for an error the server's `code` and `message`.
 */
export function call(origin, method, path, { body, retry, ...options } = {}) {
  const init = { ...withToken(options), method };
  if (body !== undefined) {
    init.headers.set("content-type", "application/json");
    init.body = JSON.stringify(body);
  }
  const url = `${origin}/api/v1${path}`;
  return attempts(async (signal) => {
    const res = await fetch(url, signal ? { ...init, signal } : init);
    const text = await res.text();
    let json = null;
    try {
      json = text ? JSON.parse(text) : null;
    } catch {}
    const answer = { status: res.status, ok: res.ok, headers: res.headers, text, json };
    if (!res.ok) Object.assign(answer, { code: json?.code, message: json?.message });
    return answer;
  }, retry, { method, path });
}

/** An answer that was not the one expected: `status`, and the server's `code` and `message`. */
export class ApiError extends Error {
  constructor(what, answer) {
    super(`${what}: ${answer.status} ${answer.text}`);
    Object.assign(this, { status: answer.status, code: answer.code, detail: answer.message });
  }
}

/**
 * Creates an account and signs it in through the API of the server at `origin`: a random
 * unique name (`prefix`-hex) unless `username` is given. Answers `{username, password,
 * token, user}`; throws an ApiError unless both answer 201.
 */
export async function signUp(origin, { prefix = "e2e", username, password, retry = AUTH_RETRY } = {}) {
  username ??= `${prefix}-${randomBytes(6).toString("hex")}`;
  password ??= randomBytes(12).toString("base64url");
  const post = async (path) => {
    const answer = await call(origin, "POST", path, { body: { username, password }, retry });
    if (answer.status !== 201) throw new ApiError(`POST ${path}`, answer);
    return answer.json;
  };
  await post("/users");
  const session = await post("/sessions");
  return { username: session.user.username, password, token: session.token, user: session.user };
}

/** Sum of a counter of the server at `origin` over the lines whose labels contain every `match` string. */
export async function metric(origin, name, ...match) {
  const text = await (await fetch(`${origin}/metrics`)).text();
  return text
    .split("\n")
    .filter((l) => l.startsWith(name) && match.every((m) => l.includes(m)))
    .reduce((sum, l) => sum + Number(l.split(" ").pop()), 0);
}

// ---- a `shardrop serve` ------------------------------------------------------------------

/**
 * A `shardrop serve` that can be killed and started again on the same port and data. Every
 * upload and file belongs to an account: each server has a default user, signed up on
 * first use, whose token `api()` sends unless a call names another.
 */
export class Server {
  #user;

  /**
   * - `storage`: "local" (the embedded store) or "s3".
   * - `s3`: with "s3", the S3 server: the prefix of the env vars naming it (the Garage of
   *   scripts/test.sh by default; SHARDROP_TEST_RGW_ for RGW), or its settings
   *   `{endpoint, region, bucket, access_key_id, secret_access_key}` (bench/control's
   *   startGarage() answers those).
   * - `prefix`: the key prefix of its objects (default `e2e-<random>/`, kept across restarts).
   * - `env`: more env vars, set last (they win over all the above).
   * - `web`: the folder served at / (copied); by default the engine's test page with the
   *   package; null: none.
   * - `dataDir`: its data (default: a temp dir's data/).
   * - `log`: a file its stdout and stderr are appended to (default: this process's).
   * - `ready`: the path that must answer 200 before start() returns: /healthz (the process
   *   serves) or /readyz (its database, tracker and storage answer too); within
   *   `readyTimeoutMs`.
   */
  constructor({
    storage = "local",
    s3 = "SHARDROP_TEST_S3_",
    prefix = `e2e-${randomBytes(6).toString("hex")}/`,
    env = {},
    web,
    dataDir,
    log,
    ready = "/healthz",
    readyTimeoutMs = 10_000,
  } = {}) {
    Object.assign(this, { storage, s3, prefix, extraEnv: env, log, ready, readyTimeoutMs });
    if (web !== null || !dataDir) this.dir = tempDir();
    if (web !== null) {
      this.web = join(this.dir, "web");
      if (web) cpSync(web, this.web, { recursive: true });
      else copyEnginePage(this.web);
    }
    this.dataDir = dataDir ?? join(this.dir, "data");
  }

  async start() {
    this.port ??= await freePort();
    this.origin = `http://127.0.0.1:${this.port}`;
    mkdirSync(this.dataDir, { recursive: true });
    const env = {
      ...process.env,
      SHARDROP_LISTEN: `127.0.0.1:${this.port}`,
      SHARDROP_DATA_DIR: this.dataDir,
      SHARDROP_LOG: process.env.SHARDROP_LOG ?? "warn",
      ...(this.web ? { SHARDROP__WEB_DIR: this.web } : {}),
      ...(this.storage === "s3" ? this.#s3Env() : {}),
      ...this.extraEnv,
    };
    const out = this.log ? openSync(this.log, "a") : "inherit";
    this.proc = spawn(BIN, ["serve"], { env, stdio: ["ignore", out, out] });
    if (this.log) closeSync(out);
    const proc = this.proc;
    running.add(proc);
    proc.once("exit", () => running.delete(proc));
    const url = `${this.origin}${this.ready}`;
    const t0 = Date.now();
    for (;;) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`shardrop serve exited (${proc.exitCode ?? proc.signalCode}) before ${url} answered`);
      }
      try {
        if ((await fetch(url)).ok) return this;
      } catch {}
      if (Date.now() - t0 > this.readyTimeoutMs) throw new Error(`shardrop serve did not come up: ${url} did not answer 200 in ${this.readyTimeoutMs} ms`);
      await sleep(50);
    }
  }

  #s3Env() {
    let s = this.s3;
    if (typeof s === "string") {
      const need = (name) => {
        const k = `${this.s3}${name.toUpperCase()}`;
        if (process.env[k] === undefined) throw new Error(`${k} is not set: run through scripts/test.sh`);
        return process.env[k];
      };
      s = Object.fromEntries(["endpoint", "region", "bucket", "access_key_id", "secret_access_key"].map((k) => [k, need(k)]));
    }
    return {
      SHARDROP__STORAGE__KIND: "s3",
      SHARDROP__STORAGE__S3__ENDPOINT: s.endpoint,
      SHARDROP__STORAGE__S3__REGION: s.region,
      SHARDROP__STORAGE__S3__BUCKET: s.bucket,
      SHARDROP__STORAGE__S3__ACCESS_KEY_ID: s.access_key_id,
      SHARDROP__STORAGE__S3__SECRET_ACCESS_KEY: s.secret_access_key,
      SHARDROP__STORAGE__S3__PREFIX: this.prefix,
      SHARDROP__STORAGE__S3__CORS_ORIGINS: JSON.stringify([this.origin]),
    };
  }

  /** SIGKILL: the process dies mid-request, as a crashed machine would. */
  async kill() {
    if (this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    const exited = new Promise((r) => this.proc.once("exit", r));
    this.proc.kill("SIGKILL");
    await exited;
  }

  /** Kills the process and removes its temp dir (not a `dataDir` it was given). */
  async stop() {
    if (this.proc) await this.kill();
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** A new account on this server: `{username, password, token, user}`. */
  signUp(username) {
    return signUp(this.origin, { username });
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
    return apiFetch(this.origin, path, { ...init, token });
  }

  /** Sum of a counter over the lines whose labels contain every `match` string. */
  metric(name, ...match) {
    return metric(this.origin, name, ...match);
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
