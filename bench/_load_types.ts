/**
 * The load tool's vocabulary: scenario names and shapes, the options of a
 * run and the result it reports (bench/load.ts re-exports all of it).
 *
 * @module
 */

import type { Login } from "./_packets.ts";
import type { LoadTransport } from "./_link.ts";

/** Names of the message-flow scenarios (shapes in {@link SCENARIOS}). */
export type FlowScenarioName =
  | "fanin"
  | "fanout"
  | "qos1"
  | "qos2"
  | "qos1-persistent"
  | "latency"
  | "latency50k"
  | "latency-idle"
  | "latency50k-idle"
  | "slow"
  | "slow-qos1";

/** Names of the scenarios. */
export type ScenarioName =
  | FlowScenarioName
  | "conns"
  | "fleet"
  | "scatter"
  | "scatter20k";

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
  /**
   * Idle MQTT connections (CONNECT, then nothing) opened after the
   * publishers and subscribers and held open while measuring.
   */
  idleConns?: number;
}

/**
 * The scenarios of issues 8 and 20 (MQTT 3.1.1, broker on one core); conns,
 * fleet and scatter have shapes of their own.
 */
export const SCENARIOS: Record<FlowScenarioName, ScenarioShape> = {
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
  latency50k: {
    publishers: 1,
    subscribers: 1,
    qos: 0,
    window: 500_000,
    rate: 50_000,
    wildcard: false,
  },
  // The same with 10,000 idle connections held open (issue 20): the cost
  // of work done per turn over every connection or session.
  "latency-idle": {
    publishers: 1,
    subscribers: 1,
    qos: 0,
    window: 100_000,
    rate: 10_000,
    wildcard: false,
    idleConns: 10_000,
  },
  "latency50k-idle": {
    publishers: 1,
    subscribers: 1,
    qos: 0,
    window: 500_000,
    rate: 50_000,
    wildcard: false,
    idleConns: 10_000,
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
  /** Payload bytes, at least 16; default 64 (fleet 200, scatter 32). */
  payload?: number;
  /** conns: how many connections; default 10,000. */
  count?: number;
  /**
   * conns, idle connections, fleet devices and scatter subscribers:
   * connection attempts in flight at once; default 100.
   */
  concurrency?: number;
  /**
   * Idle connections held open while measuring a flow scenario (overrides
   * the scenario's `idleConns`; 0 for none).
   */
  idleConns?: number;
  /** fleet: devices; default 10,000 (at most 65,535). */
  devices?: number;
  /** fleet: percent of the devices that reconnect each second; default 1. */
  reconnectPercent?: number;
  /** scatter: subscribers (5 filters each); default 2,000 (scatter20k 20,000). */
  scatterSubs?: number;
  /** scatter: seed of the random subscriber each message goes to. */
  seed?: number;
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

/**
 * Latency of the messages scheduled during the measured interval,
 * microseconds, over every one of them (see bench/_latency.ts).
 */
export interface LatencyResult {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  /** p99.9 (absent in results saved before it existed). */
  p999?: number;
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
  /**
   * End to end, from the time each message was due to be sent (at a fixed
   * rate: its place in the schedule, so a late send counts against the
   * latency; as fast as possible: the time it was written).
   */
  latency?: LatencyResult;
  /** Fixed rate: end to end from the time each message was written. */
  latencyFromWrite?: LatencyResult;
  /** Fixed rate: how late the tool wrote each message (written - due). */
  sendLag?: LatencyResult;
  /** Idle connections held open while measuring. */
  idle?: {
    requested: number;
    connected: number;
    failed: number;
    /** Seconds it took to open them. */
    seconds: number;
  };
  /** Broker CPU µs per message delivered in the measured interval. */
  brokerUsPerMessage?: number;
  /** fleet: the devices' reconnects. */
  fleet?: {
    devices: number;
    /** Seconds it took to connect them all (before the run). */
    connectSeconds: number;
    /** Reconnects completed (DISCONNECT, then CONNECT with Clean Session 0). */
    reconnects: number;
    reconnectFailures: number;
    /** Reconnects whose CONNACK said no session was present. */
    sessionLost: number;
    /** Time from DISCONNECT to the new CONNACK, µs. */
    reconnectTime?: LatencyResult;
  };
  /** scatter: the subscribers and their subscriptions. */
  scatter?: {
    subscribers: number;
    subscriptions: number;
    /** Messages that reached a subscriber they were not sent to. */
    misrouted: number;
  };
  conns?: {
    count: number;
    connected: number;
    failed: number;
    connectsPerSec: number;
    /** Connections that answered a PINGREQ after the idle period. */
    alive: number;
    rssBeforeKB?: number;
    rssAfterKB?: number;
    /** Broker RSS after the first half of the connections (and a pause). */
    rssMidKB?: number;
    /** Broker RSS growth per connection, KB. */
    kbPerConn?: number;
    /**
     * Broker RSS growth per connection over the second half only, KB: what
     * one more connection costs, without what the first ones commit once.
     */
    kbPerConnSecondHalf?: number;
  };
  cpu: CpuResult;
  /** Broker RSS at the end of the measured interval, KB. */
  brokerRssKB?: number;
  warnings: string[];
}

// Payload layout: [0..1] magic, [2..3] publisher index, [4..7] sequence,
// [8..15] the time it was due (main-thread performance.now(), ms, float64),
// [16..23] the time it was written (payloads of 24 bytes or more),
// [24..27] the scatter subscriber it is for / the fleet run's tag; the rest
// zero.
/** The payload's first two bytes: "KT". */
export const MAGIC = 0x4b54;
/** The smallest payload the layout fits in. */
export const MIN_PAYLOAD = 16;
/** Payload offsets of the layout above. */
export const AT = {
  index: 2,
  seq: 4,
  due: 8,
  written: 16,
  tag: 24,
} as const;
