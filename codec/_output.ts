/**
 * `OutputQueue`: the packets one connection has to write, coalesced into one
 * write (private to the package; used by the broker's connections and the
 * client's link).
 *
 * Each entry is an encoded packet and, for a shared PUBLISH encoding, where
 * its packet identifier goes: `take()` copies the entries into one buffer
 * and patches each one's packet id (and DUP flag) into the copy, so one
 * encoding serves every subscriber. While nothing is queued the queue holds
 * no arrays of its own (shared frozen empty ones), which keeps idle
 * connections small.
 *
 * @module
 */

import { allocShortLived } from "./_slab.ts";

const NO_BUFS: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];
const NO_NUMS: number[] = Object.freeze([]) as unknown as number[];

/** Set in an entry's id to set the DUP flag of its PUBLISH (`take()`). */
export const DUP_FLAG = 0x10000;

/**
 * Packets waiting for one write.
 *
 * @example
 * ```ts ignore
 * const q = new OutputQueue();
 * q.push(pingreqBytes);
 * q.push(sharedPublish.bytes, sharedPublish.idOffset, 7 | DUP_FLAG);
 * const one = q.take(); // both packets, packet id 7 and DUP in the copy
 * ```
 */
export class OutputQueue {
  // The first entry in fields: a connection that writes one packet per
  // turn (a subscriber at a low rate) allocates no arrays at all.
  #first: Uint8Array | undefined;
  #firstOff = -1;
  #firstId = 0;
  // The entries after the first.
  #bufs: Uint8Array[] = NO_BUFS;
  #offs: number[] = NO_NUMS;
  #ids: number[] = NO_NUMS;
  #bytes = 0;

  /** Entries queued. */
  get length(): number {
    return this.#first === undefined ? 0 : 1 + this.#bufs.length;
  }

  /** Bytes queued. */
  get byteLength(): number {
    return this.#bytes;
  }

  /** Bytes of the first entry (0 when empty). */
  get firstByteLength(): number {
    return this.#first?.length ?? 0;
  }

  /**
   * Queues `bytes`; `idOffset` (-1 for none) is where `id` (a packet id,
   * with `DUP_FLAG` for a resend) is patched in by `take()`.
   */
  push(bytes: Uint8Array, idOffset = -1, id = 0): void {
    this.#bytes += bytes.length;
    if (this.#first === undefined) {
      this.#first = bytes;
      this.#firstOff = idOffset;
      this.#firstId = id;
      return;
    }
    if (this.#bufs === NO_BUFS) {
      this.#bufs = [];
      this.#offs = [];
      this.#ids = [];
    }
    this.#bufs.push(bytes);
    this.#offs.push(idOffset);
    this.#ids.push(id);
  }

  /**
   * Everything queued as one buffer (the entry itself when it is alone and
   * needs no patch), and empties the queue. Empty when nothing is queued.
   */
  take(): Uint8Array {
    const first = this.#first;
    if (first === undefined) return new Uint8Array(0);
    const bufs = this.#bufs;
    let out: Uint8Array;
    if (bufs.length === 0 && this.#firstOff === -1) {
      out = first;
    } else {
      // A view of a shared slab: no ArrayBuffer (allocated, tracked and
      // swept by V8) per write of a patched PUBLISH.
      out = allocShortLived(this.#bytes);
      out.set(first, 0);
      patch(out, 0, this.#firstOff, this.#firstId);
      let pos = first.length;
      const offs = this.#offs;
      const ids = this.#ids;
      for (let i = 0; i < bufs.length; i++) {
        const b = bufs[i]!;
        out.set(b, pos);
        patch(out, pos, offs[i]!, ids[i]!);
        pos += b.length;
      }
    }
    this.clear();
    return out;
  }

  /** Drops everything queued. */
  clear(): void {
    this.#first = undefined;
    this.#bufs = NO_BUFS;
    this.#offs = NO_NUMS;
    this.#ids = NO_NUMS;
    this.#bytes = 0;
  }
}

/** Writes packet id `id` (and DUP) into the packet copied to `out` at `pos`. */
function patch(out: Uint8Array, pos: number, off: number, id: number): void {
  if (off < 0) return;
  out[pos + off] = (id >> 8) & 0xff;
  out[pos + off + 1] = id & 0xff;
  if (id & DUP_FLAG) out[pos] = out[pos]! | 0x08;
}
