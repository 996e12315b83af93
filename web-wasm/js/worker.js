// The worker shim: starts the wasm engine and forwards the page's messages to it.
import init, { Engine } from "./shardrop_engine.js";

const ready = init();
let engine;

self.onmessage = async ({ data: m }) => {
  await ready;
  engine ??= new Engine((event) => self.postMessage(event));
  if (m.type === "upload") engine.upload(m.task, m.file, m.endpoint, m.token ?? undefined, m.concurrency, m.name ?? undefined);
  else if (m.type === "pause" || m.type === "resume" || m.type === "cancel") engine[m.type](m.task);
};
