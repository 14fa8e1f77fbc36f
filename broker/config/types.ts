/**
 * The types of broker settings: {@linkcode BrokerOptions} (what `new
 * Broker()` takes: settings and hooks), {@linkcode BrokerSettings} (the plain
 * settings only), {@linkcode MainSettings} (settings of `broker/main.ts`
 * only) and {@linkcode KiteSettings} (both: every row of the `SETTINGS`
 * table in `settings.ts`).
 *
 * A field added to `BrokerOptions` needs a row in `SETTINGS` (the compiler
 * says so); see `settings.ts`.
 *
 * @module
 */

import type { QoS } from "../../codec/packet.ts";
import type { BrokerHooks } from "../hooks.ts";

/** Options of a `Broker`. Every field is optional; see `DEFAULT_OPTIONS`. */
export interface BrokerOptions extends BrokerHooks {
  /**
   * Interface to listen on. Default `0.0.0.0` (`broker/main.ts`: `127.0.0.1`
   * unless a password file is configured).
   */
  host?: string;
  /** TCP port; 0 picks a free port. Default 1883. */
  port?: number;
  /** Connections past this are refused. Default 10000. */
  maxConnections?: number;
  /** Largest packet accepted and advertised, in bytes. Default 256 KiB. */
  maxPacketSize?: number;
  /** Keep state in Deno KV at `persistencePath`. Default false for the library, true for `broker/main.ts`. */
  enablePersistence?: boolean;
  /** Directory of the Deno KV file. Default `./mqtt_data`. */
  persistencePath?: string;
  /** Cap on the session expiry interval clients ask for, in seconds. Default 3600. */
  sessionExpiryInterval?: number;
  /** Highest QoS granted and accepted. Default 2. */
  maxQos?: QoS;
  /** Whether retained messages are supported. Default true. */
  retainAvailable?: boolean;
  /** Whether `+`/`#` filters are supported. Default true. */
  wildcardSubscriptionAvailable?: boolean;
  /** Whether `$share/...` filters are supported. Default true. */
  sharedSubscriptionAvailable?: boolean;
  /** v5 Receive Maximum the broker allows each client. Default 65535. */
  receiveMaximum?: number;
  /**
   * v5 Topic Alias Maximum the broker accepts from each client (0 turns
   * client aliases off). Default 10, like Mosquitto: each alias holds a
   * topic string per connection.
   */
  topicAliasMaximum?: number;
  /** v5 Server Keep Alive in seconds; 0 leaves the client's. Default 0. */
  serverKeepAlive?: number;
  /** Unacknowledged QoS 1/2 messages to a client at once. Default 1000. */
  maxInflightMessages?: number;
  /** Messages queued per session beyond in-flight ones. Default 1000. */
  maxQueuedMessages?: number;
  /**
   * Bytes (payload bytes plus topic length) queued per session beyond
   * in-flight messages, as Mosquitto's `max_queued_bytes`; past it the same
   * messages as for `maxQueuedMessages` are dropped (oldest QoS 0 first,
   * then the oldest), and a message larger than it is not queued. 0: no
   * limit, the queue is bounded by `maxQueuedMessages` only. Default 0.
   */
  maxQueuedBytes?: number;
  /**
   * Subscriptions one session may hold; a SUBSCRIBE past it gets SUBACK
   * 0x97 Quota exceeded (3.1.1: 0x80) for the extra filters (replacing a
   * filter the session has does not count). 0: no limit. Default 10000.
   */
  maxSubscriptionsPerClient?: number;
  /**
   * Most levels in a topic name or filter. A deeper PUBLISH topic is v5
   * DISCONNECT 0x90 (3.1.1: the connection is closed), a deeper will topic
   * v5 CONNACK 0x90 (3.1.1: closed without CONNACK), a deeper SUBSCRIBE
   * filter SUBACK 0x8F (3.1.1: 0x80); `$share/{group}/` is not counted.
   * 0: no limit. Default 128, as EMQX.
   */
  maxTopicLevels?: number;
  /**
   * Allow clients without a username. Default true, or false when an
   * `authenticate` or `enhancedAuth` hook is given (as in Mosquitto 2).
   */
  allowAnonymous?: boolean;
  /** Interval of `$SYS/broker/...` publications in seconds; 0 turns them off. Default 10. */
  sysInterval?: number;
  /** Seconds a new connection has to send its CONNECT. Default 10. */
  connectTimeout?: number;
  /** Queue QoS 0 messages for offline sessions too. Default false. */
  queueQos0Messages?: boolean;
  /**
   * Bytes a connection may buffer for a slow reader, in bytes (default 1
   * MiB): above it QoS 0 messages to it are dropped and QoS 1/2 ones wait in
   * its session; a connection with more than four times this queued behind
   * the write in progress (a client that sends but never reads) is closed.
   * One packet larger than this (up to `maxPacketSize`) is always sent.
   */
  outputBufferLimit?: number;
  /**
   * Cluster mode: this broker is one node of a cluster that shares NATS
   * JetStream (README "Running a cluster"). Without `url` (the default) the
   * broker is a single node and loads nothing of NATS.
   */
  cluster?: ClusterOptions;
}

/**
 * The `cluster` setting: where the NATS servers are and who this node is.
 * Flags `--cluster-url` (repeatable), `--node-id`, `--cluster-name`; see
 * the README, "Running a cluster".
 *
 * @example
 * ```ts ignore
 * import { Broker } from "@kite/mqtt/broker";
 * const broker = new Broker({
 *   port: 1883,
 *   cluster: { url: ["nats://127.0.0.1:4222"], nodeId: "kite1" },
 * });
 * await broker.listen(); // a node of cluster "kite"
 * ```
 */
export interface ClusterOptions {
  /**
   * NATS server URLs (`nats://host:4222`; several for a NATS cluster),
   * JetStream enabled. Empty: no cluster.
   */
  url?: string[];
  /**
   * This node's id, unique in the cluster (letters, digits, `-` and `_`, at
   * most 64). Default: the host name and the MQTT port.
   */
  nodeId?: string;
  /**
   * The cluster's name: the prefix of every NATS subject, stream and
   * bucket it uses, so that two clusters can share one NATS (letters,
   * digits, `-` and `_`). Default `kite`.
   */
  name?: string;
}

/** The options that are plain settings (flags, YAML keys): all but hooks. */
export type BrokerSettings = Omit<BrokerOptions, keyof BrokerHooks>;

/**
 * Settings of `broker/main.ts` that are not `Broker` options: files that
 * main.ts turns into hooks with `fileAuth()` from `auth.ts` (and reloads on
 * SIGHUP). A library user calls `fileAuth()` and spreads its hooks instead.
 */
export interface MainSettings {
  /** Password file written by `kite passwd`; enables password checks. */
  passwordFile?: string;
  /** ACL file (Mosquitto-style `user`/`topic`/`pattern` lines). */
  aclFile?: string;
}

/** Every setting of the `SETTINGS` table: broker options and main's. */
export type KiteSettings = BrokerSettings & MainSettings;
