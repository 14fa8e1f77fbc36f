/**
 * `Duplex`: the byte-stream seam between a transport and the MQTT code.
 *
 * A listener (TCP, TLS, WebSocket) hands the broker one `Duplex` per client,
 * a dialer hands the client one per connection, and tests use in-memory
 * pairs: everything above the `Duplex` is the same for every transport. A
 * duplex may offer a fast read path (`raw`, see `RawReader`); readers use it
 * when present. `streamDuplex()` adapts any pair of Web streams.
 *
 * @module
 */

/** A pair of Web streams and a close function (see `streamDuplex`). */
export interface StreamPair {
  /** Bytes from the peer. */
  readable: ReadableStream<Uint8Array>;
  /** Bytes to the peer. */
  writable: WritableStream<Uint8Array>;
  /** Closes both directions; must be idempotent. */
  close(): void;
  /** The peer address (`host:port`), for logs and hooks. */
  remoteAddress?: string;
}

/**
 * A bidirectional byte stream: pull-based reads and writes without
 * per-chunk stream machinery. Listeners hand the broker one per client;
 * dialers hand the client one per connection.
 */
export interface Duplex {
  /** The next chunk from the peer (owned by the caller), or null at EOF. */
  read(): Promise<Uint8Array | null>;
  /** Writes every byte of `data`. */
  write(data: Uint8Array): Promise<void>;
  /** Closes both directions; idempotent. */
  close(): void;
  /**
   * Optional half-close: ends the sending direction (the peer reads EOF
   * after the bytes written so far) while reads go on, until `close()`.
   * A broker uses it to close "lingering": after its last packet (a
   * DISCONNECT with a reason code, a refusing CONNACK) it drains what the
   * peer still sends, so closing does not reset the connection and discard
   * that packet before the peer reads it. Without it the broker drains
   * without half-closing.
   */
  closeWrite?(): Promise<void>;
  /** The peer address, if known. */
  remoteAddress?: string | undefined;
  /**
   * Optional fast read path (see `RawReader`): a duplex that has it lets
   * the reader await the socket read directly, into the duplex's own
   * buffer, instead of through `read()`.
   */
  raw?: RawReader | undefined;
}

/**
 * The fast read capability of a `Duplex`: `readRaw()` reads into a buffer
 * the duplex owns and resolves with the byte count (or null at EOF); the
 * reader then calls `take(n)` for the bytes as a chunk of its own before
 * the next read, or `ended()` after EOF or a failed read.
 */
export interface RawReader {
  /** Reads: the byte count, or null at EOF; rejects when the socket fails. */
  readRaw(): Promise<number | null>;
  /**
   * Optional `readRaw()` that resolves with 0 at EOF instead of null, when
   * that saves the reader a promise per read (the socket's own read
   * resolves so); callers pass its count to `take()` as with `readRaw()`.
   */
  readCount?(): Promise<number>;
  /** The `n` bytes the last `readRaw()` got, as a chunk the caller owns. */
  take(n: number): Uint8Array;
  /** The last `readRaw()` ended (EOF or error): no more reads follow. */
  ended(): void;
  /** Whether the duplex was closed by this side (a failed read is then just the end). */
  readonly isClosed: boolean;
  /**
   * Optional fast write: writes some of `data` straight to the socket and
   * resolves with the count written (the caller writes the rest), or
   * rejects when the socket fails. `data` must not change until then.
   */
  writeRaw?(data: Uint8Array): Promise<number>;
  /**
   * Optional push read: hands the next read to `cb`, once, and never before
   * returning: a chunk (the caller's), 0 at EOF, or the error. Nothing is
   * pending while the socket is idle (no promise per read); a reader that
   * does not ask again at once pauses the socket.
   */
  readPush?(cb: (r: Uint8Array | 0 | Error) => void): void;
  /**
   * Optional push write: writes all of `data` and calls `done` with its
   * length once the socket took it (never before returning), or with the
   * error. One at a time; `data` must not change until `done`.
   */
  writePush?(data: Uint8Array, done: (r: unknown) => void): void;
}

/**
 * A `Duplex` over a pair of Web streams (in-memory streams, a transport
 * that only has streams, ...).
 *
 * @example
 * ```ts ignore
 * const d = streamDuplex({ readable, writable, close() {} });
 * await d.write(new Uint8Array([0xc0, 0]));
 * ```
 */
export function streamDuplex(t: StreamPair): Duplex {
  const reader = t.readable.getReader();
  const writer = t.writable.getWriter();
  let closed = false;
  const duplex: Duplex = {
    async read() {
      try {
        const r = await reader.read();
        return r.done ? null : r.value;
      } catch (e) {
        if (closed) return null;
        throw e;
      }
    },
    async write(data) {
      await writer.write(data);
    },
    async closeWrite() {
      // The peer reads EOF after what was written; reads go on.
      await writer.close().catch(() => {});
    },
    close() {
      if (closed) return;
      closed = true;
      reader.cancel().catch(() => {});
      // Close (not abort) so that the peer reads what was written, then EOF.
      writer.close().catch(() => {});
      try {
        t.close();
      } catch {
        // already closed
      }
    },
  };
  if (t.remoteAddress !== undefined) duplex.remoteAddress = t.remoteAddress;
  return duplex;
}
