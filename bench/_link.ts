/**
 * The load tool's socket layer: a connection that reads into a reused
 * buffer and scans MQTT frames in place (no Packet objects), a writer that
 * serialises and coalesces writes, and a one-waiter notifier.
 *
 * @module
 */

import { DISCONNECT } from "./_packets.ts";
import { WsByteConn } from "./_ws_conn.ts";
import { coreRead, coreReadRid } from "../codec/_core_read.ts";

/**
 * How the load tool reaches the broker: MQTT over TCP, over TLS (trusting
 * `caCerts`), or over a WebSocket at `path` (subprotocol `mqtt`).
 */
export type LoadTransport =
  | { kind: "tcp" }
  | { kind: "tls"; caCerts: string[] }
  | { kind: "ws"; path: string };

/** Plain TCP. */
export const TCP: LoadTransport = { kind: "tcp" };

/** The byte stream a `Link` reads and writes: a TCP or TLS socket, a WebSocket. */
export interface ByteConn {
  read(p: Uint8Array): Promise<number | null>;
  write(p: Uint8Array): Promise<number>;
  close(): void;
}

/** Opens a byte stream to `host:port` over `transport`. */
export async function dial(
  host: string,
  port: number,
  transport: LoadTransport = TCP,
): Promise<ByteConn> {
  switch (transport.kind) {
    case "tcp": {
      const conn = await Deno.connect({ hostname: host, port });
      conn.setNoDelay(true);
      return conn;
    }
    case "tls":
      return await Deno.connectTls({
        hostname: host,
        port,
        caCerts: transport.caCerts,
      });
    case "ws":
      return await WsByteConn.open(`ws://${host}:${port}${transport.path}`);
  }
}

/** Resolves when notified (or after `ms`, if given); one waiter at a time. */
export class Notifier {
  #resolve: (() => void) | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  waiting = false;
  wait(ms?: number): Promise<void> {
    this.waiting = true;
    return new Promise<void>((resolve) => {
      this.#resolve = resolve;
      if (ms !== undefined) this.#timer = setTimeout(() => this.notify(), ms);
    });
  }
  notify(): void {
    const r = this.#resolve;
    if (!r) return;
    this.#resolve = undefined;
    this.waiting = false;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    r();
  }
}

/** Serialises and coalesces the writes of one connection. */
export class Writer {
  #conn: ByteConn;
  #queue: Uint8Array[] = [];
  #done: (() => void)[] = [];
  #busy = false;
  failed = false;
  constructor(conn: ByteConn) {
    this.#conn = conn;
  }
  /** Queues bytes; they must not be changed until written. */
  enqueue(bytes: Uint8Array): void {
    if (this.failed) return;
    this.#queue.push(bytes);
    if (!this.#busy) this.#pump();
  }
  /** Queues bytes and resolves once they are written (or failed). */
  write(bytes: Uint8Array): Promise<void> {
    if (this.failed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      this.#done.push(resolve);
      this.enqueue(bytes);
    });
  }
  async #pump(): Promise<void> {
    this.#busy = true;
    try {
      while (this.#queue.length > 0) {
        const chunks = this.#queue;
        const done = this.#done;
        this.#queue = [];
        this.#done = [];
        let data: Uint8Array;
        if (chunks.length === 1) data = chunks[0]!;
        else {
          let n = 0;
          for (const c of chunks) n += c.length;
          data = new Uint8Array(n);
          n = 0;
          for (const c of chunks) {
            data.set(c, n);
            n += c.length;
          }
        }
        let off = 0;
        while (off < data.length) {
          off += await this.#conn.write(data.subarray(off));
        }
        for (const d of done) d();
      }
    } catch {
      this.failed = true;
      for (const d of this.#done) d();
      this.#done = [];
      this.#queue = [];
    } finally {
      this.#busy = false;
    }
  }
}

export type PacketHandler = (
  first: number,
  buf: Uint8Array,
  body: number,
  length: number,
  view: DataView,
) => void;

/**
 * One MQTT connection: a read loop into a reused buffer that scans frames
 * in place and calls `onPacket` per packet, and a coalescing writer.
 */
export class Link {
  conn: ByteConn;
  writer: Writer;
  onPacket: PacketHandler;
  /** Called after each chunk has been scanned. */
  afterChunk: (() => void) | undefined;
  /** Time (performance.now()) the current chunk was read. */
  now = 0;
  /** A slow reader: at most this many bytes per read... */
  maxRead = Infinity;
  /** ...and this long a pause after each read, ms. */
  readDelayMs = 0;
  closing = false;
  closedByPeer = false;
  error: unknown;
  #buf: Uint8Array;
  #view: DataView;
  #start = 0;
  #end = 0;
  #loop: Promise<void> | undefined;
  #ack: Uint8Array = new Uint8Array(256);
  #ackLen = 0;
  /**
   * Reads a Deno socket by its resource id as Kite's broker does
   * (codec/_core_read.ts): `conn.read` makes old-generation garbage per
   * read of a long-lived connection, and the tool's full collections then
   * show in what it measures. -1: `conn.read` (WebSocket, wrappers).
   */
  #rid: number;

  constructor(conn: ByteConn, onPacket: PacketHandler, bufSize = 65536) {
    this.conn = conn;
    this.#rid = coreReadRid(conn);
    this.writer = new Writer(conn);
    this.onPacket = onPacket;
    this.#buf = new Uint8Array(bufSize);
    this.#view = new DataView(this.#buf.buffer);
  }

  static async open(
    host: string,
    port: number,
    onPacket: PacketHandler,
    transport: LoadTransport = TCP,
    bufSize?: number,
  ): Promise<Link> {
    return new Link(await dial(host, port, transport), onPacket, bufSize);
  }

  start(): void {
    this.#loop = this.#readLoop();
  }

  /** Appends a 2-byte-body ack to this chunk's batch. */
  ack(first: number, packetId: number): void {
    if (this.#ackLen + 4 > this.#ack.length) {
      const bigger = new Uint8Array(this.#ack.length * 2);
      bigger.set(this.#ack.subarray(0, this.#ackLen));
      this.#ack = bigger;
    }
    const a = this.#ack;
    const i = this.#ackLen;
    a[i] = first;
    a[i + 1] = 2;
    a[i + 2] = packetId >> 8;
    a[i + 3] = packetId & 0xff;
    this.#ackLen = i + 4;
  }

  async #readLoop(): Promise<void> {
    try {
      while (true) {
        if (this.#end === this.#buf.length) this.#makeRoom(0);
        const into = this.maxRead === Infinity
          ? this.#buf.subarray(this.#end)
          : this.#buf.subarray(this.#end, this.#end + this.maxRead);
        const n = this.#rid >= 0
          ? await coreRead(this.#rid, into)
          : await this.conn.read(into);
        if (n === null) {
          this.closedByPeer = !this.closing;
          return;
        }
        this.now = performance.now();
        this.#end += n;
        this.#scan();
        if (this.#ackLen > 0) {
          this.writer.enqueue(this.#ack.slice(0, this.#ackLen));
          this.#ackLen = 0;
        }
        this.afterChunk?.();
        if (this.readDelayMs > 0 && !this.closing) {
          await new Promise((r) => setTimeout(r, this.readDelayMs));
        }
      }
    } catch (e) {
      if (!this.closing) {
        this.error = e;
        this.closedByPeer = true;
      }
    }
  }

  /** Compacts, and grows to hold `need` bytes of one packet. */
  #makeRoom(need: number): void {
    const pending = this.#end - this.#start;
    if (this.#start > 0) {
      this.#buf.copyWithin(0, this.#start, this.#end);
      this.#start = 0;
      this.#end = pending;
    }
    if (this.#end === this.#buf.length || need > this.#buf.length) {
      const bigger = new Uint8Array(Math.max(need, this.#buf.length * 2));
      bigger.set(this.#buf.subarray(0, this.#end));
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    }
  }

  #scan(): void {
    const b = this.#buf;
    const end = this.#end;
    let p = this.#start;
    while (end - p >= 2) {
      const first = b[p]!;
      let length = 0;
      let mul = 1;
      let i = p + 1;
      let byte: number;
      let complete = true;
      do {
        if (i >= end) {
          complete = false;
          break;
        }
        byte = b[i++]!;
        length += (byte & 0x7f) * mul;
        mul *= 128;
      } while (byte & 0x80);
      if (!complete || i + length > end) {
        this.#start = p;
        if (complete && i + length - p > b.length) {
          this.#makeRoom(i + length - p);
        } else if (p > b.length >> 1) this.#makeRoom(0);
        return;
      }
      this.onPacket(first, b, i, length, this.#view);
      p = i + length;
    }
    if (p === end) {
      this.#start = 0;
      this.#end = 0;
    } else this.#start = p;
  }

  /** Sends DISCONNECT, closes the socket and waits for the read loop. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (!this.closedByPeer && !this.writer.failed) {
      await this.writer.write(DISCONNECT);
    }
    try {
      this.conn.close();
    } catch { /* already closed */ }
    await this.#loop;
  }
}
