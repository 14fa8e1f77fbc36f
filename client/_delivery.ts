/**
 * `Delivery`: who gets a received message (private): the `onMessage()`
 * handlers, the handlers given to `subscribe()` (by filter, through the
 * shared topic matcher), and the `messages()` iterators, in that order.
 *
 * @module
 */

import { parseSharedSubscription, TopicMatcher } from "../codec/topic.ts";
import type { Message } from "./message.ts";
import type { MessageIterator } from "./_message_iterator.ts";
import { addToList } from "./_listeners.ts";
import { toError } from "./_util.ts";

/** A message handler (`MessageHandler` of the client). */
type Fn = (message: Message) => void | Promise<void>;
type Handler = { filter: string; fn: Fn };
/** A handler's place in the matcher: the filter it matches and its key. */
export type HandlerKey = [inner: string, key: string];

/**
 * The receivers of one client's messages.
 *
 * @example
 * ```ts ignore
 * const d = new Delivery((e) => console.error(e));
 * d.addHandler("a/+", (m) => console.log(m.topic));
 * d.deliver(message);
 * ```
 */
export class Delivery {
  #onError: (e: Error) => void;
  #onMessage: Fn[] = [];
  #matcher = new TopicMatcher<Handler>();
  #handlerKeys = 0;
  #keysByFilter = new Map<string, HandlerKey[]>();
  #matched: Handler[] = [];
  #collect = (h: Handler): void => {
    this.#matched.push(h);
  };
  /** The `messages()` iterators. */
  readonly iterators: Set<MessageIterator> = new Set();

  /** `onError` gets what a handler throws or rejects with. */
  constructor(onError: (e: Error) => void) {
    this.#onError = onError;
  }

  /** Adds a handler of every message; returns a function that removes it. */
  onMessage(fn: Fn): () => void {
    return addToList(this.#onMessage, fn);
  }

  /**
   * Adds `fn` for the messages matching `filter` (for `$share/group/f`,
   * those matching `f`); returns its key for `dropHandler()`.
   */
  addHandler(filter: string, fn: Fn): HandlerKey {
    const inner = parseSharedSubscription(filter)?.filter ?? filter;
    const key = String(++this.#handlerKeys);
    this.#matcher.set(inner, key, { filter, fn });
    const ik: HandlerKey = [inner, key];
    let list = this.#keysByFilter.get(filter);
    if (!list) this.#keysByFilter.set(filter, list = []);
    list.push(ik);
    return ik;
  }

  /** Removes one handler added for `filter`. */
  dropHandler(filter: string, ik: HandlerKey): void {
    this.#matcher.delete(ik[0], ik[1]);
    const list = this.#keysByFilter.get(filter);
    if (!list) return;
    const i = list.indexOf(ik);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.#keysByFilter.delete(filter);
  }

  /** Removes every handler added for `filter` (unsubscribed). */
  dropFilter(filter: string): void {
    for (const [inner, key] of this.#keysByFilter.get(filter) ?? []) {
      this.#matcher.delete(inner, key);
    }
    this.#keysByFilter.delete(filter);
  }

  /**
   * Hands `msg` to every receiver; true when an iterator's buffer is full
   * afterwards (the caller stops reading).
   */
  deliver(msg: Message): boolean {
    const all = this.#onMessage;
    for (let i = 0; i < all.length; i++) this.#call(all[i]!, msg);
    if (this.#matcher.size > 0) {
      const matched = this.#matched;
      this.#matcher.match(msg.topic, this.#collect);
      for (let i = 0; i < matched.length; i++) this.#call(matched[i]!.fn, msg);
      matched.length = 0;
    }
    let full = false;
    if (this.iterators.size > 0) {
      for (const it of this.iterators) {
        it.push(msg);
        if (it.full) full = true;
      }
    }
    return full;
  }

  /** True when some iterator's buffer is full. */
  anyIteratorFull(): boolean {
    for (const it of this.iterators) if (it.full) return true;
    return false;
  }

  #call(fn: Fn, msg: Message): void {
    try {
      const r = fn(msg);
      if (r && typeof (r as Promise<void>).then === "function") {
        (r as Promise<void>).then(
          undefined,
          (e) => this.#onError(toError(e)),
        );
      }
    } catch (e) {
      this.#onError(toError(e));
    }
  }
}
