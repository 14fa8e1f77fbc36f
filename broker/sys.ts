/**
 * `$SYS/broker/...` topics: the broker's vital signs, published as retained
 * messages every `sysInterval` seconds with Mosquitto's names and meanings,
 * so that tools built for Mosquitto's tree (mosquitto-exporter, dashboards)
 * read Kite unchanged. Every value comes from `Metrics`.
 *
 * As Mosquitto does: `messages/*` count MQTT packets of any type,
 * `publish/messages/*` PUBLISH packets; `clients/total` counts sessions
 * (connected and offline), `clients/disconnected` the offline ones; a value
 * is published again only when it changed; `load/.../1min|5min|15min` are
 * exponentially damped moving averages of the rate per minute, updated at
 * each publication with the factor `exp(-dt / window)` (see
 * {@linkcode loadAverage}).
 *
 * @module
 */

import type { Dispatcher } from "./dispatcher.ts";
import type { Metrics } from "./metrics.ts";
import type { StoredMessage } from "./store/store.ts";

/** Publishes one retained `$SYS` value. */
export type SysPublish = (topic: string, value: string) => void;

/** The version string published at `$SYS/broker/version`. */
export const KITE_VERSION = "kite 0.1.0";

/** The load averages Mosquitto publishes: what they count, by path. */
const LOADS: readonly [path: string, read: (m: Metrics) => number][] = [
  ["messages/received", (m) => m.packetsReceived],
  ["messages/sent", (m) => m.packetsSent],
  ["publish/dropped", (m) => m.messagesDropped],
  ["publish/received", (m) => m.messagesReceived],
  ["publish/sent", (m) => m.messagesSent],
  ["bytes/received", (m) => m.bytesReceived],
  ["bytes/sent", (m) => m.bytesSent],
  ["sockets", (m) => m.connectionsAccepted],
  ["connections", (m) => m.clientsConnected],
];

/** The windows of the load averages: name and seconds. */
const WINDOWS: readonly [name: string, seconds: number][] = [
  ["1min", 60],
  ["5min", 300],
  ["15min", 900],
];

const loadTopic = (path: string, window: string) =>
  `$SYS/broker/load/${path}/${window}`;

/** The `$SYS` topics, by what they report. */
export const SYS_TOPICS = {
  version: "$SYS/broker/version",
  uptime: "$SYS/broker/uptime",
  clientsConnected: "$SYS/broker/clients/connected",
  clientsTotal: "$SYS/broker/clients/total",
  messagesReceived: "$SYS/broker/messages/received",
  messagesSent: "$SYS/broker/messages/sent",
  bytesReceived: "$SYS/broker/bytes/received",
  bytesSent: "$SYS/broker/bytes/sent",
  subscriptions: "$SYS/broker/subscriptions/count",
  retained: "$SYS/broker/retained messages/count",
  clientsActive: "$SYS/broker/clients/active",
  clientsDisconnected: "$SYS/broker/clients/disconnected",
  clientsInactive: "$SYS/broker/clients/inactive",
  clientsMaximum: "$SYS/broker/clients/maximum",
  clientsExpired: "$SYS/broker/clients/expired",
  messagesStored: "$SYS/broker/messages/stored",
  publishMessagesReceived: "$SYS/broker/publish/messages/received",
  publishMessagesSent: "$SYS/broker/publish/messages/sent",
  publishMessagesDropped: "$SYS/broker/publish/messages/dropped",
  publishBytesReceived: "$SYS/broker/publish/bytes/received",
  publishBytesSent: "$SYS/broker/publish/bytes/sent",
  storeMessagesCount: "$SYS/broker/store/messages/count",
  storeMessagesBytes: "$SYS/broker/store/messages/bytes",
  sharedSubscriptions: "$SYS/broker/shared_subscriptions/count",
  heapCurrent: "$SYS/broker/heap/current",
  heapMaximum: "$SYS/broker/heap/maximum",
  loadMessagesReceived1min: "$SYS/broker/load/messages/received/1min",
  loadMessagesReceived5min: "$SYS/broker/load/messages/received/5min",
  loadMessagesReceived15min: "$SYS/broker/load/messages/received/15min",
  loadMessagesSent1min: "$SYS/broker/load/messages/sent/1min",
  loadMessagesSent5min: "$SYS/broker/load/messages/sent/5min",
  loadMessagesSent15min: "$SYS/broker/load/messages/sent/15min",
  loadPublishDropped1min: "$SYS/broker/load/publish/dropped/1min",
  loadPublishDropped5min: "$SYS/broker/load/publish/dropped/5min",
  loadPublishDropped15min: "$SYS/broker/load/publish/dropped/15min",
  loadPublishReceived1min: "$SYS/broker/load/publish/received/1min",
  loadPublishReceived5min: "$SYS/broker/load/publish/received/5min",
  loadPublishReceived15min: "$SYS/broker/load/publish/received/15min",
  loadPublishSent1min: "$SYS/broker/load/publish/sent/1min",
  loadPublishSent5min: "$SYS/broker/load/publish/sent/5min",
  loadPublishSent15min: "$SYS/broker/load/publish/sent/15min",
  loadBytesReceived1min: "$SYS/broker/load/bytes/received/1min",
  loadBytesReceived5min: "$SYS/broker/load/bytes/received/5min",
  loadBytesReceived15min: "$SYS/broker/load/bytes/received/15min",
  loadBytesSent1min: "$SYS/broker/load/bytes/sent/1min",
  loadBytesSent5min: "$SYS/broker/load/bytes/sent/5min",
  loadBytesSent15min: "$SYS/broker/load/bytes/sent/15min",
  loadSockets1min: "$SYS/broker/load/sockets/1min",
  loadSockets5min: "$SYS/broker/load/sockets/5min",
  loadSockets15min: "$SYS/broker/load/sockets/15min",
  loadConnections1min: "$SYS/broker/load/connections/1min",
  loadConnections5min: "$SYS/broker/load/connections/5min",
  loadConnections15min: "$SYS/broker/load/connections/15min",
} as const;

/**
 * One step of a load average, as Mosquitto computes it: `count` events in
 * the last `dt` seconds are a rate of `count * 60 / dt` per minute, and the
 * average moves toward it by the factor `exp(-dt / window)`.
 *
 * @example
 * ```ts ignore
 * loadAverage(0, 600, 10, 60); // 3600 - 3600 * exp(-10 / 60): about 552.7
 * ```
 */
export function loadAverage(
  current: number,
  count: number,
  dt: number,
  window: number,
): number {
  const rate = count * 60 / dt;
  return rate + Math.exp(-dt / window) * (current - rate);
}

/**
 * The `$SYS` tree of one broker: what was published last (a value is
 * published again only when it changed) and the load averages.
 */
export class SysTree {
  #metrics: Metrics;
  #publish: SysPublish;
  #last = new Map<string, string>();
  /** The counters of `LOADS` at the previous publication. */
  #counts: number[] | undefined;
  #at = 0;
  /** Load averages, `LOADS` x `WINDOWS`. */
  #loads: number[] = new Array<number>(LOADS.length * WINDOWS.length).fill(0);

  /** A tree publishing `metrics` through `publish`. */
  constructor(metrics: Metrics, publish: SysPublish) {
    this.#metrics = metrics;
    this.#publish = publish;
  }

  #put(topic: string, value: string): void {
    if (this.#last.get(topic) === value) return;
    this.#last.set(topic, value);
    this.#publish(topic, value);
  }

  /** Publishes what changed since the last call (everything the first time). */
  update(now: number = Date.now()): void {
    const m = this.#metrics;
    const t = SYS_TOPICS;
    const connected = m.connectedClients;
    const total = m.sessionCount;
    const offline = Math.max(0, total - connected);
    const messages = m.messageCounts();
    const stored = m.retainedCount + messages.queued + messages.inflight;
    const memory = m.memory();
    const values: [string, string | number][] = [
      [t.version, KITE_VERSION],
      [t.uptime, `${m.uptimeSeconds(now)} seconds`],
      [t.clientsConnected, connected],
      [t.clientsActive, connected],
      [t.clientsDisconnected, offline],
      [t.clientsInactive, offline],
      [t.clientsTotal, total],
      [t.clientsMaximum, m.maxConnected],
      [t.clientsExpired, m.sessionsExpired],
      [t.messagesReceived, m.packetsReceived],
      [t.messagesSent, m.packetsSent],
      [t.messagesStored, stored],
      [t.publishMessagesReceived, m.messagesReceived],
      [t.publishMessagesSent, m.messagesSent],
      [t.publishMessagesDropped, m.messagesDropped],
      [t.publishBytesReceived, m.publishBytesReceived],
      [t.publishBytesSent, m.publishBytesSent],
      [t.bytesReceived, m.bytesReceived],
      [t.bytesSent, m.bytesSent],
      [t.storeMessagesCount, stored],
      [t.storeMessagesBytes, m.retainedBytes + messages.queuedBytes],
      [t.subscriptions, m.subscriptionCount],
      [t.sharedSubscriptions, m.sharedSubscriptionCount],
      // Counted before this round's own $SYS topics are (re)stored.
      [t.retained, m.retainedCount],
      [t.heapCurrent, memory.heapUsed],
      [t.heapMaximum, memory.heapMaximum],
    ];
    for (const [topic, value] of values) this.#put(topic, String(value));
    this.#updateLoads(now);
  }

  #updateLoads(now: number): void {
    const counts = LOADS.map(([, read]) => read(this.#metrics));
    const prev = this.#counts;
    const dt = (now - this.#at) / 1000;
    if (prev !== undefined && dt > 0) {
      for (let i = 0; i < LOADS.length; i++) {
        const delta = counts[i]! - prev[i]!;
        for (let w = 0; w < WINDOWS.length; w++) {
          const k = i * WINDOWS.length + w;
          this.#loads[k] = loadAverage(
            this.#loads[k]!,
            delta,
            dt,
            WINDOWS[w]![1],
          );
        }
      }
    }
    if (prev === undefined || dt > 0) {
      this.#counts = counts;
      this.#at = now;
    }
    for (let i = 0; i < LOADS.length; i++) {
      for (let w = 0; w < WINDOWS.length; w++) {
        this.#put(
          loadTopic(LOADS[i]![0], WINDOWS[w]![0]),
          this.#loads[i * WINDOWS.length + w]!.toFixed(2),
        );
      }
    }
  }
}

/** What `sysPublisher` needs of the broker's core. */
export interface SysTarget {
  /** Keeps a message as its topic's retained one. */
  retain(message: StoredMessage): void;
  dispatcher: Dispatcher;
}

/**
 * Publishes `$SYS` updates into `core`: each is kept as its topic's
 * retained message (never stored), and routed only when some filter may
 * start with `$SYS` ([MQTT-4.7.2-1]: `#` and `+` never match it). Routing
 * each update for nobody sent `publish` and the topic matcher down paths
 * the traffic never takes, and V8 deoptimised them (bench/README.md).
 */
export function sysPublisher(core: SysTarget): SysPublish {
  const utf8 = new TextEncoder();
  return (topic, value) => {
    const message: StoredMessage = {
      topic,
      payload: utf8.encode(value),
      qos: 0,
      retain: true,
    };
    core.retain(message);
    if (core.dispatcher.hasFirstLevel?.("$SYS") === false) return;
    core.dispatcher.publish(message, undefined);
  };
}

/**
 * Publishes the `$SYS` topics now and every `intervalSeconds`; returns a
 * stop function.
 */
export function startSys(
  metrics: Metrics,
  publish: SysPublish,
  intervalSeconds: number,
): () => void {
  const tree = new SysTree(metrics, publish);
  tree.update();
  const timer = setInterval(() => tree.update(), intervalSeconds * 1000);
  return () => clearInterval(timer);
}
