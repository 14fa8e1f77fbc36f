/**
 * `Link`: the I/O of one client connection over a `Duplex`, and nothing
 * else: the read loop feeding a `PacketDecoder`, the output queue (one
 * coalesced write per turn of the event loop), and keep-alive (PINGREQ
 * when idle, a deadline for PINGRESP). It makes no protocol decisions: it
 * hands every packet to its handler and reports how it ended; the `Client`
 * decides what follows.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import type { PacketDecoder } from "../codec/decode.ts";
import type { Packet } from "../codec/packet.ts";
import { OutputQueue } from "../codec/_output.ts";
import { MqttError } from "../codec/errors.ts";
import type { PublishResult } from "./state.ts";
import { ClientOfflineError } from "./errors.ts";
import { noop, toError } from "./_util.ts";
import { AS_DOUBLE } from "../codec/_double.ts";

/** What a `Link` reports to its owner. */
export interface LinkHandler {
  /** A packet from the broker (PINGRESP is handled by the link itself). */
  packet(p: Packet): void;
  /**
   * Reading ended: `error` is undefined at EOF; an `MqttError` when the
   * broker's bytes were bad (or a packet handler threw one); any other
   * error when the socket failed.
   */
  readEnded(error: Error | undefined): void;
  /** A write failed: the connection is dead. */
  writeFailed(error: Error): void;
  /** No PINGRESP came within `ms` of a PINGREQ. */
  pingTimeout(ms: number): void;
}

const PINGREQ = new Uint8Array([0xc0, 0x00]);
const QOS0_RESULT: PublishResult = Object.freeze({ reasonCode: 0 });

/**
 * One connection's I/O. Reports at most one ending to its handler (the
 * first of: read ended, write failed, ping timeout); after `close()` it
 * reports nothing more.
 *
 * @example
 * ```ts ignore
 * const link = new Link(await dialer.dial(), new PacketDecoder(), handler);
 * link.send(connectBytes);
 * // after CONNACK:
 * link.startKeepAlive(60_000, 10_000);
 * ```
 */
export class Link {
  #duplex: Duplex;
  #decoder: PacketDecoder;
  #handler: LinkHandler;
  #closed = false;
  #reported = false;

  // reading
  #pauseRequested = false;
  #resume: (() => void) | undefined;

  // writing
  #out = new OutputQueue();
  #batch: PromiseWithResolvers<PublishResult> | undefined;
  #flushScheduled = false;
  #writing = false;
  #flushing: Promise<void> | undefined;
  #lastWrite = AS_DOUBLE; // timestamps: doubles from the start

  // keep alive
  #keepAliveMs = 0;
  #pingTimeoutMs = 0;
  #pingSentAt = AS_DOUBLE;
  #kaTimer: ReturnType<typeof setTimeout> | undefined;

  /** Resolves when the read loop has ended and the last write settled. */
  readonly done: Promise<void>;

  /** Starts reading `duplex` at once; packets go to `handler.packet`. */
  constructor(duplex: Duplex, decoder: PacketDecoder, handler: LinkHandler) {
    this.#duplex = duplex;
    this.#decoder = decoder;
    this.#handler = handler;
    this.done = this.#readLoop().then(() => this.#flushing);
  }

  /** Whether `close()` was called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---------------------------------------------------------------- reading

  #dispatch = (p: Packet): void => {
    if (this.#closed) return;
    if (p.type === "pingresp") {
      this.#pingSentAt = 0;
      return;
    }
    this.#handler.packet(p);
  };

  async #readLoop(): Promise<void> {
    const duplex = this.#duplex;
    const raw = duplex.raw;
    const decoder = this.#decoder;
    let error: Error | undefined;
    try {
      while (!this.#closed) {
        let chunk: Uint8Array | null;
        if (raw !== undefined) {
          let n: number | null;
          try {
            n = await raw.readRaw();
          } catch (e) {
            raw.ended();
            if (raw.isClosed) break;
            throw e;
          }
          if (n === null) {
            raw.ended();
            break;
          }
          chunk = raw.take(n);
        } else {
          chunk = await duplex.read();
          if (chunk === null) break;
        }
        if (this.#closed) break;
        decoder.push(chunk, this.#dispatch);
        if (this.#pauseRequested && !this.#closed) {
          await new Promise<void>((r) => this.#resume = r);
          this.#resume = undefined;
        }
      }
    } catch (e) {
      error = toError(e);
    }
    if (this.#closed || this.#reported) return;
    this.#reported = true;
    this.#handler.readEnded(error);
  }

  /**
   * Stops reading after the current chunk (backpressure) until `resume()`.
   * The ping timeout does not apply meanwhile.
   */
  pause(): void {
    this.#pauseRequested = true;
  }

  /** Whether `pause()` was called and `resume()` not yet. */
  get paused(): boolean {
    return this.#pauseRequested;
  }

  /** Reads on after `pause()`. */
  resume(): void {
    this.#pauseRequested = false;
    this.#resume?.();
  }

  // ---------------------------------------------------------------- writing

  /** Queues encoded bytes; they are written with the rest of this turn's. */
  send(bytes: Uint8Array): void {
    if (this.#closed) return;
    this.#out.push(bytes);
    if (!this.#flushScheduled && !this.#writing) {
      this.#flushScheduled = true;
      queueMicrotask(this.#startFlush);
    }
  }

  /**
   * The promise of the QoS 0 publishes in the current batch of output: it
   * settles when the batch is written (one promise per write, not per
   * message). It is marked handled, so a fire-and-forget QoS 0 publish that
   * fails never becomes an unhandled rejection.
   */
  batchPromise(): Promise<PublishResult> {
    let b = this.#batch;
    if (!b) {
      b = this.#batch = Promise.withResolvers<PublishResult>();
      b.promise.catch(noop);
      if (this.#closed) {
        this.#batch = undefined;
        b.reject(new ClientOfflineError("connection lost before the write"));
      }
    }
    return b.promise;
  }

  /** Writes what is queued now; resolves when the output is written. */
  flush(): Promise<void> {
    this.#startFlush();
    return this.#flushing ?? Promise.resolve();
  }

  #startFlush = (): void => {
    this.#flushScheduled = false;
    if (!this.#writing && this.#out.length > 0) this.#flushing = this.#flush();
  };

  async #flush(): Promise<void> {
    this.#writing = true;
    while (this.#out.length > 0 && !this.#closed) {
      const buf = this.#out.take();
      const batch = this.#batch;
      this.#batch = undefined;
      try {
        await this.#duplex.write(buf);
        this.#lastWrite = Date.now();
      } catch (e) {
        batch?.reject(
          e instanceof MqttError ? e : new ClientOfflineError(
            `connection lost during the write: ${toError(e).message}`,
            { cause: e },
          ),
        );
        if (!this.#closed && !this.#reported) {
          this.#reported = true;
          this.#handler.writeFailed(toError(e));
        }
        break;
      }
      batch?.resolve(QOS0_RESULT);
    }
    // Synchronously after the last check of #out: a send() from now on
    // schedules a new flush.
    this.#writing = false;
  }

  // ------------------------------------------------------------- keep alive

  /**
   * Starts keep-alive: a PINGREQ when nothing was written for 3/4 of
   * `keepAliveMs` (0: never), and `pingTimeout` reported when no PINGRESP
   * follows within `pingTimeoutMs`.
   */
  startKeepAlive(keepAliveMs: number, pingTimeoutMs: number): void {
    this.#keepAliveMs = keepAliveMs;
    this.#pingTimeoutMs = pingTimeoutMs;
    this.#pingSentAt = 0;
    this.#lastWrite = Date.now();
    this.#scheduleKeepAlive();
  }

  #scheduleKeepAlive(): void {
    if (this.#keepAliveMs === 0 || this.#closed) return;
    const tick = Math.max(
      50,
      Math.min(this.#keepAliveMs, this.#pingTimeoutMs) / 4,
    );
    this.#kaTimer = setTimeout(this.#keepAliveTick, tick);
  }

  #keepAliveTick = (): void => {
    this.#kaTimer = undefined;
    if (this.#closed || this.#reported) return;
    const now = Date.now();
    if (this.#pingSentAt !== 0) {
      if (
        now - this.#pingSentAt >= this.#pingTimeoutMs &&
        this.#resume === undefined
      ) {
        this.#reported = true;
        this.#handler.pingTimeout(this.#pingTimeoutMs);
        return;
      }
    } else if (now - this.#lastWrite >= this.#keepAliveMs * 0.75) {
      this.#pingSentAt = now;
      this.send(PINGREQ);
    }
    this.#scheduleKeepAlive();
  };

  // ---------------------------------------------------------------- closing

  /**
   * Closes the connection: stops keep-alive and reading, drops unwritten
   * output (its QoS 0 publishes are rejected with `ClientOfflineError`).
   * Idempotent; nothing is reported after it.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#kaTimer !== undefined) clearTimeout(this.#kaTimer);
    this.#kaTimer = undefined;
    this.#duplex.close();
    this.#resume?.();
    const batch = this.#batch;
    this.#out.clear();
    this.#batch = undefined;
    batch?.reject(new ClientOfflineError("connection lost before the write"));
  }
}
