/**
 * Small helpers shared by the client's modules (private).
 *
 * @module
 */

/** `e` as an `Error` (a thrown non-Error is wrapped). */
export function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

/** Does nothing (a rejection handler for promises nobody has to await). */
export function noop(): void {}

/** Lower-case hex of `b`. */
export function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}
