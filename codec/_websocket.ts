/**
 * The pieces of RFC 6455 both WebSocket sides use (private, no I/O): the
 * opcodes, a frame's header and payload ({@linkcode wsFrame}: a server's
 * unmasked, a client's masked), the extended payload length of a frame
 * header, the `Sec-WebSocket-Accept` value of a key, and the end of an HTTP
 * head. The broker's side is broker/listen/_ws_server_duplex.ts and
 * _ws_handshake.ts; the client's is client/_ws_frames.ts.
 *
 * @module
 */

/** Opcodes (RFC 6455 5.2). */
export const CONTINUATION = 0x0;
/** A text frame: MQTT refuses it [MQTT-6.0.0-1]. */
export const TEXT = 0x1;
/** A binary frame: MQTT's bytes. */
export const BINARY = 0x2;
/** A close frame (control). */
export const CLOSE = 0x8;
/** A ping frame (control). */
export const PING = 0x9;
/** A pong frame (control). */
export const PONG = 0xa;

/** The GUID of RFC 6455 section 1.3. */
const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

const ascii = new TextEncoder();

/**
 * One whole frame (FIN set) of `opcode` with `payload` after its header:
 * unmasked without `mask` (a server's frame), else masked with these 4
 * bytes (a client's; RFC 6455 5.3).
 */
export function wsFrame(
  opcode: number,
  payload: Uint8Array,
  mask?: Uint8Array,
): Uint8Array {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65536 ? 4 : 10;
  const off = mask === undefined ? head : head + 4;
  const frame = new Uint8Array(off + n);
  const masked = mask === undefined ? 0 : 0x80;
  frame[0] = 0x80 | opcode;
  if (n < 126) frame[1] = masked | n;
  else if (n < 65536) {
    frame[1] = masked | 126;
    frame[2] = n >>> 8;
    frame[3] = n & 0xff;
  } else {
    frame[1] = masked | 127;
    // Up to 2^53: the high 32 bits, then the low 32.
    const hi = Math.floor(n / 0x100000000);
    frame[2] = hi >>> 24;
    frame[3] = (hi >>> 16) & 0xff;
    frame[4] = (hi >>> 8) & 0xff;
    frame[5] = hi & 0xff;
    frame[6] = n >>> 24;
    frame[7] = (n >>> 16) & 0xff;
    frame[8] = (n >>> 8) & 0xff;
    frame[9] = n & 0xff;
  }
  if (mask === undefined) {
    frame.set(payload, head);
    return frame;
  }
  frame.set(mask, head);
  const m0 = mask[0]!, m1 = mask[1]!, m2 = mask[2]!, m3 = mask[3]!;
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    frame[off + i] = payload[i]! ^ m0;
    frame[off + i + 1] = payload[i + 1]! ^ m1;
    frame[off + i + 2] = payload[i + 2]! ^ m2;
    frame[off + i + 3] = payload[i + 3]! ^ m3;
  }
  for (; i < n; i++) frame[off + i] = payload[i]! ^ mask[i & 3]!;
  return frame;
}

/**
 * The payload length of the frame header at `b[p]` whose 7-bit length is
 * 126 (a 16-bit length follows) or 127 (a 64-bit one); the caller has
 * checked that those bytes are there. -1 for a length over 2^53 - 1.
 */
export function extendedLength(b: Uint8Array, p: number): number {
  if ((b[p + 1]! & 0x7f) === 126) return (b[p + 2]! << 8) | b[p + 3]!;
  const hi = (b[p + 2]! << 24 | b[p + 3]! << 16 | b[p + 4]! << 8 |
    b[p + 5]!) >>> 0;
  const lo = (b[p + 6]! << 24 | b[p + 7]! << 16 | b[p + 8]! << 8 |
    b[p + 9]!) >>> 0;
  return hi > 0x1fffff ? -1 : hi * 0x100000000 + lo;
}

/** `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key`. */
export async function acceptKey(key: string): Promise<string> {
  const digest = await crypto.subtle.digest(
    "SHA-1",
    ascii.encode(key + WS_GUID),
  );
  return btoa(String.fromCharCode(...new Uint8Array(digest)));
}

/** The index of `\r\n\r\n` in `b`, from `from`, or -1. */
export function endOfHead(b: Uint8Array, from: number): number {
  for (let i = Math.max(0, from); i + 3 < b.length; i++) {
    if (
      b[i] === 13 && b[i + 1] === 10 && b[i + 2] === 13 && b[i + 3] === 10
    ) return i;
  }
  return -1;
}

/** `a` and then `b` in a new array. */
export function joinBytes(
  a: Uint8Array,
  b: Uint8Array,
): Uint8Array<ArrayBuffer> {
  const joined = new Uint8Array(a.length + b.length);
  joined.set(a);
  joined.set(b, a.length);
  return joined;
}
