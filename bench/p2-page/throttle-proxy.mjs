// P2's 1 Gbit/s link: a TCP proxy in front of Garage's S3 port that passes bytes through
// unchanged (so presigned URLs naming the proxy's host:port verify at Garage as signed) and
// limits each direction to RATE bytes per second in total over all connections (a token
// bucket, full duplex like a real link: client → Garage and Garage → client each get RATE).
//
// Started by bench/p2.mjs with fork(): argv = listen port (0: any), target host, target
// port, RATE (bytes/s). It answers {type:"listening", port} once it listens, and to
// {type:"stats", reset} the bytes it passed each way and the busiest 1 s window of the
// client → Garage direction since the last reset.
import net from "node:net";

const [listenPort, targetHost, targetPort, rateArg] = process.argv.slice(2);
const RATE = Number(rateArg);
if (!(RATE > 0)) throw new Error(`RATE must be positive, not ${rateArg}`);
// Tokens the link may save up: 4 ms of the rate, so a timer or event loop a few ms late
// (2 busy cores) does not lose capacity. Bytes passed in any T seconds are at most
// RATE * T + BURST (1 s: +0.4%). A chunk (a socket read, up to 64 KiB) may drive the
// bucket into debt; the next waits until it is repaid.
const BURST_MS = 4;
const BURST = (RATE * BURST_MS) / 1000;
const WINDOW_MS = 50;

class Bucket {
  constructor(name) {
    this.name = name;
    this.tokens = BURST;
    this.last = performance.now();
    this.queue = [];
    this.timer = null;
    this.bytes = 0;
    this.reset();
  }
  reset() {
    this.t0 = performance.now();
    this.windows = [];
    this.sinceReset = 0;
  }
  /** Holds `src` (paused) until `chunk` may go to `dst` at the rate. */
  send(chunk, src, dst) {
    src.pause();
    this.queue.push({ chunk, src, dst });
    this.pump();
  }
  pump() {
    const now = performance.now();
    this.tokens = Math.min(BURST, this.tokens + ((now - this.last) / 1000) * RATE);
    this.last = now;
    while (this.queue.length && this.tokens > 0) {
      const { chunk, src, dst } = this.queue.shift();
      this.tokens -= chunk.length;
      this.bytes += chunk.length;
      this.sinceReset += chunk.length;
      const w = Math.floor((now - this.t0) / WINDOW_MS);
      this.windows[w] = (this.windows[w] ?? 0) + chunk.length;
      if (dst.destroyed) continue;
      if (dst.write(chunk)) src.resume();
      else dst.once("drain", () => src.resume());
    }
    if (this.queue.length && !this.timer) {
      const wait = Math.max(1, Math.ceil((-this.tokens / RATE) * 1000));
      this.timer = setTimeout(() => {
        this.timer = null;
        this.pump();
      }, wait);
    }
  }
  /** The most bytes passed in any 1 s (20 consecutive 50 ms windows) since the reset. */
  busiestSecond() {
    const per = 1000 / WINDOW_MS;
    let best = 0;
    for (let i = 0; i < Math.max(1, this.windows.length - per + 1); i++) {
      let s = 0;
      for (let j = i; j < i + per; j++) s += this.windows[j] ?? 0;
      best = Math.max(best, s);
    }
    return best;
  }
}

const up = new Bucket("up");
const down = new Bucket("down");
let connections = 0;

const server = net.createServer((client) => {
  connections++;
  const garage = net.connect({ host: targetHost, port: Number(targetPort) });
  client.setNoDelay(true);
  garage.setNoDelay(true);
  const close = () => {
    client.destroy();
    garage.destroy();
  };
  client.on("data", (c) => up.send(c, client, garage));
  garage.on("data", (c) => down.send(c, garage, client));
  client.on("end", () => garage.end());
  garage.on("end", () => client.end());
  client.on("error", close);
  garage.on("error", close);
  client.on("close", () => garage.destroy());
  garage.on("close", () => client.destroy());
});

server.listen(Number(listenPort), "127.0.0.1", () => {
  process.send({ type: "listening", port: server.address().port });
});

process.on("message", (m) => {
  if (m?.type !== "stats") return;
  const elapsed = (performance.now() - up.t0) / 1000;
  process.send({
    type: "stats",
    rate: RATE,
    burst_bytes: BURST,
    connections,
    up_bytes: up.sinceReset,
    down_bytes: down.sinceReset,
    up_bytes_total: up.bytes,
    down_bytes_total: down.bytes,
    seconds_since_reset: elapsed,
    up_busiest_1s_bytes: up.busiestSecond(),
    down_busiest_1s_bytes: down.busiestSecond(),
  });
  if (m.reset) {
    up.reset();
    down.reset();
  }
});
process.on("disconnect", () => process.exit(0));
