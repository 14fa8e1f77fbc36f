/**
 * `NodeSocketDuplex` (private): a `Duplex` over a `node:net`/`node:tls`
 * socket, for the mutual TLS listener (`node:tls` is what can ask for client
 * certificates under Deno).
 *
 * Reads: `data` events fill a queue that `read()` takes from; above
 * `HIGH_WATER` bytes unread the socket is paused (TCP backpressure reaches
 * the client) and resumed below `LOW_WATER`. Writes resolve once the socket
 * took the bytes (its write callback), so a caller may reuse its buffer
 * after. `close()` ends the socket (the peer reads what was written, then
 * EOF) and destroys it once that is flushed, or after `CLOSE_MS`.
 *
 * @module
 */

import type { Socket } from "node:net";
import type { ConnectionCount } from "./_tracked.ts";
import type { IdentifiedDuplex } from "./listener.ts";

/** Unread bytes above which the socket is paused. */
const HIGH_WATER = 64 * 1024;
/** Unread bytes below which a paused socket is resumed. */
const LOW_WATER = 16 * 1024;
/** Longest wait for the last bytes to flush at close. */
const CLOSE_MS = 2000;

/** A `Duplex` over a Node socket that holds a place of its listener. */
export class NodeSocketDuplex implements IdentifiedDuplex {
  readonly remoteAddress: string | undefined;
  readonly peerIdentity: string | undefined;
  #socket: Socket;
  #count: ConnectionCount;
  #chunks: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  #paused = false;
  #reader: ((chunk: Uint8Array | null) => void) | undefined;
  #failReader: ((e: unknown) => void) | undefined;
  #ended = false;
  #error: unknown;
  #closed = false;

  /** Wraps `socket`, holding a place of `count` (taken already). */
  constructor(
    socket: Socket,
    count: ConnectionCount,
    peerIdentity?: string,
  ) {
    this.#socket = socket;
    this.#count = count;
    this.peerIdentity = peerIdentity;
    this.remoteAddress = socket.remoteAddress === undefined
      ? undefined
      : `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on("data", (d: Uint8Array) => this.#onData(d));
    socket.on("end", () => this.#onEnd(undefined));
    socket.on("close", () => this.#onEnd(undefined));
    socket.on("error", (e: unknown) => this.#onEnd(e));
  }

  #onData(d: Uint8Array): void {
    // A plain view, not the Buffer subclass.
    const chunk = new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
    const reader = this.#reader;
    if (reader !== undefined) {
      this.#reader = this.#failReader = undefined;
      reader(chunk);
      return;
    }
    this.#chunks.push(chunk);
    this.#queued += chunk.length;
    if (!this.#paused && this.#queued > HIGH_WATER) {
      this.#paused = true;
      this.#socket.pause();
    }
  }

  #onEnd(error: unknown): void {
    if (this.#ended) return;
    this.#ended = true;
    if (error !== undefined && !this.#closed) this.#error = error;
    const reader = this.#reader;
    const fail = this.#failReader;
    this.#reader = this.#failReader = undefined;
    if (reader === undefined) return;
    if (this.#error !== undefined) fail!(this.#error);
    else reader(null);
  }

  /** The next chunk, or null at EOF (and after `close()`). */
  read(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head]!;
      this.#chunks[this.#head++] = EMPTY;
      if (this.#head === this.#chunks.length) {
        this.#chunks.length = 0;
        this.#head = 0;
      }
      this.#queued -= chunk.length;
      if (this.#paused && this.#queued < LOW_WATER && !this.#closed) {
        this.#paused = false;
        this.#socket.resume();
      }
      return Promise.resolve(chunk);
    }
    if (this.#closed) return Promise.resolve(null);
    if (this.#ended) {
      if (this.#error === undefined) return Promise.resolve(null);
      const e = this.#error;
      this.#error = undefined;
      return Promise.reject(e);
    }
    return new Promise((resolve, reject) => {
      this.#reader = resolve;
      this.#failReader = reject;
    });
  }

  /** Resolves once the socket took every byte of `data`. */
  write(data: Uint8Array): Promise<void> {
    const socket = this.#socket;
    if (this.#closed || socket.destroyed || !socket.writable) {
      return Promise.reject(new Error("the connection is closed"));
    }
    return new Promise((resolve, reject) => {
      socket.write(data, (e?: Error | null) => e ? reject(e) : resolve());
    });
  }

  /** Ends the socket after what was written; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#count.release();
    this.#chunks.length = 0;
    this.#head = this.#queued = 0;
    const reader = this.#reader;
    this.#reader = this.#failReader = undefined;
    reader?.(null);
    const socket = this.#socket;
    if (socket.destroyed) return;
    const timer = setTimeout(() => socket.destroy(), CLOSE_MS);
    socket.end(() => {
      clearTimeout(timer);
      socket.destroy();
    });
  }
}

const EMPTY = new Uint8Array(0);
