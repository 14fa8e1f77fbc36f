/**
 * `WsServerDuplex` (private): MQTT over a WebSocket connection, server
 * side, as a `Duplex` over the socket's own duplex (TCP or TLS): RFC 6455
 * framing as the MQTT 5.0 spec's chapter 6 uses it.
 *
 * Reads: each chunk from the socket is parsed in place; the payloads of the
 * binary frames in it are unmasked and moved to the chunk's front, and
 * `read()` returns them as one chunk, whatever MQTT packets they hold or
 * split (the decoder does not care where frames end [MQTT-6.0.0-2]). A
 * fragmented message's frames are simply consecutive bytes. The socket is
 * read only when the broker reads, so a client that sends faster than the
 * broker reads meets TCP backpressure, as over plain MQTT.
 *
 * Refused, each with a close frame and the connection closed (the listener
 * logs it): a text frame, code 1003 [MQTT-6.0.0-1]; an unmasked frame,
 * reserved bits, an unknown opcode, a continuation without a message or a
 * bad control frame, code 1002 (RFC 6455 5.1-5.5).
 *
 * Writes: one binary frame per `write()` (header and payload in one socket
 * write; server frames are not masked), resolving when the socket took it:
 * the socket's backpressure is the broker's. Ping frames are answered with
 * pongs; a close frame is answered with one and ends the connection.
 *
 * @module
 */

import type { Duplex } from "../../codec/duplex.ts";
import {
  BINARY,
  CLOSE,
  CONTINUATION,
  extendedLength,
  joinBytes,
  PING,
  PONG,
  TEXT,
  wsFrame,
} from "../../codec/_websocket.ts";
import type { IdentifiedDuplex } from "./listener.ts";

/** Close codes (RFC 6455 7.4.1). */
const NORMAL = 1000;
const PROTOCOL_ERROR = 1002;
const UNSUPPORTED_DATA = 1003;

/** Longest wait for a close frame to be written before the socket closes. */
const CLOSE_MS = 2000;

const EMPTY = new Uint8Array(0);

/** What a duplex tells its listener about. */
export interface WsOwner {
  /** The peer broke a rule (`reason`); the duplex is closing. */
  violation(d: WsServerDuplex, reason: string): void;
  /** The duplex is done (once), whoever closed it. */
  closed(d: WsServerDuplex): void;
}

function closeFrame(code: number): Uint8Array {
  return wsFrame(CLOSE, new Uint8Array([code >>> 8, code & 0xff]));
}

/** MQTT over an upgraded WebSocket connection. */
export class WsServerDuplex implements IdentifiedDuplex {
  readonly remoteAddress: string | undefined;
  readonly peerIdentity: string | undefined;
  #inner: Duplex;
  #owner: WsOwner;
  /** Bytes to parse before reading the socket again (after the handshake). */
  #pending: Uint8Array | undefined;
  /** A frame header split by a chunk boundary. */
  #carry = EMPTY;
  /** Payload bytes of the current frame still to come. */
  #left = 0;
  #mask = new Uint8Array(4);
  #maskPos = 0;
  /** The current frame's opcode when it is a control frame, else 0. */
  #controlOp = 0;
  #control = EMPTY;
  #controlLen = 0;
  /** Inside a fragmented binary message (its last frame not seen yet). */
  #inMessage = false;
  #closed = false;
  #done = false;
  /** The last write queued on the socket, while one is in flight. */
  #tail: Promise<void> | undefined;

  /**
   * Serves the upgraded connection `inner`; `rest` are bytes read with the
   * handshake (the first frames).
   */
  constructor(inner: Duplex, owner: WsOwner, rest: Uint8Array) {
    this.#inner = inner;
    this.#owner = owner;
    this.remoteAddress = inner.remoteAddress;
    this.peerIdentity = (inner as IdentifiedDuplex).peerIdentity;
    if (rest.length > 0) this.#pending = rest;
  }

  /** The payload bytes of the next binary frames, or null at the end. */
  async read(): Promise<Uint8Array | null> {
    while (true) {
      if (this.#closed) return null;
      let chunk = this.#pending;
      this.#pending = undefined;
      if (chunk === undefined) {
        const got = await this.#inner.read();
        if (got === null) {
          this.#finish();
          return null;
        }
        if (this.#closed) return null;
        chunk = got;
      }
      if (this.#carry.length > 0) {
        chunk = joinBytes(this.#carry, chunk);
        this.#carry = EMPTY;
      }
      const data = this.#parse(chunk);
      if (this.#closed) return null;
      if (data.length > 0) return data;
    }
  }

  /**
   * Parses the frames in `chunk` (owned: changed in place): the binary
   * payloads, unmasked, moved to its front; handles control frames; keeps a
   * split header in `#carry`.
   */
  #parse(b: Uint8Array): Uint8Array {
    const n = b.length;
    const mask = this.#mask;
    let p = 0;
    let w = 0;
    while (p < n) {
      if (this.#left > 0) {
        const take = Math.min(this.#left, n - p);
        let m = this.#maskPos;
        if (this.#controlOp === 0) {
          // w <= p: writing behind the reader is safe.
          for (let i = 0; i < take; i++) {
            b[w + i] = b[p + i]! ^ mask[(m + i) & 3]!;
          }
          w += take;
        } else {
          const c = this.#control;
          for (let i = 0; i < take; i++) {
            c[this.#controlLen++] = b[p + i]! ^ mask[(m + i) & 3]!;
          }
        }
        m = (m + take) & 3;
        this.#maskPos = m;
        p += take;
        this.#left -= take;
        if (this.#left === 0 && this.#controlOp !== 0) {
          this.#onControl();
          if (this.#closed) return EMPTY;
        }
        continue;
      }
      const avail = n - p;
      if (avail < 2) {
        this.#carry = b.slice(p);
        break;
      }
      const b0 = b[p]!;
      const b1 = b[p + 1]!;
      if ((b1 & 0x80) === 0) {
        this.#fail(PROTOCOL_ERROR, "an unmasked client frame");
        return EMPTY;
      }
      let len = b1 & 0x7f;
      let head = 2;
      if (len === 126) head = 4;
      else if (len === 127) head = 10;
      head += 4; // the mask
      if (avail < head) {
        this.#carry = b.slice(p);
        break;
      }
      if (len >= 126) {
        len = extendedLength(b, p);
        if (len < 0) {
          this.#fail(PROTOCOL_ERROR, "a frame longer than 2^53 bytes");
          return EMPTY;
        }
      }
      const fin = (b0 & 0x80) !== 0;
      const opcode = b0 & 0x0f;
      if ((b0 & 0x70) !== 0) {
        this.#fail(PROTOCOL_ERROR, "a frame with reserved bits set");
        return EMPTY;
      }
      if (opcode >= CLOSE) {
        if (opcode > PONG) {
          this.#fail(PROTOCOL_ERROR, `an unknown opcode ${opcode}`);
          return EMPTY;
        }
        if (!fin || len > 125) {
          this.#fail(PROTOCOL_ERROR, "a fragmented or long control frame");
          return EMPTY;
        }
        this.#controlOp = opcode;
        this.#control = new Uint8Array(len);
        this.#controlLen = 0;
      } else if (opcode === TEXT) {
        this.#fail(
          UNSUPPORTED_DATA,
          "a text frame (MQTT needs binary frames) [MQTT-6.0.0-1]",
        );
        return EMPTY;
      } else if (opcode === BINARY || opcode === CONTINUATION) {
        if ((opcode === BINARY) === this.#inMessage) {
          this.#fail(
            PROTOCOL_ERROR,
            opcode === BINARY
              ? "a new message inside a fragmented one"
              : "a continuation frame without a message",
          );
          return EMPTY;
        }
        this.#inMessage = !fin;
        this.#controlOp = 0;
      } else {
        this.#fail(PROTOCOL_ERROR, `an unknown opcode ${opcode}`);
        return EMPTY;
      }
      mask[0] = b[p + head - 4]!;
      mask[1] = b[p + head - 3]!;
      mask[2] = b[p + head - 2]!;
      mask[3] = b[p + head - 1]!;
      this.#maskPos = 0;
      this.#left = len;
      p += head;
      if (len === 0 && this.#controlOp !== 0) {
        this.#onControl();
        if (this.#closed) return EMPTY;
      }
    }
    return b.subarray(0, w);
  }

  #onControl(): void {
    const op = this.#controlOp;
    const payload = this.#control;
    this.#controlOp = 0;
    this.#control = EMPTY;
    if (op === PING) {
      this.#send(wsFrame(PONG, payload)).catch(() => {});
    } else if (op === CLOSE) {
      // Answer with the peer's code (or 1000), then close.
      const code = payload.length >= 2
        ? (payload[0]! << 8) | payload[1]!
        : NORMAL;
      this.#shut(code >= 1000 && code < 5000 ? code : NORMAL);
    }
    // PONG: nothing to do.
  }

  #fail(code: number, reason: string): void {
    if (this.#closed) return;
    this.#owner.violation(this, reason);
    this.#shut(code);
  }

  /** Queues `frame` after the write in flight, if any. */
  #send(frame: Uint8Array): Promise<void> {
    const inner = this.#inner;
    const prev = this.#tail;
    const p = prev === undefined
      ? inner.write(frame)
      : prev.then(() => inner.write(frame));
    this.#tail = p;
    const clear = () => {
      if (this.#tail === p) this.#tail = undefined;
    };
    p.then(clear, clear);
    return p;
  }

  /** Sends `data` as one binary frame; resolves once the socket took it. */
  write(data: Uint8Array): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Error("the WebSocket is closed"));
    }
    return this.#send(wsFrame(BINARY, data));
  }

  /** Sends a close frame (1000) after what was written, then closes. */
  close(): void {
    this.#shut(NORMAL);
  }

  #shut(code: number): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#pending = undefined;
    this.#carry = EMPTY;
    this.#finish();
    const inner = this.#inner;
    // A peer that reads nothing must not keep the socket open.
    const timer = setTimeout(() => inner.close(), CLOSE_MS);
    const end = () => {
      clearTimeout(timer);
      inner.close();
    };
    this.#send(closeFrame(code)).then(end, end);
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#owner.closed(this);
  }
}
