/**
 * The reserved id of a bridge (private): its id as a publisher and
 * subscriber in the dispatcher, and the session id its messages for the
 * remote are stored under. It starts with U+0000, which no MQTT client id
 * may hold [MQTT-1.5.4-2], so no client can take it.
 *
 * @module
 */

import type { SessionRecord } from "../store/store.ts";

const PREFIX = "\u0000bridge:";

/** The reserved id of bridge `name`. */
export function bridgeId(name: string): string {
  return PREFIX + name;
}

/**
 * The stored session of bridge id `id`, which its messages and QoS 2 ids
 * belong to (a store loads those with their session only): it never
 * expires and has no subscriptions.
 */
export function bridgeRecord(id: string): SessionRecord {
  return {
    clientId: id,
    protocolVersion: 5,
    expiryInterval: 0xffffffff,
    subscriptions: [],
  };
}

/** Whether a stored session id is a bridge's. */
export function isBridgeId(id: string): boolean {
  return id.startsWith(PREFIX);
}

/** The bridge name of a reserved id. */
export function bridgeName(id: string): string {
  return id.slice(PREFIX.length);
}
