/**
 * Names in NATS for things MQTT names freely (private): client ids and
 * topics as KV keys and subject tokens (base64url, or a hash when long),
 * and short hashes for route keys and queue group names.
 *
 * @module
 */

const encoder = new TextEncoder();

/** Longest key token kept readable (base64url); longer ones are hashed. */
const MAX_TOKEN = 200;

/**
 * 64-bit FNV-1a of a string's UTF-8 bytes, as 16 hex digits (two 32-bit
 * halves with different offsets; enough to tell route keys apart).
 */
export function hash64(text: string): string {
  const bytes = encoder.encode(text);
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x9e3779b9;
  for (let i = 0; i < bytes.length; i++) {
    a = Math.imul(a ^ bytes[i]!, 0x01000193);
    b = Math.imul(b ^ bytes[i]!, 0x01000193) ^ (a >>> 15);
  }
  return (a >>> 0).toString(16).padStart(8, "0") +
    (b >>> 0).toString(16).padStart(8, "0");
}

/** Base64url without padding: `[A-Za-z0-9_-]`, valid in a NATS token. */
export function base64url(bytes: Uint8Array): string {
  let bin = "";
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]!);
  return btoa(bin).replaceAll("+", "-").replaceAll("/", "_").replace(
    /=+$/,
    "",
  );
}

/** The bytes of `base64url` text. */
export function fromBase64url(text: string): Uint8Array {
  const b64 = text.replaceAll("-", "+").replaceAll("_", "/");
  const bin = atob(b64 + "===".slice((b64.length + 3) % 4));
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/**
 * A NATS token (KV key, subject token) for any string: `k` and its
 * base64url form, or `h` and a hash for a long one (the full string is
 * kept in the value wherever it must be read back).
 */
export function keyToken(text: string): string {
  const b = base64url(encoder.encode(text));
  return b.length <= MAX_TOKEN ? "k" + b : "h" + hash64(text) +
    hash64(text + "\u0000");
}
