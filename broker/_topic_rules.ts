/**
 * Topic rules of the broker's own, beyond the protocol's: `tooDeep()` (more
 * levels than `maxTopicLevels`) and `isSysTopic()` (`$SYS` is the
 * broker's). Private to the broker.
 *
 * @module
 */

/**
 * Whether `topic` has more than `max` levels (0: no limit). Counts at most
 * `max` separators, and none for a topic shorter than `max` characters
 * (n characters hold at most n + 1 levels), so a PUBLISH pays nearly
 * nothing.
 *
 * @example
 * ```ts ignore
 * tooDeep("a/b/c", 3); // false
 * tooDeep("a/b/c/d", 3); // true
 * tooDeep("a/b/c/d", 0); // false
 * ```
 */
export function tooDeep(topic: string, max: number): boolean {
  if (max === 0 || topic.length < max) return false;
  let i = -1;
  for (let levels = 1; levels <= max; levels++) {
    i = topic.indexOf("/", i + 1);
    if (i === -1) return false;
  }
  return true;
}

/**
 * Whether `topic` begins with `$SYS`: the broker's own topics, which no
 * client may publish to (a PUBLISH is refused like an authorization
 * refusal, a will refused at CONNECT). One character compare for most
 * topics.
 *
 * @example
 * ```ts ignore
 * isSysTopic("$SYS/broker/version"); // true
 * isSysTopic("sys/x"); // false
 * ```
 */
export function isSysTopic(topic: string): boolean {
  return topic.charCodeAt(0) === 0x24 && topic.startsWith("$SYS");
}

/**
 * The one `$SYS` topic a client may publish to (and leave as its will):
 * `$SYS/broker/connection/<its client id>/state`, its own connection state,
 * where a bridge (Mosquitto's, Kite's) publishes `1` and leaves `0` as its
 * will. `authorizePublish` still decides.
 *
 * @example
 * ```ts ignore
 * bridgeStateTopic("$SYS/broker/connection/edge-1/state", "edge-1"); // true
 * bridgeStateTopic("$SYS/broker/connection/edge-2/state", "edge-1"); // false
 * ```
 */
export function bridgeStateTopic(topic: string, clientId: string): boolean {
  return topic.length === clientId.length + 29 &&
    topic.startsWith("$SYS/broker/connection/") && topic.endsWith("/state") &&
    topic.startsWith(clientId, 23);
}
