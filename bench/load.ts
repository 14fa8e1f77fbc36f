/**
 * A load generator for MQTT 3.1.1 brokers (Kite, Mosquitto, Aedes, ...).
 *
 * It speaks MQTT over raw TCP sockets with packets encoded once at start-up
 * (a PUBLISH template is patched per message with its sequence number, send
 * timestamp and packet id), decodes what it receives with a zero-allocation
 * frame scanner, and coalesces each connection's writes, so that the tool is
 * not the bottleneck: it prints its own CPU time beside the broker's.
 *
 * Every payload (64 bytes by default) starts with a magic number, the
 * publisher index, a per-publisher sequence number and the send time, so
 * each subscriber counts delivered, lost, gaps (sequence jumps), duplicates
 * and out-of-order messages, and end-to-end latency.
 *
 * ```sh
 * deno task load -- --port 1883 --scenario fanin --duration 5 --warmup 1
 * deno task load -- --port 1883 --scenario conns --count 10000 --pid 1234
 * ```
 *
 * Scenarios: fanin, fanout, qos1, qos2, latency, conns (see {@link SCENARIOS}).
 *
 * @module
 */

import process from "node:process";
import { setImmediate } from "node:timers";
import { parseArgs } from "node:util";
import {
  connectBytes,
  DISCONNECT,
  type Login,
  PINGREQ,
  PUBACK,
  PUBCOMP,
  publishTemplate,
  PUBREC,
  PUBREL,
  subscribeBytes,
} from "./_packets.ts";
import { Link, type LoadTransport, Notifier, TCP } from "./_link.ts";
import type { PacedGo, PacedReply, PacedStart } from "./_paced_publisher.ts";

/** Names of the scenarios. */
export type ScenarioName =
  | "fanin"
  | "fanout"
  | "qos1"
  | "qos2"
  | "qos1-persistent"
  | "latency"
  | "slow"
  | "slow-qos1"
  | "conns";

/** The shape of a message-flow scenario. */
export interface ScenarioShape {
  publishers: number;
  subscribers: number;
  qos: 0 | 1 | 2;
  /**
   * At most this many messages per publisher sent but not yet received end
   * to end (by every subscriber), and for QoS > 0 not yet acknowledged.
   */
  window: number;
  /** Messages per second for the whole run, or 0 for as fast as possible. */
  rate: number;
  /** True: every publisher uses its own topic, the subscribers `+`. */
  wildcard: boolean;
  /** Clean Session 0 for every client (a persistent session). */
  persistent?: boolean;
  /**
   * Subscribers that read at most `bytesPerRead` bytes every `delayMs`:
   * slower than the publishers, so the broker must queue or drop.
   */
  slowReader?: { bytesPerRead: number; delayMs: number };
}

/** The scenarios of issue 8 (MQTT 3.1.1, broker on one core). */
export const SCENARIOS: Record<Exclude<ScenarioName, "conns">, ScenarioShape> =
  {
    fanin: {
      publishers: 8,
      subscribers: 1,
      qos: 0,
      window: 1000,
      rate: 0,
      wildcard: true,
    },
    fanout: {
      publishers: 1,
      subscribers: 50,
      qos: 0,
      window: 1000,
      rate: 0,
      wildcard: false,
    },
    qos1: {
      publishers: 8,
      subscribers: 1,
      qos: 1,
      window: 64,
      rate: 0,
      wildcard: true,
    },
    qos2: {
      publishers: 8,
      subscribers: 1,
      qos: 2,
      window: 64,
      rate: 0,
      wildcard: true,
    },
    "qos1-persistent": {
      publishers: 8,
      subscribers: 1,
      qos: 1,
      window: 64,
      rate: 0,
      wildcard: true,
      persistent: true,
    },
    latency: {
      publishers: 1,
      subscribers: 1,
      qos: 0,
      window: 100_000,
      rate: 10_000,
      wildcard: false,
    },
    // A subscriber slower than its publishers (about 4,500 msg/s against
    // 40,000 sent): the broker's memory must stay bounded.
    slow: {
      publishers: 4,
      subscribers: 1,
      qos: 0,
      window: 1_000_000_000,
      rate: 40_000,
      wildcard: true,
      slowReader: { bytesPerRead: 4096, delayMs: 10 },
    },
    "slow-qos1": {
      publishers: 4,
      subscribers: 1,
      qos: 1,
      window: 65_535,
      rate: 40_000,
      wildcard: true,
      slowReader: { bytesPerRead: 4096, delayMs: 10 },
    },
  };

/** Options of {@link runLoad}. */
export interface LoadOptions {
  host?: string;
  port: number;
  scenario: ScenarioName;
  /** Seconds measured, after the warm-up. */
  duration?: number;
  /** Seconds run before measuring. */
  warmup?: number;
  /** The broker's process id, to read its CPU time and RSS from /proc. */
  pid?: number;
  /** Overrides of the scenario's shape. */
  publishers?: number;
  subscribers?: number;
  qos?: 0 | 1 | 2;
  window?: number;
  rate?: number;
  /**
   * Fixed-rate sending: "thread" (the default at QoS 0) runs each publisher
   * in a Worker that sleeps until each message is due, so neither side of
   * the tool is busy while it waits (see bench/_paced_publisher.ts); "spin"
   * (the default at QoS 1 and 2) re-checks the schedule on every event-loop
   * turn of the main thread, at the cost of a busy core; "timer" checks
   * every timer tick (about 1-4 ms) and sends in bursts (the default for
   * the slow-subscriber scenarios).
   */
  pacing?: Pacing;
  /** Payload bytes, at least 16; default 64. */
  payload?: number;
  /** conns: how many connections; default 10,000. */
  count?: number;
  /** conns: connection attempts in flight at once; default 100. */
  concurrency?: number;
  /** Keep alive sent in CONNECT, seconds; default 0 (none). */
  keepAlive?: number;
  /**
   * User name (and password) every publisher and subscriber connects with,
   * e.g. for a broker with a password file and an ACL; not used by conns.
   */
  login?: Login;
  /** Seconds to wait for in-flight messages after the run; default 5. */
  drainTimeout?: number;
  /** Topic prefix; default a unique `kite-load/<random>`. */
  topicPrefix?: string;
  /**
   * MQTT over TCP (default), TLS or WebSocket; `port` is then the broker's
   * TLS or WebSocket listener. The conns scenario and thread pacing use TCP
   * only.
   */
  transport?: LoadTransport;
  /**
   * Ports the subscribers connect to, in turn (a cluster's nodes); default
   * `port` for all.
   */
  subscriberPorts?: number[];
  /** Ports the publishers connect to, in turn; default `port` for all. */
  publisherPorts?: number[];
}

/** How a fixed-rate scenario keeps its rate (see {@link LoadOptions}). */
export type Pacing = "thread" | "spin" | "timer";

/** CPU seconds used during the measured interval. */
export interface CpuResult {
  /** This tool's CPU seconds (user + system). */
  toolS: number;
  /** Tool CPU seconds over wall seconds, as a percentage of one core. */
  toolPct: number;
  brokerS?: number;
  brokerPct?: number;
}

/** Latency of the messages sent during the measured interval, microseconds. */
export interface LatencyResult {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

/** The result of one scenario. */
export interface LoadResult {
  scenario: ScenarioName;
  /** tcp, tls or ws (absent in results saved before it existed: tcp). */
  transport?: LoadTransport["kind"];
  host: string;
  port: number;
  /** Seconds measured. */
  seconds: number;
  shape?: ScenarioShape;
  /** Messages sent by all publishers over the whole run. */
  sent?: number;
  /** Unique messages received by all subscribers over the whole run. */
  delivered?: number;
  /** Unique deliveries per second during the measured interval (sum). */
  deliveredPerSec?: number;
  /**
   * Unique deliveries during the measured interval (conns: connections) per
   * CPU second the broker used in it: what the broker would deliver per second with a whole core to
   * itself, if it is CPU-bound. Steadier than deliveredPerSec on a machine
   * where other processes compete for the broker's core.
   */
  perBrokerCpuSecond?: number;
  /** Expected deliveries never received (after the drain). */
  lost?: number;
  /**
   * Slow-subscriber scenarios (no drain): expected deliveries not received
   * by the end, dropped by the broker or still queued in it.
   */
  undelivered?: number;
  /**
   * Messages a subscriber never got although it got a later message of the
   * same publisher: certainly dropped (QoS 0), or lost (QoS 1/2).
   */
  dropped?: number;
  /** QoS 1/2: messages whose PUBACK / PUBCOMP never reached the publisher. */
  unacked?: number;
  /** Deliveries in each whole second of the run, warm-up included. */
  perSecond?: number[];
  /** The broker's RSS (KB) at the end of each of those seconds. */
  rssPerSecond?: number[];
  /** Times a subscriber saw a publisher's sequence number jump forward. */
  gaps?: number;
  duplicates?: number;
  /** Messages that arrived after a later one of the same publisher. */
  outOfOrder?: number;
  latency?: LatencyResult;
  conns?: {
    count: number;
    connected: number;
    failed: number;
    connectsPerSec: number;
    /** Connections that answered a PINGREQ after the idle period. */
    alive: number;
    rssBeforeKB?: number;
    rssAfterKB?: number;
    /** Broker RSS growth per connection, KB. */
    kbPerConn?: number;
  };
  cpu: CpuResult;
  /** Broker RSS at the end of the measured interval, KB. */
  brokerRssKB?: number;
  warnings: string[];
}

// Payload layout: [0..1] magic, [2..3] publisher index, [4..7] sequence,
// [8..15] send time (performance.now(), ms, float64), rest zero.
const MAGIC = 0x4b54; // "KT"
const MIN_PAYLOAD = 16;

// ---------------------------------------------------------------- /proc

function readProcCpuSeconds(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the ")" closing the command name; utime and stime are
    // fields 14 and 15 (1-based), in clock ticks (100 per second on Linux).
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in KB, or undefined when it cannot be read. */
export function readRssKB(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

function toolCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

class CpuMeter {
  #pid: number | undefined;
  #t0 = 0;
  #tool0 = 0;
  #broker0: number | undefined;
  constructor(pid: number | undefined) {
    this.#pid = pid;
  }
  start(): void {
    this.#t0 = performance.now();
    this.#tool0 = toolCpuSeconds();
    this.#broker0 = this.#pid ? readProcCpuSeconds(this.#pid) : undefined;
  }
  stop(): CpuResult {
    const wall = (performance.now() - this.#t0) / 1000;
    const toolS = toolCpuSeconds() - this.#tool0;
    const out: CpuResult = { toolS, toolPct: (100 * toolS) / wall };
    const b1 = this.#pid ? readProcCpuSeconds(this.#pid) : undefined;
    if (b1 !== undefined && this.#broker0 !== undefined) {
      out.brokerS = b1 - this.#broker0;
      out.brokerPct = (100 * out.brokerS) / wall;
    }
    return out;
  }
}

// ---------------------------------------------------------------- sockets

/** Waits for one packet with the given first-byte type nibble. */
function expectPacket(
  link: Link,
  type: number,
  timeoutMs: number,
  what: string,
): Promise<{ buf: Uint8Array; body: number; length: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      link.onPacket = ignore;
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    link.onPacket = (first, buf, body, length) => {
      if (first >> 4 !== type) return;
      clearTimeout(timer);
      link.onPacket = ignore;
      resolve({ buf, body, length });
    };
  });
}

function ignore(): void {}

async function connectLink(
  host: string,
  port: number,
  clientId: string,
  keepAlive: number,
  cleanSession: boolean,
  login: Login | undefined,
  transport: LoadTransport,
): Promise<Link> {
  const link = await Link.open(host, port, ignore, transport);
  link.start();
  const connack = expectPacket(link, 2, 10_000, `CONNACK for ${clientId}`);
  link.writer.enqueue(connectBytes(clientId, keepAlive, cleanSession, login));
  const { buf, body } = await connack.catch(async (e) => {
    await link.close();
    throw e;
  });
  const rc = buf[body + 1];
  if (rc !== 0) {
    await link.close();
    throw new Error(`CONNACK return code ${rc} for ${clientId}`);
  }
  return link;
}

// ---------------------------------------------------------------- flow

/** What one subscriber saw of one publisher. */
class Tracker {
  seen = new Uint8Array(1024);
  /** One past the highest sequence number seen. */
  next = 0;
  unique = 0;
  gaps = 0;
  /** Sequence numbers jumped over (some may arrive later, out of order). */
  skipped = 0;
  duplicates = 0;
  outOfOrder = 0;

  mark(seq: number): boolean {
    const i = seq >>> 3;
    if (i >= this.seen.length) {
      let n = this.seen.length * 2;
      while (n <= i) n *= 2;
      const bigger = new Uint8Array(n);
      bigger.set(this.seen);
      this.seen = bigger;
    }
    const bit = 1 << (seq & 7);
    const s = this.seen[i]!;
    if (s & bit) {
      this.duplicates++;
      return false;
    }
    this.seen[i] = s | bit;
    this.unique++;
    if (seq === this.next) this.next = seq + 1;
    else if (seq > this.next) {
      this.gaps++;
      this.skipped += seq - this.next;
      this.next = seq + 1;
    } else this.outOfOrder++;
    return true;
  }
}

/**
 * Latency samples (ms) of messages sent inside [from, to): every message
 * until the buffer fills, then every 2nd (every 4th, ...), keeping every 2nd
 * sample so far, so the samples stay spread over the whole interval.
 */
class LatencyRecorder {
  samples: Float64Array;
  count = 0;
  from = Infinity;
  to = Infinity;
  #stride = 1;
  #tick = 0;
  constructor(capacity: number) {
    this.samples = new Float64Array(capacity);
  }
  /** The largest latency of all messages, sampled or not. */
  max = 0;
  add(sentAt: number, now: number): void {
    if (sentAt < this.from || sentAt >= this.to) return;
    if (now - sentAt > this.max) this.max = now - sentAt;
    if (++this.#tick < this.#stride) return;
    this.#tick = 0;
    if (this.count === this.samples.length) {
      const s = this.samples;
      const half = s.length >> 1;
      for (let i = 0; i < half; i++) s[i] = s[2 * i + 1]!;
      this.count = half;
      this.#stride *= 2;
    }
    this.samples[this.count++] = now - sentAt;
  }
  result(): LatencyResult | undefined {
    if (this.count === 0) return undefined;
    const s = this.samples.subarray(0, this.count).sort();
    let sum = 0;
    for (let i = 0; i < s.length; i++) sum += s[i]!;
    const q = (p: number) =>
      s[Math.min(s.length - 1, Math.floor(p * s.length))]! * 1000;
    return {
      samples: s.length,
      p50: q(0.5),
      p90: q(0.9),
      p99: q(0.99),
      max: this.max * 1000,
      mean: (sum / s.length) * 1000,
    };
  }
}

interface Publisher {
  index: number;
  /** Undefined for a publisher on its own thread ({@link Publisher.paced}). */
  link: Link | undefined;
  paced?: PacedPublisher;
  topic: string;
  sent: number;
  /** PUBACKs (QoS 1) or PUBCOMPs (QoS 2) received, in order. */
  acked: number;
  /** This publisher's tracker in every subscriber. */
  trackers: Tracker[];
  notifier: Notifier;
}

/** A publisher running in a Worker (pacing "thread"). */
class PacedPublisher {
  #worker: Worker;
  #stop = new SharedArrayBuffer(4);
  #replies: ((r: PacedReply) => void)[] = [];
  #failure: string | undefined;

  constructor() {
    this.#worker = new Worker(
      new URL("./_paced_publisher.ts", import.meta.url),
      { type: "module" },
    );
    this.#worker.onmessage = (e: MessageEvent<PacedReply>) => {
      this.#replies.shift()?.(e.data);
    };
    this.#worker.onerror = (e) => {
      e.preventDefault();
      this.#failure = e.message;
      for (const r of this.#replies.splice(0)) r({ error: e.message });
    };
  }

  #ask(m: Omit<PacedStart, "stop"> | PacedGo): Promise<PacedReply> {
    if (this.#failure !== undefined) {
      return Promise.resolve({ error: this.#failure });
    }
    return new Promise((resolve) => {
      this.#replies.push(resolve);
      this.#worker.postMessage("go" in m ? m : { ...m, stop: this.#stop });
    });
  }

  /** Connects (CONNECT, CONNACK) on the worker's thread. */
  async connect(start: Omit<PacedStart, "stop">): Promise<void> {
    const r = await this.#ask(start);
    if ("error" in r) throw new Error(r.error);
  }

  /** Sends at the rate from `t0` until stop(); resolves to the count sent. */
  async run(t0: number): Promise<number> {
    const r = await this.#ask({ go: true, t0 });
    if ("error" in r) throw new Error(r.error);
    return "sent" in r ? r.sent : 0;
  }

  /** Ends run(): wakes the worker from its sleep. */
  stop(): void {
    const flag = new Int32Array(this.#stop);
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  }

  terminate(): void {
    this.stop();
    this.#worker.terminate();
  }
}

interface Subscriber {
  link: Link;
  /** By publisher index. */
  trackers: Tracker[];
}

async function runFlow(
  opts: LoadOptions,
  name: Exclude<ScenarioName, "conns">,
): Promise<LoadResult> {
  const host = opts.host ?? "127.0.0.1";
  const base = SCENARIOS[name];
  const shape: ScenarioShape = {
    publishers: opts.publishers ?? base.publishers,
    subscribers: opts.subscribers ?? base.subscribers,
    qos: opts.qos ?? base.qos,
    window: opts.window ?? base.window,
    rate: opts.rate ?? base.rate,
    wildcard: base.wildcard,
  };
  if (base.persistent) shape.persistent = true;
  if (base.slowReader) shape.slowReader = base.slowReader;
  // A new PUBLISH takes a currently unused packet id [MQTT-2.3.1-2].
  if (shape.qos > 0) shape.window = Math.min(shape.window, 65535);
  const duration = opts.duration ?? 5;
  const warmup = opts.warmup ?? 1;
  const payloadSize = Math.max(MIN_PAYLOAD, opts.payload ?? 64);
  const keepAlive = opts.keepAlive ?? 0;
  const runId = crypto.randomUUID().slice(0, 8);
  const prefix = opts.topicPrefix ?? `kite-load/${runId}`;
  const qos = shape.qos;
  const warnings: string[] = [];
  // Messages per write, and the free window that wakes a blocked publisher
  // (never more than a batch, or it would wait forever).
  const batch = Math.max(1, Math.min(shape.window, 128));
  const wakeRoom = Math.max(1, Math.min(batch, Math.floor(shape.window / 8)));

  const transport = opts.transport ?? TCP;
  if (opts.pacing === "thread" && (shape.rate === 0 || qos > 0)) {
    throw new Error("pacing thread needs a fixed rate (--rate) and QoS 0");
  }
  if (opts.pacing === "thread" && transport.kind !== "tcp") {
    throw new Error("pacing thread: over TCP only");
  }
  const pacing: Pacing = opts.pacing ??
    (shape.slowReader
      ? "timer"
      : shape.rate > 0 && qos === 0 && transport.kind === "tcp"
      ? "thread"
      : "spin");

  const latency = new LatencyRecorder(
    shape.rate > 0 ? Math.ceil(shape.rate * (duration + 1)) + 1024 : 1 << 20,
  );

  const publishers: Publisher[] = [];
  const pacedPublishers: PacedPublisher[] = [];
  const subscribers: Subscriber[] = [];
  const links: Link[] = [];
  let delivered = 0;

  const room = (p: Publisher): number => {
    let low = qos > 0 ? p.acked : p.sent;
    for (const t of p.trackers) if (t.next < low) low = t.next;
    return shape.window - (p.sent - low);
  };
  const wake = (p: Publisher) => {
    if (p.notifier.waiting && room(p) >= wakeRoom) p.notifier.notify();
  };

  const onSubscriberPacket = (
    sub: Subscriber,
    first: number,
    b: Uint8Array,
    body: number,
    length: number,
    view: DataView,
  ) => {
    const type = first >> 4;
    if (type === 3) {
      const q = (first >> 1) & 3;
      let off = body + 2 + ((b[body]! << 8) | b[body + 1]!);
      if (q > 0) {
        const id = (b[off]! << 8) | b[off + 1]!;
        off += 2;
        sub.link.ack(q === 1 ? PUBACK : PUBREC, id);
      }
      if (body + length - off < MIN_PAYLOAD) return;
      if (view.getUint16(off) !== MAGIC) return;
      const tracker = sub.trackers[view.getUint16(off + 2)];
      if (tracker === undefined) return;
      if (tracker.mark(view.getUint32(off + 4))) {
        delivered++;
        latency.add(view.getFloat64(off + 8), sub.link.now);
      }
    } else if (type === 6) {
      sub.link.ack(PUBCOMP, (b[body]! << 8) | b[body + 1]!);
    }
  };

  const onPublisherPacket = (
    p: Publisher,
    first: number,
    b: Uint8Array,
    body: number,
  ) => {
    const type = first >> 4;
    if (type === 4 || type === 7) p.acked++; // PUBACK, PUBCOMP
    else if (type === 5) p.link!.ack(PUBREL, (b[body]! << 8) | b[body + 1]!);
  };

  const cpu = new CpuMeter(opts.pid);
  let brokerRssKB: number | undefined;
  let running = true;
  try {
    // Subscribers first, each with its SUBACK, then publishers.
    const filter = shape.wildcard ? `${prefix}/${name}/+` : `${prefix}/${name}`;
    const subPorts = opts.subscriberPorts ?? [opts.port];
    const pubPorts = opts.publisherPorts ?? [opts.port];
    for (let s = 0; s < shape.subscribers; s++) {
      const link = await connectLink(
        host,
        subPorts[s % subPorts.length]!,
        `kite-load-${runId}-s${s}`,
        keepAlive,
        !shape.persistent,
        opts.login,
        transport,
      );
      links.push(link);
      const sub: Subscriber = { link, trackers: [] };
      const suback = expectPacket(link, 9, 10_000, "SUBACK");
      link.writer.enqueue(subscribeBytes(1, filter, qos));
      const { buf, body } = await suback;
      if (buf[body + 2] === 0x80) {
        throw new Error(`SUBSCRIBE ${filter} refused`);
      }
      subscribers.push(sub);
      if (shape.slowReader) {
        link.maxRead = shape.slowReader.bytesPerRead;
        link.readDelayMs = shape.slowReader.delayMs;
      }
    }
    for (let i = 0; i < shape.publishers; i++) {
      const topic = shape.wildcard
        ? `${prefix}/${name}/${i}`
        : `${prefix}/${name}`;
      const clientId = `kite-load-${runId}-p${i}`;
      let link: Link | undefined;
      let paced: PacedPublisher | undefined;
      if (pacing === "thread") {
        paced = new PacedPublisher();
        pacedPublishers.push(paced);
        await paced.connect({
          host,
          port: pubPorts[i % pubPorts.length]!,
          clientId,
          keepAlive,
          cleanSession: !shape.persistent,
          ...(opts.login ? { login: opts.login } : {}),
          topic,
          payloadSize,
          magic: MAGIC,
          index: i,
          rate: shape.rate / shape.publishers,
          mainOrigin: performance.timeOrigin,
        });
      } else {
        link = await connectLink(
          host,
          pubPorts[i % pubPorts.length]!,
          clientId,
          keepAlive,
          !shape.persistent,
          opts.login,
          transport,
        );
        links.push(link);
      }
      const p: Publisher = {
        index: i,
        link,
        ...(paced ? { paced } : {}),
        topic,
        sent: 0,
        acked: 0,
        trackers: [],
        notifier: new Notifier(),
      };
      for (const sub of subscribers) {
        const t = new Tracker();
        sub.trackers.push(t);
        p.trackers.push(t);
      }
      publishers.push(p);
    }
    for (const sub of subscribers) {
      sub.link.onPacket = (first, b, body, length, view) =>
        onSubscriberPacket(sub, first, b, body, length, view);
      sub.link.afterChunk = () => {
        for (const p of publishers) wake(p);
      };
    }
    for (const p of publishers) {
      if (p.link === undefined) continue;
      p.link.onPacket = (first, b, body) =>
        onPublisherPacket(p, first, b, body);
      p.link.afterChunk = () => wake(p);
    }

    // Publishers: each fills a batch buffer of pre-encoded PUBLISH copies,
    // patches sequence, timestamp and packet id, and writes it at once.
    const t0 = performance.now();
    const measureFrom = t0 + warmup * 1000;
    const measureTo = measureFrom + duration * 1000;
    latency.from = measureFrom;
    latency.to = measureTo;
    let lastProgress = t0;
    let stalled = false;

    const publish = async (p: Publisher) => {
      if (p.paced !== undefined) {
        p.sent = await p.paced.run(t0);
        return;
      }
      const link = p.link!;
      const tpl = publishTemplate(p.topic, qos, payloadSize);
      const size = tpl.bytes.length;
      const buf = new Uint8Array(size * batch);
      const view = new DataView(buf.buffer);
      for (let k = 0; k < batch; k++) {
        buf.set(tpl.bytes, k * size);
        view.setUint16(k * size + tpl.payloadOffset, MAGIC);
        view.setUint16(k * size + tpl.payloadOffset + 2, p.index);
      }
      const ratePerPub = shape.rate / shape.publishers;
      while (running && !link.writer.failed) {
        let n = Math.min(room(p), batch);
        if (ratePerPub > 0) {
          const due =
            Math.floor(((performance.now() - t0) / 1000) * ratePerPub) - p.sent;
          if (due < n) n = due;
          if (n <= 0) {
            // Fixed rate: yield to I/O and check again (a spin on the
            // tool's own core, so sends are not bunched by timer ticks).
            if (pacing === "timer") {
              await new Promise<void>((r) => setTimeout(r, 1));
            } else await new Promise<void>((r) => setImmediate(r));
            continue;
          }
        } else if (n < wakeRoom) {
          // Woken by progress, or at the end of the run (no timer per wait).
          await p.notifier.wait();
          continue;
        }
        const now = performance.now();
        for (let k = 0; k < n; k++) {
          const at = k * size;
          const seq = p.sent + k;
          if (tpl.packetIdOffset >= 0) {
            view.setUint16(at + tpl.packetIdOffset, (seq % 65535) + 1);
          }
          view.setUint32(at + tpl.payloadOffset + 4, seq);
          view.setFloat64(at + tpl.payloadOffset + 8, now);
        }
        p.sent += n;
        await link.writer.write(buf.subarray(0, n * size));
      }
    };

    const perSecond: number[] = [];
    const rssPerSecond: number[] = [];
    const ticker = async () => {
      // Snapshots at the start and end of the measured interval, and stall
      // detection: no delivery for 10 s ends the run.
      let lastDelivered = 0;
      let d0 = 0;
      let tStart = 0;
      let started = false;
      let nextSecond = t0 + 1000;
      let lastSecond = 0;
      while (running) {
        const now = performance.now();
        if (now >= nextSecond) {
          perSecond.push(delivered - lastSecond);
          if (opts.pid) rssPerSecond.push(readRssKB(opts.pid) ?? 0);
          lastSecond = delivered;
          nextSecond += 1000;
        }
        if (delivered !== lastDelivered) {
          lastDelivered = delivered;
          lastProgress = now;
        } else if (now - lastProgress > 10_000) {
          stalled = true;
          running = false;
          break;
        }
        if (!started && now >= measureFrom) {
          started = true;
          d0 = delivered;
          tStart = now;
          cpu.start();
        }
        if (now >= measureTo) {
          const cpuResult = cpu.stop();
          running = false;
          if (opts.pid) brokerRssKB = readRssKB(opts.pid);
          return {
            d0,
            d1: delivered,
            seconds: (now - tStart) / 1000,
            cpuResult,
          };
        }
        const wait = Math.min(
          50,
          Math.max(1, (started ? measureTo : measureFrom) - now),
        );
        await new Promise((r) => setTimeout(r, wait));
      }
      return undefined;
    };

    for (const link of links) {
      if (link.closedByPeer) {
        throw new Error("broker closed a connection during setup");
      }
    }
    const pubs = publishers.map(publish);
    const measured = await ticker();
    for (const p of publishers) p.notifier.notify();
    for (const paced of pacedPublishers) paced.stop();
    await Promise.all(pubs);

    // Drain: wait until every subscriber has every message (QoS > 0) or no
    // message arrived for 300 ms (QoS 0), bounded by drainTimeout.
    const expected = () => {
      let n = 0;
      for (const p of publishers) n += p.sent * subscribers.length;
      return n;
    };
    // (A slow subscriber's backlog would take far longer: no drain there.)
    const drainEnd = performance.now() +
      (shape.slowReader ? 0 : (opts.drainTimeout ?? 5) * 1000);
    let last = delivered;
    let quietSince = performance.now();
    while (performance.now() < drainEnd) {
      const acked = qos === 0 || publishers.every((p) => p.acked === p.sent);
      if (delivered >= expected() && acked) break;
      await new Promise((r) => setTimeout(r, 10));
      if (delivered !== last) {
        last = delivered;
        quietSince = performance.now();
      } else if (qos === 0 && performance.now() - quietSince > 300) break;
    }

    let gaps = 0, duplicates = 0, outOfOrder = 0, skipped = 0;
    for (const sub of subscribers) {
      for (const t of sub.trackers) {
        gaps += t.gaps;
        skipped += t.skipped;
        duplicates += t.duplicates;
        outOfOrder += t.outOfOrder;
      }
    }
    const sent = publishers.reduce((n, p) => n + p.sent, 0);
    if (stalled) warnings.push("stalled: no delivery for 10 s");
    for (const [i, link] of links.entries()) {
      if (link.closedByPeer) {
        warnings.push(
          `connection ${i} closed by the broker${
            link.error ? `: ${link.error}` : ""
          }`,
        );
      }
    }
    const unacked = publishers.reduce((n, p) => n + p.sent - p.acked, 0);
    // (Slow scenarios end with acknowledgements still on their way.)
    if (qos > 0 && !shape.slowReader) {
      if (unacked > 0) {
        warnings.push(`${unacked} messages never acknowledged to publishers`);
      }
    }
    const cpuResult = measured?.cpuResult ?? { toolS: 0, toolPct: 0 };
    if (
      cpuResult.toolPct > 90 && shape.rate === 0 &&
      (cpuResult.brokerPct === undefined || cpuResult.brokerPct < 90)
    ) {
      warnings.push(
        "the tool used over 90% of a core: it may be the bottleneck",
      );
    }
    const result: LoadResult = {
      scenario: name,
      transport: transport.kind,
      host,
      port: opts.port,
      seconds: duration,
      shape,
      sent,
      delivered,
      deliveredPerSec: measured
        ? (measured.d1 - measured.d0) / measured.seconds
        : 0,
      ...(shape.slowReader
        ? { undelivered: expected() - delivered }
        : { lost: expected() - delivered }),
      dropped: skipped - outOfOrder,
      ...(qos > 0 ? { unacked } : {}),
      perSecond,
      ...(opts.pid ? { rssPerSecond } : {}),
      gaps,
      duplicates,
      outOfOrder,
      cpu: cpuResult,
      warnings,
    };
    if (measured && cpuResult.brokerS) {
      result.perBrokerCpuSecond = (measured.d1 - measured.d0) /
        cpuResult.brokerS;
    }
    const lat = latency.result();
    if (lat) result.latency = lat;
    if (brokerRssKB !== undefined) result.brokerRssKB = brokerRssKB;
    return result;
  } finally {
    running = false;
    for (const p of publishers) p.notifier.notify();
    for (const paced of pacedPublishers) paced.terminate();
    await Promise.all(links.map((l) => l.close()));
  }
}

// ---------------------------------------------------------------- conns

async function runConns(opts: LoadOptions): Promise<LoadResult> {
  if ((opts.transport ?? TCP).kind !== "tcp") {
    throw new Error("the conns scenario runs over TCP only");
  }
  const host = opts.host ?? "127.0.0.1";
  const count = opts.count ?? 10_000;
  const concurrency = opts.concurrency ?? 100;
  const keepAlive = opts.keepAlive ?? 0;
  const hold = opts.duration ?? 5;
  const runId = crypto.randomUUID().slice(0, 8);
  const warnings: string[] = [];
  const conns: Deno.TcpConn[] = [];
  const small = () => new Uint8Array(16);
  let failed = 0;
  let firstError: unknown;

  /** Reads until `n` bytes arrived; false on EOF. */
  const readN = async (conn: Deno.Conn, buf: Uint8Array, n: number) => {
    let got = 0;
    while (got < n) {
      const r = await conn.read(buf.subarray(got));
      if (r === null) return false;
      got += r;
    }
    return true;
  };

  // A broker that never answers fails that connection, not the run: one
  // watchdog closes any connection waiting for an answer for over 10 s.
  const waiting = new Map<Deno.TcpConn, number>();
  const watch = (conn: Deno.TcpConn) => waiting.set(conn, performance.now());
  const unwatch = (conn: Deno.TcpConn) => waiting.delete(conn);
  const watchdog = setInterval(() => {
    const old = performance.now() - 10_000;
    for (const [conn, since] of waiting) {
      if (since < old) {
        waiting.delete(conn);
        try {
          conn.close();
        } catch { /* closed */ }
      }
    }
  }, 500);

  const cpu = new CpuMeter(opts.pid);
  const rssBeforeKB = opts.pid ? readRssKB(opts.pid) : undefined;
  cpu.start();
  const t0 = performance.now();
  let next = 0;
  try {
    const worker = async () => {
      const buf = small();
      // This worker's CONNECT, the client id's last 6 digits patched in place
      // (the write is awaited before the next patch).
      const connect = connectBytes(`kite-conns-${runId}-000000`, keepAlive);
      const digits = connect.length - 6;
      while (next < count) {
        const i = next++;
        let conn: Deno.TcpConn | undefined;
        try {
          conn = await Deno.connect({ hostname: host, port: opts.port });
          watch(conn);
          for (let d = 0, n = i; d < 6; d++, n = Math.floor(n / 10)) {
            connect[digits + 5 - d] = 0x30 + (n % 10);
          }
          let off = 0;
          while (off < connect.length) {
            off += await conn.write(connect.subarray(off));
          }
          if (!(await readN(conn, buf, 4)) || buf[0] !== 0x20 || buf[3] !== 0) {
            throw new Error(`no CONNACK 0 (got ${buf.subarray(0, 4)})`);
          }
          unwatch(conn);
          conns.push(conn);
        } catch (e) {
          if (conn) unwatch(conn);
          failed++;
          firstError ??= e;
          try {
            conn?.close();
          } catch { /* closed */ }
        }
      }
    };
    await Promise.all(Array.from({ length: concurrency }, worker));
    const elapsed = (performance.now() - t0) / 1000;
    const cpuResult = cpu.stop();
    // Idle period, then the broker's RSS, then check every connection is
    // still open with a PINGREQ.
    await new Promise((r) => setTimeout(r, hold * 1000));
    const rssAfterKB = opts.pid ? readRssKB(opts.pid) : undefined;
    let alive = 0;
    let k = 0;
    const pinger = async () => {
      const buf = small();
      while (k < conns.length) {
        const conn = conns[k++]!;
        watch(conn);
        try {
          await conn.write(PINGREQ);
          if ((await readN(conn, buf, 2)) && buf[0] === 0xd0) alive++;
        } catch { /* counted as not alive */ }
        unwatch(conn);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, pinger));
    if (failed > 0) {
      warnings.push(`${failed} connections failed: ${firstError}`);
    }
    if (
      cpuResult.toolPct > 90 &&
      (cpuResult.brokerPct === undefined || cpuResult.brokerPct < 90)
    ) {
      warnings.push(
        "the tool used over 90% of a core: it may be the bottleneck",
      );
    }
    if (alive < conns.length) {
      warnings.push(
        `${conns.length - alive} connections did not answer PINGREQ`,
      );
    }
    const result: LoadResult = {
      scenario: "conns",
      host,
      port: opts.port,
      seconds: elapsed,
      conns: {
        count,
        connected: conns.length,
        failed,
        connectsPerSec: conns.length / elapsed,
        alive,
      },
      cpu: cpuResult,
      warnings,
    };
    if (cpuResult.brokerS) {
      result.perBrokerCpuSecond = conns.length / cpuResult.brokerS;
    }
    if (rssBeforeKB !== undefined && rssAfterKB !== undefined) {
      result.conns!.rssBeforeKB = rssBeforeKB;
      result.conns!.rssAfterKB = rssAfterKB;
      result.conns!.kbPerConn = conns.length > 0
        ? (rssAfterKB - rssBeforeKB) / conns.length
        : 0;
      result.brokerRssKB = rssAfterKB;
    }
    return result;
  } finally {
    clearInterval(watchdog);
    await Promise.all(conns.map(async (conn) => {
      try {
        await conn.write(DISCONNECT);
      } catch { /* closed */ }
      try {
        conn.close();
      } catch { /* closed */ }
    }));
  }
}

// ---------------------------------------------------------------- API

/**
 * Runs one scenario against a broker and returns what was measured.
 *
 * @example
 * ```ts ignore
 * const r = await runLoad({ port: 1883, scenario: "qos1", duration: 2 });
 * console.log(r.deliveredPerSec, r.lost);
 * ```
 */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  if (opts.scenario === "conns") return runConns(opts);
  if (!(opts.scenario in SCENARIOS)) {
    throw new TypeError(`unknown scenario ${opts.scenario}`);
  }
  return runFlow(opts, opts.scenario);
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });

/** A few human-readable lines for one result. */
export function formatResult(r: LoadResult): string {
  const lines: string[] = [];
  if (r.shape) {
    const s = r.shape;
    lines.push(
      `${r.scenario}: ${s.publishers} pub -> ${s.subscribers} sub, QoS ${s.qos}, window ${s.window}` +
        (s.persistent ? ", persistent sessions" : "") +
        (s.slowReader
          ? `, subscriber reads ${s.slowReader.bytesPerRead} B per ${s.slowReader.delayMs} ms`
          : "") +
        (s.rate ? `, ${fmt(s.rate)} msg/s` : "") +
        `, broker ${r.host}:${r.port}`,
    );
    lines.push(
      `  delivered  ${fmt(r.deliveredPerSec ?? 0)} msg/s over ${r.seconds} s` +
        `  (sent ${fmt(r.sent ?? 0)}, delivered ${fmt(r.delivered ?? 0)})`,
    );
    if (r.perBrokerCpuSecond !== undefined) {
      lines.push(
        `  per broker CPU second ${fmt(r.perBrokerCpuSecond)} deliveries`,
      );
    }
    if (r.perSecond?.length) {
      lines.push(`  per second ${r.perSecond.map((n) => fmt(n)).join("  ")}`);
    }
    if (r.rssPerSecond?.length) {
      lines.push(
        `  broker RSS MB ${
          r.rssPerSecond.map((n) => fmt(n / 1024, 1)).join("  ")
        }`,
      );
    }
    lines.push(
      (r.undelivered !== undefined
        ? `  undelivered ${r.undelivered} (queued or dropped), dropped ${r.dropped} (seen as gaps)`
        : `  lost ${r.lost}  dropped ${r.dropped}`) +
        `  gaps ${r.gaps}  duplicates ${r.duplicates}  out-of-order ${r.outOfOrder}`,
    );
  }
  if (r.conns) {
    const c = r.conns;
    lines.push(
      `conns: ${fmt(c.count)} idle connections, broker ${r.host}:${r.port}`,
    );
    lines.push(
      `  ${fmt(c.connectsPerSec)} connects/s  (${
        fmt(c.connected)
      } connected in ${fmt(r.seconds, 2)} s, ${c.failed} failed, ${
        fmt(c.alive)
      } alive after idling)`,
    );
    if (c.kbPerConn !== undefined) {
      lines.push(
        `  broker RSS ${fmt(c.rssBeforeKB ?? 0)} KB -> ${
          fmt(c.rssAfterKB ?? 0)
        } KB: ${fmt(c.kbPerConn, 2)} KB per connection`,
      );
    }
  }
  if (r.latency) {
    const l = r.latency;
    lines.push(
      `  latency    p50 ${fmt(l.p50)} us  p90 ${fmt(l.p90)} us  p99 ${
        fmt(l.p99)
      } us  max ${fmt(l.max)} us  (${fmt(l.samples)} samples)`,
    );
  }
  const c = r.cpu;
  lines.push(
    `  cpu        tool ${fmt(c.toolS, 2)} s (${fmt(c.toolPct)}% of a core)` +
      (c.brokerS !== undefined
        ? `  broker ${fmt(c.brokerS, 2)} s (${fmt(c.brokerPct ?? 0)}%)`
        : "  broker n/a (pass --pid)") +
      (r.brokerRssKB !== undefined
        ? `  broker RSS ${fmt(r.brokerRssKB)} KB`
        : ""),
  );
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join("\n");
}

const USAGE = `usage: deno task load -- [options]
  --host H          broker host (127.0.0.1)
  --port N          broker port (1883)
  --scenario S      fanin|fanout|qos1|qos2|qos1-persistent|latency|slow|
                    slow-qos1|conns, or a comma list (fanin)
  --duration S      seconds measured (5); conns: seconds idle before RSS
  --warmup S        seconds before measuring (1)
  --pid P           broker process id, for its CPU time and RSS
  --json            print JSON results (one array)
  --publishers N --subscribers N --qos Q --window N --rate N --payload B
  --pacing P        fixed rate: thread (publishers in workers that sleep
                    until each send; default at QoS 0), spin (a busy main
                    thread; default at QoS 1/2) or timer (bursts; default
                    for slow, slow-qos1)
  --count N         conns: connections (10000)
  --concurrency N   conns: connects in flight (100)
  --keepalive S     keep alive in CONNECT (0)
  --sub-ports A,B   subscribers connect to these ports in turn (a cluster)
  --pub-ports A,B   publishers connect to these ports in turn
  --username U --password P
                    credentials of every CONNECT (not conns), for a broker
                    with a password file and an ACL
  --transport T     tcp (default), tls or ws: --port is then the broker's
                    TLS or WebSocket listener (not conns)
  --cafile F        tls: the CA (PEM) that signed the broker's certificate
  --ws-path P       ws: the endpoint's path (/mqtt)`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "1883" },
      scenario: { type: "string", default: "fanin" },
      duration: { type: "string" },
      warmup: { type: "string" },
      pid: { type: "string" },
      json: { type: "boolean", default: false },
      publishers: { type: "string" },
      subscribers: { type: "string" },
      qos: { type: "string" },
      window: { type: "string" },
      rate: { type: "string" },
      pacing: { type: "string" },
      payload: { type: "string" },
      count: { type: "string" },
      concurrency: { type: "string" },
      keepalive: { type: "string" },
      username: { type: "string" },
      password: { type: "string" },
      transport: { type: "string", default: "tcp" },
      cafile: { type: "string" },
      "ws-path": { type: "string", default: "/mqtt" },
      "sub-ports": { type: "string" },
      "pub-ports": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const num = (
    v: string | undefined,
  ) => (v === undefined ? undefined : Number(v));
  if (
    values.pacing !== undefined &&
    !["thread", "spin", "timer"].includes(values.pacing)
  ) {
    console.error(`--pacing: thread, spin or timer, not "${values.pacing}"`);
    return 2;
  }
  let transport: LoadTransport;
  switch (values.transport) {
    case "tcp":
      transport = TCP;
      break;
    case "tls":
      transport = {
        kind: "tls",
        caCerts: values.cafile === undefined
          ? []
          : [await Deno.readTextFile(values.cafile)],
      };
      break;
    case "ws":
      transport = { kind: "ws", path: values["ws-path"] };
      break;
    default:
      console.error(`--transport: tcp, tls or ws, not "${values.transport}"`);
      return 2;
  }
  const results: LoadResult[] = [];
  for (const scenario of values.scenario.split(",")) {
    const opts: LoadOptions = {
      host: values.host,
      port: Number(values.port),
      scenario: scenario as ScenarioName,
    };
    const set = <K extends keyof LoadOptions>(
      k: K,
      v: LoadOptions[K] | undefined,
    ) => {
      if (v !== undefined) opts[k] = v;
    };
    set("duration", num(values.duration));
    set("warmup", num(values.warmup));
    set("pid", num(values.pid));
    set("publishers", num(values.publishers));
    set("subscribers", num(values.subscribers));
    set("qos", num(values.qos) as 0 | 1 | 2 | undefined);
    set("window", num(values.window));
    set("rate", num(values.rate));
    set("pacing", values.pacing as Pacing | undefined);
    set("payload", num(values.payload));
    set("count", num(values.count));
    set("concurrency", num(values.concurrency));
    set("keepAlive", num(values.keepalive));
    opts.transport = transport;
    const ports = (v: string | undefined) => v?.split(",").map(Number);
    set("subscriberPorts", ports(values["sub-ports"]));
    set("publisherPorts", ports(values["pub-ports"]));
    if (values.username !== undefined) {
      opts.login = values.password === undefined
        ? { username: values.username }
        : { username: values.username, password: values.password };
    }
    const r = await runLoad(opts);
    results.push(r);
    if (!values.json) console.log(formatResult(r));
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  return 0;
}

if (import.meta.main) {
  // `deno task load -- --port 1883` passes the "--" through.
  const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  Deno.exit(await main(args));
}
