/**
 * Numeric fields kept as doubles from the start (private to the package,
 * for the broker and the client).
 *
 * V8 lays out a numeric field by the first value stored in it: a small
 * integer (below 2^30) gets a compact slot. A later value that is not one
 * (a timestamp, a fraction, a counter past 2^30) changes the layout of
 * every object of that class, and V8 throws away the optimized code of
 * each function that touched one: in the fleet benchmark, the first pause
 * of a connection's read slice, 8 s into the run, set `#sliceStart` to a
 * timestamp and deoptimized some 20 hot functions at once, whose
 * recompilation lengthened the latency tail for the next two seconds.
 *
 * Such fields start as `AS_DOUBLE` (`-0`, which is never a small integer)
 * or are passed to `asDoubles` by the constructor.
 *
 * @module
 */

/** A field's first value that makes it a double field (it reads as 0). */
export const AS_DOUBLE = -0;

/**
 * Makes the numeric fields `keys` of `o` double fields, keeping their
 * values: call it in the constructor, before the object is used.
 */
export function asDoubles<T extends object>(
  o: T,
  keys: readonly (keyof T & string)[],
): void {
  const fields = o as unknown as Record<string, number>;
  for (const k of keys) {
    const v = fields[k]!;
    fields[k] = AS_DOUBLE;
    fields[k] = v;
  }
}
