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
import type { BridgeOptions } from "../bridge/types.ts";
import type { BrokerHooks } from "../hooks.ts";
import type { ListenerProtocol } from "../listen/listener.ts";

/**
 * One more listener of a broker (besides `host`/`port`, the MQTT/TCP one):
 * an entry of `BrokerOptions.listeners` (YAML `listeners:`).
 *
 * @example
 * ```ts
 * import type { ListenerConfig } from "@kite/mqtt/broker";
 * const tls: ListenerConfig = {
 *   protocol: "mqtts",
 *   port: 8883,
 *   certFile: "/etc/kite/server.crt",
 *   keyFile: "/etc/kite/server.key",
 * };
 * const ws: ListenerConfig = { protocol: "ws", port: 8080, path: "/mqtt" };
 * ```
 */
export interface ListenerConfig {
  /** `mqtt` (TCP), `mqtts` (TLS), `ws` (WebSocket) or `wss` (WebSocket over TLS). */
  protocol: ListenerProtocol;
  /** The interface to listen on. Default: the broker's `host`. */
  host?: string;
  /** The port; 0 picks a free one. */
  port: number;
  /** `mqtts`/`wss`: the certificate chain, a PEM file (reloaded on SIGHUP). */
  certFile?: string;
  /** `mqtts`/`wss`: its private key, a PEM file. */
  keyFile?: string;
  /**
   * `mqtts`/`wss`: CA certificates (PEM file) that client certificates must
   * chain to; used with `requireClientCertificate`.
   */
  caFile?: string;
  /**
   * `mqtts`/`wss`: refuse clients without a certificate that `caFile`
   * vouches for (mutual TLS). Default false.
   */
  requireClientCertificate?: boolean;
  /**
   * `mqtts`/`wss` with `requireClientCertificate`: the client certificate's
   * subject CN is the client's user name (the CONNECT's user name and
   * password are ignored, and the `authenticate` hook is not asked: the
   * certificate proved who it is), as Mosquitto's `use_identity_as_username`.
   * The authorization hooks and the ACL see that name. Default false.
   */
  useIdentityAsUsername?: boolean;
  /** `ws`/`wss`: the path of the endpoint. Default `/mqtt`. */
  path?: string;
  /**
   * `ws`/`wss`: the origins browsers may connect from
   * (`https://example.com`); a request from another origin gets 403, one
   * without an `Origin` header (not a browser) is let in. Default: any.
   */
  allowedOrigins?: string[];
  /** Connections this listener holds at most (besides `maxConnections`). */
  maxConnections?: number;
}

/** Options of a `Broker`. Every field is optional; see `DEFAULT_OPTIONS`. */
export interface BrokerOptions extends BrokerHooks {
  /**
   * Interface to listen on. Default `0.0.0.0` (`broker/main.ts`: `127.0.0.1`
   * unless a password file is configured).
   */
  host?: string;
  /** TCP port; 0 picks a free port. Default 1883. */
  port?: number;
  /**
   * More listeners: MQTT over TLS (`mqtts`), WebSocket (`ws`, `wss`) or
   * another TCP port (`mqtt`), each with its own port and settings (see
   * `ListenerConfig`). `host`/`port` stay the first listener. Default none.
   */
  listeners?: ListenerConfig[];
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
  /**
   * Longest keep alive a client may use, in seconds, as Mosquitto's
   * `max_keepalive`: a v5 client asking more (or 0, no keep alive) gets
   * CONNACK Server Keep Alive with this value and is held to it; a 3.1.1
   * client asking more (or 0) is refused with CONNACK 0x02 (identifier
   * rejected), as 3.1.1 cannot tell it another value; a client asking less
   * keeps its own. 65535 (the default): no cap.
   */
  maxKeepAlive?: number;
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
  /**
   * Port of the broker's HTTP server: `GET /metrics` (Prometheus),
   * `GET /healthz`, the admin API under `/api/v1/` and the dashboard at
   * `/`. -1 (the default) turns it off; 0 picks a free port
   * (`Broker.httpAddr` says which).
   */
  httpPort?: number;
  /** Interface of the HTTP server. Default `127.0.0.1`. */
  httpHost?: string;
  /**
   * Bearer token the admin API (`/api/...`) asks for. Empty (the default):
   * the API answers loopback clients only. `/metrics`, `/healthz` and the
   * dashboard page need no token.
   */
  httpToken?: string;
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
   * Bridges to other MQTT brokers (as Mosquitto's `connection` sections):
   * each connects with Kite's client and carries messages by its topic
   * rules, `in`, `out` or `both`. A config file gives them as a YAML list;
   * see `BridgeOptions` and the README's "Bridging". Default none.
   */
  bridges?: readonly BridgeOptions[];
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
  /** `text` (default) or `json`: one JSON object per log line. */
  logFormat?: "text" | "json";
}

/** Every setting of the `SETTINGS` table: broker options and main's. */
export type KiteSettings = BrokerSettings & MainSettings;
