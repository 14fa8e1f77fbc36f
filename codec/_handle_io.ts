/**
 * Sockets through the runtime's stream handles (private to the package):
 * the `tcp_wrap`/`stream_wrap` bindings Deno's `node:net` is built on
 * (`process.binding`, as in Node), read by callback instead of by a pending
 * promise.
 *
 * Why: with `Deno.Conn` (or the op under it) every connection keeps one read
 * pending, and each read is a promise with its resolvers, wrappers and id,
 * about 650 bytes with the broker's reaction, renewed per message. A device
 * that sends once a second keeps that state alive for a second, so it
 * survives every scavenge in between and is copied, then promoted: in the
 * fleet scenario (2,000 devices) about 190 KB per scavenge, a 1-1.5 ms pause
 * every 140 ms, which set the broker's p99. A handle reads when the socket
 * is readable and calls `onread` with the byte count in the shared
 * `streamBaseState`; the bytes land in one buffer shared by every handle
 * (`useUserBuffer`) and are copied out at once. An idle connection has
 * nothing pending in JavaScript, and a read allocates only its chunk. A
 * write that the socket takes at once completes without a promise.
 *
 * `HandleDuplex` offers both: the push path the broker's connections use
 * (`readPush`, `writePush`) and the pull path (`read`, `write`, `raw`) for
 * everything else (the WebSocket handshake, tests).
 *
 * The listening side: `listenHandle` binds a server handle (one descriptor
 * per connection, no accept op per connection). Deno's handle does not
 * report a failed accept (out of descriptors: EMFILE) and stops accepting
 * after one until it listens again: `rearm` does that, and the TCP listener
 * calls it once a second (tests/security_accept_test.ts).
 *
 * Where the bindings are missing (another runtime, a Deno without them),
 * `listenHandle` is undefined and the TCP listener uses `Deno.listen`.
 *
 * @module
 */

import process from "node:process";
import { alloc } from "./_slab.ts";
import { atEndOfTurn } from "./_turn_end.ts";
import type { Duplex, RawReader } from "./duplex.ts";

/** What a stream handle's request objects carry (a write, a shutdown). */
interface Req {
  oncomplete: (status: number) => void;
}

/** A connected TCP handle (libuv's `uv_tcp_t` as Node's bindings show it). */
export interface StreamHandle {
  onread: ((this: StreamHandle) => void) | undefined;
  readStart(): number;
  readStop(): number;
  useUserBuffer(buf: Uint8Array): void;
  writeBuffer(req: Req, data: Uint8Array): number;
  shutdown(req: Req): number;
  close(cb?: () => void): void;
  getpeername(out: PeerName): number;
  setNoDelay(on: boolean): number;
  [OWNER]?: HandleDuplex | undefined;
}

/** A listening TCP handle. */
export interface ServerHandle {
  onconnection:
    | ((this: ServerHandle, status: number, client?: StreamHandle) => void)
    | undefined;
  bind(host: string, port: number): number;
  bind6(host: string, port: number, flags: number): number;
  listen(backlog: number): number;
  getsockname(out: PeerName): number;
  close(cb?: () => void): void;
}

interface PeerName {
  address?: string;
  port?: number;
  family?: string;
}

/** The bindings, found once. */
interface HandleBindings {
  /** A new listening handle (not bound yet). */
  server(): ServerHandle;
  /** Installs `onconnection`'s accept (call after setting it). */
  setupListen(server: ServerHandle): void;
  /** libuv's name for an error code: "ECONNRESET". */
  errname(code: number): string;
}

const OWNER = Symbol("HandleDuplex");
const UV_EOF = -4095;
/** `streamBaseState` slots (Node's stream_wrap). */
let state: Int32Array = new Int32Array(5);
let kReadBytes = 0;
let kLastWriteWasAsync = 3;

function findBindings(): HandleBindings | undefined {
  try {
    const binding = (process as unknown as {
      binding?: (name: string) => Record<string, unknown>;
    }).binding;
    if (typeof binding !== "function") return undefined;
    const tcp = binding("tcp_wrap") as {
      TCP?: new (type: number) => ServerHandle;
      constants?: { SERVER?: number };
      setupListenWrap?: (s: ServerHandle) => void;
    };
    const stream = binding("stream_wrap") as {
      streamBaseState?: unknown;
      kReadBytesOrError?: unknown;
      kLastWriteWasAsync?: unknown;
    };
    const uv = binding("uv") as { errname?: (code: number) => string };
    const TCP = tcp.TCP;
    const SERVER = tcp.constants?.SERVER;
    const setup = tcp.setupListenWrap;
    const errname = uv.errname;
    if (
      typeof TCP !== "function" || typeof SERVER !== "number" ||
      typeof setup !== "function" || typeof errname !== "function" ||
      !(stream.streamBaseState instanceof Int32Array) ||
      typeof stream.kReadBytesOrError !== "number" ||
      typeof stream.kLastWriteWasAsync !== "number"
    ) return undefined;
    const proto = (TCP as unknown as { prototype: Record<string, unknown> })
      .prototype;
    for (
      const m of [
        "readStart",
        "readStop",
        "useUserBuffer",
        "writeBuffer",
        "shutdown",
        "close",
        "getpeername",
        "setNoDelay",
        "bind",
        "bind6",
        "listen",
        "getsockname",
      ]
    ) if (typeof proto[m] !== "function") return undefined;
    state = stream.streamBaseState;
    kReadBytes = stream.kReadBytesOrError;
    kLastWriteWasAsync = stream.kLastWriteWasAsync;
    return {
      server: () => new TCP(SERVER),
      setupListen: (s) => setup(s),
      errname: (code) => {
        try {
          return errname(code);
        } catch {
          return `error ${code}`;
        }
      },
    };
  } catch {
    return undefined;
  }
}

let bindings: HandleBindings | undefined | null = null;

function handleBindings(): HandleBindings | undefined {
  if (bindings === null) bindings = findBindings();
  return bindings;
}

/** Whether the runtime has the stream-handle bindings. */
export function hasHandles(): boolean {
  return handleBindings() !== undefined;
}

/**
 * A listening handle on `hostname:port` (an IP address) that hands each
 * connection to `onConnection` (a `HandleDuplex` is made of it), or
 * undefined when there are no bindings or binding fails (the caller then
 * uses `Deno.listen`, whose error names the cause).
 */
export function listenHandle(
  hostname: string,
  port: number,
  onConnection: (client: StreamHandle) => void,
): ServerHandle | undefined {
  const b = handleBindings();
  if (b === undefined) return undefined;
  try {
    const server = b.server();
    const v6 = hostname.includes(":");
    if (
      (v6 ? server.bind6(hostname, port, 0) : server.bind(hostname, port)) !==
        0 || server.listen(BACKLOG) !== 0
    ) {
      server.close();
      return undefined;
    }
    server.onconnection = (status, client) => {
      if (status === 0 && client !== undefined) onConnection(client);
    };
    b.setupListen(server);
    return server;
  } catch {
    return undefined;
  }
}

/** The listen backlog (Node's and Deno's default). */
const BACKLOG = 511;

/**
 * Accepts again on `server` after accepts failed. The runtime's handle stops
 * accepting for good when an accept fails (out of descriptors: EMFILE), and
 * says nothing; listening again resumes it, and does nothing to a listener
 * that accepts. The TCP listener calls it once a second.
 */
export function rearm(server: ServerHandle): void {
  try {
    server.listen(BACKLOG);
  } catch {
    // closed
  }
}

/**
 * The buffer every handle reads into: a read's bytes are copied out in its
 * callback, before any other handle reads.
 */
const READ_BUF = new Uint8Array(64 * 1024);
/** Chunks up to this size are copied into the codec's slabs. */
const RX_SMALL = 2048;
/** Up to this size by a loop, not `set(subarray)`: no view allocated. */
const COPY_BY_LOOP = 256;

function copyOut(n: number): Uint8Array {
  if (n > RX_SMALL) return READ_BUF.slice(0, n);
  const chunk = alloc(n);
  if (n > COPY_BY_LOOP) chunk.set(READ_BUF.subarray(0, n));
  else for (let i = 0; i < n; i++) chunk[i] = READ_BUF[i]!;
  return chunk;
}

/** A socket error from a handle's status code. */
export class HandleError extends Error {
  /** libuv's code: "ECONNRESET". */
  readonly code: string;
  /** `op` failed with libuv status `status`. */
  constructor(op: string, status: number) {
    const code = handleBindings()?.errname(status) ?? `error ${status}`;
    super(`${op} failed: ${code}`);
    this.name = "HandleError";
    this.code = code;
  }
}

/** What `readPush` hands its callback: a chunk, 0 at EOF, or the error. */
export type PushRead = Uint8Array | 0 | Error;

/**
 * Calls `cb(r)` in a microtask. A function of its own: a closure inside
 * `readPush` or `writePush` would make V8 allocate a context for them on
 * every call, taken or not.
 */
function later<T>(cb: (r: T) => void, r: T): void {
  queueMicrotask(() => cb(r));
}

// The runtime calls `onread` for every readable handle of a turn and runs
// microtasks only after the last one (and after reading each handle again
// until it would block), so output flushed in a microtask waits for all of
// them. `afterRead` (the broker's turn flush) runs right after a read when
// this turn and the one before each read one handle only: a lone message is
// written before the runtime's next read, and output still coalesces over
// every connection read in a busier turn.
let readsThisTurn = 0;
let readsLastTurn = 0;
let afterRead: (() => void) | undefined;
function endReadTurn(): void {
  readsLastTurn = readsThisTurn;
  readsThisTurn = 0;
}

/**
 * Sets what runs right after a handle's read callback when reads are
 * sparse (one handle read this turn and the turn before); undefined: none.
 * Returns the one set before.
 */
export function setAfterSparseRead(
  fn: (() => void) | undefined,
): (() => void) | undefined {
  const before = afterRead;
  afterRead = fn;
  return before;
}

function onHandleRead(this: StreamHandle): void {
  if (readsThisTurn++ === 0) atEndOfTurn(endReadTurn);
  try {
    this[OWNER]?.onRead(state[kReadBytes]!);
    if (readsThisTurn === 1 && readsLastTurn <= 1) afterRead?.();
  } catch (e) {
    reportError(e); // not lost in the runtime's callback
  }
}

/**
 * A `Duplex` over a connected stream handle: callback reads into the shared
 * buffer and direct writes (see the module's doc).
 */
export class HandleDuplex implements Duplex, RawReader {
  readonly remoteAddress: string | undefined;
  #h: StreamHandle;
  /** Where the next read goes (`readPush`); undefined: not wanted now. */
  #want: ((r: PushRead) => void) | undefined;
  /** What was read while not wanted (the handle then stopped reading). */
  #held: PushRead | undefined;
  #reading = false;
  #ended = false;
  #closed = false;
  /** The chunk `readRaw()` got, for `take()`. */
  #taken: Uint8Array | undefined;
  /** The request `writePush` reuses (one write at a time). */
  #req: Req;
  #writeDone: ((r: unknown) => void) | undefined;
  #writeLen = 0;

  /** Wraps the connected `handle`; reading starts with the first read. */
  constructor(handle: StreamHandle) {
    this.#h = handle;
    const peer: PeerName = {};
    this.remoteAddress = handle.getpeername(peer) === 0 &&
        peer.address !== undefined
      ? `${peer.address}:${peer.port}`
      : undefined;
    handle.setNoDelay(true);
    handle[OWNER] = this;
    handle.useUserBuffer(READ_BUF);
    handle.onread = onHandleRead;
    this.#req = { oncomplete: this.#onWriteComplete };
  }

  /** The pull read path (see `RawReader`): this duplex itself. */
  get raw(): RawReader {
    return this;
  }

  /** Whether `close()` was called. */
  get isClosed(): boolean {
    return this.#closed;
  }

  /** The handle read (`n` bytes in the shared buffer, or a negative status). */
  onRead(n: number): void {
    let r: PushRead;
    if (n > 0) r = copyOut(n);
    else if (n === 0) return; // nothing this time (EAGAIN)
    else {
      this.#ended = true;
      this.#stop();
      r = n === UV_EOF ? 0 : new HandleError("read", n);
    }
    const want = this.#want;
    if (want !== undefined) {
      this.#want = undefined;
      want(r);
      return;
    }
    // Not wanted now (the reader pauses): hold it and stop reading, so
    // TCP's window pushes back.
    this.#held = r;
    this.#stop();
  }

  #stop(): void {
    if (this.#reading) {
      this.#reading = false;
      this.#h.readStop();
    }
  }

  /**
   * Hands the next read to `cb`, once: a chunk (the caller's), 0 at EOF,
   * or the error. Never calls `cb` before returning.
   */
  readPush(cb: (r: PushRead) => void): void {
    if (this.#held !== undefined) {
      const r = this.#held;
      this.#held = undefined;
      later(cb, r);
      return;
    }
    if (this.#ended || this.#closed) {
      later(cb, 0);
      return;
    }
    this.#want = cb;
    if (!this.#reading) {
      this.#reading = true;
      const status = this.#h.readStart();
      if (status !== 0) {
        this.#reading = false;
        this.#want = undefined;
        this.#ended = true;
        later(cb, new HandleError("read", status));
      }
    }
  }

  /** The next chunk from the peer, or null at EOF (and after `close()`). */
  read(): Promise<Uint8Array | null> {
    return new Promise((resolve, reject) => {
      this.readPush((r) => {
        if (r instanceof Uint8Array) resolve(r);
        else if (r === 0 || this.#closed) resolve(null);
        else reject(r);
      });
    });
  }

  /** Reads: the byte count (then `take()`), or null at EOF. */
  readRaw(): Promise<number | null> {
    return this.read().then((c) => {
      if (c === null) return null;
      this.#taken = c;
      return c.length;
    });
  }

  /** The chunk the last `readRaw()` got. */
  take(_n: number): Uint8Array {
    const c = this.#taken!;
    this.#taken = undefined;
    return c;
  }

  /** No more reads follow. */
  ended(): void {
    this.#taken = undefined;
  }

  /**
   * Writes all of `data` and calls `done` with its length once the socket
   * took it (at the end of this turn when it did at once), or with the
   * error. One write at a time; `data` must not change until `done`.
   */
  writePush(data: Uint8Array, done: (r: unknown) => void): void {
    if (this.#closed) {
      later(done, new Error("the connection is closed"));
      return;
    }
    const status = this.#h.writeBuffer(this.#req, data);
    if (status !== 0) {
      later(done, new HandleError("write", status));
      return;
    }
    if (state[kLastWriteWasAsync] !== 0) {
      this.#writeDone = done;
      this.#writeLen = data.length;
      return;
    }
    // Taken at once: done at the end of this turn (no promise or closure).
    atEndOfTurn(done, data.length);
  }

  #onWriteComplete = (status: number): void => {
    const done = this.#writeDone;
    this.#writeDone = undefined;
    try {
      done?.(status === 0 ? this.#writeLen : new HandleError("write", status));
    } catch (e) {
      reportError(e); // not lost in the runtime's callback
    }
  };

  /** Writes every byte of `data`. */
  write(data: Uint8Array): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Error("the connection is closed"));
    }
    return new Promise((resolve, reject) => {
      const req: Req = {
        oncomplete: (status) =>
          status === 0 ? resolve() : reject(new HandleError("write", status)),
      };
      const status = this.#h.writeBuffer(req, data);
      if (status !== 0) reject(new HandleError("write", status));
      else if (state[kLastWriteWasAsync] === 0) resolve();
    });
  }

  /** Writes some of `data`: here all of it (see `writePush`). */
  writeRaw(data: Uint8Array): Promise<number> {
    return this.write(data).then(() => data.length);
  }

  /**
   * Half-closes once what was written is sent: the peer reads EOF; reads go
   * on until `close()`. Resolves (never rejects) once done or failed.
   */
  closeWrite(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const status = this.#h.shutdown({ oncomplete: () => resolve() });
      if (status !== 0) resolve();
    });
  }

  /** Closes the socket; a read waiting gets EOF. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#stop();
    const h = this.#h;
    h.onread = undefined;
    h[OWNER] = undefined;
    h.close();
    const want = this.#want;
    this.#want = undefined;
    if (want !== undefined) later(want, 0);
    const done = this.#writeDone;
    if (done !== undefined) {
      this.#writeDone = undefined;
      later(done, new Error("the connection is closed"));
    }
  }
}
