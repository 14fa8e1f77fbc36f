/**
 * `ConnDuplex`: a `Duplex` over a `Deno.Conn` (TCP, TLS) with lean reads: a
 * small reused buffer that grows only while data flows, instead of the 64 KiB
 * buffer the default `conn.readable` allocates for every pending read. It
 * offers the fast read path (`raw`). Private to the package: used by the
 * broker's TCP/TLS listeners and the client's TCP/TLS dialers.
 *
 * @module
 */

import { alloc } from "./_slab.ts";
import { coreRead, coreReadCount, coreReadRid } from "./_core_read.ts";
import type { Duplex, RawReader } from "./duplex.ts";

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
 * Read buffers of a fixed size as views into shared slabs: a pending read
 * pins its buffer, and a small `Uint8Array` with its own `ArrayBuffer`
 * costs about 300 bytes more than the view alone (V8's `ArrayBuffer`
 * object, backing store and its bookkeeping), and its allocation shows in
 * a connect storm. A slot goes back to its pool only when no read into it
 * is pending; the free list is bounded, and a slab is garbage once none of
 * its views is referenced.
 */
class SlotPool {
  #free: Uint8Array<ArrayBuffer>[] = [];
  #slab: ArrayBuffer | undefined;
  #next: number;
  constructor(readonly size: number, readonly perSlab: number) {
    this.#next = perSlab;
  }

  take(): Uint8Array<ArrayBuffer> {
    const free = this.#free.pop();
    if (free !== undefined) return free;
    if (this.#next === this.perSlab) {
      this.#slab = new ArrayBuffer(this.size * this.perSlab);
      this.#next = 0;
    }
    return new Uint8Array(this.#slab!, this.size * this.#next++, this.size);
  }

  /** Takes `buf` back if it is one of this pool's slots (and there is room). */
  give(buf: Uint8Array<ArrayBuffer>): void {
    if (
      buf.byteLength === this.size &&
      buf.buffer.byteLength === this.size * this.perSlab &&
      this.#free.length < 4 * this.perSlab
    ) this.#free.push(buf);
  }
}

/** Idle reads. */
const idleSlots = new SlotPool(MIN_READ, 1024);
/**
 * First reads (the CONNECT): the same for the `FIRST_READ` buffer every
 * new connection reads into, given back once its reads get small.
 */
const firstSlots = new SlotPool(FIRST_READ, 64);

const NO_BUF = new Uint8Array(0);

/**
 * Chunks of up to `RX_SMALL` bytes (a PINGREQ, an ack, one small PUBLISH)
 * are copied out of the read buffer into the codec's shared slabs (`alloc`,
 * the 16 KiB slabs small encodings come from) instead of each into an
 * `ArrayBuffer` of its own: V8 allocates, tracks and sweeps every
 * `ArrayBuffer`, about 3 µs of CPU per read, and at 10k messages/s one per
 * message showed in the latency tail (p99 about 20% lower without). A chunk
 * is a view that keeps its slab alive, as any chunk keeps its buffer;
 * whatever keeps bytes from a packet for long (queued and in-flight
 * messages, retained messages, wills) copies them out.
 *
 * Measured alternatives: 64 KiB slabs of their own lived long enough to
 * reach V8's old generation, where only full collections free them (10-12
 * ms pauses), and copying reads of up to 2 KiB made the QoS 1 scenario 12%
 * slower.
 */
const RX_SMALL = 128;

const nullToZero = (n: number | null): number => n ?? 0;

/** The first `n` bytes of `buf`, as a chunk that `buf` can be reused after. */
function copyOut(buf: Uint8Array, n: number): Uint8Array {
  if (n > RX_SMALL) return buf.slice(0, n);
  const chunk = alloc(n);
  // A loop, not `set(buf.subarray(0, n))`: no view allocated per read.
  for (let i = 0; i < n; i++) chunk[i] = buf[i]!;
  return chunk;
}

/**
 * A `Duplex` over a `Deno.Conn`: reads into a small buffer that doubles
 * while reads fill it (up to 64 KiB) and shrinks back when traffic stops, so
 * an idle connection pins only a 64-byte slot of a shared slab. A class
 * (methods on the prototype, no closures per connection); `readRaw()` +
 * `take()` (or `ended()`) let the broker's read loop await the socket read
 * directly, without an async function in between.
 */
export class ConnDuplex implements Duplex, RawReader {
  #conn: Deno.Conn;
  /** For `coreRead`; -1: read with `conn.read`. */
  #rid: number;
  #buf = firstSlots.take();
  #full = false;
  #closed = false;
  /** A read into `#buf` is pending (so the slot may not be reused yet). */
  #pending = false;

  /** Wraps `conn`. */
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
    this.#rid = coreReadRid(conn);
  }

  /** The fast read path: this duplex itself. */
  get raw(): RawReader {
    return this;
  }

  /** The peer address (`host:port`), if known; built on each call. */
  get remoteAddress(): string | undefined {
    return addrString(this.#conn.remoteAddr);
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /**
   * Reads into the internal buffer: the byte count (pass it to `take()`
   * before the next read), or null at EOF (then call `ended()`). Rejects
   * when the socket fails, also after `close()` (check `isClosed`; call
   * `ended()`).
   */
  readRaw(): Promise<number | null> {
    this.#pending = true;
    // Not `conn.read`: see _core_read.ts (old-generation garbage per read).
    return this.#rid >= 0
      ? coreRead(this.#rid, this.#buf)
      : this.#conn.read(this.#buf);
  }

  /**
   * `readRaw()` resolving with 0 at EOF: on the op path, the op's promise
   * itself (one promise and one reaction fewer per read than `readRaw()`).
   */
  readCount(): Promise<number> {
    if (this.#rid < 0) {
      return this.readRaw().then(nullToZero);
    }
    this.#pending = true;
    return coreReadCount(this.#rid, this.#buf);
  }

  /** The `n` bytes the last `readRaw()` got, as a chunk the caller owns. */
  take(n: number): Uint8Array {
    this.#pending = false;
    const buf = this.#buf;
    const chunk = copyOut(buf, n);
    if (this.#closed) {
      this.#release();
      return chunk;
    }
    if (n === buf.length) {
      if (n < MAX_READ) {
        this.#setBuf(
          n < FIRST_READ ? firstSlots.take() : new Uint8Array(n * 2),
        );
      }
      this.#full = true;
    } else {
      // Not right after a full read (likely the tail of a packet split by
      // the small buffer): shrinking then would split every packet.
      if (n < MIN_READ && buf.length > MIN_READ && !this.#full) {
        this.#setBuf(idleSlots.take());
      }
      this.#full = false;
    }
    return chunk;
  }

  /** The last `readRaw()` ended (EOF or error): no more reads follow. */
  ended(): void {
    this.#pending = false;
    this.#release();
  }

  #setBuf(next: Uint8Array<ArrayBuffer>): void {
    const old = this.#buf;
    this.#buf = next;
    idleSlots.give(old);
    firstSlots.give(old);
  }

  #release(): void {
    if (this.#buf !== NO_BUF) this.#setBuf(NO_BUF);
  }

  /** The next chunk from the peer, or null at EOF (and after it). */
  async read(): Promise<Uint8Array | null> {
    if (this.#buf === NO_BUF) return null; // ended (EOF, error or close)
    let n: number | null;
    try {
      n = await this.readRaw();
    } catch (e) {
      this.ended();
      if (this.#closed) return null;
      throw e;
    }
    if (n === null) {
      this.ended();
      return null;
    }
    return this.take(n);
  }

  /**
   * Writes some of `data` (the socket's own write: no async function in
   * between); resolves with the count written.
   */
  writeRaw(data: Uint8Array): Promise<number> {
    try {
      return this.#conn.write(data);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Writes every byte of `data`. */
  async write(data: Uint8Array): Promise<void> {
    let off = 0;
    while (off < data.length) {
      off += await this.#conn.write(off === 0 ? data : data.subarray(off));
    }
  }

  /**
   * Half-closes: the peer reads EOF after what was written; reads go on
   * until `close()`. Resolves (never rejects) once done or failed.
   */
  async closeWrite(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#conn.closeWrite();
    } catch {
      // not connected any more: close() follows
    }
  }

  /** Closes the socket; idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    // With a read pending, its slot is freed when the read settles.
    if (!this.#pending) this.#release();
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
