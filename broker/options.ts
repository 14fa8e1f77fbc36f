/**
 * Broker options: the `BrokerOptions` type and its defaults. Parsing of CLI
 * flags and YAML config files, and validation, live here too.
 *
 * @module
 */

import type { Properties, ProtocolVersion, QoS } from "../codec/packet.ts";

/** Who a hook is asked about: a connected (or connecting) client. */
export interface ClientInfo {
  /** The client identifier (the assigned one when the client sent none). */
  clientId: string;
  /** The user name of the CONNECT, if any. */
  username?: string;
  /** 3, 4 or 5. */
  protocolVersion: ProtocolVersion;
  /** The peer address, e.g. `127.0.0.1:50123`, when the transport knows it. */
  remoteAddress?: string;
}

/** What `authenticate` is given: the client and its CONNECT credentials. */
export interface AuthenticateContext extends ClientInfo {
  /** The password of the CONNECT, if any. Never log it. */
  password?: Uint8Array;
  /** The v5 CONNECT properties (authentication method and data, ...). */
  properties?: Properties;
}

/**
 * Decides whether a client may connect: returns `ReasonCode.Success` (0) or a
 * v5 CONNACK reason code (>= 0x80; mapped to the 3.1.1 return code for 3.1.1
 * clients, e.g. 0x86 -> 4, 0x87 -> 5).
 */
export type AuthenticateHook = (
  ctx: AuthenticateContext,
) => Promise<number> | number;

/**
 * Decides whether a client may publish to `topic`: returns 0 to allow or a v5
 * reason code (>= 0x80, e.g. 0x87) to refuse. A refused message is not
 * routed; a v5 QoS > 0 publisher gets the code in its PUBACK/PUBREC.
 */
export type AuthorizePublishHook = (
  client: ClientInfo,
  topic: string,
  qos: QoS,
  retain: boolean,
) => Promise<number> | number;

/**
 * Decides whether a client may subscribe to `filter`: returns the granted
 * QoS (0-2, at most `qos`) or a v5 reason code >= 0x80 to refuse (3.1.1
 * clients get 0x80 in SUBACK).
 */
export type AuthorizeSubscribeHook = (
  client: ClientInfo,
  filter: string,
  qos: QoS,
) => Promise<number> | number;

/** The extension points of a `Broker`: default allow everything. */
export interface BrokerHooks {
  /** Called for every CONNECT after the protocol checks. */
  authenticate?: AuthenticateHook;
  /** Called for every PUBLISH (and will) before it is routed. */
  authorizePublish?: AuthorizePublishHook;
  /** Called for every filter of a SUBSCRIBE. */
  authorizeSubscribe?: AuthorizeSubscribeHook;
}

/** Options of a `Broker`. Every field is optional; see `DEFAULT_OPTIONS`. */
export interface BrokerOptions extends BrokerHooks {
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
  /** Seconds a new connection has to send its CONNECT. Default 10. */
  connectTimeout?: number;
  /** Queue QoS 0 messages for offline sessions too. Default false. */
  queueQos0Messages?: boolean;
}

/** The options that are plain settings (flags, YAML keys): all but hooks. */
export type BrokerSettings = Omit<BrokerOptions, keyof BrokerHooks>;

/** The defaults of every option. */
export const DEFAULT_OPTIONS: Readonly<Required<BrokerSettings>> = {
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
  connectTimeout: 10,
  queueQos0Messages: false,
};
