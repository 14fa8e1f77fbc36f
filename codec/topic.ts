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
const DOLLAR = 0x24; // "$"
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

/** Message for a string that is too long, or `undefined`. */
function lengthError(s: string, what: string): string | undefined {
  // A UTF-16 unit takes at most 3 UTF-8 bytes: short strings need no count.
  if (s.length > MAX_TOPIC_BYTES / 3 && utf8Length(s) > MAX_TOPIC_BYTES) {
    return `${what} is longer than ${MAX_TOPIC_BYTES} UTF-8 bytes`;
  }
  return undefined;
}

const NUL_ERROR = "contains U+0000 [MQTT-4.7.3-2]";
const SURROGATE_ERROR =
  "contains a lone surrogate (not well-formed UTF-8) [MQTT-1.5.3-1]";

/** One pass over a name: wildcards, U+0000, surrogates; then the length. */
function nameError(name: string, allowEmpty: boolean): string | undefined {
  const len = name.length;
  if (len === 0) {
    return allowEmpty ? undefined : "topic name is empty [MQTT-4.7.3-1]";
  }
  let surrogates = false;
  for (let i = 0; i < len; i++) {
    const c = name.charCodeAt(i);
    if (c < 0x30) {
      if (c === PLUS || c === HASH) {
        return `topic name "${name}" contains the wildcard "${
          String.fromCharCode(c)
        }" [MQTT-3.3.2-2]`;
      }
      if (c === 0) return `topic name ${NUL_ERROR}`;
    } else if (c >= 0xd800 && c <= 0xdfff) surrogates = true;
  }
  if (surrogates && !name.isWellFormed()) {
    return `topic name ${SURROGATE_ERROR}`;
  }
  return lengthError(name, "topic name");
}

/** Validates the plain (non-shared) filter syntax in one pass. */
function plainFilterError(filter: string): string | undefined {
  const len = filter.length;
  if (len === 0) return "topic filter is empty [MQTT-4.7.3-1]";
  let surrogates = false;
  for (let i = 0; i < len; i++) {
    const c = filter.charCodeAt(i);
    if (c < 0x30) {
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
      } else if (c === 0) return `topic filter ${NUL_ERROR}`;
    } else if (c >= 0xd800 && c <= 0xdfff) surrogates = true;
  }
  if (surrogates && !filter.isWellFormed()) {
    return `topic filter ${SURROGATE_ERROR}`;
  }
  return lengthError(filter, "topic filter");
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
  if (filter.charCodeAt(0) === DOLLAR && filter.startsWith(SHARE_PREFIX)) {
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

/** One trie node: the filters whose levels so far lead here. */
class Node<T> {
  /** Children by exact level (including the empty level). */
  children: Map<string, Node<T>> | undefined = undefined;
  /** The `+` child. */
  plus: Node<T> | undefined = undefined;
  /** The `#` child: a leaf holding filters that end in `/#` here. */
  hash: Node<T> | undefined = undefined;
  /** key -> value for the filters that end at this node. */
  values: Map<string, T> | undefined = undefined;
  /** The filter string that ends at this node (set with `values`). */
  filter = "";

  isEmpty(): boolean {
    return this.values === undefined && this.children === undefined &&
      this.plus === undefined && this.hash === undefined;
  }
}

/**
 * The topic matcher: a trie of filter levels holding, per filter, a value
 * for each key (typically a client id). Adding and removing take time
 * proportional to the filter's depth; matching a topic visits only the trie
 * paths that can match (exact level, `+` and `#` at each level), never all
 * filters.
 *
 * Semantics:
 * - `+` matches exactly one level, `#` any number of trailing levels
 *   including none (`a/#` matches `a`).
 * - Empty levels are real levels: `a//b` has three levels, `/a` and `a/`
 *   two. `+` matches an empty level.
 * - Filters starting with `+` or `#` never match a topic whose first level
 *   starts with `$` (such as `$SYS/...`) [MQTT-4.7.2-1].
 * - A topic matched by several filters of the same key is reported once per
 *   filter; the caller decides how to combine them (for example the highest
 *   QoS, or one delivery per subscription identifier).
 *
 * Filters are taken as valid (see {@linkcode validateTopicFilter}); only a
 * `#` that is not the last level is rejected here. Shared subscriptions
 * (`$share/{group}/{filter}`) are not interpreted: the broker parses them
 * with {@linkcode parseSharedSubscription} and stores them under their inner
 * filter with a key of its choosing (for example `group + "\0" + clientId`),
 * so the filter `$share/g/a` given here would be the literal filter
 * `$share/g/a`.
 *
 * @typeParam T The value stored per filter and key (e.g. subscription options).
 *
 * @example
 * ```ts
 * import { TopicMatcher } from "@kite/mqtt/codec";
 *
 * const m = new TopicMatcher<number>();
 * m.set("sensors/+/temp", "client-1", 1);
 * m.set("sensors/#", "client-2", 0);
 * m.match("sensors/kitchen/temp", (qos, clientId, filter) => {
 *   console.log(clientId, filter, qos);
 * });
 * // client-2 sensors/# 0
 * // client-1 sensors/+/temp 1
 * // (the order of the calls is not specified)
 * m.delete("sensors/#", "client-2"); // true
 * console.log(m.size); // 1
 * ```
 */
export class TopicMatcher<T> {
  #root: Node<T> = new Node<T>();
  #size = 0;
  #nodes = 1;
  // The last matched topic and its levels: a publisher usually repeats its
  // topic, and reusing the level strings also reuses their cached hashes.
  #lastTopic = "";
  #lastLevels: string[] = [""];

  #levels(topic: string): string[] {
    if (topic === this.#lastTopic) return this.#lastLevels;
    const levels = topic.split("/");
    this.#lastTopic = topic;
    this.#lastLevels = levels;
    return levels;
  }

  /** The number of (filter, key) entries. */
  get size(): number {
    return this.#size;
  }

  /**
   * The number of trie nodes including the root (a diagnostic: removal
   * prunes nodes that no filter needs any more, so an empty matcher has 1).
   */
  get nodeCount(): number {
    return this.#nodes;
  }

  /**
   * Whether some filter may start with the level `level` (false: none; true
   * may outlast removals). `#` and `+` never match a `$` topic
   * [MQTT-4.7.2-1]: false for `$SYS` means no `$SYS/...` subscriber.
   *
   * @example
   * ```ts
   * import { TopicMatcher } from "@kite/mqtt/codec";
   * const m = new TopicMatcher<number>();
   * m.set("#", "a", 1);
   * m.hasFirstLevel("$SYS"); // false: "#" never matches "$SYS/..."
   * ```
   */
  hasFirstLevel(level: string): boolean {
    return this.#root.children?.has(level) ?? false;
  }

  /**
   * Stores `value` for `filter` and `key`, replacing the value an earlier
   * call stored for the same filter and key.
   *
   * @throws {MqttError} 0x8F (TopicFilterInvalid) when `#` is not the last
   * level.
   */
  set(filter: string, key: string, value: T): void {
    const levels = filter.split("/");
    const last = levels.length - 1;
    let node = this.#root;
    for (let i = 0; i <= last; i++) {
      const level = levels[i]!;
      let next: Node<T> | undefined;
      if (level === "#") {
        if (i !== last) {
          throw new MqttError(
            ReasonCode.TopicFilterInvalid,
            `topic filter "${filter}": "#" must be the last level [MQTT-4.7.1-2]`,
          );
        }
        next = node.hash;
        if (next === undefined) {
          node.hash = next = new Node<T>();
          this.#nodes++;
        }
      } else if (level === "+") {
        next = node.plus;
        if (next === undefined) {
          node.plus = next = new Node<T>();
          this.#nodes++;
        }
      } else {
        const children = node.children ??= new Map();
        next = children.get(level);
        if (next === undefined) {
          next = new Node<T>();
          children.set(level, next);
          this.#nodes++;
        }
      }
      node = next;
    }
    let values = node.values;
    if (values === undefined) {
      node.values = values = new Map();
      node.filter = filter;
    }
    if (!values.has(key)) this.#size++;
    values.set(key, value);
  }

  /** The node at the end of `filter`, or `undefined`; no allocation of nodes. */
  #find(filter: string): Node<T> | undefined {
    const levels = filter.split("/");
    let node: Node<T> | undefined = this.#root;
    for (let i = 0; i < levels.length && node !== undefined; i++) {
      const level = levels[i]!;
      node = level === "#"
        ? (i === levels.length - 1 ? node.hash : undefined)
        : level === "+"
        ? node.plus
        : node.children?.get(level);
    }
    return node;
  }

  /** The value stored for `filter` and `key`, or `undefined`. */
  get(filter: string, key: string): T | undefined {
    return this.#find(filter)?.values?.get(key);
  }

  /** Whether a value is stored for `filter` and `key`. */
  has(filter: string, key: string): boolean {
    return this.#find(filter)?.values?.has(key) ?? false;
  }

  /**
   * Removes the entry for `filter` and `key` and prunes trie nodes no other
   * filter needs. Returns whether there was such an entry.
   */
  delete(filter: string, key: string): boolean {
    const levels = filter.split("/");
    const path: Node<T>[] = [this.#root];
    let node: Node<T> | undefined = this.#root;
    for (let i = 0; i < levels.length; i++) {
      const level = levels[i]!;
      node = level === "#"
        ? (i === levels.length - 1 ? node.hash : undefined)
        : level === "+"
        ? node.plus
        : node.children?.get(level);
      if (node === undefined) return false;
      path.push(node);
    }
    const values = node.values;
    if (values === undefined || !values.delete(key)) return false;
    this.#size--;
    if (values.size === 0) {
      node.values = undefined;
      node.filter = "";
    }
    // Prune empty nodes bottom-up; path[i + 1] is reached by levels[i].
    for (let i = levels.length - 1; i >= 0; i--) {
      const child = path[i + 1]!;
      if (!child.isEmpty()) break;
      const parent = path[i]!;
      const level = levels[i]!;
      if (level === "#") parent.hash = undefined;
      else if (level === "+") parent.plus = undefined;
      else {
        const children = parent.children!;
        children.delete(level);
        if (children.size === 0) parent.children = undefined;
      }
      this.#nodes--;
    }
    return true;
  }

  /** Removes every entry. */
  clear(): void {
    this.#root = new Node<T>();
    this.#size = 0;
    this.#nodes = 1;
  }

  /**
   * Calls `cb(value, key, filter)` for every entry whose filter matches the
   * topic name `topic`. The callback must not modify this matcher.
   */
  match(
    topic: string,
    cb: (value: T, key: string, filter: string) => void,
  ): void {
    const levels = this.#levels(topic);
    const root = this.#root;
    // [MQTT-4.7.2-1]: no wildcard at the first level matches a `$` topic.
    if (topic.charCodeAt(0) === DOLLAR) {
      const child = root.children?.get(levels[0]!);
      if (child !== undefined) matchFrom(child, levels, 1, cb);
    } else {
      matchFrom(root, levels, 0, cb);
    }
  }

  /**
   * Whether any filter matches the topic name `topic` (stops at the first).
   */
  hasMatch(topic: string): boolean {
    const levels = this.#levels(topic);
    const root = this.#root;
    if (topic.charCodeAt(0) === DOLLAR) {
      const child = root.children?.get(levels[0]!);
      return child !== undefined && anyFrom(child, levels, 1);
    }
    return anyFrom(root, levels, 0);
  }

  /**
   * Yields `[value, key, filter]` for every entry whose filter matches
   * `topic` (a convenience over {@linkcode TopicMatcher.match}).
   */
  *matches(topic: string): Generator<[value: T, key: string, filter: string]> {
    const out: [T, string, string][] = [];
    this.match(topic, (value, key, filter) => {
      out.push([value, key, filter]);
    });
    yield* out;
  }

  /** Yields `[filter, key, value]` for every entry, in no particular order. */
  *entries(): Generator<[filter: string, key: string, value: T]> {
    const stack: Node<T>[] = [this.#root];
    while (stack.length > 0) {
      const node = stack.pop()!;
      if (node.values !== undefined) {
        for (const [key, value] of node.values) yield [node.filter, key, value];
      }
      if (node.children !== undefined) {
        for (const child of node.children.values()) stack.push(child);
      }
      if (node.plus !== undefined) stack.push(node.plus);
      if (node.hash !== undefined) stack.push(node.hash);
    }
  }
}

// What `emitOne` calls, set by `emit`: `Map.forEach` with one shared
// callback allocates nothing per entry (a `for...of` over the map makes an
// iterator and an entry array each).
let emitCb: (value: unknown, key: string, filter: string) => void = () => {};
let emitFilter = "";

function emitOne(value: unknown, key: string): void {
  emitCb(value, key, emitFilter);
}

function emit<T>(
  node: Node<T>,
  cb: (value: T, key: string, filter: string) => void,
): void {
  const values = node.values;
  if (values === undefined) return;
  // Saved and restored: `cb` may start another walk (re-entrant).
  const prevCb = emitCb;
  const prevFilter = emitFilter;
  emitCb = cb as typeof emitCb;
  emitFilter = node.filter;
  try {
    values.forEach(emitOne);
  } finally {
    emitCb = prevCb;
    emitFilter = prevFilter;
  }
}

// The pending `+` branches of the walks below, on an explicit stack rather
// than by recursion: a filter may have 32,768 levels, deeper than the call
// stack. Shared by all matchers; a walk started from a callback (re-entrant)
// works above the entries of the walk that called it.
const pendingNodes: (Node<unknown> | undefined)[] = [];
const pendingLevels: number[] = [];
let pendingTop = 0;

/** Drops the pending branches above `base`. */
function unwind(base: number): void {
  while (pendingTop > base) pendingNodes[--pendingTop] = undefined;
}

/** Matches `levels[i..]` below `node`. */
function matchFrom<T>(
  start: Node<T>,
  levels: string[],
  startLevel: number,
  cb: (value: T, key: string, filter: string) => void,
): void {
  const base = pendingTop;
  const n = levels.length;
  let node = start;
  let i = startLevel;
  try {
    for (;;) {
      // Follow exact levels, remembering `+` branches for later.
      for (;;) {
        // `x/#` matches `x` and everything below it.
        if (node.hash !== undefined) emit(node.hash, cb);
        if (i === n) {
          emit(node, cb);
          break;
        }
        if (node.plus !== undefined) {
          pendingNodes[pendingTop] = node.plus as Node<unknown>;
          pendingLevels[pendingTop++] = i + 1;
        }
        const next = node.children?.get(levels[i]!);
        if (next === undefined) break;
        node = next;
        i++;
      }
      if (pendingTop === base) return;
      node = pendingNodes[--pendingTop] as Node<T>;
      pendingNodes[pendingTop] = undefined;
      i = pendingLevels[pendingTop]!;
    }
  } finally {
    unwind(base); // only when `cb` threw
  }
}

/** Whether anything below `node` matches `levels[i..]`. */
function anyFrom<T>(
  start: Node<T>,
  levels: string[],
  startLevel: number,
): boolean {
  const base = pendingTop;
  const n = levels.length;
  let node = start;
  let i = startLevel;
  for (;;) {
    for (;;) {
      if (node.hash !== undefined || (i === n && node.values !== undefined)) {
        unwind(base);
        return true; // a `#` leaf always holds values
      }
      if (i === n) break;
      if (node.plus !== undefined) {
        pendingNodes[pendingTop] = node.plus as Node<unknown>;
        pendingLevels[pendingTop++] = i + 1;
      }
      const next = node.children?.get(levels[i]!);
      if (next === undefined) break;
      node = next;
      i++;
    }
    if (pendingTop === base) return false;
    node = pendingNodes[--pendingTop] as Node<T>;
    pendingNodes[pendingTop] = undefined;
    i = pendingLevels[pendingTop]!;
  }
}
