/**
 * Byte-level mutations shared by the fuzz targets: bit flips, byte
 * overwrites, truncations, remaining-length and inner length-field
 * corruption, splices, and the ways a stream is cut into chunks.
 *
 * Every function draws from a `Gen` (tests/codec_random_gen.ts), so a
 * mutation is reproducible from its seed.
 *
 * @module
 */

import type { Gen } from "../codec_random_gen.ts";

/** Values that sit on the edges of MQTT's integer encodings. */
const INTERESTING_BYTES = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff, 0x30, 0x10];
const INTERESTING_LENGTHS = [
  0,
  1,
  2,
  127,
  128,
  16383,
  16384,
  2097151,
  2097152,
  268435455,
];

/** Concatenates byte arrays. */
export function concat(parts: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const p of parts) n += p.length;
  const out = new Uint8Array(n);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** Lower-case hex of `bytes`. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** The bytes of a hex string (whitespace ignored). */
export function fromHex(hex: string): Uint8Array {
  const h = hex.replace(/\s+/g, "");
  if (h.length % 2 !== 0) throw new Error("odd number of hex digits");
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** A variable byte integer, minimal or padded to `width` bytes (1..5). */
export function varint(value: number, width = 0): Uint8Array {
  const out: number[] = [];
  let v = value;
  do {
    let b = v % 128;
    v = Math.floor(v / 128);
    if (v > 0 || out.length + 1 < width) b |= 0x80;
    out.push(b);
  } while (v > 0 || out.length < width);
  return new Uint8Array(out);
}

/** Where the packets of a well-formed stream start and end. */
export interface Framed {
  bytes: Uint8Array;
  /** Start offset of each packet, and the stream length last. */
  bounds: number[];
}

/** Frames a concatenation of whole packets. */
export function framed(packets: readonly Uint8Array[]): Framed {
  const bounds: number[] = [];
  let at = 0;
  for (const p of packets) {
    bounds.push(at);
    at += p.length;
  }
  bounds.push(at);
  return { bytes: concat(packets), bounds };
}

/** The size of the fixed header of the packet at `start` (2..5). */
function headerSize(bytes: Uint8Array, start: number): number {
  let i = start + 1;
  while (i < bytes.length && i < start + 5 && (bytes[i]! & 0x80) !== 0) i++;
  return i - start + 1;
}

/** One mutation: returns the mutated bytes (may be the same array). */
type Mutation = (g: Gen, f: Framed, donor: Uint8Array) => Uint8Array;

const MUTATIONS: readonly [string, Mutation][] = [
  ["bit flip", (g, f) => {
    const b = f.bytes.slice();
    if (b.length === 0) return b;
    const i = g.int(0, b.length - 1);
    b[i] = b[i]! ^ (1 << g.int(0, 7));
    return b;
  }],
  ["byte set", (g, f) => {
    const b = f.bytes.slice();
    if (b.length === 0) return b;
    b[g.int(0, b.length - 1)] = g.bool()
      ? g.pick(INTERESTING_BYTES)
      : g.int(0, 255);
    return b;
  }],
  ["truncate", (g, f) => f.bytes.slice(0, g.int(0, f.bytes.length))],
  ["first byte", (g, f) => {
    // Another packet type or flags on one packet.
    const b = f.bytes.slice();
    if (f.bounds.length < 2) return b;
    const at = f.bounds[g.int(0, f.bounds.length - 2)]!;
    if (at < b.length) b[at] = g.int(0, 255);
    return b;
  }],
  ["remaining length", (g, f) => {
    // A packet's remaining length replaced: off by one, an edge value,
    // padded (non-minimal) or five bytes long.
    if (f.bounds.length < 2) return f.bytes;
    const k = g.int(0, f.bounds.length - 2);
    const start = f.bounds[k]!;
    const end = f.bounds[k + 1]!;
    if (end - start < 2) return f.bytes;
    const hs = headerSize(f.bytes, start);
    const rl = end - start - hs;
    const value = g.pick([
      Math.max(0, rl - 1),
      rl + 1,
      Math.max(0, rl - g.int(1, 8)),
      rl + g.int(1, 8),
      g.pick(INTERESTING_LENGTHS),
      g.int(0, 1000),
    ]);
    const width = g.bool(0.8) ? 0 : g.int(1, 5);
    return concat([
      f.bytes.subarray(0, start + 1),
      varint(value, width),
      f.bytes.subarray(start + hs),
    ]);
  }],
  ["length field", (g, f) => {
    // A two-byte length (string, binary, packet id) or a one-byte
    // property length inside a body, replaced.
    const b = f.bytes.slice();
    if (b.length < 4) return b;
    const i = g.int(1, b.length - 2);
    const v = g.pick([0, 1, 0xffff, 0x7fff, g.int(0, 300), g.int(0, 0xffff)]);
    if (g.bool(0.7)) {
      b[i] = v >> 8;
      b[i + 1] = v & 0xff;
    } else b[i] = v & 0xff;
    return b;
  }],
  ["delete range", (g, f) => {
    const b = f.bytes;
    const i = g.int(0, b.length);
    const n = g.int(1, Math.max(1, Math.min(16, b.length - i)));
    return concat([b.subarray(0, i), b.subarray(Math.min(b.length, i + n))]);
  }],
  ["duplicate range", (g, f) => {
    const b = f.bytes;
    const i = g.int(0, b.length);
    const j = g.int(i, Math.min(b.length, i + 64));
    return concat([b.subarray(0, j), b.subarray(i, j), b.subarray(j)]);
  }],
  ["insert random", (g, f) => {
    const b = f.bytes;
    const i = g.int(0, b.length);
    return concat([b.subarray(0, i), g.bytes(12), b.subarray(i)]);
  }],
  ["splice donor", (g, f, donor) => {
    // Part of another valid stream pasted in (or over) this one.
    const b = f.bytes;
    const i = g.int(0, b.length);
    const di = g.int(0, donor.length);
    const dj = g.int(di, donor.length);
    const cut = g.bool() ? i : g.int(i, b.length);
    return concat([b.subarray(0, i), donor.subarray(di, dj), b.subarray(cut)]);
  }],
  ["body edit", (g, f) => {
    // One packet's body changed (bytes inserted, deleted or overwritten)
    // and its remaining length fixed up: the body decoder sees it, not
    // just the framing.
    if (f.bounds.length < 2) return f.bytes;
    const k = g.int(0, f.bounds.length - 2);
    const start = f.bounds[k]!;
    const end = f.bounds[k + 1]!;
    if (end - start < 2) return f.bytes;
    const hs = headerSize(f.bytes, start);
    let body: Uint8Array = f.bytes.slice(start + hs, end);
    const i = g.int(0, body.length);
    const r = g.int(0, 2);
    if (r === 0) {
      body = concat([body.subarray(0, i), g.bytes(6), body.subarray(i)]);
    } else if (r === 1) {
      body = concat([body.subarray(0, i), body.subarray(i + g.int(1, 6))]);
    } else if (body.length > 0) {
      body[Math.min(i, body.length - 1)] = g.bool()
        ? g.pick(INTERESTING_BYTES)
        : g.int(0, 255);
    }
    return concat([
      f.bytes.subarray(0, start + 1),
      varint(body.length),
      body,
      f.bytes.subarray(end),
    ]);
  }],
  ["swap packets", (g, f) => {
    if (f.bounds.length < 3) return f.bytes;
    const parts: Uint8Array[] = [];
    for (let k = 0; k + 1 < f.bounds.length; k++) {
      parts.push(f.bytes.subarray(f.bounds[k], f.bounds[k + 1]));
    }
    const a = g.int(0, parts.length - 1);
    const c = g.int(0, parts.length - 1);
    [parts[a], parts[c]] = [parts[c]!, parts[a]!];
    return concat(parts);
  }],
];

/**
 * Applies 1..`max` random mutations to a framed stream (the frames are
 * kept for the next mutation where they still fit; they are hints only).
 * Returns the bytes and the names of the mutations applied.
 */
export function mutate(
  g: Gen,
  f: Framed,
  donor: Uint8Array,
  max = 3,
): { bytes: Uint8Array; applied: string[] } {
  let cur = f;
  const applied: string[] = [];
  const n = g.int(1, max);
  for (let i = 0; i < n; i++) {
    const [name, m] = g.pick(MUTATIONS);
    const bytes = m(g, cur, donor);
    applied.push(name);
    cur = {
      bytes,
      bounds: cur.bounds.filter((x) => x <= bytes.length),
    };
  }
  return { bytes: cur.bytes, applied };
}

/** Random bytes, sometimes starting with a plausible first byte. */
export function garbage(g: Gen, max: number): Uint8Array {
  const b = g.bytes(max);
  if (b.length > 0 && g.bool(0.5)) {
    b[0] = (g.int(1, 15) << 4) | g.pick([0, 0, 2, g.int(0, 15)]);
  }
  return b;
}

/**
 * Chunk boundaries for a stream of `length` bytes: one chunk, one byte at a
 * time, random sizes, or cuts around packet boundaries. Returns the cut
 * offsets (strictly increasing, inside (0, length)).
 */
export function chunking(
  g: Gen,
  length: number,
  bounds: readonly number[],
): { mode: string; cuts: number[] } {
  const r = g.int(0, 9);
  const cuts: number[] = [];
  if (r <= 2 || length < 2) return { mode: "one chunk", cuts };
  if (r <= 4) {
    for (let i = 1; i < length; i++) cuts.push(i);
    return { mode: "one byte at a time", cuts };
  }
  if (r <= 7) {
    let at = 0;
    const most = g.pick([2, 5, 16, 64, 512]);
    while (true) {
      at += g.int(1, most);
      if (at >= length) break;
      cuts.push(at);
    }
    return { mode: "random chunks", cuts };
  }
  const set = new Set<number>();
  for (const b of bounds) {
    for (const d of [-1, 0, 1, 2]) {
      const c = b + d;
      if (c > 0 && c < length && g.bool(0.6)) set.add(c);
    }
  }
  cuts.push(...[...set].sort((a, b) => a - b));
  return { mode: "cuts near packet boundaries", cuts };
}

/** Splits `bytes` at `cuts` (copies, as a socket read would give). */
export function split(
  bytes: Uint8Array,
  cuts: readonly number[],
): Uint8Array[] {
  const out: Uint8Array[] = [];
  let at = 0;
  for (const c of cuts) {
    out.push(bytes.slice(at, c));
    at = c;
  }
  out.push(bytes.slice(at));
  return out;
}
