/**
 * Topic names, topic filters, shared-subscription parsing and the one topic
 * matcher that the broker and the client share.
 *
 * A topic name (PUBLISH) is a `/`-separated list of levels without
 * wildcards; a topic filter (SUBSCRIBE) may use `+` for exactly one level and
 * `#` for any number of trailing levels, including none. Empty levels
 * (`a//b`, `/a`, `a/`) are real levels.
 *
 * @module
 */

import { MqttError } from "./errors.ts";
import { ReasonCode } from "./reason_code.ts";

/** The longest topic name or filter in UTF-8 bytes [MQTT-1.5.3]. */
export const MAX_TOPIC_BYTES = 65535;

const SLASH = 0x2f; // "/"
const PLUS = 0x2b; // "+"
const HASH = 0x23; // "#"
const SHARE_PREFIX = "$share/";

/**
 * The number of bytes `s` takes as UTF-8, without encoding it. Lone
 * surrogates count as 3 bytes (they are rejected separately).
 */
function utf8Length(s: string): number {
  let n = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) n += 1;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) {
        n += 2; // 4 bytes for 2 UTF-16 units
        i++;
      } else n += 2;
    } else n += 2;
  }
  return n;
}

/**
 * Checks the rules shared by names and filters; returns an error message or
 * `undefined`.
 */
function checkString(s: string, what: string): string | undefined {
  // A UTF-16 unit takes at most 3 UTF-8 bytes: short strings need no count.
  if (s.length > MAX_TOPIC_BYTES / 3 && utf8Length(s) > MAX_TOPIC_BYTES) {
    return `${what} is longer than ${MAX_TOPIC_BYTES} UTF-8 bytes`;
  }
  if (s.indexOf("\u0000") !== -1) {
    return `${what} contains U+0000 [MQTT-4.7.3-2]`;
  }
  if (!s.isWellFormed()) {
    return `${what} contains a lone surrogate (not well-formed UTF-8) [MQTT-1.5.3-1]`;
  }
  return undefined;
}

function nameError(name: string, allowEmpty: boolean): string | undefined {
  if (name.length === 0) {
    return allowEmpty ? undefined : "topic name is empty [MQTT-4.7.3-1]";
  }
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === PLUS || c === HASH) {
      return `topic name "${name}" contains the wildcard "${
        String.fromCharCode(c)
      }" [MQTT-3.3.2-2]`;
    }
  }
  return checkString(name, "topic name");
}

/** Validates the plain (non-shared) filter syntax. */
function plainFilterError(filter: string): string | undefined {
  const len = filter.length;
  if (len === 0) return "topic filter is empty [MQTT-4.7.3-1]";
  for (let i = 0; i < len; i++) {
    const c = filter.charCodeAt(i);
    if (c === HASH) {
      if (i !== len - 1 || (i > 0 && filter.charCodeAt(i - 1) !== SLASH)) {
        return `topic filter "${filter}": "#" must be a whole level and the last one [MQTT-4.7.1-2]`;
      }
    } else if (c === PLUS) {
      if (
        (i > 0 && filter.charCodeAt(i - 1) !== SLASH) ||
        (i + 1 < len && filter.charCodeAt(i + 1) !== SLASH)
      ) {
        return `topic filter "${filter}": "+" must occupy a whole level [MQTT-4.7.1-3]`;
      }
    }
  }
  return checkString(filter, "topic filter");
}

/** The shared subscription's parts or an error message. */
function splitShared(
  filter: string,
): { group: string; filter: string } | string {
  const slash = filter.indexOf("/", SHARE_PREFIX.length);
  if (slash === -1) {
    return `shared subscription "${filter}" has no topic filter after the group [MQTT-4.8.2-2]`;
  }
  const group = filter.slice(SHARE_PREFIX.length, slash);
  const inner = filter.slice(slash + 1);
  if (group.length === 0) {
    return `shared subscription "${filter}" has an empty share name [MQTT-4.8.2-1]`;
  }
  for (let i = 0; i < group.length; i++) {
    const c = group.charCodeAt(i);
    if (c === PLUS || c === HASH) {
      return `shared subscription "${filter}": the share name must not contain "+" or "#" [MQTT-4.8.2-2]`;
    }
  }
  if (inner.length === 0) {
    return `shared subscription "${filter}" has an empty topic filter [MQTT-4.8.2-2]`;
  }
  return { group, filter: inner };
}

function filterError(filter: string): string | undefined {
  const err = plainFilterError(filter);
  if (err !== undefined) return err;
  if (filter.startsWith(SHARE_PREFIX)) {
    const shared = splitShared(filter);
    if (typeof shared === "string") return shared;
  }
  return undefined;
}

/** Options for {@linkcode validateTopicName}. */
export interface TopicNameOptions {
  /**
   * Accept the empty name. Only an MQTT 5.0 PUBLISH that carries a topic
   * alias may have an empty topic name; the decoder decides that.
   */
  allowEmpty?: boolean;
}

/**
 * Throws unless `name` is a valid topic name: non-empty (unless
 * `allowEmpty`), no `+` or `#`, no U+0000, well-formed, at most 65,535 UTF-8
 * bytes.
 *
 * @throws {MqttError} with reason code 0x90 (TopicNameInvalid).
 *
 * @example
 * ```ts
 * import { validateTopicName } from "@kite/mqtt/codec";
 * validateTopicName("sensors/kitchen/temp"); // ok
 * try {
 *   validateTopicName("sensors/+/temp");
 * } catch (e) {
 *   console.log((e as { reasonCode: number }).reasonCode); // 144 (0x90)
 * }
 * ```
 */
export function validateTopicName(
  name: string,
  options?: TopicNameOptions,
): void {
  const err = nameError(name, options?.allowEmpty === true);
  if (err !== undefined) throw new MqttError(ReasonCode.TopicNameInvalid, err);
}

/**
 * Whether `name` is a valid topic name (see {@linkcode validateTopicName}).
 *
 * @example
 * ```ts
 * import { isValidTopicName } from "@kite/mqtt/codec";
 * isValidTopicName("a/b"); // true
 * isValidTopicName("a/#"); // false
 * ```
 */
export function isValidTopicName(
  name: string,
  options?: TopicNameOptions,
): boolean {
  return nameError(name, options?.allowEmpty === true) === undefined;
}

/**
 * Throws unless `filter` is a valid topic filter: non-empty, `#` only as the
 * whole last level, `+` only as a whole level, no U+0000, well-formed, at
 * most 65,535 UTF-8 bytes. A filter starting with `$share/` must be a valid
 * shared subscription `$share/{group}/{filter}` (group non-empty without `+`,
 * `#` or `/`, inner filter non-empty) [MQTT-4.8.2-1] [MQTT-4.8.2-2].
 *
 * @throws {MqttError} with reason code 0x8F (TopicFilterInvalid).
 *
 * @example
 * ```ts
 * import { validateTopicFilter } from "@kite/mqtt/codec";
 * validateTopicFilter("sensors/+/temp"); // ok
 * validateTopicFilter("$share/workers/jobs/#"); // ok
 * try {
 *   validateTopicFilter("a/#/b");
 * } catch (e) {
 *   console.log((e as { reasonCode: number }).reasonCode); // 143 (0x8F)
 * }
 * ```
 */
export function validateTopicFilter(filter: string): void {
  const err = filterError(filter);
  if (err !== undefined) {
    throw new MqttError(ReasonCode.TopicFilterInvalid, err);
  }
}

/**
 * Whether `filter` is a valid topic filter (see
 * {@linkcode validateTopicFilter}).
 *
 * @example
 * ```ts
 * import { isValidTopicFilter } from "@kite/mqtt/codec";
 * isValidTopicFilter("a/+/c"); // true
 * isValidTopicFilter("a+"); // false
 * ```
 */
export function isValidTopicFilter(filter: string): boolean {
  return filterError(filter) === undefined;
}

/**
 * Splits a shared subscription `$share/{group}/{filter}` into its share name
 * and inner filter; returns `undefined` for a filter that does not start
 * with `$share/`. Only the shared-subscription structure is checked here;
 * call {@linkcode validateTopicFilter} for the full rules.
 *
 * @throws {MqttError} 0x8F (TopicFilterInvalid) for a filter that starts
 * with `$share/` but has an empty or wildcard share name or no inner filter.
 *
 * @example
 * ```ts
 * import { parseSharedSubscription } from "@kite/mqtt/codec";
 * parseSharedSubscription("$share/g1/sensors/#");
 * // { group: "g1", filter: "sensors/#" }
 * parseSharedSubscription("sensors/#"); // undefined
 * ```
 */
export function parseSharedSubscription(
  filter: string,
): { group: string; filter: string } | undefined {
  if (!filter.startsWith(SHARE_PREFIX)) return undefined;
  const shared = splitShared(filter);
  if (typeof shared === "string") {
    throw new MqttError(ReasonCode.TopicFilterInvalid, shared);
  }
  return shared;
}

/**
 * Whether a filter contains a wildcard (`+` or `#`).
 *
 * @example
 * ```ts
 * import { hasWildcard } from "@kite/mqtt/codec";
 * hasWildcard("a/+/c"); // true
 * hasWildcard("a/b/c"); // false
 * ```
 */
export function hasWildcard(filter: string): boolean {
  for (let i = 0; i < filter.length; i++) {
    const c = filter.charCodeAt(i);
    if (c === PLUS || c === HASH) return true;
  }
  return false;
}
