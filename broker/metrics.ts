/**
 * `Metrics`: the one object where every counter and gauge of a broker
 * lives. Connections and sessions bump its counters (plain number fields:
 * one increment on the hot path, nothing else); gauges are read on demand
 * from whoever owns the state (`GaugeSource`). `$SYS` (sys.ts),
 * `Broker.stats` and the Prometheus exposition (http/metrics.ts) read this
 * object and nothing else.
 *
 * Adding a metric: a counter is a field here bumped where the event
 * happens (a dropped message: one more `DropReason`); a gauge is a method
 * of `GaugeSource` implemented by the core. Then publish it where it is
 * read: `sys.ts` (with Mosquitto's topic name, if it has one) and the
 * family list of `http/metrics.ts` (Prometheus: `kite_` prefix, counters
 * end in `_total`, units in the name), and the README's metrics table.
 *
 * @module
 */

import { AS_DOUBLE, asDoubles } from "../codec/_double.ts";

/** Counters of a broker, as published under `$SYS/broker/...`. */
export interface BrokerStats {
  /** PUBLISH packets received. */
  messagesReceived: number;
  /** PUBLISH packets sent. */
  messagesSent: number;
  /** Bytes read from clients. */
  bytesReceived: number;
  /** Bytes written to clients. */
  bytesSent: number;
  /**
   * Messages dropped for a subscriber: its queue or output buffer was full,
   * or the message was above its v5 Maximum Packet Size.
   */
  messagesDropped: number;
}

/**
 * Why a message was dropped: the index into `Metrics.dropped`, and the
 * `reason` label of `kite_messages_dropped_total` (`DROP_REASONS`).
 */
export const DropReason = {
  /** A PUBLISH no subscription matched (the broker's own `$SYS` aside). */
  NoSubscribers: 0,
  /** Its Message Expiry Interval passed while it waited in a queue. */
  Expired: 1,
  /** A session queue was full (`maxQueuedMessages`, `maxQueuedBytes`). */
  QueueFull: 2,
  /** A v5 client sent more unacknowledged QoS 1/2 than Receive Maximum. */
  ReceiveMaximum: 3,
  /** Above the subscriber's v5 Maximum Packet Size. */
  TooLarge: 4,
  /** QoS 0 to a client whose output buffer was over `outputBufferLimit`. */
  OutputBufferFull: 5,
  /**
   * A PUBLISH refused: by `authorizePublish`, to `$SYS`, or a v5 payload
   * that is not the UTF-8 its format indicator says.
   */
  Refused: 6,
} as const;

/** One of the `DropReason` values. */
export type DropReason = (typeof DropReason)[keyof typeof DropReason];

/** The `reason` label of each `DropReason`, by index. */
export const DROP_REASONS: readonly string[] = [
  "no_subscribers",
  "expired",
  "queue_full",
  "receive_maximum",
  "too_large",
  "output_buffer_full",
  "refused",
];

/** What a session counts its dropped messages in (`Metrics` is one). */
export interface DropCounters {
  /** Dropped for a subscriber (queue, output buffer, too large). */
  messagesDropped: number;
  /** By `DropReason` index, when kept. */
  readonly dropped?: number[];
}

/** Where the gauges come from (the broker core implements it). */
export interface GaugeSource {
  /** Clients connected now. */
  connectedClients(): number;
  /** Sockets open now, connected or still before CONNACK. */
  connectionCount(): number;
  /** Sessions known, connected or offline. */
  sessionCount(): number;
  /** Subscriptions held, shared ones included. */
  subscriptionCount(): number;
  /** Shared subscriptions held (`$share/...`). */
  sharedSubscriptionCount(): number;
  /** Retained messages held. */
  retainedCount(): number;
  /** Payload bytes of the retained messages. */
  retainedBytes(): number;
  /** Messages waiting in session queues, in flight, and their bytes. */
  messageCounts(): MessageCounts;
}

/** Messages the sessions hold (one pass over them). */
export interface MessageCounts {
  /** Queued, not yet sent. */
  queued: number;
  /** Payload and topic bytes of the queued ones. */
  queuedBytes: number;
  /** QoS 1/2 sent and not yet acknowledged. */
  inflight: number;
}

const NO_MESSAGES: MessageCounts = { queued: 0, queuedBytes: 0, inflight: 0 };

const NO_GAUGES: GaugeSource = {
  connectedClients: () => 0,
  connectionCount: () => 0,
  sessionCount: () => 0,
  subscriptionCount: () => 0,
  sharedSubscriptionCount: () => 0,
  retainedCount: () => 0,
  retainedBytes: () => 0,
  messageCounts: () => NO_MESSAGES,
};

/** Upper bounds (seconds) of the store commit latency buckets. */
export const COMMIT_BUCKETS: readonly number[] = [
  0.0001,
  0.00025,
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
];

/**
 * A Prometheus-style histogram: counts per bucket (not cumulative; the
 * last one is `+Inf`), their sum and count.
 *
 * @example
 * ```ts ignore
 * const h = new Histogram([0.01, 0.1]);
 * h.observe(0.05);
 * h.counts; // [0, 1, 0]
 * ```
 */
export class Histogram {
  /** Upper bounds, ascending. */
  readonly bounds: readonly number[];
  /** Observations per bucket; `counts[bounds.length]` is `+Inf`. */
  readonly counts: number[];
  /** Sum of the observed values. */
  sum = 0;
  /** Number of observations. */
  count = 0;

  /** A histogram with these upper bounds. */
  constructor(bounds: readonly number[]) {
    this.bounds = bounds;
    this.counts = new Array<number>(bounds.length + 1).fill(0);
    asDoubles(this, ["sum", "count"]);
  }

  /** Adds one observation. */
  observe(v: number): void {
    const b = this.bounds;
    let i = 0;
    while (i < b.length && v > b[i]!) i++;
    this.counts[i]!++;
    this.sum += v;
    this.count++;
  }
}

/**
 * A broker's counters and gauges.
 *
 * @example
 * ```ts ignore
 * const m = new Metrics();
 * m.messagesReceived++;
 * m.snapshot().messagesReceived; // 1
 * ```
 */
export class Metrics implements BrokerStats, DropCounters {
  /** PUBLISH packets received. */
  messagesReceived = 0;
  /** PUBLISH packets sent. */
  messagesSent = 0;
  /** Bytes read from clients. */
  bytesReceived = 0;
  /** Bytes written to clients. */
  bytesSent = 0;
  /** Messages dropped for a subscriber (queue or buffer full, too large). */
  messagesDropped = 0;
  /** Payload bytes of the PUBLISH packets received. */
  publishBytesReceived = 0;
  /** Payload bytes of the PUBLISH packets sent. */
  publishBytesSent = 0;
  /** MQTT packets of any type received. */
  packetsReceived = 0;
  /** MQTT packets of any type sent (PUBLISH included). */
  packetsSent = 0;
  /** Sockets accepted (before any CONNECT). */
  connectionsAccepted = 0;
  /** CONNECTs accepted (CONNACK 0 sent). */
  clientsConnected = 0;
  /** Connections of connected clients that ended. */
  clientsDisconnected = 0;
  /** CONNECTs refused with a CONNACK code (or closed before one). */
  connectsRefused = 0;
  /** CONNECTs refused by authentication (bad password, anonymous, ...). */
  authFailures = 0;
  /** Most clients connected at once since the start. */
  maxConnected = 0;
  /** Sessions created by a CONNECT. */
  sessionsCreated = 0;
  /** Sessions resumed by a CONNECT (session present). */
  sessionsResumed = 0;
  /** Connections closed because a new one took their client id. */
  sessionsTakenOver = 0;
  /** Sessions discarded by a clean start or by an administrator. */
  sessionsDiscarded = 0;
  /** Offline sessions ended by their expiry interval. */
  sessionsExpired = 0;
  /** Messages dropped, by `DropReason`. */
  readonly dropped: number[] = new Array<number>(DROP_REASONS.length).fill(0);
  /** Store commit latency, seconds (the group commit behind durable acks). */
  readonly storeCommit: Histogram = new Histogram(COMMIT_BUCKETS);
  /** Epoch ms the broker started. */
  readonly startedAt: number = Date.now();
  #gauges: GaugeSource;
  #heapMax = AS_DOUBLE;

  /** Creates zeroed counters; gauges read from `gauges`. */
  constructor(gauges: GaugeSource = NO_GAUGES) {
    this.#gauges = gauges;
    // Bytes pass 2^30 within minutes, messages in hours: see _double.ts.
    asDoubles(this, [
      "messagesReceived",
      "messagesSent",
      "bytesReceived",
      "bytesSent",
      "messagesDropped",
      "publishBytesReceived",
      "publishBytesSent",
      "packetsReceived",
      "packetsSent",
    ]);
  }

  /** Clients connected now. */
  get connectedClients(): number {
    return this.#gauges.connectedClients();
  }

  /** Sockets open now (connected or not yet). */
  get connectionCount(): number {
    return this.#gauges.connectionCount();
  }

  /** Sessions known (connected or offline). */
  get sessionCount(): number {
    return this.#gauges.sessionCount();
  }

  /** Subscriptions held (shared ones included). */
  get subscriptionCount(): number {
    return this.#gauges.subscriptionCount();
  }

  /** Shared subscriptions held. */
  get sharedSubscriptionCount(): number {
    return this.#gauges.sharedSubscriptionCount();
  }

  /** Retained messages held. */
  get retainedCount(): number {
    return this.#gauges.retainedCount();
  }

  /** Payload bytes of the retained messages. */
  get retainedBytes(): number {
    return this.#gauges.retainedBytes();
  }

  /** Messages the sessions hold: queued, their bytes, in flight. */
  messageCounts(): MessageCounts {
    return this.#gauges.messageCounts();
  }

  /**
   * Memory of the process now (V8 heap in use, resident set), and the
   * largest heap seen by any call so far.
   */
  memory(): { heapUsed: number; heapMaximum: number; rss: number } {
    const m = Deno.memoryUsage();
    if (m.heapUsed > this.#heapMax) this.#heapMax = m.heapUsed;
    return { heapUsed: m.heapUsed, heapMaximum: this.#heapMax, rss: m.rss };
  }

  /** Seconds since the broker started. */
  uptimeSeconds(now: number = Date.now()): number {
    return Math.floor((now - this.startedAt) / 1000);
  }

  /** Messages dropped for any reason (the sum of `dropped`). */
  get droppedTotal(): number {
    let n = 0;
    for (const d of this.dropped) n += d;
    return n;
  }

  /** The counters as a plain object (a copy). */
  snapshot(): BrokerStats {
    return {
      messagesReceived: this.messagesReceived,
      messagesSent: this.messagesSent,
      bytesReceived: this.bytesReceived,
      bytesSent: this.bytesSent,
      messagesDropped: this.messagesDropped,
    };
  }
}
