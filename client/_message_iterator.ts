/**
 * `MessageIterator`: what `Client.messages()` returns (private): an async
 * iterator over received messages with a bounded buffer. The client stops
 * reading the socket while a buffer is full (backpressure, no loss).
 *
 * @module
 */

import { Fifo } from "../codec/_fifo.ts";
import type { Message } from "./message.ts";

/**
 * An async iterator of messages with a buffer of at most `limit` before the
 * client pauses reading.
 *
 * @example
 * ```ts ignore
 * const it = new MessageIterator(onRoom, onEnd, 1000);
 * it.push(message);
 * (await it.next()).value; // message
 * ```
 */
export class MessageIterator implements AsyncIterableIterator<Message> {
  #onRoom: () => void;
  #onEnd: (it: MessageIterator) => void;
  #limit: number;
  #buf = new Fifo<Message>();
  #waiter: ((r: IteratorResult<Message>) => void) | undefined;
  #done = false;

  /**
   * `onRoom` is called when a message is taken from the buffer, `onEnd`
   * once when the iterator ends.
   */
  constructor(
    onRoom: () => void,
    onEnd: (it: MessageIterator) => void,
    limit: number,
  ) {
    this.#onRoom = onRoom;
    this.#onEnd = onEnd;
    this.#limit = limit;
  }

  /** True when `limit` messages wait in the buffer. */
  get full(): boolean {
    return this.#buf.length >= this.#limit;
  }

  /** Hands `m` to a waiting `next()`, or buffers it. */
  push(m: Message): void {
    if (this.#done) return;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w({ value: m, done: false });
    } else this.#buf.push(m);
  }

  /** Ends the iterator: buffered messages are still handed out, then done. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onEnd(this);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  /** The next message; done once ended and the buffer is empty. */
  next(): Promise<IteratorResult<Message>> {
    if (this.#buf.length > 0) {
      const m = this.#buf.shift()!;
      this.#onRoom();
      return Promise.resolve({ value: m, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => this.#waiter = r);
  }

  /** Leaving the loop: ends the iterator and drops what is buffered. */
  return(): Promise<IteratorResult<Message>> {
    this.end();
    this.#buf.clear();
    return Promise.resolve({ value: undefined, done: true });
  }

  /** This iterator. */
  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }
}
