/**
 * Transports: what the broker reads bytes from and writes bytes to.
 *
 * The broker knows nothing about sockets beyond `Transport`
 * (`{readable, writable, close}`); `connTransport()` adapts a `Deno.Conn`
 * (TCP, TLS) to it with lean reads: a small reused buffer that grows only
 * while data flows, instead of the 64 KiB buffer the default
 * `conn.readable` allocates for every pending read.
 *
 * @module
 */

/** A bidirectional byte stream the broker can serve one MQTT client on. */
export interface Transport {
  /** Bytes from the client. */
  readable: ReadableStream<Uint8Array>;
  /** Bytes to the client. */
  writable: WritableStream<Uint8Array>;
  /** Closes both directions; must be idempotent. */
  close(): void;
  /** The peer address (`host:port`), for logs and hooks. */
  remoteAddress?: string;
}

/**
 * The broker's internal view of a transport: pull-based reads and writes
 * without per-chunk stream machinery.
 */
export interface Duplex {
  /** The next chunk from the peer (owned by the caller), or null at EOF. */
  read(): Promise<Uint8Array | null>;
  /** Writes every byte of `data`. */
  write(data: Uint8Array): Promise<void>;
  /** Closes both directions; idempotent. */
  close(): void;
  /** The peer address, if known. */
  remoteAddress?: string;
}

/** The first read (a CONNECT fits) and the size reads grow back from. */
const FIRST_READ = 512;
/**
 * An idle connection's read buffer: a pending read pins its buffer, so
 * 10,000 idle clients pinned 5 MB with 512 bytes each. A packet larger
 * than this is read in a few more reads while the buffer doubles.
 */
const MIN_READ = 64;
const MAX_READ = 64 * 1024;

function addrString(addr: Deno.Addr): string | undefined {
  if (addr.transport === "tcp" || addr.transport === "udp") {
    return `${addr.hostname}:${addr.port}`;
  }
  return undefined;
}

/**
 * A `Duplex` over a `Deno.Conn`: reads into a small buffer that doubles
 * while reads fill it (up to 64 KiB) and shrinks back when traffic stops, so
 * an idle connection pins only a 64-byte read buffer. A class (methods on
 * the prototype, no closures per connection); `readRaw()` + `take()` let
 * the broker's read loop await the socket read directly, without an async
 * function in between.
 */
export class ConnDuplex implements Duplex {
  /** The peer address, if known. */
  remoteAddress?: string;
  #conn: Deno.Conn;
  #buf = new Uint8Array(FIRST_READ);
  #full = false;
  #closed = false;

  /** Wraps `conn`. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    const remote = addrString(conn.remoteAddr);
    if (remote !== undefined) this.remoteAddress = remote;
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Reads into the internal buffer: the byte count (pass it to `take()`
   * before the next read), or null at EOF. Rejects when the socket fails,
   * also after `close()` (check `isClosed`).
   */
  readRaw(): Promise<number | null> {
    return this.#conn.read(this.#buf);
  }

  /** The `n` bytes the last `readRaw()` got, as a chunk the caller owns. */
  take(n: number): Uint8Array {
    const buf = this.#buf;
    const chunk = buf.slice(0, n);
    if (n === buf.length) {
      if (n < MAX_READ) {
        this.#buf = new Uint8Array(n < FIRST_READ ? FIRST_READ : n * 2);
      }
      this.#full = true;
    } else {
      // Not right after a full read (likely the tail of a packet split by
      // the small buffer): shrinking then would split every packet.
      if (n < MIN_READ && buf.length > MIN_READ && !this.#full) {
        this.#buf = new Uint8Array(MIN_READ);
      }
      this.#full = false;
    }
    return chunk;
  }

  /** The next chunk from the peer, or null at EOF. */
  async read(): Promise<Uint8Array | null> {
    let n: number | null;
    try {
      n = await this.#conn.read(this.#buf);
    } catch (e) {
      if (this.#closed) return null;
      throw e;
    }
    return n === null ? null : this.take(n);
  }

  /** Writes every byte of `data`. */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      off += await this.#conn.write(off === 0 ? data : data.subarray(off));
    }
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}

/**
 * A `Duplex` over a `Deno.Conn` (see `ConnDuplex`).
 *
 * @example
 * ```ts ignore
 * const d = connDuplex(await Deno.connect({ port: 1883 }));
 * const chunk = await d.read();
 * ```
 */
export function connDuplex(conn: Deno.Conn): ConnDuplex {
  return new ConnDuplex(conn);
}

/** A `Duplex` over any `Transport` (in-memory streams, WebSocket, ...). */
export function streamDuplex(t: Transport): Duplex {
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

/**
 * Adapts a `Deno.Conn` to a `Transport` whose readable reads lean (a small
 * buffer growing only while data flows) rather than through `conn.readable`.
 *
 * @example
 * ```ts ignore
 * import { Broker, connTransport } from "@kite/mqtt/broker";
 * const broker = new Broker({ port: 0 });
 * const listener = Deno.listen({ port: 0 });
 * for await (const conn of listener) broker.handleConnection(connTransport(conn));
 * ```
 */
export function connTransport(conn: Deno.Conn): Transport {
  const d = connDuplex(conn);
  const t: Transport = {
    readable: new ReadableStream<Uint8Array>({
      async pull(controller) {
        const chunk = await d.read();
        if (chunk === null) controller.close();
        else controller.enqueue(chunk);
      },
      cancel() {
        d.close();
      },
    }, { highWaterMark: 0 }),
    writable: new WritableStream<Uint8Array>({
      write(chunk) {
        return d.write(chunk);
      },
    }),
    close() {
      d.close();
    },
  };
  if (d.remoteAddress !== undefined) t.remoteAddress = d.remoteAddress;
  return t;
}
