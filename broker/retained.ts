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

  /** How many topics have a retained message. */
  get size(): number {
    return this.#size;
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
   * Calls `cb` for every retained message whose topic matches `filter`.
   * `+` and `#` do not match a first level starting with `$` [MQTT-4.7.2-1].
   */
  match(filter: string, cb: (message: StoredMessage) => void): void {
    this.#walk(this.#root, filter.split("/"), 0, cb);
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

  #walk(
    n: Node,
    levels: string[],
    i: number,
    cb: (message: StoredMessage) => void,
  ): void {
    if (i === levels.length) {
      if (n.message !== undefined) cb(n.message);
      return;
    }
    const level = levels[i]!;
    if (level === "#") {
      // "#" matches the parent level too [MQTT-4.7.1-2].
      if (n.message !== undefined && i > 0) cb(n.message);
      this.#all(n, i === 0, cb);
      return;
    }
    if (level === "+") {
      for (const [name, c] of n.children) {
        if (i === 0 && name.startsWith("$")) continue;
        this.#walk(c, levels, i + 1, cb);
      }
      return;
    }
    const c = n.children.get(level);
    if (c !== undefined) this.#walk(c, levels, i + 1, cb);
  }

  #all(n: Node, top: boolean, cb: (message: StoredMessage) => void): void {
    for (const [name, c] of n.children) {
      if (top && name.startsWith("$")) continue;
      if (c.message !== undefined) cb(c.message);
      this.#all(c, false, cb);
    }
  }
}
