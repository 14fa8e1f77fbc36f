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
import {
  acceptKey,
  BINARY,
  CLOSE,
  CONTINUATION,
  endOfHead,
  extendedLength,
  joinBytes,
  PING,
  PONG,
  TEXT,
  wsFrame,
} from "../codec/_websocket.ts";
import { subprotocolRefused } from "./dialer.ts";

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

const enc = new TextEncoder();
const dec = new TextDecoder();

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
    const key = btoa(String.fromCharCode(...keyBytes));
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
      const from = head.length - 3;
      head = joinBytes(head, chunk);
      end = endOfHead(head, from);
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
    if (headers.get("sec-websocket-accept") !== await acceptKey(key)) {
      throw new Error("bad Sec-WebSocket-Accept from the server");
    }
    const protocol = headers.get("sec-websocket-protocol") ?? "";
    if (!o.protocols.includes(protocol)) {
      throw subprotocolRefused(o.protocols, protocol);
    }
    return new FramedDuplex(inner, head.subarray(end + 4));
  } catch (e) {
    inner.close();
    throw e;
  }
}

/** Bad framing from the server (the connection is closed with 1002). */
class WebSocketProtocolError extends Error {
  override name = "WebSocketProtocolError";
}

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
    else this.#pending = joinBytes(this.#pending, chunk);
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
    const size = length < 126 ? 2 : length === 126 ? 4 : 10;
    if (p.length < size) return false;
    if (size > 2) {
      length = extendedLength(p, 0);
      if (length < 0) {
        throw this.#protocolError("a WebSocket frame longer than 2^53 bytes");
      }
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
    const mask = crypto.getRandomValues(this.#mask);
    return this.#inner.write(wsFrame(opcode, payload, mask));
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
