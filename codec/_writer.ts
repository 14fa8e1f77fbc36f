/**
 * Byte writing helpers (private to the codec). Encoders compute the exact
 * packet size first, allocate one Uint8Array and write into it; each helper
 * takes the position and returns the next one.
 *
 * @module
 */

import { MalformedPacketError, PacketTooLargeError } from "./errors.ts";
import { alloc } from "./_slab.ts";

const utf8 = new TextEncoder();

/** Largest Variable Byte Integer [MQTT-1.5.5]. */
export const MAX_VARINT = 268_435_455;

/**
 * UTF-8 byte length of a string; throws for U+0000 and lone surrogates
 * (which could not be encoded faithfully) [MQTT-1.5.4-1] [MQTT-1.5.4-2].
 */
export function utf8Length(s: string): number {
  const n = s.length;
  let len = n;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) {
      if (c === 0) throw new MalformedPacketError("string contains U+0000");
    } else if (c < 0x800) {
      len += 1;
    } else if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) {
        throw new MalformedPacketError("string contains a lone surrogate");
      }
      // A pair is 2 UTF-16 units and 4 UTF-8 bytes.
      len += 2;
      i++;
    } else {
      len += 2;
    }
  }
  return len;
}

/** utf8Length for a field with a two byte length prefix. */
export function stringLength(s: string, what: string): number {
  const len = utf8Length(s);
  if (len > 0xffff) {
    throw new MalformedPacketError(`${what} longer than 65535 bytes`);
  }
  return len;
}

/** Number of bytes of a Variable Byte Integer. */
export function varintSize(n: number): number {
  return n < 0x80 ? 1 : n < 0x4000 ? 2 : n < 0x200000 ? 3 : 4;
}

/** Writes a Variable Byte Integer. */
export function writeVarint(buf: Uint8Array, pos: number, n: number): number {
  while (n >= 0x80) {
    buf[pos++] = (n & 0x7f) | 0x80;
    n >>>= 7;
  }
  buf[pos++] = n;
  return pos;
}

/** Writes a two byte integer. */
export function writeU16(buf: Uint8Array, pos: number, n: number): number {
  buf[pos] = n >>> 8;
  buf[pos + 1] = n;
  return pos + 2;
}

/** Writes a four byte integer. */
export function writeU32(buf: Uint8Array, pos: number, n: number): number {
  buf[pos] = n >>> 24;
  buf[pos + 1] = n >>> 16;
  buf[pos + 2] = n >>> 8;
  buf[pos + 3] = n;
  return pos + 4;
}

/** Writes a string whose UTF-8 length `len` is known, with its prefix. */
export function writeString(
  buf: Uint8Array,
  pos: number,
  s: string,
  len: number,
): number {
  buf[pos] = len >>> 8;
  buf[pos + 1] = len;
  pos += 2;
  if (len === s.length) {
    for (let i = 0; i < len; i++) buf[pos + i] = s.charCodeAt(i);
  } else {
    utf8.encodeInto(s, buf.subarray(pos, pos + len));
  }
  return pos + len;
}

/** Writes binary data with its two byte length prefix. */
export function writeBinary(
  buf: Uint8Array,
  pos: number,
  b: Uint8Array,
): number {
  const len = b.length;
  buf[pos] = len >>> 8;
  buf[pos + 1] = len;
  buf.set(b, pos + 2);
  return pos + 2 + len;
}

/** Checks a binary field fits its two byte length prefix. */
export function binaryLength(b: Uint8Array, what: string): number {
  if (b.length > 0xffff) {
    throw new MalformedPacketError(`${what} longer than 65535 bytes`);
  }
  return b.length;
}

/**
 * Allocates a packet of remaining length `rl` and writes its fixed header;
 * returns the buffer (position after the header is `buf.length - rl`).
 */
export function allocPacket(first: number, rl: number): Uint8Array {
  if (rl > MAX_VARINT) {
    throw new PacketTooLargeError(
      `remaining length ${rl} exceeds ${MAX_VARINT}`,
    );
  }
  const buf = alloc(1 + varintSize(rl) + rl);
  buf[0] = first;
  writeVarint(buf, 1, rl);
  return buf;
}
