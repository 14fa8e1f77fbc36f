/**
 * Retained messages: one per topic, found by topic filter without scanning
 * every retained topic (a trie of topic levels walked by the filter).
 *
 * @module
 */

import type { StoredMessage } from "./store/store.ts";

interface Node {
  children: Map<string, Node>;
  message: StoredMessage | undefined;
}

function node(): Node {
  return { children: new Map(), message: undefined };
}

/**
 * The retained messages of a broker, by topic.
 *
 * @example
 * ```ts
 * import { RetainedMessages } from "@kite/mqtt/broker";
 * const r = new RetainedMessages();
 * r.set({ topic: "a/b", payload: new Uint8Array([1]), qos: 0, retain: true });
 * r.match("a/+", (m) => console.log(m.topic)); // a/b
 * ```
 */
export class RetainedMessages {
  #root: Node = node();
  #size = 0;
  #bytes = 0;

  /** How many topics have a retained message. */
  get size(): number {
    return this.#size;
  }

  /** Payload bytes of the retained messages. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The retained message of `topic`, if any. */
  get(topic: string): StoredMessage | undefined {
    let n: Node | undefined = this.#root;
    for (const level of topic.split("/")) {
      n = n.children.get(level);
      if (n === undefined) return undefined;
    }
    return n.message;
  }

  /** Stores `message` as the retained message of its topic (replacing). */
  set(message: StoredMessage): void {
    let n = this.#root;
    for (const level of message.topic.split("/")) {
      let c = n.children.get(level);
      if (c === undefined) {
        c = node();
        n.children.set(level, c);
      }
      n = c;
    }
    if (n.message === undefined) this.#size++;
    else this.#bytes -= n.message.payload.length;
    this.#bytes += message.payload.length;
    n.message = message;
  }

  /** Removes the retained message of `topic`; true when there was one. */
  delete(topic: string): boolean {
    const path: Node[] = [this.#root];
    const levels = topic.split("/");
    let n: Node | undefined = this.#root;
    for (const level of levels) {
      n = n.children.get(level);
      if (n === undefined) return false;
      path.push(n);
    }
    if (n.message === undefined) return false;
    this.#bytes -= n.message.payload.length;
    n.message = undefined;
    this.#size--;
    // Prune empty nodes bottom-up.
    for (let i = levels.length; i > 0; i--) {
      const cur = path[i]!;
      if (cur.message !== undefined || cur.children.size > 0) break;
      path[i - 1]!.children.delete(levels[i - 1]!);
    }
    return true;
  }

  /**
   * Calls `cb` for every retained message whose topic matches `filter`,
   * depth first in insertion order. `+` and `#` do not match a first level
   * starting with `$` [MQTT-4.7.2-1]; `#` matches its parent level too
   * [MQTT-4.7.1-2].
   *
   * No recursion: a topic may have 32,768 levels, more than the call stack
   * holds; pending `+` branches wait on an explicit stack.
   */
  match(filter: string, cb: (message: StoredMessage) => void): void {
    const levels = filter.split("/");
    const n = levels.length;
    const nodes: Node[] = [this.#root];
    const at: number[] = [0];
    while (nodes.length > 0) {
      const node = nodes.pop()!;
      const i = at.pop()!;
      if (i === n) {
        if (node.message !== undefined) cb(node.message);
        continue;
      }
      const level = levels[i]!;
      if (level === "#") {
        if (node.message !== undefined && i > 0) cb(node.message);
        all(node, i === 0, cb);
      } else if (level === "+") {
        // Pushed last first, so they are visited in insertion order.
        const children = [...node.children];
        for (let k = children.length - 1; k >= 0; k--) {
          const [name, c] = children[k]!;
          if (i === 0 && name.startsWith("$")) continue;
          nodes.push(c);
          at.push(i + 1);
        }
      } else {
        const c = node.children.get(level);
        if (c !== undefined) {
          nodes.push(c);
          at.push(i + 1);
        }
      }
    }
  }

  /** Every retained message. */
  *values(): IterableIterator<StoredMessage> {
    const stack: Node[] = [this.#root];
    while (stack.length > 0) {
      const n = stack.pop()!;
      if (n.message !== undefined) yield n.message;
      for (const c of n.children.values()) stack.push(c);
    }
  }
}

/**
 * Calls `cb` for every message below `n` (not `n`'s own), depth first in
 * insertion order, with one iterator per level on an explicit stack; `top`:
 * `n` is the root, whose `$` children are skipped [MQTT-4.7.2-1].
 */
function all(
  n: Node,
  top: boolean,
  cb: (message: StoredMessage) => void,
): void {
  const stack: Iterator<[string, Node]>[] = [n.children.entries()];
  while (stack.length > 0) {
    const r = stack[stack.length - 1]!.next();
    if (r.done === true) {
      stack.pop();
      continue;
    }
    const [name, c] = r.value;
    if (top && stack.length === 1 && name.startsWith("$")) continue;
    if (c.message !== undefined) cb(c.message);
    if (c.children.size > 0) stack.push(c.children.entries());
  }
}
