/**
 * Deno KV key parts of `KvStore`: a topic or client id becomes a key part
 * as itself, or as its SHA-256 digest when it is longer than 256 UTF-8 bytes
 * (a `Uint8Array` part, so it can never collide with a string part; Deno KV
 * keys are at most 2 KiB). Also an upper bound of a key's encoded size, for
 * keeping atomic operations within Deno KV's limits.
 *
 * @module
 */

import { sha256 } from "./_sha256.ts";

/** Key parts (topic, client id) longer than this in UTF-8 are hashed. */
const MAX_PLAIN_PART_BYTES = 256;

const encoder = new TextEncoder();

/** The key part for a topic or client id: itself, or its SHA-256 if long. */
export function keyPart(s: string): string | Uint8Array {
  // At most 3 UTF-8 bytes per UTF-16 unit: short strings need no encoding.
  if (s.length <= MAX_PLAIN_PART_BYTES / 3) return s;
  const bytes = encoder.encode(s);
  return bytes.byteLength <= MAX_PLAIN_PART_BYTES ? s : sha256(bytes);
}

/** Whether key part `a` (as read) is the part `b` (from `keyPart`). */
export function samePart(
  a: Deno.KvKeyPart | undefined,
  b: string | Uint8Array,
): boolean {
  return a !== undefined && partId(a) === partId(b);
}

/** A string identity of a key part, for maps. */
export function partId(part: Deno.KvKeyPart): string {
  if (typeof part === "string") return "s" + part;
  if (part instanceof Uint8Array) {
    let hex = "h";
    for (const b of part) hex += b.toString(16).padStart(2, "0");
    return hex;
  }
  return "?" + String(part);
}

/** An upper bound of the encoded size of a key. */
export function keySize(key: Deno.KvKey): number {
  let n = 0;
  for (const p of key) {
    if (typeof p === "string") {
      n += 2;
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i);
        n += c === 0 ? 2 : c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
      }
    } else if (p instanceof Uint8Array) {
      n += 2 + p.byteLength;
      for (const b of p) if (b === 0) n++;
    } else {
      n += 10;
    }
  }
  return n;
}
