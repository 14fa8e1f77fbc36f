/**
 * `webSocketClient()`: the client side of RFC 6455 over any byte `Duplex`
 * (private). Deno's `Client` runs it on its own TCP and TLS sockets for
 * `ws://` and `wss://`: Deno's `WebSocket` class leaves Nagle's algorithm on
 * for its client sockets (TCP_NODELAY off), which stalls MQTT's small
 * back-to-back writes by up to the peer's delayed-ACK time, and it cannot
 * take a server name or skip the host check. Browsers use the standard
 * `WebSocket` (dialer.ts).
 *
 * What it does: the opening handshake (`Sec-WebSocket-Key`/`-Accept`,
 * subprotocol `mqtt` offered and required [MQTT-6.0.0-3] [MQTT-6.0.0-4]),
 * then a stream: each write is one masked binary frame; the payloads of
 * incoming binary and continuation frames are read as chunks of one byte
 * stream (MQTT packets may span frames or share one [MQTT-6.0.0-2]), pings
 * are answered, a close frame is echoed and ends the stream, and a text
 * frame [MQTT-6.0.0-1], a masked frame or an unknown opcode fail the read
 * and close the connection.
 *
 * Queues: nothing is buffered here beyond one frame header and control
 * frame payloads (at most 125 bytes); reads and writes go straight to the
 * socket, so TCP backpressure applies both ways.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";

/** Options of `webSocketClient()`. */
export interface WebSocketClientOptions {
  /** The `Host` header (`host:port`). */
  host: string;
  /** The request path with the query string. */
  path: string;
  /** Subprotocols offered; the server must pick one. */
  protocols: string[];
  /** Most bytes of the server's handshake response. Default 16 KiB. */
  maxHandshakeBytes?: number;
}

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
const enc = new TextEncoder();
const dec = new TextDecoder();

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

/** The `Sec-WebSocket-Accept` value for `key`. */
async function acceptOf(key: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-1", enc.encode(key + GUID));
  return base64(new Uint8Array(digest));
}

function indexOfCrlfCrlf(b: Uint8Array): number {
  for (let i = 3; i < b.length; i++) {
    if (
      b[i] === 10 && b[i - 1] === 13 && b[i - 2] === 10 && b[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/**
 * Does the opening handshake over `inner` and returns the WebSocket as a
 * byte `Duplex`. Rejects (and closes `inner`) when the server does not
 * switch protocols with the right accept key and subprotocol.
 *
 * @example
 * ```ts ignore
 * const tcp = await new TcpDialer({ port: 8080 }).dial();
 * const ws = await webSocketClient(tcp, {
 *   host: "127.0.0.1:8080", path: "/mqtt", protocols: ["mqtt"],
 * });
 * ```
 */
export async function webSocketClient(
  inner: Duplex,
  o: WebSocketClientOptions,
): Promise<Duplex> {
  try {
    const keyBytes = crypto.getRandomValues(new Uint8Array(16));
    const key = base64(keyBytes);
    const request = [
      `GET ${o.path} HTTP/1.1`,
      `Host: ${o.host}`,
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Key: ${key}`,
      "Sec-WebSocket-Version: 13",
      `Sec-WebSocket-Protocol: ${o.protocols.join(", ")}`,
      "",
      "",
    ].join("\r\n");
    await inner.write(enc.encode(request));
    // The response head, and whatever came after it (frames already).
    const max = o.maxHandshakeBytes ?? 16 * 1024;
    let head = new Uint8Array(0);
    let end = -1;
    while (end < 0) {
      const chunk = await inner.read();
      if (chunk === null) {
        throw new Error(
          "the server closed the connection during the handshake",
        );
      }
      const joined = new Uint8Array(head.length + chunk.length);
      joined.set(head);
      joined.set(chunk, head.length);
      head = joined;
      end = indexOfCrlfCrlf(head);
      if (end < 0 && head.length > max) {
        throw new Error(`no end of the handshake within ${max} bytes`);
      }
    }
    const lines = dec.decode(head.subarray(0, end)).split("\r\n");
    const status = lines[0] ?? "";
    if (!/^HTTP\/1\.1 101 /.test(status)) {
      throw new Error(`the server answered "${status}", not 101`);
    }
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      if (colon > 0) {
        headers.set(
          line.slice(0, colon).trim().toLowerCase(),
          line.slice(colon + 1).trim(),
        );
      }
    }
    if (headers.get("sec-websocket-accept") !== await acceptOf(key)) {
      throw new Error("bad Sec-WebSocket-Accept from the server");
    }
    const protocol = headers.get("sec-websocket-protocol") ?? "";
    if (!o.protocols.includes(protocol)) {
      throw new Error(
        `the server did not accept the WebSocket subprotocol ${
          o.protocols.join(", ")
        } (got "${protocol}")`,
      );
    }
    return new FramedDuplex(inner, head.subarray(end));
  } catch (e) {
    inner.close();
    throw e;
  }
}

/** Bad framing from the server (the connection is closed with 1002). */
class WebSocketProtocolError extends Error {
  override name = "WebSocketProtocolError";
}

/** Opcodes. */
const CONTINUATION = 0x0;
const TEXT = 0x1;
const BINARY = 0x2;
const CLOSE = 0x8;
const PING = 0x9;
const PONG = 0xa;

/** A WebSocket connection (client side) as a byte stream. */
class FramedDuplex implements Duplex {
  remoteAddress?: string | undefined;
  #inner: Duplex;
  /** Bytes read from the socket and not yet parsed. */
  #pending: Uint8Array;
  /** Payload bytes left in the current data frame. */
  #left = 0;
  /** The opcode and payload length of the last frame header parsed. */
  #opcode = 0;
  #length = 0;
  #closed = false;
  #ended = false;
  #mask = new Uint8Array(4);

  constructor(inner: Duplex, rest: Uint8Array) {
    this.#inner = inner;
    this.#pending = rest;
    this.remoteAddress = inner.remoteAddress;
  }

  /** More socket bytes appended to what is pending; false at EOF. */
  async #fill(): Promise<boolean> {
    const chunk = await this.#inner.read();
    if (chunk === null) return false;
    if (this.#pending.length === 0) this.#pending = chunk;
    else {
      const joined = new Uint8Array(this.#pending.length + chunk.length);
      joined.set(this.#pending);
      joined.set(chunk, this.#pending.length);
      this.#pending = joined;
    }
    return true;
  }

  /** The next payload bytes of a data frame; null at the end. */
  async read(): Promise<Uint8Array | null> {
    if (this.#ended) return null;
    try {
      for (;;) {
        if (this.#left > 0) {
          if (this.#pending.length === 0 && !await this.#fill()) {
            return this.#end();
          }
          const p = this.#pending;
          const n = Math.min(this.#left, p.length);
          this.#left -= n;
          this.#pending = p.subarray(n);
          return p.subarray(0, n);
        }
        if (!this.#header()) {
          if (!await this.#fill()) return this.#end();
          continue;
        }
        const opcode = this.#opcode;
        const length = this.#length;
        if (opcode === BINARY || opcode === CONTINUATION) {
          this.#left = length;
          continue;
        }
        if (opcode === TEXT) {
          throw this.#protocolError(
            "a text frame on the WebSocket: MQTT needs binary frames [MQTT-6.0.0-1]",
          );
        }
        // A control frame: its payload (<= 125 bytes) whole.
        while (this.#pending.length < length) {
          if (!await this.#fill()) return this.#end();
        }
        const payload = this.#pending.slice(0, length);
        this.#pending = this.#pending.subarray(length);
        if (opcode === PING) await this.#send(PONG, payload);
        else if (opcode === CLOSE) {
          // Echo the close (its code) and end the stream.
          if (!this.#closed) {
            await this.#send(CLOSE, payload.subarray(0, 2)).catch(() => {});
          }
          return this.#end();
        } else if (opcode !== PONG) {
          throw this.#protocolError(`unknown WebSocket opcode ${opcode}`);
        }
      }
    } catch (e) {
      // After our own close() a failed socket read is just the end.
      if (this.#closed && !(e instanceof WebSocketProtocolError)) {
        return this.#end();
      }
      throw e;
    }
  }

  /**
   * Parses a frame header from `#pending` into `#opcode` and `#length`;
   * false when it is not complete yet.
   */
  #header(): boolean {
    const p = this.#pending;
    if (p.length < 2) return false;
    const b0 = p[0]!;
    const b1 = p[1]!;
    if (b1 & 0x80) {
      throw this.#protocolError(
        "a masked frame from the server (RFC 6455 5.1)",
      );
    }
    if (b0 & 0x70) {
      throw this.#protocolError("a WebSocket frame with reserved bits set");
    }
    let length = b1 & 0x7f;
    let size = 2;
    if (length === 126) {
      if (p.length < 4) return false;
      length = (p[2]! << 8) | p[3]!;
      size = 4;
    } else if (length === 127) {
      if (p.length < 10) return false;
      const high = (p[2]! << 24 | p[3]! << 16 | p[4]! << 8 | p[5]!) >>> 0;
      const low = (p[6]! << 24 | p[7]! << 16 | p[8]! << 8 | p[9]!) >>> 0;
      length = high * 2 ** 32 + low;
      size = 10;
    }
    const opcode = b0 & 0x0f;
    if (opcode >= 0x8 && length > 125) {
      throw this.#protocolError("a WebSocket control frame over 125 bytes");
    }
    this.#pending = p.subarray(size);
    this.#opcode = opcode;
    this.#length = length;
    return true;
  }

  #protocolError(message: string): Error {
    // Tell the server why (1002 protocol error), then drop the connection.
    this.#ended = true;
    this.#pending = new Uint8Array(0);
    if (!this.#closed) {
      this.#closed = true;
      this.#send(CLOSE, new Uint8Array([0x03, 0xea])).catch(() => {})
        .finally(() => this.#inner.close());
    }
    return new WebSocketProtocolError(message);
  }

  #end(): null {
    this.#ended = true;
    this.#pending = new Uint8Array(0);
    return null;
  }

  /** One masked frame of `opcode` with `payload` (a copy: masking). */
  #send(opcode: number, payload: Uint8Array): Promise<void> {
    const n = payload.length;
    const size = n < 126 ? 2 : n < 65536 ? 4 : 10;
    const frame = new Uint8Array(size + 4 + n);
    frame[0] = 0x80 | opcode;
    if (size === 2) frame[1] = 0x80 | n;
    else if (size === 4) {
      frame[1] = 0x80 | 126;
      frame[2] = n >>> 8;
      frame[3] = n & 0xff;
    } else {
      frame[1] = 0x80 | 127;
      const high = Math.floor(n / 2 ** 32);
      for (let i = 0; i < 4; i++) {
        frame[5 - i] = (high >>> (8 * i)) & 0xff;
        frame[9 - i] = (n >>> (8 * i)) & 0xff;
      }
    }
    const mask = crypto.getRandomValues(this.#mask);
    frame.set(mask, size);
    const m0 = mask[0]!, m1 = mask[1]!, m2 = mask[2]!, m3 = mask[3]!;
    const off = size + 4;
    let i = 0;
    for (; i + 4 <= n; i += 4) {
      frame[off + i] = payload[i]! ^ m0;
      frame[off + i + 1] = payload[i + 1]! ^ m1;
      frame[off + i + 2] = payload[i + 2]! ^ m2;
      frame[off + i + 3] = payload[i + 3]! ^ m3;
    }
    for (; i < n; i++) frame[off + i] = payload[i]! ^ mask[i & 3]!;
    return this.#inner.write(frame);
  }

  /** Sends `data` as one binary frame (the socket's backpressure applies). */
  write(data: Uint8Array): Promise<void> {
    if (this.#closed) return Promise.reject(new Error("WebSocket closed"));
    return this.#send(BINARY, data);
  }

  /** Sends a close frame (1000) when it can, and closes the socket. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Best effort: the close frame is queued before the socket closes.
    this.#send(CLOSE, new Uint8Array([0x03, 0xe8])).catch(() => {}).finally(
      () => this.#inner.close(),
    );
  }
}
