/**
 * Test helper: `WebSocketDuplex`, a `Duplex` over a standard `WebSocket`
 * (the client side of tests that dial the broker's WebSocket listeners).
 *
 * - Reads: each binary message is a chunk. A text message closes the
 *   connection (code 1003); unread messages past `inputLimit` bytes close it
 *   (code 1009).
 * - Writes: `send()` has no backpressure, so `write()` resolves at once
 *   while `bufferedAmount` stays at most `HIGH_WATER`, else once it fell to
 *   `LOW_WATER` (checked on a timer backing off from 1 to 50 ms) or the
 *   socket closed.
 *
 * Event handlers are the duplex itself (`handleEvent`), not closures.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";

/** `bufferedAmount` up to which `write()` resolves at once. */
const HIGH_WATER = 256 * 1024;
/** `bufferedAmount` a waiting `write()` waits for. */
const LOW_WATER = 64 * 1024;
/** First and longest interval between `bufferedAmount` checks. */
const FIRST_POLL_MS = 1;
const MAX_POLL_MS = 50;

/** Close codes (RFC 6455 section 7.4.1). */
const NORMAL = 1000;
const UNSUPPORTED_DATA = 1003;
const MESSAGE_TOO_BIG = 1009;

const RESOLVED = Promise.resolve();
const EMPTY = new Uint8Array(0);

/** What a duplex tells its listener about (one object per listener). */
export interface WebSocketOwner {
  /** The socket opened: the duplex is ready to serve. */
  opened(d: WebSocketDuplex): void;
  /**
   * The duplex is done (once): closed by either side, or failed. The socket
   * may still be finishing its close handshake.
   */
  closed(d: WebSocketDuplex): void;
  /** The peer broke a rule (`reason`); the duplex closes the connection. */
  violation(d: WebSocketDuplex, reason: string): void;
}

/** A `Duplex` over a `WebSocket` (binary frames). */
export class WebSocketDuplex implements Duplex {
  readonly remoteAddress: string | undefined;
  #ws: WebSocket;
  #owner: WebSocketOwner | undefined;
  #inputLimit: number;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  #reader: ((chunk: Uint8Array | null) => void) | undefined;
  #ended = false;
  #closed = false;
  #done = false;
  #drain: (() => void) | undefined;
  #pollMs = FIRST_POLL_MS;
  #pollTimer: ReturnType<typeof setTimeout> | undefined;

  /**
   * Serves `ws` (its `binaryType` is set to `arraybuffer`); `owner` hears
   * about its life; unread input past `inputLimit` bytes closes it.
   */
  constructor(
    ws: WebSocket,
    options: {
      remoteAddress?: string | undefined;
      owner?: WebSocketOwner | undefined;
      inputLimit: number;
    },
  ) {
    this.#ws = ws;
    this.#owner = options.owner;
    this.#inputLimit = options.inputLimit;
    this.remoteAddress = options.remoteAddress;
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", this);
    ws.addEventListener("message", this);
    ws.addEventListener("close", this);
    ws.addEventListener("error", this);
  }

  /** The WebSocket's events (`EventListenerObject`). */
  handleEvent(e: Event): void {
    switch (e.type) {
      case "message":
        this.#onMessage((e as MessageEvent).data);
        break;
      case "open":
        this.#owner?.opened(this);
        break;
      default: // close, error
        this.#onEnd();
    }
  }

  #onMessage(data: unknown): void {
    if (this.#ended || this.#closed) return;
    if (!(data instanceof ArrayBuffer)) {
      this.#violate(
        UNSUPPORTED_DATA,
        "a text frame (MQTT needs binary frames) [MQTT-6.0.0-1]",
      );
      return;
    }
    const chunk = new Uint8Array(data);
    if (chunk.length === 0) return;
    const reader = this.#reader;
    if (reader !== undefined) {
      this.#reader = undefined;
      reader(chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (this.#queued > this.#inputLimit) {
      this.#violate(
        MESSAGE_TOO_BIG,
        `more than ${this.#inputLimit} bytes sent and not read yet`,
      );
    }
  }

  #violate(code: number, reason: string): void {
    this.#owner?.violation(this, reason);
    this.#chunks.length = 0;
    this.#head = this.#queued = 0;
    this.#shut(code, code === UNSUPPORTED_DATA ? "binary frames only" : "");
  }

  #onEnd(): void {
    if (this.#ended) return;
    this.#ended = true;
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.(null);
    this.#wake();
    const ws = this.#ws;
    ws.removeEventListener("open", this);
    ws.removeEventListener("message", this);
    ws.removeEventListener("close", this);
    ws.removeEventListener("error", this);
    this.#finish();
  }

  #finish(): void {
    if (this.#done) return;
    this.#done = true;
    this.#owner?.closed(this);
  }

  /** The next binary message, or null once the socket closed. */
  read(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head]!;
      this.#chunks[this.#head++] = EMPTY;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      }
      this.#queued -= chunk.length;
      return Promise.resolve(chunk);
    }
    if (this.#ended || this.#closed) return Promise.resolve(null);
    return new Promise((resolve) => this.#reader = resolve);
  }

  /**
   * Sends `data` as one binary message; resolves at once while the socket's
   * buffer has room, else once it drained (or the socket closed).
   */
  write(data: Uint8Array): Promise<void> {
    const ws = this.#ws;
    if (this.#closed || ws.readyState !== WebSocket.OPEN) {
      return Promise.reject(new Error("the WebSocket is closed"));
    }
    ws.send(data);
    if (ws.bufferedAmount <= HIGH_WATER) return RESOLVED;
    return new Promise<void>((resolve) => {
      this.#drain = resolve;
      this.#pollMs = FIRST_POLL_MS;
      this.#pollTimer = setTimeout(this.#poll, this.#pollMs);
    });
  }

  #poll = (): void => {
    this.#pollTimer = undefined;
    if (this.#ws.bufferedAmount <= LOW_WATER || this.#ended) {
      this.#wake();
      return;
    }
    this.#pollMs = Math.min(this.#pollMs * 2, MAX_POLL_MS);
    this.#pollTimer = setTimeout(this.#poll, this.#pollMs);
  };

  #wake(): void {
    if (this.#pollTimer !== undefined) clearTimeout(this.#pollTimer);
    this.#pollTimer = undefined;
    const drain = this.#drain;
    this.#drain = undefined;
    drain?.();
  }

  /** Closes the socket after what was sent (code 1000); idempotent. */
  close(): void {
    this.#shut(NORMAL, "");
  }

  #shut(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const reader = this.#reader;
    this.#reader = undefined;
    reader?.(null);
    this.#wake();
    try {
      this.#ws.close(code, reason);
    } catch {
      // already closing
    }
    this.#finish();
  }
}
