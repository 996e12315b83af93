// The page side of Shardrop's uploader: one dedicated worker runs the wasm engine (slicing,
// hashing, signing, sending); this file only starts it, forwards commands and turns its
// events into task state, progress callbacks and a promise.

const DEFAULT_CONCURRENCY = 4;
// Browsers open about 6 HTTP/1.1 connections per origin: more parts in flight only queue.
const MAX_CONCURRENCY = 6;

export class UploadError extends Error {
  constructor({ code, message, status }) {
    super(message);
    this.name = "UploadError";
    this.code = code;
    this.status = status;
  }
}

export class Uploader {
  #worker;
  #tasks = new Map();
  #next = 1;
  #options;

  constructor({ endpoint = "/api/v1", concurrency = DEFAULT_CONCURRENCY, token, worker } = {}) {
    if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > MAX_CONCURRENCY) {
      throw new RangeError(`concurrency must be an integer from 1 to ${MAX_CONCURRENCY}`);
    }
    const base = globalThis.location?.href;
    this.#options = { endpoint: new URL(endpoint, base).href, concurrency, token };
    this.#worker = worker ?? new Worker(new URL("./worker.js", import.meta.url), { type: "module", name: "shardrop" });
    this.#worker.addEventListener("message", ({ data }) => this.#tasks.get(data.task)?._event(data));
    this.#worker.addEventListener("error", (e) => {
      const error = { code: "worker-error", message: e.message || "the upload worker failed to start" };
      for (const task of this.#tasks.values()) task._event({ type: "failed", task: task.id, error });
    });
  }

  /** Starts uploading `file` (named `name`, e.g. its path in a dropped folder); returns its task at once. */
  upload(file, { onProgress, onStateChange, name } = {}) {
    const id = this.#next++;
    const task = new UploadTask(id, file, (type) => this.#worker.postMessage({ type, task: id }), {
      onProgress,
      onStateChange,
      onEnd: () => this.#tasks.delete(id),
    });
    this.#tasks.set(id, task);
    this.#worker.postMessage({ type: "upload", task: id, file, name, ...this.#options });
    return task;
  }

  /** Stops the worker and every upload in it (they can be resumed later by giving the files again). */
  terminate() {
    this.#worker.terminate();
  }
}

export class UploadTask {
  #send;
  #hooks;
  #resolve;
  #reject;

  constructor(id, file, send, hooks) {
    this.id = id;
    this.file = file;
    this.state = "hashing";
    this.progress = { total: file.size, hashed: 0, sent: 0, bytes_per_sec: 0, eta_secs: null };
    this.timings = {};
    this.upload_id = null;
    this.#send = send;
    this.#hooks = hooks;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  pause() {
    this.#send("pause");
  }
  resume() {
    this.#send("resume");
  }
  cancel() {
    this.#send("cancel");
  }

  _event(m) {
    switch (m.type) {
      case "state":
        if (m.state !== this.state) {
          this.state = m.state;
          this.#hooks.onStateChange?.(m.state, this);
        }
        break;
      case "progress": {
        // Never backwards, whatever order events arrive in.
        const p = m.progress;
        this.progress = {
          ...p,
          hashed: Math.max(p.hashed, this.progress.hashed),
          sent: Math.max(p.sent, this.progress.sent),
        };
        this.#hooks.onProgress?.(this.progress, this);
        break;
      }
      case "started":
        this.upload_id = m.upload_id;
        break;
      case "timing":
        this.timings[m.name] = m.ms;
        break;
      case "done":
        this.#hooks.onEnd();
        this.#resolve(m.result);
        break;
      case "failed":
        if (this.state !== "cancelled" && this.state !== "failed") {
          this.state = m.error.code === "cancelled" ? "cancelled" : "failed";
          this.#hooks.onStateChange?.(this.state, this);
        }
        this.#hooks.onEnd();
        this.#reject(new UploadError(m.error));
        break;
    }
  }
}
