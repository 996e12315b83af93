// Uppy Companion's standalone server, as its own `companion` command runs it
// (@uppy/companion/bin/companion → lib/standalone/start-server.js): the standalone express
// app (request log, helmet, sessions, Companion's routes), configured from COMPANION_*
// environment variables, with its websocket. One change: it listens on 127.0.0.1 only
// (start-server.js listens on every interface). bench/p8.mjs starts it as a child process
// with the S3 settings of the bench's Garage bucket; it prints "companion listening on PORT"
// once it answers.
import * as companion from "@uppy/companion";
import standalone from "@uppy/companion/standalone";

const port = Number(process.env.COMPANION_PORT);
if (!port) throw new Error("companion: COMPANION_PORT is not set");
const { app } = standalone();
const server = app.listen(port, "127.0.0.1", () => process.stdout.write(`companion listening on ${port}\n`));
companion.socket(server);

for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
// Never outlive the benchmark that started it.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();
