/**
 * Read-only views of the broker's state for operators (the admin API in
 * http/, and anyone embedding the broker): plain objects built on demand
 * from the core's connections and sessions, never kept.
 *
 * @module
 */

import type { ProtocolVersion, QoS } from "../codec/packet.ts";
import type { Session } from "./session.ts";

/** What a client view reads of a connection (`CoreConnection` has it). */
export interface ViewedConnection {
  /** The client identifier. */
  readonly clientId: string;
  /** The protocol version. */
  readonly version: ProtocolVersion;
  /** Keep alive in seconds. */
  readonly keepAlive: number;
  /** Epoch ms of its CONNACK. */
  readonly connectedAt: number;
  /** Bytes queued for the socket. */
  readonly bufferedAmount: number;
  /** The user name. */
  readonly username: string | undefined;
  /** The peer address. */
  readonly remoteAddress: string | undefined;
}

/** A connected client, as the admin API lists it. */
export interface ClientView {
  /** The client identifier. */
  clientId: string;
  /** The user name it connected (or authenticated) with. */
  username?: string;
  /** The peer address (`host:port`), if the transport knows it. */
  address?: string;
  /** 3 (MQTT 3.1), 4 (3.1.1) or 5. */
  protocolVersion: ProtocolVersion;
  /** Keep alive in seconds (0: none). */
  keepAlive: number;
  /** Epoch ms of its CONNACK. */
  connectedAt: number;
  /** Seconds its session outlives the connection. */
  sessionExpiryInterval: number;
  /** Subscriptions of its session. */
  subscriptions: number;
  /** QoS 1/2 messages sent to it and not yet acknowledged. */
  inflight: number;
  /** Messages waiting for room in its window or buffer. */
  queued: number;
  /** Bytes written to its socket's queue and not yet sent. */
  bufferedBytes: number;
}

/** A session, connected or offline. */
export interface SessionView {
  /** The client identifier. */
  clientId: string;
  /** The user name of its owner. */
  username?: string;
  /** Whether a connection is attached. */
  connected: boolean;
  /** The protocol version of its last connection. */
  protocolVersion: ProtocolVersion;
  /** Seconds it outlives its connection (4294967295: never expires). */
  expiryInterval: number;
  /** Subscriptions it holds. */
  subscriptions: number;
  /** QoS 1/2 messages in flight. */
  inflight: number;
  /** Messages queued. */
  queued: number;
  /** Bytes (payload + topic) of the queued messages. */
  queuedBytes: number;
  /** Epoch ms of the disconnect, while offline. */
  disconnectedAt?: number;
  /** Epoch ms at which it expires, while offline (unless it never does). */
  expiresAt?: number;
}

/** One subscription of a session. */
export interface SubscriptionView {
  /** The client identifier of the session. */
  clientId: string;
  /** The filter as subscribed (`$share/{group}/...` included). */
  filter: string;
  /** The granted QoS. */
  qos: QoS;
  /** The share name, for a `$share/{group}/{filter}` subscription. */
  shareGroup?: string;
  /** v5 No Local. */
  noLocal?: boolean;
  /** v5 Retain As Published. */
  retainAsPublished?: boolean;
  /** v5 Retain Handling (0, 1 or 2). */
  retainHandling?: number;
  /** v5 Subscription Identifier. */
  subscriptionIdentifier?: number;
}

/** The view of a connected client. */
export function clientView(c: ViewedConnection, session: Session): ClientView {
  const v: ClientView = {
    clientId: c.clientId,
    protocolVersion: c.version,
    keepAlive: c.keepAlive,
    connectedAt: c.connectedAt,
    sessionExpiryInterval: session.expiryInterval,
    subscriptions: session.subscriptionCount,
    inflight: session.inflightCount,
    queued: session.waiting,
    bufferedBytes: c.bufferedAmount,
  };
  if (c.username !== undefined) v.username = c.username;
  const address = c.remoteAddress;
  if (address !== undefined) v.address = address;
  return v;
}

/** The view of a session. */
export function sessionView(s: Session): SessionView {
  const v: SessionView = {
    clientId: s.clientId,
    connected: s.link !== undefined,
    protocolVersion: s.protocolVersion,
    expiryInterval: s.expiryInterval,
    subscriptions: s.subscriptionCount,
    inflight: s.inflightCount,
    queued: s.waiting,
    queuedBytes: s.queuedBytes,
  };
  if (s.username !== undefined) v.username = s.username;
  const at = s.disconnectedAt;
  if (s.link === undefined && at !== undefined) {
    v.disconnectedAt = at;
    if (s.expiryInterval !== 0xffffffff) {
      v.expiresAt = at + s.expiryInterval * 1000;
    }
  }
  return v;
}

/** The subscriptions of a session, in the order they were made. */
export function subscriptionViews(s: Session): SubscriptionView[] {
  const out: SubscriptionView[] = [];
  if (s.subscriptionCount === 0) return out;
  for (const sub of s.subscriptions.values()) {
    const v: SubscriptionView = {
      clientId: s.clientId,
      filter: sub.filter,
      qos: sub.qos,
    };
    if (sub.filter.startsWith("$share/")) {
      v.shareGroup = sub.filter.slice(7, sub.filter.indexOf("/", 7));
    }
    if (sub.noLocal !== undefined) v.noLocal = sub.noLocal;
    if (sub.retainAsPublished !== undefined) {
      v.retainAsPublished = sub.retainAsPublished;
    }
    if (sub.retainHandling !== undefined) {
      v.retainHandling = sub.retainHandling;
    }
    if (sub.subscriptionIdentifier !== undefined) {
      v.subscriptionIdentifier = sub.subscriptionIdentifier;
    }
    out.push(v);
  }
  return out;
}
