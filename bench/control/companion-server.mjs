// Uppy Companion as people deploy it for S3 multipart uploads: its express app
// (`companion.app(options)`, what the standalone server wraps, minus the standalone's
// per-request access log), one Node process, its defaults otherwise.
// Configuration comes from the environment (set by p3.mjs):
//   BENCH_COMPANION_PORT, BENCH_S3_ENDPOINT, BENCH_S3_REGION, BENCH_S3_BUCKET,
//   BENCH_S3_KEY_ID, BENCH_S3_SECRET, BENCH_COMPANION_DIR
import express from "express";
import * as companion from "@uppy/companion";

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`companion-server: ${name} is not set`);
  return v;
};
const port = Number(env("BENCH_COMPANION_PORT"));
const options = {
  s3: {
    key: env("BENCH_S3_KEY_ID"),
    secret: env("BENCH_S3_SECRET"),
    bucket: env("BENCH_S3_BUCKET"),
    region: env("BENCH_S3_REGION"),
    endpoint: env("BENCH_S3_ENDPOINT"),
    forcePathStyle: true,
  },
  server: { host: `127.0.0.1:${port}`, protocol: "http" },
  filePath: env("BENCH_COMPANION_DIR"),
  secret: "shardrop-bench-companion-secret",
  providerOptions: {},
  corsOrigins: true,
  // Required in production; only its upload-from-URL/provider routes use it, not the S3 ones.
  uploadUrls: [`http://127.0.0.1:${port}/`],
};
const app = express();
app.use(companion.app(options).app);
const server = app.listen(port, "127.0.0.1", () => {
  process.stdout.write(`companion listening on ${port}\n`);
});
for (const sig of ["SIGTERM", "SIGINT"]) {
  process.on(sig, () => {
    server.close();
    process.exit(0);
  });
}
// Never outlive the benchmark that started this server.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(0);
}, 1000).unref();
