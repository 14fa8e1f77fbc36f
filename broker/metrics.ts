/**
 * `Metrics`: the one object where every counter and gauge of a broker
 * lives. Connections and sessions bump its counters (plain number fields:
 * one increment on the hot path, nothing else); gauges are read on demand
 * from whoever owns the state (`GaugeSource`). `$SYS`, `Broker.stats` and
 * any exporter read this object and nothing else.
 *
 * Adding a metric: a counter is a field here bumped where the event
 * happens; a gauge is a method of `GaugeSource` implemented by the core.
 * Then publish it where it is read (`sys.ts`, `snapshot()`).
 *
 * @module
 */

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

/** Where the gauges come from (the broker core implements it). */
export interface GaugeSource {
  /** Clients connected now. */
  connectedClients(): number;
  /** Sessions known, connected or offline. */
  sessionCount(): number;
  /** Subscriptions held, shared ones included. */
  subscriptionCount(): number;
  /** Retained messages held. */
  retainedCount(): number;
}

const NO_GAUGES: GaugeSource = {
  connectedClients: () => 0,
  sessionCount: () => 0,
  subscriptionCount: () => 0,
  retainedCount: () => 0,
};

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
export class Metrics implements BrokerStats {
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
  /** Epoch ms the broker started. */
  readonly startedAt: number = Date.now();
  #gauges: GaugeSource;

  /** Creates zeroed counters; gauges read from `gauges`. */
  constructor(gauges: GaugeSource = NO_GAUGES) {
    this.#gauges = gauges;
  }

  /** Clients connected now. */
  get connectedClients(): number {
    return this.#gauges.connectedClients();
  }

  /** Sessions known (connected or offline). */
  get sessionCount(): number {
    return this.#gauges.sessionCount();
  }

  /** Subscriptions held (shared ones included). */
  get subscriptionCount(): number {
    return this.#gauges.subscriptionCount();
  }

  /** Retained messages held. */
  get retainedCount(): number {
    return this.#gauges.retainedCount();
  }

  /** Seconds since the broker started. */
  uptimeSeconds(now: number = Date.now()): number {
    return Math.floor((now - this.startedAt) / 1000);
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
