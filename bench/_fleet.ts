/**
 * The fleet scenario (issue 20), closer to how MQTT is used: N devices
 * (10,000 by default) each publish one 200-byte QoS 1 message per second on
 * `fleet/<id>/telemetry`, their sends spread evenly over the second; five
 * subscribers take `fleet/+/telemetry` and one takes `#`; each second 1% of
 * the devices reconnect (DISCONNECT, then CONNECT with Clean Session 0 under
 * the same client id, expecting their session back). Every client keeps a
 * persistent session, the subscribers included, so a broker with
 * persistence on stores what it delivers.
 *
 * Sends happen on the ticks of a {@link Ticker} (a thread that wakes the
 * main thread when the next device is due), each message stamped with the
 * time it was due: a send delayed by the tool, or by a device still
 * reconnecting, counts in the latency, and `sendLag` shows how much of it
 * is the tool's. A device reconnects right after the PUBACK of its next
 * message, so nothing is in flight when it goes; lost is what any of the
 * six subscribers never got after the drain.
 *
 * @module
 */

import {
  connectLink,
  expectPacket,
  inTurn,
  openFileLimit,
} from "./_connect.ts";
import {
  Histogram,
  LatencyRecorder,
  lateSenderWarning,
  Tracker,
} from "./_latency.ts";
import type { Link } from "./_link.ts";
import {
  AT,
  type LoadOptions,
  type LoadResult,
  MAGIC,
  type ScenarioShape,
} from "./_load_types.ts";
import { drain, measureWindow } from "./_measure.ts";
import {
  PUBACK,
  type PublishTemplate,
  publishTemplate,
  subscribeBytes,
} from "./_packets.ts";
import { Ticker } from "./_ticker.ts";

/** The six subscribers' filters. */
export const FLEET_FILTERS = [
  "fleet/+/telemetry",
  "fleet/+/telemetry",
  "fleet/+/telemetry",
  "fleet/+/telemetry",
  "fleet/+/telemetry",
  "#",
];

interface Device {
  index: number;
  clientId: string;
  link: Link;
  tpl: PublishTemplate;
  /** Messages sent and PUBACKs received. */
  sent: number;
  acked: number;
  /** False while reconnecting. */
  up: boolean;
  /** Reconnect after the PUBACK of the next message. */
  reconnect: boolean;
  /** Due times of messages that fell due while it was reconnecting. */
  pending: number[];
}

const SPARE_FILES = 64;

/** Runs the fleet scenario. */
export async function runFleet(opts: LoadOptions): Promise<LoadResult> {
  const host = opts.host ?? "127.0.0.1";
  const port = opts.port;
  if ((opts.transport?.kind ?? "tcp") !== "tcp") {
    throw new Error("the fleet scenario runs over TCP only");
  }
  const warnings: string[] = [];
  let n = opts.devices ?? 10_000;
  if (!(n >= 1 && n <= 65_535)) {
    throw new Error(`--devices: 1 to 65535, not ${n}`);
  }
  const subCount = FLEET_FILTERS.length;
  const limit = Math.min(
    openFileLimit(),
    opts.pid ? openFileLimit(opts.pid) : Infinity,
  );
  if (n + subCount + SPARE_FILES > limit) {
    const fit = limit - subCount - SPARE_FILES;
    warnings.push(
      `${n} devices need more open files than allowed (ulimit -n ${limit} in the tool or the broker): ran with ${fit}`,
    );
    n = fit;
  }
  const duration = opts.duration ?? 5;
  const warmup = opts.warmup ?? 1;
  const payloadSize = Math.max(AT.tag + 4, opts.payload ?? 200);
  const keepAlive = opts.keepAlive ?? 0;
  const perRound = Math.round((n * (opts.reconnectPercent ?? 1)) / 100);
  const concurrency = opts.concurrency ?? 100;
  const runId = crypto.randomUUID().slice(0, 8);
  // Deliveries of another run on the same broker carry another tag.
  const tag = (Math.random() * 2 ** 32) >>> 0;
  const slot = 1000 / n; // ms between two devices' sends (1 msg/s each)
  const shape: ScenarioShape = {
    publishers: n,
    subscribers: subCount,
    qos: 1,
    window: 0,
    rate: n,
    wildcard: true,
    persistent: true,
  };

  const latency = new LatencyRecorder(true);
  const reconnectTime = new Histogram();
  let delivered = 0;
  let reconnects = 0;
  let reconnectFailures = 0;
  let firstReconnectError: unknown;
  let sessionLost = 0;
  let running = true;
  const reconnecting = new Set<Promise<void>>();
  const devices: Device[] = [];
  const subs: { link: Link; trackers: Tracker[] }[] = [];

  const send = (d: Device, due: number, now: number) => {
    const b = d.tpl.bytes.slice();
    const v = new DataView(b.buffer);
    v.setUint16(d.tpl.packetIdOffset, (d.sent % 65535) + 1);
    const at = d.tpl.payloadOffset;
    v.setUint16(at, MAGIC);
    v.setUint16(at + AT.index, d.index);
    v.setUint32(at + AT.seq, d.sent);
    v.setFloat64(at + AT.due, due);
    v.setFloat64(at + AT.written, now);
    v.setUint32(at + AT.tag, tag);
    d.sent++;
    d.link.writer.enqueue(b);
  };

  const wire = (d: Device) => {
    d.link.onPacket = (first) => {
      if (first >> 4 !== 4) return; // PUBACK
      d.acked++;
      if (d.reconnect && d.up && d.acked === d.sent && running) {
        const p = reconnect(d);
        reconnecting.add(p);
        p.finally(() => reconnecting.delete(p));
      }
    };
  };

  const reconnect = async (d: Device): Promise<void> => {
    d.up = false;
    d.reconnect = false;
    const t = performance.now();
    await d.link.close();
    for (let attempt = 0;; attempt++) {
      try {
        const { link, sessionPresent } = await connectLink(
          host,
          port,
          d.clientId,
          { keepAlive, cleanSession: false, bufSize: 256 },
        );
        if (!sessionPresent) sessionLost++;
        d.link = link;
        wire(d);
        reconnectTime.record((performance.now() - t) * 1000);
        reconnects++;
        break;
      } catch (e) {
        reconnectFailures++;
        firstReconnectError ??= e;
        if (!running || attempt >= 10) return;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    d.up = true;
    const now = performance.now();
    for (const due of d.pending.splice(0)) send(d, due, now);
  };

  let ticker: Ticker | undefined;
  try {
    // Subscribers first (persistent sessions, QoS 1), then the devices.
    for (const [s, filter] of FLEET_FILTERS.entries()) {
      const { link } = await connectLink(
        host,
        port,
        `kite-fleet-${runId}-sub${s}`,
        { keepAlive, cleanSession: false, login: opts.login },
      );
      const sub = {
        link,
        trackers: Array.from({ length: n }, () => new Tracker(4)),
      };
      subs.push(sub);
      const suback = expectPacket(link, 9, 10_000, "SUBACK");
      link.writer.enqueue(subscribeBytes(1, filter, 1));
      const { buf, body } = await suback;
      if (buf[body + 2] === 0x80) {
        throw new Error(`SUBSCRIBE ${filter} refused`);
      }
      link.onPacket = (first, b, body, length, view) => {
        if (first >> 4 !== 3) return;
        let off = body + 2 + ((b[body]! << 8) | b[body + 1]!);
        if (((first >> 1) & 3) > 0) {
          link.ack(PUBACK, (b[off]! << 8) | b[off + 1]!);
          off += 2;
        }
        if (body + length - off < AT.tag + 4) return;
        if (view.getUint16(off) !== MAGIC) return;
        if (view.getUint32(off + AT.tag) !== tag) return;
        const tracker = sub.trackers[view.getUint16(off + AT.index)];
        if (tracker?.mark(view.getUint32(off + AT.seq))) {
          delivered++;
          latency.add(
            view.getFloat64(off + AT.due),
            view.getFloat64(off + AT.written),
            link.now,
          );
        }
      };
    }
    const connectT0 = performance.now();
    await inTurn(n, concurrency, async (i) => {
      const clientId = `kite-fleet-${runId}-d${i}`;
      const { link } = await connectLink(host, port, clientId, {
        keepAlive,
        cleanSession: false,
        login: opts.login,
        bufSize: 256,
      });
      const d: Device = {
        index: i,
        clientId,
        link,
        tpl: publishTemplate(`fleet/${i}/telemetry`, 1, payloadSize),
        sent: 0,
        acked: 0,
        up: true,
        reconnect: false,
        pending: [],
      };
      devices[i] = d;
      wire(d);
    });
    const connectSeconds = (performance.now() - connectT0) / 1000;

    // Device g % n sends its (g / n)-th message at t0 + g * slot; each
    // second from t0 the next `perRound` devices are told to reconnect.
    let t0 = Infinity;
    let next = 0;
    let nextRound = Infinity;
    let roundStart = 0;
    const tick = () => {
      if (!running) return;
      const now = performance.now();
      const last = Math.floor((now - t0) / slot);
      for (; next <= last; next++) {
        const d = devices[next % n]!;
        const due = t0 + next * slot;
        if (d.up) send(d, due, now);
        else d.pending.push(due);
      }
      while (now >= nextRound) {
        for (let j = 0; j < perRound; j++) {
          devices[(roundStart + j) % n]!.reconnect = true;
        }
        roundStart = (roundStart + perRound) % n;
        nextRound += 1000;
      }
    };
    ticker = await Ticker.start(Math.max(slot, 0.02), tick);
    t0 = performance.now() + 10;
    latency.from = t0 + warmup * 1000;
    latency.to = latency.from + duration * 1000;
    nextRound = t0 + 1000;
    ticker.go(t0);
    const m = await measureWindow({
      t0,
      warmup,
      duration,
      pid: opts.pid,
      delivered: () => delivered,
    });
    running = false;
    if (ticker.failure) warnings.push(`ticker failed: ${ticker.failure}`);
    await ticker.stop();
    ticker = undefined;
    await Promise.all(reconnecting);

    const sentAll = () => devices.reduce((s, d) => s + d.sent, 0);
    const expected = () => sentAll() * subCount;
    await drain(
      () =>
        delivered >= expected() &&
        devices.every((d) => d.acked === d.sent),
      () => delivered,
      opts.drainTimeout ?? 10,
    );
    const sent = sentAll();
    const unacked = devices.reduce((s, d) => s + d.sent - d.acked, 0);
    let gaps = 0, duplicates = 0, outOfOrder = 0, skipped = 0;
    for (const sub of subs) {
      for (const t of sub.trackers) {
        gaps += t.gaps;
        skipped += t.skipped;
        duplicates += t.duplicates;
        outOfOrder += t.outOfOrder;
      }
    }
    if (m.stalled) warnings.push("stalled: no delivery for 10 s");
    if (unacked > 0) {
      warnings.push(`${unacked} messages never acknowledged to devices`);
    }
    if (reconnectFailures > 0) {
      warnings.push(
        `${reconnectFailures} reconnects failed: ${firstReconnectError}`,
      );
    }
    if (sessionLost > 0) {
      warnings.push(`${sessionLost} reconnects found no session present`);
    }
    for (const [s, sub] of subs.entries()) {
      if (sub.link.closedByPeer) {
        warnings.push(`subscriber ${s} closed by the broker`);
      }
    }
    const lat = latency.result();
    const late = lateSenderWarning(lat.sendLag);
    if (late) warnings.push(late);
    const inWindow = m.d1 - m.d0;
    const result: LoadResult = {
      scenario: "fleet",
      transport: "tcp",
      host,
      port,
      seconds: m.seconds,
      shape,
      sent,
      delivered,
      deliveredPerSec: m.seconds > 0 ? inWindow / m.seconds : 0,
      lost: expected() - delivered,
      dropped: skipped - outOfOrder,
      unacked,
      perSecond: m.perSecond,
      ...(opts.pid ? { rssPerSecond: m.rssPerSecond } : {}),
      gaps,
      duplicates,
      outOfOrder,
      ...lat,
      fleet: {
        devices: n,
        connectSeconds,
        reconnects,
        reconnectFailures,
        sessionLost,
        ...(reconnectTime.count > 0
          ? { reconnectTime: reconnectTime.result()! }
          : {}),
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
    running = false;
    await ticker?.stop();
    await Promise.all(reconnecting);
    await inTurn(
      devices.length,
      500,
      async (i) => await devices[i]?.link.close(),
    );
    // The subscribers' sessions would queue every later run's messages:
    // end them (CONNECT with Clean Session 1 discards a session).
    await Promise.all(subs.map(async (sub, s) => {
      await sub.link.close();
      try {
        const { link } = await connectLink(
          host,
          port,
          `kite-fleet-${runId}-sub${s}`,
          { keepAlive, cleanSession: true, login: opts.login },
        );
        await link.close();
      } catch { /* the broker is gone */ }
    }));
  }
}
