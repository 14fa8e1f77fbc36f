/**
 * `PackedBytes`: byte strings written back to back into a few buffers and
 * read back in the order written (private to the broker). A session's queue
 * keeps its QoS 1 messages here as encoded PUBLISH packets (see
 * `_message_queue.ts`): an entry costs its bytes and an 8-byte header, and
 * no JavaScript object, so a long queue neither holds a few hundred bytes of
 * objects per message nor leaves them as old-generation garbage when the
 * messages go.
 *
 * Buffers grow from 4 KiB to 256 KiB as the queue grows. A buffer read to its
 * end is dropped, except that one of the largest size is kept for the next
 * one needed (a full queue that drops its oldest as it takes new ones reuses
 * it); an empty store drops them all.
 *
 * @module
 */

import { alloc } from "../codec/_slab.ts";

const FIRST_CHUNK = 4 * 1024;
const MAX_CHUNK = 256 * 1024;
/** Entries larger than this are not packed (see `PackedBytes.fits`). */
const MAX_ENTRY = 4 * 1024;
const HEADER = 8;

interface Chunk {
  bytes: Uint8Array;
  view: DataView;
  /** Bytes written. */
  end: number;
}

/**
 * Byte strings, first in first out, each with a number (`size`) beside it.
 *
 * @example
 * ```ts ignore
 * const p = new PackedBytes();
 * p.push(new Uint8Array([1, 2]), 2);
 * p.take(); // Uint8Array [1, 2] (a copy); p.length === 0
 * ```
 */
export class PackedBytes {
  #chunks: (Chunk | undefined)[] = [];
  /** Index of the chunk read from, and the read position in it. */
  #head = 0;
  #pos = 0;
  #next = FIRST_CHUNK;
  #spare: Chunk | undefined;
  #count = 0;

  /** Whether `n` bytes may be packed. */
  static fits(n: number): boolean {
    return n <= MAX_ENTRY;
  }

  /** Entries held. */
  get length(): number {
    return this.#count;
  }

  /** Appends a copy of `bytes` (at most 4 KiB) with its `size`. */
  push(bytes: Uint8Array, size: number): void {
    const need = HEADER + bytes.length;
    let c = this.#chunks[this.#chunks.length - 1];
    if (c === undefined || c.end + need > c.bytes.length) {
      c = this.#newChunk(need);
      this.#chunks.push(c);
    }
    c.view.setUint32(c.end, bytes.length);
    c.view.setUint32(c.end + 4, size);
    c.bytes.set(bytes, c.end + HEADER);
    c.end += need;
    this.#count++;
  }

  /** The oldest entry's `size`. */
  headSize(): number {
    return this.#chunks[this.#head]!.view.getUint32(this.#pos + 4);
  }

  /** Removes the oldest entry and returns a copy of its bytes. */
  take(): Uint8Array {
    const c = this.#chunks[this.#head]!;
    const n = c.view.getUint32(this.#pos);
    const from = this.#pos + HEADER;
    const out = alloc(n);
    out.set(c.bytes.subarray(from, from + n));
    this.skip();
    return out;
  }

  /** Removes the oldest entry; returns its `size`. */
  skip(): number {
    const c = this.#chunks[this.#head]!;
    const n = c.view.getUint32(this.#pos);
    const size = c.view.getUint32(this.#pos + 4);
    this.#pos += HEADER + n;
    if (--this.#count === 0) {
      this.#reset();
      return size;
    }
    if (this.#pos >= c.end && this.#head < this.#chunks.length - 1) {
      // Read to its end, and written no more (a later chunk exists).
      this.#chunks[this.#head] = undefined;
      this.#head++;
      this.#pos = 0;
      if (c.bytes.length === MAX_CHUNK) this.#spare = c;
      if (this.#head > 64 && this.#head * 2 > this.#chunks.length) {
        this.#chunks = this.#chunks.slice(this.#head);
        this.#head = 0;
      }
    }
    return size;
  }

  #newChunk(need: number): Chunk {
    const spare = this.#spare;
    if (spare !== undefined && need <= spare.bytes.length) {
      this.#spare = undefined;
      spare.end = 0;
      return spare;
    }
    const size = Math.max(this.#next, need);
    this.#next = Math.min(this.#next * 2, MAX_CHUNK);
    const bytes = new Uint8Array(size);
    return { bytes, view: new DataView(bytes.buffer), end: 0 };
  }

  #reset(): void {
    this.#chunks = [];
    this.#head = this.#pos = 0;
    this.#next = FIRST_CHUNK;
    this.#spare = undefined;
  }
}
