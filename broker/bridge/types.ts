/**
 * The types of bridges: {@linkcode BridgeOptions} (one entry of the
 * `bridges` setting), {@linkcode BridgeTopic} (one topic rule, Mosquitto's
 * `topic` line) and {@linkcode BridgeStatus} (what `Broker.bridges`
 * reports).
 *
 * @module
 */

import type { QoS } from "../../codec/packet.ts";

/**
 * Which way a topic rule carries messages: `out` from this broker to the
 * remote one, `in` from the remote to this one, `both` both ways.
 */
export type BridgeDirection = "in" | "out" | "both";

/**
 * One topic rule of a bridge, with the semantics of Mosquitto's `topic
 * pattern [direction [qos [local-prefix remote-prefix]]]` line: on this
 * broker the filter is `localPrefix + pattern`, on the remote one
 * `remotePrefix + pattern`, and a message crossing has its local prefix
 * replaced by the remote one (or the other way round). A `pattern` of `""`
 * with both prefixes maps one topic onto another (the prefixes are then
 * whole topics).
 *
 * @example
 * ```ts
 * import type { BridgeTopic } from "@kite/mqtt/broker";
 * // sensors/# here is edge-1/sensors/# on the remote broker.
 * const rule: BridgeTopic = {
 *   pattern: "sensors/#",
 *   direction: "out",
 *   qos: 1,
 *   remotePrefix: "edge-1/",
 * };
 * ```
 */
export interface BridgeTopic {
  /** The topic filter between the prefixes (`+`/`#` allowed). */
  pattern: string;
  /** Default `out` (as Mosquitto). */
  direction?: BridgeDirection;
  /**
   * The highest QoS across the bridge: a message crosses at the lower of
   * its own QoS and this one. Default 0 (as Mosquitto).
   */
  qos?: QoS;
  /** Put before `pattern` on this broker (no wildcards). Default none. */
  localPrefix?: string;
  /** Put before `pattern` on the remote broker (no wildcards). Default none. */
  remotePrefix?: string;
}

/**
 * TLS settings of a bridge's `mqtts://` and `wss://` addresses.
 *
 * @example
 * ```ts
 * import type { BridgeTlsOptions } from "@kite/mqtt/broker";
 * // Mutual TLS: trust a private CA, present a client certificate.
 * const tls: BridgeTlsOptions = {
 *   caFile: "/etc/kite/ca.crt",
 *   certFile: "/etc/kite/edge-1.crt",
 *   keyFile: "/etc/kite/edge-1.key",
 * };
 * ```
 */
export interface BridgeTlsOptions {
  /** PEM certificates of CAs to trust besides the system's. */
  caCerts?: string[];
  /** A PEM file of CA certificates to trust, read when the bridge starts. */
  caFile?: string;
  /**
   * A PEM file with the client certificate (chain) to present, for a
   * remote that asks for one (mutual TLS, Mosquitto's
   * `require_certificate`); needs `keyFile`. Read at each connection
   * attempt, so a renewed certificate is used from the next reconnect on.
   */
  certFile?: string;
  /** The PEM file of the client certificate's private key. */
  keyFile?: string;
}

/**
 * One bridge: a connection from this broker to another MQTT broker that
 * carries messages both ways by topic rules (as Mosquitto's `connection`
 * section). Only `name`, `addresses` and `topics` are required.
 *
 * @example
 * ```ts
 * import type { BridgeOptions } from "@kite/mqtt/broker";
 * const cloud: BridgeOptions = {
 *   name: "cloud",
 *   addresses: ["mqtts://mqtt.example.com:8883"],
 *   username: "edge-1",
 *   password: "secret",
 *   topics: [
 *     { pattern: "sensors/#", direction: "out", qos: 1, remotePrefix: "edge-1/" },
 *     { pattern: "commands/edge-1/#", direction: "in", qos: 1 },
 *   ],
 * };
 * ```
 */
export interface BridgeOptions {
  /**
   * Names the bridge in logs, `$SYS` and the default client id: letters,
   * digits, `.`, `_` and `-`.
   */
  name: string;
  /**
   * `mqtt://host[:port]` (default port 1883), `mqtts://host[:port]` (8883),
   * `ws://host[:port][/path]` (80, path `/mqtt`) or
   * `wss://host[:port][/path]` (443), over TLS for `mqtts` and `wss`;
   * with several, the next is tried when one fails.
   */
  addresses: string[];
  /**
   * With several addresses: false (default) goes back to the first address
   * whenever the connection is lost; true goes on with the next one.
   */
  roundRobin?: boolean;
  /** 5 (default) or 4 (MQTT 3.1.1). */
  protocolVersion?: 4 | 5;
  /** The client id on the remote broker. Default `kite-bridge-<name>-<host name>`. */
  clientId?: string;
  /** User name on the remote broker. */
  username?: string;
  /** Password on the remote broker. */
  password?: string;
  /** TLS settings for `mqtts://` addresses. */
  tls?: BridgeTlsOptions;
  /**
   * Clean Start (v5) / Clean Session (3.1.1) on the first connection.
   * Default false: the remote keeps the bridge's session (its
   * subscriptions and the messages it queues) across reconnects.
   */
  cleanStart?: boolean;
  /** v5 Session Expiry Interval in seconds. Default 86400 (a day). */
  sessionExpiryInterval?: number;
  /** Keep alive in seconds. Default 60. */
  keepAlive?: number;
  /**
   * MQTT 3.1.1: send Mosquitto's bridge flag (`try_private`: protocol
   * level 0x84), so that a remote that knows it (Mosquitto, Kite) neither
   * echoes the bridge's messages back nor clears their retain flags; a
   * remote that refuses it is connected to without it. (MQTT 5 needs no
   * flag: the bridge subscribes with No Local and Retain As Published.)
   * Default true.
   */
  tryPrivate?: boolean;
  /** The topic rules (at least one). */
  topics: BridgeTopic[];
  /**
   * Publish the bridge's state, retained: `1` when connected, `0` when
   * not, here and on the remote broker (there as the bridge's will too).
   * Default true.
   */
  notifications?: boolean;
  /**
   * The notification topic on both brokers. Default
   * `$SYS/broker/connection/<name>/state` here and
   * `$SYS/broker/connection/<clientId>/state` on the remote (as Mosquitto;
   * Kite lets a client publish its own state there, and no other `$SYS`
   * topic).
   */
  notificationTopic?: string;
  /** Publish the state on this broker only. Default false. */
  notificationsLocalOnly?: boolean;
  /**
   * QoS 1/2 messages waiting to be sent to the remote (while it is down,
   * or held back by its Receive Maximum, which bounds those in flight).
   * When full, new messages are dropped (logged once per episode, counted
   * in `Broker.bridges` and `messagesDropped`); those held are kept. With
   * persistence on, they (and those in flight) are kept in the broker's
   * store until the remote acknowledges them, and survive a restart or a
   * crash. Default 10000.
   */
  maxQueued?: number;
  /**
   * Bytes (payload plus topic) of the messages waiting to be sent to the
   * remote, as `maxQueued` counts them; past it new messages are dropped
   * the same way. 0 (default): no byte bound.
   */
  maxQueuedBytes?: number;
  /**
   * The user name the bridge has on this broker, as Mosquitto's
   * `local_username`: messages coming in are authorized by
   * `authorizePublish` (an ACL file's `write` rules) as this user, with
   * client id `local.<clientId>`, and a refused one is dropped (counted,
   * logged at most every ten seconds); messages going out are checked by
   * `authorizeRead` (`read` rules). Default none: bridged messages are
   * trusted, as configuration.
   */
  localUsername?: string;
  /** Milliseconds before the first reconnect attempt (jittered, doubling). Default 500. */
  reconnectDelay?: number;
  /** Longest wait between reconnect attempts, in milliseconds. Default 30000. */
  maxReconnectDelay?: number;
}

/**
 * The state of one bridge, from `Broker.bridges`.
 *
 * @example
 * ```ts ignore
 * for (const b of broker.bridges) {
 *   console.log(b.name, b.connected ? "up" : "down", b.address, b.queued);
 * }
 * ```
 */
export interface BridgeStatus {
  /** The bridge's name. */
  name: string;
  /** Whether it is connected to the remote broker now. */
  connected: boolean;
  /** The address in use, or tried next, as `mqtt(s)://host:port`. */
  address: string;
  /** Messages waiting to be sent to the remote broker. */
  queued: number;
  /** QoS 1/2 messages sent to the remote broker, not yet acknowledged. */
  inFlight: number;
  /** Messages sent to the remote broker (QoS 1/2: acknowledged). */
  sent: number;
  /** Messages received from the remote broker. */
  received: number;
  /**
   * Messages not delivered: QoS 0 while the remote was down, the queue
   * full, expired while waiting, refused by the remote, or (coming in)
   * refused by `authorizePublish` for `localUsername`.
   */
  dropped: number;
}
