/**
 * The message-flow scenarios (fanin, fanout, qos1, qos2, qos1-persistent,
 * latency and its variants, slow, slow-qos1): publishers, subscribers, a
 * window per publisher, every message tracked end to end.
 *
 * @module
 */

import { setImmediate } from "node:timers";
import {
  closeIdle,
  connectLink,
  expectPacket,
  type IdleConns,
  openIdle,
} from "./_connect.ts";
import { LatencyRecorder, lateSenderWarning, Tracker } from "./_latency.ts";
import { type Link, Notifier, TCP } from "./_link.ts";
import {
  AT,
  type FlowScenarioName,
  type LoadOptions,
  type LoadResult,
  MAGIC,
  MIN_PAYLOAD,
  type Pacing,
  SCENARIOS,
  type ScenarioShape,
} from "./_load_types.ts";
import type { PacedGo, PacedReply, PacedStart } from "./_paced_publisher.ts";
import {
  PUBACK,
  PUBCOMP,
  publishTemplate,
  PUBREC,
  PUBREL,
  subscribeBytes,
} from "./_packets.ts";
import { CpuMeter, readRssKB } from "./_proc.ts";

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
export class PacedPublisher {
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

/** Runs one message-flow scenario. */
export async function runFlow(
  opts: LoadOptions,
  name: FlowScenarioName,
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
  const idleConns = opts.idleConns ?? base.idleConns ?? 0;
  if (idleConns > 0) shape.idleConns = idleConns;
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
  if (idleConns > 0 && transport.kind !== "tcp") {
    throw new Error("idle connections: over TCP only");
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

  const latency = new LatencyRecorder(shape.rate > 0);

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
      const tracker = sub.trackers[view.getUint16(off + AT.index)];
      if (tracker === undefined) return;
      if (tracker.mark(view.getUint32(off + AT.seq))) {
        delivered++;
        const due = view.getFloat64(off + AT.due);
        latency.add(
          due,
          body + length - off >= AT.written + 8
            ? view.getFloat64(off + AT.written)
            : due,
          sub.link.now,
        );
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
  let idle: IdleConns | undefined;
  let running = true;
  try {
    // Subscribers first, each with its SUBACK, then publishers.
    const filter = shape.wildcard ? `${prefix}/${name}/+` : `${prefix}/${name}`;
    const subPorts = opts.subscriberPorts ?? [opts.port];
    const pubPorts = opts.publisherPorts ?? [opts.port];
    for (let s = 0; s < shape.subscribers; s++) {
      const { link } = await connectLink(
        host,
        subPorts[s % subPorts.length]!,
        `kite-load-${runId}-s${s}`,
        {
          keepAlive,
          cleanSession: !shape.persistent,
          login: opts.login,
          transport,
        },
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
        ({ link } = await connectLink(
          host,
          pubPorts[i % pubPorts.length]!,
          clientId,
          {
            keepAlive,
            cleanSession: !shape.persistent,
            login: opts.login,
            transport,
          },
        ));
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

    // Idle connections last, so a broker with a connection limit refuses
    // them rather than the scenario's own clients.
    if (idleConns > 0) {
      idle = await openIdle(
        host,
        opts.port,
        idleConns,
        opts.concurrency ?? 100,
        keepAlive,
        `kite-idle-${runId}`,
      );
      if (idle.failed > 0) {
        warnings.push(
          `${idle.failed} of ${idleConns} idle connections failed: ${idle.firstError}`,
        );
      }
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
        view.setUint16(k * size + tpl.payloadOffset + AT.index, p.index);
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
        // At a fixed rate message `seq` is due at t0 + (seq + 1) / rate
        // (see the `due` count above) and stamped so; as fast as possible it
        // is due when written.
        const now = performance.now();
        for (let k = 0; k < n; k++) {
          const at = k * size;
          const seq = p.sent + k;
          if (tpl.packetIdOffset >= 0) {
            view.setUint16(at + tpl.packetIdOffset, (seq % 65535) + 1);
          }
          const pay = at + tpl.payloadOffset;
          view.setUint32(pay + AT.seq, seq);
          view.setFloat64(
            pay + AT.due,
            ratePerPub > 0 ? t0 + ((seq + 1) * 1000) / ratePerPub : now,
          );
          if (payloadSize >= AT.written + 8) {
            view.setFloat64(pay + AT.written, now);
          }
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
    Object.assign(result, lat);
    const late = shape.slowReader ? undefined : lateSenderWarning(lat.sendLag);
    if (late) warnings.push(late);
    if (idle) {
      result.idle = {
        requested: idleConns,
        connected: idle.conns.length,
        failed: idle.failed,
        seconds: idle.seconds,
      };
    }
    if (brokerRssKB !== undefined) result.brokerRssKB = brokerRssKB;
    return result;
  } finally {
    running = false;
    for (const p of publishers) p.notifier.notify();
    for (const paced of pacedPublishers) paced.terminate();
    await Promise.all(links.map((l) => l.close()));
    if (idle) await closeIdle(idle.conns);
  }
}
