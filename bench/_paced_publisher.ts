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
 * Each message carries the time it was due (its place in the schedule,
 * `t0 + i / rate`) and the time it was written. The due time is the one
 * latency is measured from: a publisher that falls behind (its thread not
 * scheduled, a garbage collection, a socket that would block) sends the
 * overdue messages at once, and their wait counts, as it would for a device
 * that wanted to send then. Stamping the time of the write instead hides
 * every such pause ("coordinated omission").
 *
 * With `topics`, each message goes to one of them picked at random (a
 * seeded xorshift, so every broker gets the same sequence) and carries the
 * topic's index (the scatter scenario).
 *
 * Times are written as the main thread's `performance.now()`:
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
import { AT } from "./_load_types.ts";

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
  /** Instead of `topic`: a random one of these per message. */
  topics?: string[];
  /** Seed of the random topic sequence (non-zero). */
  seed?: number;
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
  const topics = s.topics ?? [s.topic];
  const tpls = topics.map((t) => publishTemplate(t, 0, s.payloadSize));
  const buf = new Uint8Array(
    BATCH * Math.max(...tpls.map((t) => t.bytes.length)),
  );
  const view = new DataView(buf.buffer);
  const random = topics.length > 1;
  let x = (s.seed ?? 1) | 0 || 1;
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
    // Behind schedule (after a stall): the overdue messages go at once,
    // each stamped with the time it was due.
    const n = Math.min(due, BATCH);
    let off = 0;
    for (let k = 0; k < n; k++) {
      let t = 0;
      if (random) {
        x ^= x << 13;
        x ^= x >>> 17;
        x ^= x << 5;
        t = (x >>> 0) % topics.length;
      }
      const tpl = tpls[t]!;
      buf.set(tpl.bytes, off);
      const at = off + tpl.payloadOffset;
      const i = sent + k;
      view.setUint16(at, s.magic);
      view.setUint16(at + AT.index, s.index);
      view.setUint32(at + AT.seq, i);
      view.setFloat64(at + AT.due, t0 + i * msPerMessage);
      if (s.payloadSize >= AT.written + 8) {
        view.setFloat64(at + AT.written, now);
      }
      if (random && s.payloadSize >= AT.tag + 4) {
        view.setUint32(at + AT.tag, t);
      }
      off += tpl.bytes.length;
    }
    sent += n;
    await link.writer.write(buf.subarray(0, off));
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
