/**
 * The reserved id of a bridge (private): its id as a publisher and
 * subscriber in the dispatcher, and the session id its messages for the
 * remote are stored under. It starts with U+0000, which no MQTT client id
 * may hold [MQTT-1.5.4-2], so no client can take it.
 *
 * @module
 */

const PREFIX = "\u0000bridge:";

/** The reserved id of bridge `name`. */
export function bridgeId(name: string): string {
  return PREFIX + name;
}

/** Whether a stored session id is a bridge's. */
export function isBridgeId(id: string): boolean {
  return id.startsWith(PREFIX);
}

/** The bridge name of a reserved id. */
export function bridgeName(id: string): string {
  return id.slice(PREFIX.length);
}
