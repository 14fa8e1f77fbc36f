/**
 * `MessageQueue`: the messages a session holds for its client beyond those in
 * flight, oldest first, with the counts its drop policy needs (private to
 * the broker; the policy itself is `Session`'s): how many are QoS 0, and how
 * many bytes they hold (payload plus topic length, as `maxQueuedBytes`
 * counts them).
 *
 * The policy (`Session`'s `#enqueue`): with `maxQueuedMessages` (and
 * `maxQueuedBytes` when set) reached, the oldest queued QoS 0 message is
 * dropped first, else the oldest, until the new one fits (a message larger
 * than `maxQueuedBytes` on its own is dropped instead). Each episode is
 * logged once at warning level (the running count at debug level) and
 * counted in `Session.dropped` and the metrics.
 *
 * @module
 */

import { Fifo } from "../codec/_fifo.ts";
import type { OutgoingMessage } from "./delivery.ts";

/** What a queued message counts against `maxQueuedBytes`. */
function sizeOf(m: OutgoingMessage): number {
  return m.message.payload.byteLength + m.message.topic.length;
}

/**
 * A session's queue.
 *
 * @example
 * ```ts ignore
 * const q = new MessageQueue();
 * q.push(m);
 * q.evict(); // the oldest QoS 0 message, else the oldest
 * ```
 */
export class MessageQueue {
  #items = new Fifo<OutgoingMessage>();
  #qos0 = 0;
  #bytes = 0;

  /** Messages queued. */
  get length(): number {
    return this.#items.length;
  }

  /** Bytes queued (payload plus topic length of each). */
  get bytes(): number {
    return this.#bytes;
  }

  /** What `m` would add to `bytes`. */
  static sizeOf(m: OutgoingMessage): number {
    return sizeOf(m);
  }

  /** Appends `m`. */
  push(m: OutgoingMessage): void {
    this.#items.push(m);
    this.#bytes += sizeOf(m);
    if (m.qos === 0) this.#qos0++;
  }

  /** The oldest message, left in place. */
  peek(): OutgoingMessage | undefined {
    return this.#items.peek();
  }

  /** Removes and returns the oldest message. */
  shift(): OutgoingMessage | undefined {
    const m = this.#items.shift();
    if (m !== undefined) this.#taken(m);
    return m;
  }

  /** Removes the drop victim: the oldest QoS 0 message, else the oldest. */
  evict(): OutgoingMessage | undefined {
    const m = this.#qos0 > 0
      ? this.#items.removeFirst((v) => v.qos === 0)
      : this.#items.shift();
    if (m !== undefined) this.#taken(m);
    return m;
  }

  /** Keeps the messages for which `keep` is true; returns the others. */
  retain(keep: (m: OutgoingMessage) => boolean): OutgoingMessage[] {
    const removed = this.#items.retain(keep);
    for (const m of removed) this.#taken(m);
    return removed;
  }

  /** Removes every QoS 0 message. */
  dropQos0(): void {
    if (this.#qos0 > 0) this.retain((m) => m.qos > 0);
  }

  /** The messages, oldest first. */
  [Symbol.iterator](): IterableIterator<OutgoingMessage> {
    return this.#items[Symbol.iterator]();
  }

  #taken(m: OutgoingMessage): void {
    this.#bytes -= sizeOf(m);
    if (m.qos === 0) this.#qos0--;
  }
}
