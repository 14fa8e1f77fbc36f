/**
 * What a `Session` needs from around it: the connection it is attached to
 * (`SessionLink`) and the broker's settings and services
 * (`SessionContext`). Kept apart so the session's rules can be tested with
 * a fake link and a memory store.
 *
 * @module
 */

import type { Packet, ProtocolVersion } from "../codec/packet.ts";
import type { PublishEncoding } from "./delivery.ts";
import type { AuthorizationEpochHook, AuthorizeReadHook } from "./hooks.ts";
import type { DropCounters } from "./metrics.ts";
import type { Store, StoredSubscription } from "./store/store.ts";

/** What a session needs from the connection it is attached to. */
export interface SessionLink {
  /** The protocol version of the connection. */
  readonly version: ProtocolVersion;
  /** Most QoS 1/2 messages unacknowledged at once (v5 receive maximum). */
  readonly sendWindow: number;
  /** The client's v5 Maximum Packet Size (Infinity when not given). */
  readonly maxPacketSize: number;
  /** False while the connection's output buffer is over its bound. */
  writable(): boolean;
  /**
   * Queues an encoded PUBLISH, patching the packet id (and DUP) in; with
   * `durable`, only once the store has committed what is pending.
   */
  sendPublish(
    enc: PublishEncoding,
    packetId: number,
    dup: boolean,
    durable?: boolean,
  ): void;
  /** Queues any other packet (`durable` as for `sendPublish`). */
  send(packet: Packet, durable?: boolean): void;
  /** Closes the connection: another one took its client id over. */
  takeOver?(): void;
}

/** Per-broker settings and services a session uses. */
export interface SessionContext {
  store: Store;
  maxQueuedMessages: number;
  /** Bytes (payload + topic length) a queue may hold; 0 or absent: no bound. */
  maxQueuedBytes?: number;
  queueQos0Messages: boolean;
  /** Counters the session adds its dropped messages to (by reason). */
  stats?: DropCounters;
  /** Checks each message a session is about to receive (hooks.ts). */
  authorizeRead?: AuthorizeReadHook;
  /** Invalidates the cached `authorizeRead` answers when it changes. */
  authorizationEpoch?: AuthorizationEpochHook;
}

/** A subscription as the session keeps it (qos is the granted QoS). */
export type SessionSubscription = StoredSubscription;
