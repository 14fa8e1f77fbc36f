/**
 * The `Dispatcher` seam: who gets a published message. The broker core calls
 * only this interface; the local `Router` (router.ts) is the first
 * implementation, and a cluster or a bridge wraps or feeds the same
 * interface (publishing remote messages into it, or subscribing a
 * `Subscriber` of its own).
 *
 * A `Subscriber` is what a dispatcher delivers to: a session, or anything
 * else that takes messages (a bridge's outgoing side). The dispatcher keeps
 * its matching state (trie, shared groups, de-duplication scratch) inside;
 * a subscriber only answers whether it has room and takes deliveries.
 *
 * @module
 */

import type { ProtocolVersion, QoS } from "../codec/packet.ts";
import type { FanoutCache, OutgoingMessage } from "./delivery.ts";
import type { StoredMessage, StoredSubscription } from "./store/store.ts";

/** A parsed `$share/{group}/{filter}`. */
export interface SharedFilter {
  /** The share name. */
  group: string;
  /** The topic filter after the share name. */
  filter: string;
}

/** What a dispatcher delivers to. */
export interface Subscriber {
  /** The client identifier (No Local compares it with the publisher's). */
  readonly clientId: string;
  /** The protocol version deliveries are encoded for. */
  readonly protocolVersion: ProtocolVersion;
  /** Whether it is online (connected). */
  readonly online: boolean;
  /**
   * A bridge (a 3.1/3.1.1 client that sent Mosquitto's bridge flag): its
   * Retain As Published applies whatever its protocol version.
   */
  readonly bridge?: boolean;
  /** Online, with a free receive-window slot and nothing queued. */
  hasRoom(): boolean;
  /** Online, with its output buffer under its bound. */
  writable(): boolean;
  /**
   * Whether it may receive a message published to `topic` (read
   * authorization). A dispatcher skips, when it picks one member of a
   * shared group, members that may not; `deliver` checks it for everyone.
   * Absent: always true.
   */
  mayRead?(topic: string): boolean;
  /**
   * Takes one message at `qos` (already the minimum of publish and grant),
   * with the retain flag to deliver and the v5 subscription identifiers.
   * `cache` shares encodings among the subscribers of one publish; `group`
   * is the shared group it came through (see `SharedMember`).
   */
  deliver(
    message: StoredMessage,
    qos: QoS,
    retain: boolean,
    subIds: number[] | undefined,
    cache: FanoutCache | undefined,
    group?: object,
  ): void;
}

/**
 * A subscriber that can be a shared-subscription member: when it leaves,
 * the messages it has not surely received through a group can be handed to
 * another member (`Dispatcher.memberLeft`).
 */
export interface SharedMember extends Subscriber {
  /** Seconds its session outlives its connection (0: none). */
  readonly expiryInterval: number;
  /** Messages queued, not yet sent. */
  readonly queued: number;
  /** QoS 1/2 messages sent and not completed. */
  readonly inflightCount: number;
  /**
   * Removes and returns the messages routed through a group for which
   * `canMove` is true that may go to another member (queued ones and QoS 1
   * in flight; never a QoS 2 in flight [MQTT-4.8.2-4]).
   */
  takeShared(canMove: (group: object) => boolean): OutgoingMessage[];
}

/**
 * Routes published messages to subscribers.
 *
 * @example
 * ```ts ignore
 * const d: Dispatcher = new Router(2);
 * d.subscribe(session, { filter: "a/+", qos: 1 });
 * d.publish(message, "publisher-id"); // how many subscribers it went to
 * ```
 */
export interface Dispatcher {
  /** Subscriptions held (shared ones included). */
  readonly size: number;
  /** Shared subscriptions held (for metrics; absent: not counted). */
  readonly sharedSize?: number;
  /** Adds or replaces a subscription; `shared` when it is a `$share` one. */
  subscribe(
    subscriber: Subscriber,
    sub: StoredSubscription,
    shared?: SharedFilter,
  ): void;
  /** Removes a subscription; true when it existed. */
  unsubscribe(
    subscriber: Subscriber,
    filter: string,
    shared?: SharedFilter,
  ): boolean;
  /**
   * Delivers `message` to every matching subscriber (one member per
   * matching shared group); returns how many it went to. `publisherId` is
   * for No Local.
   */
  publish(message: StoredMessage, publisherId: string | undefined): number;
  /**
   * Optional: whether some subscription's filter may start with the exact
   * level `level` (false: none does, so a `$SYS/...` message would go to
   * nobody [MQTT-4.7.2-1]). Absent: the broker routes such messages.
   */
  hasFirstLevel?(level: string): boolean;
  /**
   * A member's connection ended: what it had not surely received through
   * shared groups goes to other online members; the rest stays with it.
   */
  memberLeft(member: SharedMember): void;
}
