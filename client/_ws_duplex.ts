/**
 * `WebSocketDuplex`: a `Duplex` over a standard `WebSocket` (private; the
 * client's `WebSocketDialer` uses it, and so can a test's listener). It uses
 * only the web platform's `WebSocket`, so it runs in Deno and in browsers.
 *
 * MQTT over WebSocket (MQTT 5.0 chapter 6): packets travel in binary frames
 * [MQTT-6.0.0-1]; a frame may hold part of a packet or several packets
 * [MQTT-6.0.0-2], which the decoder above handles, since each frame is one
 * chunk of the byte stream. A text frame is an error that closes the
 * connection.
 *
 * Queues: `send()` has no backpressure, so `write()` resolves only once the
 * socket's `bufferedAmount` is at most `maxBufferedAmount` (checked on a
 * short timer while above it). Received frames wait in a queue until read;
 * a WebSocket cannot be paused, so when more than `maxReadBuffer` bytes wait
 * (the reader stopped reading), the connection is closed with an error.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import { Fifo } from "../codec/_fifo.ts";

/** Limits of a `WebSocketDuplex`. */
export interface WebSocketDuplexOptions {
  /** `write()` waits while more bytes than this are buffered. Default 1 MiB. */
  maxBufferedAmount?: number;
  /** Received bytes that may wait to be read. Default 16 MiB. */
  maxReadBuffer?: number;
  /** The peer's address, for messages. */
  remoteAddress?: string;
}

/** WebSocket ready states (the constants, without needing the global). */
const CONNECTING = 0;
const OPEN = 1;

/** After `close()`, how long a read waits for the close handshake. */
const CLOSE_WAIT_MS = 2000;

/**
 * One WebSocket as a byte stream.
 *
 * @example
 * ```ts ignore
 * const ws = new WebSocket("ws://127.0.0.1:8080/mqtt", ["mqtt"]);
 * const duplex = new WebSocketDuplex(ws);
 * await duplex.opened;
 * await duplex.write(connectBytes);
 * ```
 */
export class WebSocketDuplex implements Duplex {
  /** The peer address, if known. */
  remoteAddress?: string | undefined;
  /** Resolves once the socket is open; rejects if it closes before. */
  readonly opened: Promise<void>;

  #ws: WebSocket;
  #maxBuffered: number;
  #maxRead: number;
  #queue = new Fifo<Uint8Array>();
  #queuedBytes = 0;
  #reader: PromiseWithResolvers<Uint8Array | null> | undefined;
  #open = Promise.withResolvers<void>();
  #error: Error | undefined;
  /** The socket's close event came. */
  #ended = false;
  /** `close()` was called. */
  #closed = false;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;

  /** Wraps `ws` (open or still connecting); sets its binary type. */
  constructor(ws: WebSocket, options: WebSocketDuplexOptions = {}) {
    this.#ws = ws;
    this.#maxBuffered = options.maxBufferedAmount ?? 1 << 20;
    this.#maxRead = options.maxReadBuffer ?? 16 << 20;
    this.remoteAddress = options.remoteAddress;
    this.opened = this.#open.promise;
    this.opened.catch(() => {});
    ws.binaryType = "arraybuffer";
    if (ws.readyState === OPEN) this.#open.resolve();
    ws.addEventListener("open", this.#onOpen);
    ws.addEventListener("message", this.#onMessage);
    ws.addEventListener("error", this.#onError);
    ws.addEventListener("close", this.#onClose);
  }

  /** The socket's negotiated subprotocol (`""` for none). */
  get protocol(): string {
    return this.#ws.protocol;
  }

  #onOpen = (): void => {
    this.#open.resolve();
  };

  #onMessage = (ev: MessageEvent): void => {
    if (this.#closed || this.#error) return;
    const data = ev.data;
    if (!(data instanceof ArrayBuffer)) {
      this.#fail(
        new Error(
          "a text frame on the WebSocket: MQTT needs binary frames [MQTT-6.0.0-1]",
        ),
      );
      return;
    }
    const chunk = new Uint8Array(data);
    const r = this.#reader;
    if (r !== undefined) {
      this.#reader = undefined;
      r.resolve(chunk);
      return;
    }
    this.#queue.push(chunk);
    this.#queuedBytes += chunk.length;
    if (this.#queuedBytes > this.#maxRead) {
      this.#fail(
        new Error(
          `more than ${this.#maxRead} bytes received on the WebSocket and not read`,
        ),
      );
    }
  };

  #onError = (ev: Event): void => {
    const msg = (ev as ErrorEvent).message;
    this.#error ??= new Error(
      msg ? `WebSocket error: ${msg}` : "WebSocket connection failed",
    );
  };

  #onClose = (ev: CloseEvent): void => {
    this.#ended = true;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#closeTimer = undefined;
    const ws = this.#ws;
    ws.removeEventListener("open", this.#onOpen);
    ws.removeEventListener("message", this.#onMessage);
    ws.removeEventListener("error", this.#onError);
    ws.removeEventListener("close", this.#onClose);
    if (
      this.#error === undefined && !this.#closed && ev.code !== 1000 &&
      ev.code !== 1005
    ) {
      this.#error = new Error(
        `WebSocket closed with code ${ev.code}${
          ev.reason ? ` (${ev.reason})` : ""
        }`,
      );
    }
    this.#open.reject(this.#error ?? new Error("WebSocket closed"));
    const r = this.#reader;
    this.#reader = undefined;
    if (r === undefined) return;
    if (this.#error !== undefined && !this.#closed) r.reject(this.#error);
    else r.resolve(null);
  };

  /** Records `e`, fails a pending read with it, and closes the socket. */
  #fail(e: Error): void {
    this.#error ??= e;
    this.#queue = new Fifo();
    this.#queuedBytes = 0;
    const r = this.#reader;
    this.#reader = undefined;
    r?.reject(e);
    try {
      this.#ws.close(1002);
    } catch { /* already closing */ }
  }

  /** The next frame's bytes; null after the close (or `close()`). */
  read(): Promise<Uint8Array | null> {
    const chunk = this.#queue.shift();
    if (chunk !== undefined) {
      this.#queuedBytes -= chunk.length;
      return Promise.resolve(chunk);
    }
    if (this.#error !== undefined && !this.#closed) {
      return Promise.reject(this.#error);
    }
    if (this.#ended) return Promise.resolve(null);
    if (this.#reader !== undefined) {
      return Promise.reject(new Error("WebSocketDuplex: concurrent read()"));
    }
    this.#reader = Promise.withResolvers();
    if (this.#closed) this.#armCloseTimer();
    return this.#reader.promise;
  }

  /** Sends `data` as one binary frame; waits while too much is buffered. */
  async write(data: Uint8Array): Promise<void> {
    const ws = this.#ws;
    if (ws.readyState === CONNECTING && !this.#closed) await this.opened;
    if (this.#closed || this.#error || ws.readyState !== OPEN) {
      throw this.#error ?? new Error("WebSocket closed");
    }
    ws.send(data);
    if (ws.bufferedAmount > this.#maxBuffered) await this.#drain();
  }

  /** Waits (polling: there is no event) until the buffer is at most half full. */
  async #drain(): Promise<void> {
    const ws = this.#ws;
    const low = this.#maxBuffered >> 1;
    for (
      let delay = 1;
      ws.bufferedAmount > low;
      delay = Math.min(delay * 2, 16)
    ) {
      if (ws.readyState !== OPEN) {
        throw this.#error ?? new Error("WebSocket closed");
      }
      await new Promise((r) => setTimeout(r, delay));
    }
  }

  /**
   * Closes the socket (normal closure, 1000); idempotent. A pending read
   * resolves with null once the close handshake is done (at most 2 s).
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#queue = new Fifo();
    this.#queuedBytes = 0;
    if (this.#ended) return;
    try {
      this.#ws.close(1000);
    } catch { /* already closing */ }
    if (this.#reader !== undefined) this.#armCloseTimer();
  }

  /** A read pending after `close()` ends at the close event or the timer. */
  #armCloseTimer(): void {
    if (this.#closeTimer !== undefined) return;
    this.#closeTimer = setTimeout(() => {
      this.#closeTimer = undefined;
      const r = this.#reader;
      this.#reader = undefined;
      r?.resolve(null);
    }, CLOSE_WAIT_MS);
  }
}
