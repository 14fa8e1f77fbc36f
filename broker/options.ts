/**
 * Broker options: the `BrokerOptions` type and its defaults. Parsing of CLI
 * flags and YAML config files, and validation, live here too.
 *
 * @module
 */

import type { QoS } from "../codec/packet.ts";

/** Options of a `Broker`. Every field is optional; see `DEFAULT_OPTIONS`. */
export interface BrokerOptions {
  /** Interface to listen on. Default `0.0.0.0`. */
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
  /** v5 Server Keep Alive in seconds; 0 leaves the client's. Default 0. */
  serverKeepAlive?: number;
  /** Unacknowledged QoS 1/2 messages to a client at once. Default 1000. */
  maxInflightMessages?: number;
  /** Messages queued per session beyond in-flight ones. Default 1000. */
  maxQueuedMessages?: number;
  /** Allow clients without a username. Default true. */
  allowAnonymous?: boolean;
  /** Interval of `$SYS/broker/...` publications in seconds; 0 turns them off. Default 10. */
  sysInterval?: number;
}

/** The defaults of every option. */
export const DEFAULT_OPTIONS: Readonly<Required<BrokerOptions>> = {
  host: "0.0.0.0",
  port: 1883,
  maxConnections: 10000,
  maxPacketSize: 256 * 1024,
  enablePersistence: false,
  persistencePath: "./mqtt_data",
  sessionExpiryInterval: 3600,
  maxQos: 2,
  retainAvailable: true,
  wildcardSubscriptionAvailable: true,
  sharedSubscriptionAvailable: true,
  receiveMaximum: 65535,
  serverKeepAlive: 0,
  maxInflightMessages: 1000,
  maxQueuedMessages: 1000,
  allowAnonymous: true,
  sysInterval: 10,
};
