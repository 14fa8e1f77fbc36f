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
