// Faults on a whole local deployment (infra/local/cluster.py): three Garage nodes with
// replication factor 3 behind nginx as the S3 endpoint, three `shardrop serve` replicas
// behind nginx round-robin, the machine's PostgreSQL and Redis, all real processes.
//
// Each case runs 20 concurrent uploads of 5-200 MB whose parts a plain HTTP client PUTs
// through nginx, with every API call through nginx's round-robin, and injects one fault
// mid-way. Every upload must complete, once, and the bytes stored must hash to the source.
// Each case signs up an account of its own (through nginx, like its uploads) and sends its
// token on every API call. The figures of each case go to tests/artifacts/cluster-faults.json.

import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { MIB, ROOT, call, copyEnginePage, metric, request, signUp, sleep, tempDir } from "../lib/shardrop.mjs";
import { browser, finished, makeFile, openPage, sentAtLeast, startUpload } from "./harness.mjs";

const DIR = join(ROOT, "target", "cluster-test");
const CLUSTER = join(ROOT, "infra", "local", "cluster.py");
// Short enough that the reaper case ends in well under a minute; each replica touches an
// active upload at least four times per TTL, so busy uploads are never reaped.
const TTL_SECS = 20;
// 20 uploads, 5-200 MB, 947 MB in all.
const SIZES_MB = [200, 150, 120, 100, 80, 60, 50, 40, 30, 25, 20, 15, 12, 10, 8, 7, 6, 5, 5, 5];
const PARTS_IN_FLIGHT = 2;

const cluster = (...args) =>
  execFileSync("python3", [CLUSTER, ...args, DIR], { encoding: "utf8", stdio: ["ignore", "pipe", "inherit"] });

let env; // CLUSTER_* of the running cluster
const results = [];

before(async () => {
  cluster("destroy");
  // The replicas serve the engine's test page (and the package) for the browser case.
  const web = tempDir("shardrop-cluster-web-");
  copyEnginePage(web);
  process.env.SHARDROP__WEB_DIR = web;
  process.env.SHARDROP__UPLOADS__TTL_SECS = String(TTL_SECS);
  process.env.SHARDROP__REAPER__INTERVAL_SECS = "1";
  process.env.SHARDROP__UPLOADS__COMPLETION_LEASE_SECS = "10";
  process.env.SHARDROP_LOG ??= "warn";
  env = JSON.parse(cluster("start", "--json"));
});

after(() => {
  if (results.length) {
    mkdirSync(join(ROOT, "tests", "artifacts"), { recursive: true });
    writeFileSync(join(ROOT, "tests", "artifacts", "cluster-faults.json"), JSON.stringify(results, null, 2) + "\n");
    console.log("\nfault case                 started completed corrupt retries seconds");
    for (const r of results) {
      console.log(
        `${r.case.padEnd(26)} ${String(r.started).padStart(7)} ${String(r.completed).padStart(9)} ${String(r.corrupt).padStart(7)} ${String(r.retries).padStart(7)} ${r.seconds.toFixed(1).padStart(7)}`,
      );
    }
  }
  cluster("destroy");
});

// ---- a plain HTTP client that retries what a real client retries ------------------------

class Client {
  /** A client signed in as a new account of its own. */
  static async signUp() {
    return new Client((await signUp(env.CLUSTER_API)).token);
  }

  constructor(token) {
    this.token = token;
    this.retries = 0;
    this.sent = 0;
    // Network errors, 502/503/504 (a replica or node going away) and 429: sent again, up to
    // 40 times, after a jittered backoff; each attempt has a minute.
    this.retry = {
      statuses: [429, 502, 503, 504],
      attempts: 40,
      network: 40,
      timeoutMs: 60_000,
      wait: (attempt) => Math.min(2_000, 100 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random() / 2),
      onRetry: () => this.retries++,
    };
  }

  /** Headers of an API call: the bearer token, and the given ones. Never sent to the storage. */
  headers(extra = {}) {
    return { ...extra, authorization: `Bearer ${this.token}` };
  }

  /** `send()` under the retry policy; still failing or refused after the last retry, it throws. */
  async #retried(what, send) {
    let answer;
    try {
      answer = await send();
    } catch (e) {
      throw new Error(`${what}: ${e.message}`);
    }
    if (this.retry.statuses.includes(answer.status)) throw new Error(`${what}: answered ${answer.status} ${this.retry.attempts + 1} times`);
    return answer;
  }

  /** fetch (of the API or the storage), retried. */
  fetch(url, init = {}, what = url) {
    return this.#retried(what, () => request(url, init, this.retry));
  }

  /** An API call with a JSON body, as this account, retried: `{status, json, code, message, …}`. */
  api(method, path, body) {
    return this.#retried(`${method} ${path}`, () => call(env.CLUSTER_API, method, path, { token: this.token, body, retry: this.retry }));
  }

  /** Sends one file: create, then sign, PUT and report each part, then complete. */
  async upload(file) {
    const created = await this.api("POST", "/uploads", { name: file.name, size: file.size, sha1: file.sha1 });
    assert.equal(created.status, 201, JSON.stringify(created.json));
    const u = created.json;
    file.upload_id = u.upload_id;
    const numbers = Array.from({ length: u.part_count }, (_, i) => i + 1);
    let last;
    const worker = async () => {
      for (let n; (n = numbers.shift()) !== undefined; ) last = (await this.part(u, file, n)) ?? last;
    };
    await Promise.all(Array.from({ length: PARTS_IN_FLIGHT }, worker));
    // The last report usually completed the upload; if it landed while another replica
    // was composing, or its answer was lost with a killed replica, ask until it is done.
    for (let i = 0; i < 120; i++) {
      const r = await this.api("POST", `/uploads/${u.upload_id}/complete`, { sha1: file.sha1 });
      if (r.status === 200 && ["complete", "instant"].includes(r.json.state)) return r.json;
      if (r.status === 409 && r.code === "upload-complete") return (await this.api("GET", `/uploads/${u.upload_id}`)).json;
      assert.ok([200, 409].includes(r.status), `complete: ${r.status} ${JSON.stringify(r.json)}`);
      if (r.code === "parts-missing") throw new Error(`parts missing after every report: ${r.message}`);
      await sleep(500);
    }
    throw new Error(`${file.name} never completed`);
  }

  async part(u, file, n) {
    const start = (n - 1) * u.part_size;
    const bytes = file.data.subarray(start, Math.min(start + u.part_size, file.size));
    const sha1 = createHash("sha1").update(bytes).digest("base64");
    const part = { number: n, sha1, size: bytes.length };
    if (u.part_check === "md5") part.md5 = createHash("md5").update(bytes).digest("base64");
    for (let attempt = 0; attempt < 10; attempt++) {
      const signed = await this.api("POST", `/uploads/${u.upload_id}/parts/sign`, { parts: [part] });
      assert.equal(signed.status, 200, JSON.stringify(signed.json));
      const p = signed.json.parts[0];
      const put = await this.fetch(p.url, { method: "PUT", headers: p.headers, body: bytes }, `PUT part ${n}`);
      const answer = await put.text();
      if (put.status === 403) {
        this.retries++; // expired or refused signature: sign again
        continue;
      }
      assert.equal(put.status, 200, `part ${n} PUT: ${put.status} ${answer}`);
      this.sent += bytes.length;
      const report = await this.api("PUT", `/uploads/${u.upload_id}/parts/${n}`, { etag: put.headers.get("etag"), sha1 });
      assert.equal(report.status, 200, JSON.stringify(report.json));
      return report.json;
    }
    throw new Error(`part ${n} of ${file.name}: refused 10 times`);
  }
}

function makeFiles(tag) {
  return SIZES_MB.map((mb, i) => {
    // Fresh random bytes per case: nothing may be a duplicate of an earlier case's file.
    const data = randomBytes(mb * 1_000_000 + i);
    return { name: `${tag}-${i}.bin`, size: data.length, data, sha1: createHash("sha1").update(data).digest("hex") };
  });
}

const psql = (sql) => execFileSync("psql", [env.CLUSTER_DATABASE_URL, "-tAc", sql], { encoding: "utf8" }).trim();

async function verified(client, fileId) {
  for (let i = 0; i < 600; i++) {
    const r = await client.api("GET", `/files/${fileId}`);
    if (r.json.status !== "pending") return r.json;
    await sleep(200);
  }
  throw new Error(`file ${fileId} was never verified`);
}

/** Downloads a file through one Garage node, bypassing nginx; answers the SHA-1. */
async function sha1Through(node, presigned) {
  const url = new URL(presigned);
  const target = new URL(node);
  return new Promise((resolve, reject) => {
    const req = http.get(
      // The URL is signed for nginx's host: send that Host header to the node itself.
      { host: target.hostname, port: target.port, path: url.pathname + url.search, headers: { host: url.host } },
      (res) => {
        if (res.statusCode !== 200) {
          res.resume();
          return reject(new Error(`node ${node} answered ${res.statusCode}`));
        }
        const h = createHash("sha1");
        res.on("data", (c) => h.update(c));
        res.on("end", () => resolve(h.digest("hex")));
        res.on("error", reject);
      },
    );
    req.on("error", reject);
  });
}

/** FLUSHALL over a raw connection (no redis-cli needed). */
function flushRedis() {
  const u = new URL(env.CLUSTER_REDIS_URL);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port || 6379), u.hostname, () => s.write("FLUSHALL\r\n"));
    s.on("data", (d) => {
      s.end();
      d.toString().startsWith("+OK") ? resolve() : reject(new Error(d.toString()));
    });
    s.on("error", reject);
  });
}

/** Report PUTs per replica port, from nginx's access log. */
function reportsPerReplica() {
  const counts = {};
  for (const line of readFileSync(join(DIR, "logs", "nginx-access.log"), "utf8").split("\n")) {
    const m = line.match(/"PUT \/api\/v1\/uploads\/[^/]+\/parts\/\d+ [^"]*" 200 .* upstream=127\.0\.0\.1:(\d+) /);
    if (m) counts[m[1]] = (counts[m[1]] ?? 0) + 1;
  }
  return counts;
}

/**
 * Runs 20 uploads at once; `fault(progress)` is called as bytes go out, with the fraction
 * of all bytes sent so far, and may inject a fault. Answers the uploads and the client.
 */
async function runCase(name, fault = async () => {}, { throughEveryNode = false } = {}) {
  const files = makeFiles(name);
  const total = files.reduce((s, f) => s + f.size, 0);
  const client = await Client.signUp();
  const t0 = performance.now();
  let done = false;
  const watcher = (async () => {
    while (!done) {
      await fault(client.sent / total);
      await sleep(50);
    }
  })();
  const outcomes = await Promise.allSettled(files.map((f) => client.upload(f)));
  const seconds = (performance.now() - t0) / 1000;
  done = true;
  await watcher;
  const failed = outcomes.filter((o) => o.status === "rejected").map((o) => o.reason.message);
  const completed = outcomes.filter((o) => o.status === "fulfilled" && o.value.file).length;

  // Every stored file hashes, from the stored bytes, to its source.
  let corrupt = 0;
  for (const [i, o] of outcomes.entries()) {
    if (o.status !== "fulfilled") continue;
    const f = await verified(client, o.value.file.file_id);
    if (f.status !== "verified" || f.sha1 !== files[i].sha1) corrupt++;
  }
  // Once each: one file row per upload, and no upload left anywhere but complete.
  const ids = files.map((f) => `'${f.upload_id}'`).join(",");
  const rows = Number(psql(`SELECT count(*) FROM files WHERE upload_id IN (${ids})`));
  const states = psql(`SELECT state, count(*) FROM uploads WHERE id IN (${ids}) GROUP BY state`);
  let nodeReads = 0;
  if (throughEveryNode) {
    for (const [i, o] of outcomes.entries()) {
      if (o.status !== "fulfilled") continue;
      const res = await client.fetch(`${env.CLUSTER_API}/api/v1/files/${o.value.file.file_id}/content`, { redirect: "manual", headers: client.headers() });
      const location = res.headers.get("location");
      for (const node of env.CLUSTER_GARAGE_S3.split(",")) {
        assert.equal(await sha1Through(node, location), files[i].sha1, `${files[i].name} through ${node}`);
        nodeReads++;
      }
    }
  }
  const r = { case: name, started: files.length, completed, corrupt, file_rows: rows, states, retries: client.retries, seconds, bytes: total, node_reads: nodeReads, failed };
  results.push(r);
  console.log(JSON.stringify({ ...r, reports_per_replica: reportsPerReplica() }));
  assert.deepEqual(failed, []);
  assert.equal(completed, files.length);
  assert.equal(corrupt, 0);
  assert.equal(rows, files.length, "one file row per upload");
  // Every upload left is complete. With a 20 s TTL the reaper forgets the records of uploads
  // completed more than a TTL ago (their files stay: `rows` counts those), so a slow case
  // may have fewer upload rows; never one in another state.
  for (const line of states.split("\n").filter(Boolean)) assert.match(line, /^complete\|\d+$/, `upload states: ${states}`);
  return { files, outcomes, client };
}

test("20 concurrent uploads over 3 replicas and 3 Garage nodes", async () => {
  await runCase("no fault");
  const perReplica = Object.values(reportsPerReplica());
  assert.equal(perReplica.length, 3, "reports reached all 3 replicas");
});

test("a backend replica SIGKILLed mid-way", async () => {
  let killed = false;
  await runCase("replica killed", async (p) => {
    if (!killed && p >= 0.4) {
      killed = true;
      cluster("kill", "replica-2");
    }
  });
  assert.ok(killed);
  cluster("start"); // back for the next case
});

test("a Garage node SIGKILLed mid-way and restarted later", async () => {
  let killedAt, restarted = false;
  await runCase(
    "garage node killed",
    async (p) => {
      if (killedAt === undefined && p >= 0.3) {
        killedAt = performance.now();
        cluster("kill", "garage-3");
      } else if (killedAt !== undefined && !restarted && (p >= 0.8 || performance.now() - killedAt > 8_000)) {
        restarted = true;
        cluster("start");
      }
    },
    { throughEveryNode: true },
  );
  assert.ok(restarted);
});

test("Redis wiped (FLUSHALL) mid-way", async () => {
  let flushed = false;
  await runCase("redis flushed", async (p) => {
    if (!flushed && p >= 0.5) {
      flushed = true;
      await flushRedis();
    }
  });
  assert.ok(flushed);
});

test("the reaper on 3 replicas aborts an abandoned upload exactly once and spares an active one", async () => {
  const client = await Client.signUp();
  const aborted = async () => {
    let sum = 0;
    for (const replica of env.CLUSTER_REPLICAS.split(",")) sum += await metric(replica, "shardrop_uploads_aborted_total", '"expired"');
    return sum;
  };
  const before = await aborted();
  const t0 = performance.now();
  const [abandoned, active] = makeFiles("reaper").slice(17, 19); // two 5 MB files
  active.data = randomBytes(30 * MIB);
  active.size = active.data.length;
  active.sha1 = createHash("sha1").update(active.data).digest("hex");
  const a = (await client.api("POST", "/uploads", { name: abandoned.name, size: abandoned.size })).json;
  const b = (await client.api("POST", "/uploads", { name: active.name, size: active.size, sha1: active.sha1 })).json;
  // The active one sends a part every few seconds for longer than the TTL.
  let lastReport;
  for (let n = 1; n <= b.part_count; n++) {
    lastReport = await client.part(b, active, n);
    if (n < b.part_count) await sleep(((TTL_SECS + 5) * 1000) / (b.part_count - 1));
  }
  for (let i = 0; i < 100 && (await client.api("GET", `/uploads/${a.upload_id}`)).status !== 404; i++) await sleep(200);
  const seconds = (performance.now() - t0) / 1000;
  assert.equal((await client.api("GET", `/uploads/${a.upload_id}`)).status, 404, "the abandoned upload is gone");
  assert.equal(lastReport.state, "complete", JSON.stringify(lastReport));
  assert.equal((await verified(client, lastReport.file.file_id)).sha1, active.sha1);
  const reaped = (await aborted()) - before;
  assert.equal(reaped, 1, "aborted once, by one replica");
  results.push({ case: "reaper on 3 replicas", started: 2, completed: 1, corrupt: 0, reaped, retries: client.retries, seconds });
});

test("a browser upload of 300 MB through nginx while a replica is killed", async () => {
  const b = await browser();
  try {
    const client = await Client.signUp();
    const page = await openPage(b, { origin: env.CLUSTER_API }, { token: client.token });
    const file = await makeFile(tempDir(), "cluster-300.bin", 300 * MIB);
    const t0 = performance.now();
    await startUpload(page, file);
    await sentAtLeast(page, file.name, 0.3);
    cluster("kill", "replica-1");
    const r = await finished(page, file.name);
    const seconds = (performance.now() - t0) / 1000;
    assert.equal(r.error, undefined, JSON.stringify(r.error));
    assert.equal(r.state, "complete");
    assert.equal(r.result.sha1, file.sha1);
    const f = await verified(client, r.result.file_id);
    assert.equal(f.sha1, file.sha1);
    results.push({ case: "browser, replica killed", started: 1, completed: 1, corrupt: f.status === "verified" ? 0 : 1, retries: null, seconds });
  } finally {
    await b.close();
    cluster("start");
  }
});
