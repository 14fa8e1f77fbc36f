/**
 * Packet decoding: {@linkcode PacketDecoder} turns a byte stream into packets
 * (split at any byte, many per chunk) and {@linkcode decode} decodes exactly
 * one whole packet. Every rule a receiver must check fails with a typed
 * {@linkcode MqttError}: 0x81 malformed, 0x82 protocol error, 0x84
 * unsupported protocol version, 0x94 topic alias invalid, 0x95 too large.
 *
 * Payloads, binary properties, passwords and will payloads are views
 * (`subarray`) of the bytes they were decoded from, never copied twice: of
 * the pushed chunk when the packet lies within one chunk, of one exact-size
 * region when it was assembled across chunks (small packets are cut from a
 * shared slab, see `alloc` in _slab.ts). A view keeps its chunk alive,
 * so do not reuse or overwrite a chunk after pushing it (copy a payload you
 * keep for long if its chunk is large).
 *
 * @module
 */

import type { Packet, ProtocolVersion } from "./packet.ts";
import { MalformedPacketError, PacketTooLargeError } from "./errors.ts";
import { alloc } from "./_slab.ts";
import { checkFirstByte, decodeBody, EMPTY, reader } from "./_decode_body.ts";

/** The largest possible MQTT packet: 1 + 4 + 268,435,455 bytes. */
export const MAX_PACKET_SIZE = 268_435_460;

/** Options for {@linkcode PacketDecoder} and {@linkcode decode}. */
export interface DecoderOptions {
  /**
   * Protocol version of the connection. Leave undefined on the server side:
   * the decoder then expects a CONNECT first and adopts its version.
   */
  version?: ProtocolVersion;
  /**
   * Largest accepted packet in bytes, fixed header included (default and
   * maximum {@linkcode MAX_PACKET_SIZE}).
   */
  maxPacketSize?: number;
}

function checkMaxSize(n: number | undefined): number {
  if (n === undefined) return MAX_PACKET_SIZE;
  if (!Number.isInteger(n) || n < 2) {
    throw new RangeError(`maxPacketSize must be an integer >= 2, got ${n}`);
  }
  return Math.min(n, MAX_PACKET_SIZE);
}

/**
 * An incremental decoder: push chunks of a byte stream, get packets.
 *
 * Packets may be split at any byte and many may arrive in one chunk; a packet
 * within one chunk is decoded in place (no copy), a packet split across
 * chunks is copied once into a buffer of its exact size. The size is checked
 * against `maxPacketSize` as soon as the fixed header is complete, before
 * any of the body is buffered, so `buffered` never exceeds `maxPacketSize`.
 *
 * After `push` throws, the decoder is unusable: every later push throws the
 * same error.
 *
 * @example
 * ```ts
 * import { PacketDecoder } from "@kite/mqtt/codec";
 * const decoder = new PacketDecoder({ version: 4 });
 * const bytes = new Uint8Array([0x30, 0x05, 0x00, 0x01, 0x74, 0x68, 0x69]);
 * decoder.push(bytes.subarray(0, 3), (p) => console.log(p));
 * decoder.push(bytes.subarray(3), (p) => console.log(p.type)); // "publish"
 * ```
 */
export class PacketDecoder {
  /** Protocol version; set from the CONNECT when it was undefined. */
  version: ProtocolVersion | undefined;
  /** Largest accepted packet in bytes, fixed header included. */
  maxPacketSize: number;

  /** A fixed header split across chunks (allocated on first need). */
  #hdr: Uint8Array | undefined;
  #hdrFill = 0;
  #asm: Uint8Array | undefined;
  #asmFill = 0;
  #asmHeader = 0;
  #error: unknown;

  /** Creates a decoder; see {@linkcode DecoderOptions}. */
  constructor(options?: DecoderOptions) {
    this.version = options?.version;
    this.maxPacketSize = checkMaxSize(options?.maxPacketSize);
  }

  /** Bytes of an incomplete packet held by the decoder. */
  get buffered(): number {
    return this.#asm !== undefined ? this.#asmFill : this.#hdrFill;
  }

  /**
   * Decodes every complete packet in `chunk` (plus what was buffered) and
   * calls `onPacket` for each, in order, synchronously.
   *
   * @throws {MqttError} on bad input. After any exception (also one thrown
   * by `onPacket`, which propagates) the decoder is unusable.
   */
  push(chunk: Uint8Array, onPacket: (packet: Packet) => void): void {
    if (this.#error !== undefined) throw this.#error;
    try {
      this.#push(chunk, onPacket);
    } catch (e) {
      // The stream position is lost either way: fail for good.
      this.#error = e ?? new Error("push failed");
      this.#asm = undefined;
      this.#hdrFill = 0;
      this.#asmFill = 0;
      throw e;
    } finally {
      reader.buf = EMPTY;
    }
  }

  #emit(p: Packet, onPacket: (packet: Packet) => void): void {
    if (this.version === undefined && p.type === "connect") {
      this.version = p.protocolVersion;
    }
    onPacket(p);
  }

  /** Total size from a complete fixed header, after the size check. */
  #total(first: number, rl: number, hlen: number): number {
    const total = hlen + rl;
    if (total > this.maxPacketSize) {
      throw new PacketTooLargeError(
        `packet of ${total} bytes exceeds the maximum packet size ${this.maxPacketSize}`,
      );
    }
    checkFirstByte(first, this.version);
    return total;
  }

  /**
   * With `fill` header bytes and no end of the remaining length yet, the
   * packet has at least `fill + 1` header bytes and, when a length byte was
   * seen, 128^(fill-1) body bytes (the next length byte is not 0).
   */
  #checkPartial(fill: number): void {
    if (fill > 1 && fill + 1 + 128 ** (fill - 1) > this.maxPacketSize) {
      throw new PacketTooLargeError(
        `packet exceeds the maximum packet size ${this.maxPacketSize}`,
      );
    }
  }

  #push(chunk: Uint8Array, onPacket: (packet: Packet) => void): void {
    const len = chunk.length;
    let pos = 0;
    // 1. Finish a fixed header split across chunks.
    if (this.#hdrFill > 0) {
      const hdr = this.#hdr!;
      while (pos < len) {
        hdr[this.#hdrFill++] = chunk[pos++]!;
        const rl = parseRemainingLength(hdr, 0, this.#hdrFill);
        if (rl === -1) {
          this.#checkPartial(this.#hdrFill);
          continue;
        }
        const hlen = this.#hdrFill;
        const total = this.#total(hdr[0]!, rl, hlen);
        this.#hdrFill = 0;
        this.#asm = alloc(total);
        this.#asm.set(hdr.subarray(0, hlen));
        this.#asmFill = hlen;
        this.#asmHeader = hlen;
        break;
      }
      if (this.#hdrFill > 0) return;
    }
    // 2. Finish a packet body split across chunks (one copy).
    const asm = this.#asm;
    if (asm !== undefined) {
      const n = Math.min(asm.length - this.#asmFill, len - pos);
      asm.set(chunk.subarray(pos, pos + n), this.#asmFill);
      this.#asmFill += n;
      pos += n;
      if (this.#asmFill < asm.length) return;
      this.#asm = undefined;
      this.#asmFill = 0;
      const first = asm[0]!;
      this.#emit(
        decodeBody(
          first,
          asm,
          this.#asmHeader,
          asm.length,
          first < 0x20 ? 4 : this.version ?? 4,
        ),
        onPacket,
      );
    }
    // 3. Whole packets inside this chunk, decoded in place.
    while (pos < len) {
      const rl = parseRemainingLength(chunk, pos, len);
      if (rl === -1) {
        // Incomplete fixed header: keep at most 4 bytes.
        const rest = len - pos;
        (this.#hdr ??= new Uint8Array(5)).set(chunk.subarray(pos, len));
        this.#hdrFill = rest;
        // Fail early on a bad first byte or a size that cannot fit.
        checkFirstByte(chunk[pos]!, this.version);
        this.#checkPartial(rest);
        return;
      }
      const first = chunk[pos]!;
      const hlen = headerLength(rl);
      const total = this.#total(first, rl, hlen);
      if (len - pos >= total) {
        const p = decodeBody(
          first,
          chunk,
          pos + hlen,
          pos + total,
          first < 0x20 ? 4 : this.version ?? 4,
        );
        pos += total;
        this.#emit(p, onPacket);
      } else {
        const asm = alloc(total);
        asm.set(chunk.subarray(pos, len));
        this.#asm = asm;
        this.#asmFill = len - pos;
        this.#asmHeader = hlen;
        return;
      }
    }
  }
}

function headerLength(rl: number): number {
  return rl < 0x80 ? 2 : rl < 0x4000 ? 3 : rl < 0x200000 ? 4 : 5;
}

/**
 * Parses the remaining length after the first byte at `pos`; returns -1 when
 * the header is incomplete; throws for more than four length bytes. The
 * header length is derived from the value (so a non-minimal encoding is
 * rejected as malformed rather than mis-sized).
 */
function parseRemainingLength(
  buf: Uint8Array,
  pos: number,
  end: number,
): number {
  let value = 0;
  let mul = 1;
  for (let i = 1; i <= 4; i++) {
    if (pos + i >= end) return -1;
    const b = buf[pos + i]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      if (headerLength(value) !== i + 1) {
        throw new MalformedPacketError(
          "remaining length is not minimally encoded",
        );
      }
      return value;
    }
    mul *= 128;
  }
  throw new MalformedPacketError(
    "remaining length longer than four bytes [MQTT-1.5.5]",
  );
}

/**
 * Decodes exactly one whole packet.
 *
 * `options.version` defaults to 4 for packets other than CONNECT (which
 * carries its own version). Views of `bytes` are kept (see the module doc).
 *
 * @throws {MqttError} on bad input, or MalformedPacketError when `bytes` is
 * not exactly one packet.
 *
 * @example
 * ```ts
 * import { decode } from "@kite/mqtt/codec";
 * const p = decode(new Uint8Array([0xc0, 0x00])); // { type: "pingreq" }
 * ```
 */
export function decode(bytes: Uint8Array, options?: DecoderOptions): Packet {
  const version = options?.version ?? 4;
  const max = checkMaxSize(options?.maxPacketSize);
  const rl = parseRemainingLength(bytes, 0, bytes.length);
  if (rl === -1) throw new MalformedPacketError("incomplete fixed header");
  const hlen = headerLength(rl);
  if (hlen + rl > max) {
    throw new PacketTooLargeError(
      `packet of ${hlen + rl} bytes exceeds the maximum packet size ${max}`,
    );
  }
  const first = bytes[0]!;
  checkFirstByte(first, version);
  if (hlen + rl !== bytes.length) {
    throw new MalformedPacketError(
      `remaining length ${rl} does not match the ${bytes.length} bytes given`,
    );
  }
  try {
    return decodeBody(first, bytes, hlen, hlen + rl, version);
  } finally {
    reader.buf = EMPTY;
  }
}
