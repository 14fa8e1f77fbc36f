/**
 * `Fifo`: a first-in first-out queue with O(1) `shift`, shared by the
 * broker's session queues and the client's request queue and message
 * iterators (private to the package).
 *
 * Items are kept in one array read from a head index; the array is
 * compacted when more than half of it (and over 1,024 slots) is consumed,
 * and reset when it empties, so a long-lived queue does not keep its peak
 * size.
 *
 * @module
 */

/**
 * A FIFO queue.
 *
 * @example
 * ```ts ignore
 * const q = new Fifo<number>();
 * q.push(1);
 * q.push(2);
 * q.shift(); // 1
 * q.length; // 1
 * ```
 */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;

  /** Items in the queue. */
  get length(): number {
    return this.#items.length - this.#head;
  }

  /** Appends `v`. */
  push(v: T): void {
    this.#items.push(v);
  }

  /** The first item, left in place. */
  peek(): T | undefined {
    return this.#items[this.#head];
  }

  /** Removes and returns the first item. */
  shift(): T | undefined {
    const items = this.#items;
    if (this.#head >= items.length) return undefined;
    const v = items[this.#head];
    items[this.#head++] = undefined;
    if (this.#head === items.length) {
      items.length = 0;
      this.#head = 0;
    } else if (this.#head > 1024 && this.#head * 2 > items.length) {
      this.#items = items.slice(this.#head);
      this.#head = 0;
    }
    return v;
  }

  /** Removes the first item matching `pred`; returns it. */
  removeFirst(pred: (v: T) => boolean): T | undefined {
    const items = this.#items;
    for (let i = this.#head; i < items.length; i++) {
      const v = items[i]!;
      if (pred(v)) {
        items.splice(i, 1);
        return v;
      }
    }
    return undefined;
  }

  /**
   * Keeps only the items for which `keep` is true (order kept); returns
   * the removed ones, in order.
   */
  retain(keep: (v: T) => boolean): T[] {
    const kept: T[] = [];
    const removed: T[] = [];
    const items = this.#items;
    for (let i = this.#head; i < items.length; i++) {
      const v = items[i]!;
      if (keep(v)) kept.push(v);
      else removed.push(v);
    }
    if (removed.length > 0) {
      this.#items = kept;
      this.#head = 0;
    }
    return removed;
  }

  /** The items, first to last. */
  *[Symbol.iterator](): IterableIterator<T> {
    const items = this.#items;
    for (let i = this.#head; i < items.length; i++) yield items[i]!;
  }

  /** Removes every item. */
  clear(): void {
    this.#items = [];
    this.#head = 0;
  }
}
