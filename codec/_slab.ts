/**
 * Slab allocation for small byte arrays (private to the package): encoded
 * packets, received chunks and message payloads kept for later all come from
 * here.
 *
 * Creating an `ArrayBuffer` per small array costs about 1 µs and a tracked
 * backing store in V8; arrays up to 2 KiB are instead views cut in order from
 * a shared 16 KiB slab and never reused. An array's bytes belong to it alone,
 * but `bytes.buffer` is shared with others (never transfer or detach it),
 * and a view that is kept keeps its slab alive.
 *
 * @module
 */

/** Size of the shared slabs that small arrays are cut from. */
const SLAB_SIZE = 16 * 1024;
/** Arrays up to this size come from a slab. */
const SLAB_MAX = 2048;
let slab = new ArrayBuffer(SLAB_SIZE);
let slabUsed = 0;
/** Every slab handed out: `ownBytes` keeps views of them as they are. */
const slabs = new WeakSet<ArrayBufferLike>([slab]);

/** Allocates `n` zeroed bytes (a slab view up to 2 KiB). */
export function alloc(n: number): Uint8Array {
  if (n > SLAB_MAX) return new Uint8Array(n);
  if (slabUsed + n > SLAB_SIZE) {
    slab = new ArrayBuffer(SLAB_SIZE);
    slabs.add(slab);
    slabUsed = 0;
  }
  const b = new Uint8Array(slab, slabUsed, n);
  slabUsed += (n + 7) & ~7;
  return b;
}

let outSlab = new ArrayBuffer(SLAB_SIZE);
let outUsed = 0;

/**
 * Allocates `n` zeroed bytes that live only briefly (one write's output),
 * as `alloc` does but from slabs of their own, so that they do not spread
 * what `alloc` hands out for keeping (queued, in-flight and retained
 * messages) over more slabs, each kept whole by any one array in it.
 */
export function allocShortLived(n: number): Uint8Array {
  if (n > SLAB_MAX) return new Uint8Array(n);
  if (outUsed + n > SLAB_SIZE) {
    outSlab = new ArrayBuffer(SLAB_SIZE);
    outUsed = 0;
  }
  const b = new Uint8Array(outSlab, outUsed, n);
  outUsed += (n + 7) & ~7;
  return b;
}

/**
 * `bytes`, or a copy of it when it is a small view of a much larger buffer
 * (a read chunk): what is kept for long (a queued, retained or will
 * message) must not pin a whole chunk. Small copies come from the slabs;
 * views already in a slab are kept as they are.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  const buffer = bytes.buffer;
  if (buffer.byteLength <= bytes.byteLength * 2 + 256) return bytes;
  if (slabs.has(buffer)) return bytes;
  const copy = alloc(bytes.byteLength);
  copy.set(bytes);
  return copy;
}
