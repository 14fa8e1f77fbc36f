/**
 * A byte cursor over one packet body (private to the codec). Every read is
 * bounds-checked against `end` and fails with a MalformedPacketError.
 *
 * @module
 */

import { MalformedPacketError } from "./errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/** Decodes well-formed UTF-8 without U+0000, or throws 0x81. */
export function decodeUtf8(
  buf: Uint8Array,
  start: number,
  end: number,
): string {
  const len = end - start;
  if (len <= 128) {
    // ASCII fast path for short strings (topics, client ids, keys). A flat
    // string from fromCharCode beats both the TextDecoder call overhead and
    // `+=` (whose rope must be flattened later anyway).
    let i = start;
    while (i < end) {
      const b = buf[i]!;
      if (b === 0 || b > 0x7f) break;
      i++;
    }
    if (i === end) {
      return String.fromCharCode.apply(
        null,
        buf.subarray(start, end) as unknown as number[],
      );
    }
  }
  // In UTF-8 a zero byte only ever encodes U+0000 [MQTT-1.5.4-2]; the fatal
  // decoder rejects overlong forms, surrogates and truncation [MQTT-1.5.4-1].
  const bytes = buf.subarray(start, end);
  if (bytes.indexOf(0) !== -1) {
    throw new MalformedPacketError("string contains U+0000");
  }
  try {
    return utf8.decode(bytes);
  } catch (cause) {
    throw new MalformedPacketError("string is not well-formed UTF-8", {
      cause,
    });
  }
}

/** Cursor over `buf` from `pos` to `end`. */
export class Reader {
  buf: Uint8Array;
  pos: number;
  end: number;

  constructor(buf: Uint8Array, pos: number, end: number) {
    this.buf = buf;
    this.pos = pos;
    this.end = end;
  }

  /** Bytes left. */
  get left(): number {
    return this.end - this.pos;
  }

  need(n: number, what: string): void {
    if (this.end - this.pos < n) {
      throw new MalformedPacketError(`packet too short for ${what}`);
    }
  }

  u8(what = "a byte"): number {
    if (this.pos >= this.end) {
      throw new MalformedPacketError(`packet too short for ${what}`);
    }
    return this.buf[this.pos++]!;
  }

  u16(what = "a two byte integer"): number {
    const p = this.pos;
    if (this.end - p < 2) {
      throw new MalformedPacketError(`packet too short for ${what}`);
    }
    this.pos = p + 2;
    return (this.buf[p]! << 8) | this.buf[p + 1]!;
  }

  u32(what = "a four byte integer"): number {
    const p = this.pos;
    if (this.end - p < 4) {
      throw new MalformedPacketError(`packet too short for ${what}`);
    }
    this.pos = p + 4;
    const b = this.buf;
    return ((b[p]! << 24) | (b[p + 1]! << 16) | (b[p + 2]! << 8) |
      b[p + 3]!) >>>
      0;
  }

  /** A Variable Byte Integer of at most four bytes [MQTT-1.5.5-1]. */
  varint(what = "a variable byte integer"): number {
    let value = 0;
    let mul = 1;
    for (let i = 0; i < 4; i++) {
      const b = this.u8(what);
      value += (b & 0x7f) * mul;
      if ((b & 0x80) === 0) {
        // A minimal encoding is not required by the spec for receivers.
        return value;
      }
      mul *= 128;
    }
    throw new MalformedPacketError(`${what} longer than four bytes`);
  }

  string(what = "a string"): string {
    const len = this.u16(what);
    const p = this.pos;
    if (this.end - p < len) {
      throw new MalformedPacketError(`packet too short for ${what}`);
    }
    this.pos = p + len;
    return decodeUtf8(this.buf, p, p + len);
  }

  /** Binary Data: a view into the buffer, not a copy. */
  binary(what = "binary data"): Uint8Array {
    const len = this.u16(what);
    const p = this.pos;
    if (this.end - p < len) {
      throw new MalformedPacketError(`packet too short for ${what}`);
    }
    this.pos = p + len;
    return this.buf.subarray(p, p + len);
  }

  /** The rest of the body, as a view. */
  rest(): Uint8Array {
    const p = this.pos;
    this.pos = this.end;
    return this.buf.subarray(p, this.end);
  }

  /** Fails unless every byte of the body was used. */
  done(what: string): void {
    if (this.pos !== this.end) {
      throw new MalformedPacketError(
        `${what} has ${this.end - this.pos} bytes after its last field`,
      );
    }
  }
}
