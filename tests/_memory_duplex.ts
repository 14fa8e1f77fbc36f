/**
 * In-memory transports for tests, no sockets: `memoryDuplexPair()` gives the
 * two ends of a pipe as `Duplex`es, and `MemoryListener` is a `Listener`
 * whose `dial()` hands one end to its `accept()` iteration and returns the
 * other.
 *
 * Semantics (those of a TCP connection, so that the broker sees the same
 * thing it sees on a socket):
 * - `write()` copies the bytes (the writer may reuse its buffer at once)
 *   and resolves at once; `read()` returns the chunks in order, one per
 *   write (or split into `maxChunk`-byte pieces when given).
 * - `close()` closes both directions of that end: a read pending on it
 *   resolves with null, later writes on it reject with `BadResource`; the
 *   peer reads what was written before the close, then null (EOF), and its
 *   writes reject with `BrokenPipe`.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import type { Listener, ListenerAddr } from "../broker/listen/listener.ts";

/** Options of `memoryDuplexPair()`. */
export interface MemoryDuplexOptions {
  /** Split every write into chunks of at most this many bytes. */
  maxChunk?: number;
  /** The `remoteAddress` of the first end (the second end's peer). */
  remoteAddressA?: string;
  /** The `remoteAddress` of the second end (the first end's peer). */
  remoteAddressB?: string;
}

/** One direction of the pipe: chunks in order, then EOF. */
class Pipe {
  // A queue with a head index: shift() on a long array copies it.
  #chunks: Uint8Array[] = [];
  #head = 0;
  #eof = false;
  #reader: ((chunk: Uint8Array | null) => void) | undefined;

  get ended(): boolean {
    return this.#eof;
  }

  push(chunk: Uint8Array): void {
    const r = this.#reader;
    if (r !== undefined) {
      this.#reader = undefined;
      r(chunk);
    } else this.#chunks.push(chunk);
  }

  /** No more chunks: the reader gets what is queued, then null. */
  end(): void {
    if (this.#eof) return;
    this.#eof = true;
    const r = this.#reader;
    if (r !== undefined) {
      this.#reader = undefined;
      r(null);
    }
  }

  /** Drops what is queued and ends (the reading side closed). */
  discard(): void {
    this.#chunks = [];
    this.#head = 0;
    this.end();
  }

  read(): Promise<Uint8Array | null> {
    if (this.#head < this.#chunks.length) {
      const chunk = this.#chunks[this.#head++]!;
      if (this.#head === this.#chunks.length) {
        this.#chunks = [];
        this.#head = 0;
      }
      return Promise.resolve(chunk);
    }
    if (this.#eof) return Promise.resolve(null);
    if (this.#reader !== undefined) {
      return Promise.reject(new Error("a read is already pending"));
    }
    return new Promise((resolve) => this.#reader = resolve);
  }
}

class MemoryDuplex implements Duplex {
  remoteAddress: string | undefined;
  #in: Pipe;
  #out: Pipe;
  #maxChunk: number;
  #closed = false;

  constructor(
    input: Pipe,
    output: Pipe,
    maxChunk: number,
    remoteAddress: string | undefined,
  ) {
    this.#in = input;
    this.#out = output;
    this.#maxChunk = maxChunk;
    this.remoteAddress = remoteAddress;
  }

  read(): Promise<Uint8Array | null> {
    return this.#in.read();
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("duplex is closed"));
    }
    if (this.#out.ended) {
      return Promise.reject(
        new Deno.errors.BrokenPipe("the peer closed the connection"),
      );
    }
    const max = this.#maxChunk;
    for (let off = 0; off < data.length; off += max) {
      this.#out.push(data.slice(off, Math.min(off + max, data.length)));
    }
    return Promise.resolve();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // What this end wrote stays readable by the peer, then EOF; what was
    // sent to this end and not read is gone, as with a closed socket.
    this.#out.end();
    this.#in.discard();
  }
}

/**
 * The two ends of an in-memory pipe: what one end writes, the other reads.
 *
 * @example
 * ```ts ignore
 * const [a, b] = memoryDuplexPair();
 * await a.write(new Uint8Array([1, 2]));
 * await b.read(); // Uint8Array [1, 2]
 * a.close();
 * await b.read(); // null
 * ```
 */
export function memoryDuplexPair(
  options: MemoryDuplexOptions = {},
): [Duplex, Duplex] {
  const max = options.maxChunk ?? Infinity;
  if (!(max >= 1)) throw new RangeError("maxChunk must be at least 1");
  const ab = new Pipe();
  const ba = new Pipe();
  const a = new MemoryDuplex(ba, ab, max, options.remoteAddressA);
  const b = new MemoryDuplex(ab, ba, max, options.remoteAddressB);
  return [a, b];
}

let nextPort = 1;

/**
 * A `Listener` over in-memory pipes: `dial()` returns the client end of a
 * new pair and queues the server end for `accept()`. Its address has a
 * made-up port, unique per listener in this process.
 *
 * @example
 * ```ts ignore
 * const listener = new MemoryListener();
 * broker.serve(listener);
 * const client = listener.dial();
 * ```
 */
export class MemoryListener implements Listener {
  readonly addr: ListenerAddr;
  #pending: Duplex[] = [];
  #waiter: ((d: Duplex | null) => void) | undefined;
  #closed = false;
  #dialed = 0;
  #maxChunk: number | undefined;

  /** `maxChunk`: split every write into chunks of at most that size. */
  constructor(options: { maxChunk?: number } = {}) {
    this.addr = { protocol: "mqtt", hostname: "memory", port: nextPort++ };
    this.#maxChunk = options.maxChunk;
  }

  /** Connects: the client end (the server end goes to `accept()`). */
  dial(): Duplex {
    if (this.#closed) {
      throw new Deno.errors.ConnectionRefused("the listener is closed");
    }
    const n = ++this.#dialed;
    const options: MemoryDuplexOptions = {
      remoteAddressA: `memory:${this.addr.port}`,
      remoteAddressB: `memory-client:${n}`,
    };
    if (this.#maxChunk !== undefined) options.maxChunk = this.#maxChunk;
    const [client, server] = memoryDuplexPair(options);
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w(server);
    } else this.#pending.push(server);
    return client;
  }

  async *accept(): AsyncIterable<Duplex> {
    while (true) {
      const next = this.#pending.shift() ??
        (this.#closed
          ? null
          : await new Promise<Duplex | null>((r) => this.#waiter = r));
      if (next === null) return;
      yield next;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // Dialed and not accepted: refused, as a closed socket's backlog is.
    for (const d of this.#pending.splice(0)) d.close();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(null);
  }
}
