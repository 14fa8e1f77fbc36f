/**
 * The scatter scenario (issue 20): many subscribers, each message to a
 * different one, as commands to devices are. S subscribers (2,000; 20,000
 * in scatter20k) hold 5 filters each: `dev/<i>/+/temp`, `dev/<i>/cmd/#`,
 * `grp/<i mod 50>/+`, `all/<i>` and `x/<i>/y`; one publisher (on its own
 * thread, at a fixed rate, 10,000 msg/s by default) sends 32-byte QoS 0
 * messages to `dev/<random i>/s1/temp`, which only subscriber i matches.
 * A broker cannot coalesce writes per subscriber here, so its cost per
 * message shows: the result has the broker's CPU µs per message.
 *
 * Each message carries the subscriber it is for, so a delivery to anyone
 * else counts as misrouted; every message is counted once (duplicates and
 * lost after a drain) and its latency recorded from the time it was due.
 *
 * @module
 */

import {
  connectLink,
  expectPacket,
  inTurn,
  openFileLimit,
} from "./_connect.ts";
import { PacedPublisher } from "./_flow.ts";
import { LatencyRecorder, lateSenderWarning, Tracker } from "./_latency.ts";
import type { Link } from "./_link.ts";
import {
  AT,
  type LoadOptions,
  type LoadResult,
  MAGIC,
  type ScenarioShape,
} from "./_load_types.ts";
import { drain, measureWindow } from "./_measure.ts";
import { subscribeBytes } from "./_packets.ts";

/** The 5 filters of subscriber `i`. */
export function scatterFilters(i: number): string[] {
  return [
    `dev/${i}/+/temp`,
    `dev/${i}/cmd/#`,
    `grp/${i % 50}/+`,
    `all/${i}`,
    `x/${i}/y`,
  ];
}

/** Files a process needs besides its connections (stdio, the runtime's own). */
const SPARE_FILES = 64;

/** Runs scatter (2,000 subscribers) or scatter20k (20,000). */
export async function runScatter(
  opts: LoadOptions,
  name: "scatter" | "scatter20k",
): Promise<LoadResult> {
  const host = opts.host ?? "127.0.0.1";
  const warnings: string[] = [];
  if ((opts.transport?.kind ?? "tcp") !== "tcp") {
    throw new Error("the scatter scenarios run over TCP only");
  }
  const rate = opts.rate ?? 10_000;
  if (!(rate > 0)) throw new Error("scatter sends at a fixed rate (--rate)");
  let subs = opts.scatterSubs ?? (name === "scatter20k" ? 20_000 : 2_000);
  // One process may hold only so many sockets: this one, and the broker.
  const limit = Math.min(
    openFileLimit(),
    opts.pid ? openFileLimit(opts.pid) : Infinity,
  );
  if (subs + 1 + SPARE_FILES > limit) {
    const fit = limit - 1 - SPARE_FILES;
    warnings.push(
      `${subs} subscribers need more open files than allowed (ulimit -n ${limit} in the tool or the broker): ran with ${fit}`,
    );
    subs = fit;
  }
  const duration = opts.duration ?? 5;
  const warmup = opts.warmup ?? 1;
  const payloadSize = Math.max(AT.tag + 4, opts.payload ?? 32);
  const runId = crypto.randomUUID().slice(0, 8);
  const shape: ScenarioShape = {
    publishers: 1,
    subscribers: subs,
    qos: 0,
    window: 0,
    rate,
    wildcard: true,
  };
  const latency = new LatencyRecorder(true);
  const seen = new Tracker(Math.ceil((rate * (warmup + duration + 1)) / 8));
  let delivered = 0;
  let misrouted = 0;
  const links: Link[] = [];
  const publisher = new PacedPublisher();
  try {
    await inTurn(subs, opts.concurrency ?? 100, async (i) => {
      const { link } = await connectLink(
        host,
        opts.port,
        `kite-scatter-${runId}-${i}`,
        {
          keepAlive: opts.keepAlive ?? 0,
          cleanSession: true,
          login: opts.login,
          bufSize: 512,
        },
      );
      links.push(link);
      const suback = expectPacket(link, 9, 10_000, "SUBACK");
      link.writer.enqueue(subscribeBytes(1, scatterFilters(i), 0));
      const { buf, body, length } = await suback;
      for (let k = body + 2; k < body + length; k++) {
        if (buf[k] === 0x80) {
          throw new Error(`SUBSCRIBE of subscriber ${i} refused`);
        }
      }
      link.onPacket = (first, b, body, length, view) => {
        if (first >> 4 !== 3) return;
        const off = body + 2 + ((b[body]! << 8) | b[body + 1]!) +
          (((first >> 1) & 3) > 0 ? 2 : 0);
        if (body + length - off < AT.tag + 4) return;
        if (view.getUint16(off) !== MAGIC) return;
        if (view.getUint32(off + AT.tag) !== i) misrouted++;
        if (seen.mark(view.getUint32(off + AT.seq))) {
          delivered++;
          latency.add(
            view.getFloat64(off + AT.due),
            view.getFloat64(off + AT.written),
            link.now,
          );
        }
      };
    });
    await publisher.connect({
      host,
      port: opts.port,
      clientId: `kite-scatter-${runId}-pub`,
      keepAlive: opts.keepAlive ?? 0,
      cleanSession: true,
      ...(opts.login ? { login: opts.login } : {}),
      topic: "dev/0/s1/temp",
      topics: Array.from({ length: subs }, (_, i) => `dev/${i}/s1/temp`),
      seed: opts.seed ?? 1,
      payloadSize,
      magic: MAGIC,
      index: 0,
      rate,
      mainOrigin: performance.timeOrigin,
    });
    for (const [i, link] of links.entries()) {
      if (link.closedByPeer) {
        throw new Error(`the broker closed subscriber ${i} during setup`);
      }
    }
    const t0 = performance.now();
    latency.from = t0 + warmup * 1000;
    latency.to = latency.from + duration * 1000;
    const sending = publisher.run(t0);
    const m = await measureWindow({
      t0,
      warmup,
      duration,
      pid: opts.pid,
      delivered: () => delivered,
    });
    publisher.stop();
    const sent = await sending;
    await drain(
      () => delivered >= sent,
      () => delivered,
      opts.drainTimeout ?? 5,
      300,
    );
    if (m.stalled) warnings.push("stalled: no delivery for 10 s");
    const closed = links.filter((l) => l.closedByPeer).length;
    if (closed > 0) warnings.push(`${closed} subscribers closed by the broker`);
    if (misrouted > 0) warnings.push(`${misrouted} messages misrouted`);
    const lat = latency.result();
    const late = lateSenderWarning(lat.sendLag);
    if (late) warnings.push(late);
    const inWindow = m.d1 - m.d0;
    const result: LoadResult = {
      scenario: name,
      transport: "tcp",
      host,
      port: opts.port,
      seconds: m.seconds,
      shape,
      sent,
      delivered,
      deliveredPerSec: m.seconds > 0 ? inWindow / m.seconds : 0,
      lost: sent - delivered,
      duplicates: seen.duplicates,
      perSecond: m.perSecond,
      ...(opts.pid ? { rssPerSecond: m.rssPerSecond } : {}),
      ...lat,
      scatter: {
        subscribers: subs,
        subscriptions: subs * 5,
        misrouted,
      },
      cpu: m.cpu,
      warnings,
    };
    if (m.cpu.brokerS !== undefined && inWindow > 0) {
      if (m.cpu.brokerS > 0) {
        result.perBrokerCpuSecond = inWindow / m.cpu.brokerS;
      }
      result.brokerUsPerMessage = (m.cpu.brokerS * 1e6) / inWindow;
    }
    if (m.brokerRssKB !== undefined) result.brokerRssKB = m.brokerRssKB;
    return result;
  } finally {
    publisher.terminate();
    await Promise.all(links.map((l) => l.close()));
  }
}
