/**
 * A fixed-rate QoS 0 publisher on its own thread (a Worker), for the load
 * tool's "thread" pacing.
 *
 * On the tool's main thread a fixed rate can only be kept by re-checking
 * the schedule on every event-loop turn (a busy core) or on timer ticks of
 * about 1 ms (bursts). Both hurt the latency being measured: the busy loop
 * allocates a promise per turn, and V8's helper thread, pinned to the same
 * core, then preempts the loop for 3-4 ms at a time (seen with
 * `perf record -e sched:sched_switch`), so neither sends nor reads happen.
 * Here the publisher sleeps in `Atomics.wait()` until each message is due
 * (sub-millisecond timeouts work), and the main thread sleeps in its socket
 * read, so both wake at once when there is work.
 *
 * Send times are written as the main thread's `performance.now()`:
 * `performance.timeOrigin + performance.now()` agrees between a Deno worker
 * and the main thread to within 1 µs (measured with an `Atomics` ping-pong),
 * so the worker subtracts the main thread's time origin.
 *
 * Protocol: the main thread posts a {@link PacedStart}; the worker connects
 * and posts `{ready: true}` (or `{error}`); after the main thread posts
 * `{go: true, t0}` it sends until the shared stop flag is set, then disconnects
 * and posts `{sent}`.
 *
 * @module
 */

import { Link } from "./_link.ts";
import { connectBytes, type Login, publishTemplate } from "./_packets.ts";

/** What the main thread sends to start a paced publisher. */
export interface PacedStart {
  host: string;
  port: number;
  clientId: string;
  keepAlive: number;
  cleanSession: boolean;
  /** User name and password of the CONNECT, if any. */
  login?: Login;
  topic: string;
  payloadSize: number;
  /** Payload bytes 0..3: magic and publisher index, as the tool expects. */
  magic: number;
  index: number;
  /** Messages per second. */
  rate: number;
  /** The main thread's `performance.timeOrigin`. */
  mainOrigin: number;
  /** Int32Array cell 0: 0 while running, 1 to stop. */
  stop: SharedArrayBuffer;
}

/** Starts sending; `t0` is the schedule's start, main-thread time, ms. */
export interface PacedGo {
  go: true;
  t0: number;
}

/** What the worker posts back. */
export type PacedReply =
  | { ready: true }
  | { error: string }
  | { sent: number };

const BATCH = 128;

async function connect(s: PacedStart): Promise<Link> {
  let connack: (rc: number) => void = () => {};
  const acked = new Promise<number>((r) => connack = r);
  const link = await Link.open(s.host, s.port, (first, buf, body) => {
    if (first >> 4 === 2) connack(buf[body + 1]!);
  });
  link.start();
  link.writer.enqueue(
    connectBytes(s.clientId, s.keepAlive, s.cleanSession, s.login),
  );
  const timeout = setTimeout(() => connack(-1), 10_000);
  const rc = await acked;
  clearTimeout(timeout);
  if (rc !== 0) {
    await link.close();
    throw new Error(
      rc === -1
        ? `timed out waiting for CONNACK for ${s.clientId}`
        : `CONNACK return code ${rc} for ${s.clientId}`,
    );
  }
  return link;
}

async function run(s: PacedStart, t0: number, link: Link): Promise<number> {
  const stop = new Int32Array(s.stop);
  const tpl = publishTemplate(s.topic, 0, s.payloadSize);
  const size = tpl.bytes.length;
  const buf = new Uint8Array(size * BATCH);
  const view = new DataView(buf.buffer);
  for (let k = 0; k < BATCH; k++) {
    buf.set(tpl.bytes, k * size);
    view.setUint16(k * size + tpl.payloadOffset, s.magic);
    view.setUint16(k * size + tpl.payloadOffset + 2, s.index);
  }
  // Main-thread time from this thread's clock (see the module doc).
  const shift = performance.timeOrigin - s.mainOrigin;
  const msPerMessage = 1000 / s.rate;
  let sent = 0;
  while (Atomics.load(stop, 0) === 0 && !link.writer.failed) {
    const now = performance.now() + shift;
    const due = Math.floor((now - t0) / msPerMessage) + 1 - sent;
    if (due <= 0) {
      // Sleep until the next message is due, or until told to stop.
      const wait = t0 + sent * msPerMessage - now;
      if (wait > 0) Atomics.wait(stop, 0, 0, wait);
      continue;
    }
    // Behind schedule (after a stall): the overdue messages go at once.
    const n = Math.min(due, BATCH);
    for (let k = 0; k < n; k++) {
      const at = k * size + tpl.payloadOffset;
      view.setUint32(at + 4, sent + k);
      view.setFloat64(at + 8, now);
    }
    sent += n;
    await link.writer.write(buf.subarray(0, n * size));
  }
  return sent;
}

let started: PacedStart | undefined;
let link: Link | undefined;

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<PacedStart | PacedGo>) => void) | null;
  postMessage(message: PacedReply): void;
};

scope.onmessage = async (e) => {
  const post = (r: PacedReply) => scope.postMessage(r);
  try {
    if ("go" in e.data) {
      const sent = await run(started!, e.data.t0, link!);
      await link!.close();
      post({ sent });
      return;
    }
    started = e.data;
    link = await connect(started);
    post({ ready: true });
  } catch (err) {
    post({ error: err instanceof Error ? err.message : String(err) });
  }
};
