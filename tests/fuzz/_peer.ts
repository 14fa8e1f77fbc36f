/**
 * The client end of an in-memory connection for the connection fuzzer: it
 * writes bytes, reads and decodes everything the broker sends (a broker
 * output that does not decode is recorded), and waits for packets or the
 * close with a bounded timeout.
 *
 * @module
 */

import { encode, PacketDecoder } from "../../codec/mod.ts";
import type { Packet, ProtocolVersion } from "../../codec/mod.ts";
import type { Duplex } from "../../codec/duplex.ts";

/** A client end that decodes what the broker sends. */
export class Peer {
  readonly duplex: Duplex;
  /** Every packet received, in order. */
  readonly received: Packet[] = [];
  /** Set when the broker's bytes did not decode. */
  decodeError: unknown;
  /** Set when the broker closed the connection (EOF). */
  isClosed = false;
  /** Resolves when reading ended. */
  readonly done: Promise<void>;
  /** Called for each packet (after it is recorded). */
  onPacket: ((p: Packet) => void) | undefined;
  /** Resolves when `close()` is called (a reader may wait for it). */
  readonly closing: Promise<void>;
  #closingResolve!: () => void;
  #decoder: PacketDecoder;
  #wake: (() => void) | undefined;
  #version: ProtocolVersion;
  #readPause: ((peer: Peer) => Promise<void>) | undefined;

  /**
   * Starts reading from `duplex`, decoding as `version`; `readPause`, if
   * given, is awaited after each chunk (a slow reader).
   */
  constructor(
    duplex: Duplex,
    version: ProtocolVersion,
    readPause?: (peer: Peer) => Promise<void>,
  ) {
    this.duplex = duplex;
    this.#version = version;
    this.#decoder = new PacketDecoder({ version });
    this.#readPause = readPause;
    this.closing = new Promise((r) => this.#closingResolve = r);
    this.done = this.#read();
  }

  async #read(): Promise<void> {
    const push = (p: Packet) => {
      this.received.push(p);
      this.onPacket?.(p);
    };
    try {
      while (true) {
        const chunk = await this.duplex.read();
        if (chunk === null) break;
        if (this.decodeError !== undefined) continue;
        try {
          this.#decoder.push(chunk, push);
        } catch (e) {
          this.decodeError = e;
        }
        this.#notify();
        if (this.#readPause !== undefined) await this.#readPause(this);
      }
    } catch {
      // Reading after our own close: the end.
    }
    this.isClosed = true;
    this.#notify();
  }

  #notify(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  /** Writes bytes (or a packet encoded for this peer's version). */
  async send(data: Uint8Array | Packet): Promise<void> {
    const bytes = data instanceof Uint8Array
      ? data
      : encode(data, { version: this.#version });
    try {
      await this.duplex.write(bytes);
    } catch {
      // The broker closed: what it said is in `received`.
    }
  }

  /**
   * Waits until `done()` is true (checked after each chunk and at EOF) or
   * `ms` pass; returns whether it became true.
   */
  async until(done: () => boolean, ms: number): Promise<boolean> {
    if (done()) return true;
    const deadline = Date.now() + ms;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      while (!done()) {
        if (this.isClosed) return done();
        const left = deadline - Date.now();
        if (left <= 0) return false;
        await new Promise<void>((resolve) => {
          this.#wake = resolve;
          timer = setTimeout(resolve, left);
        });
        clearTimeout(timer);
      }
      return true;
    } finally {
      clearTimeout(timer);
      this.#wake = undefined;
    }
  }

  /** The first received packet matching `pred` at or after `from`, waiting up to `ms`. */
  async expect(
    pred: (p: Packet) => boolean,
    ms: number,
    from = 0,
  ): Promise<Packet | undefined> {
    let found: Packet | undefined;
    let i = from;
    await this.until(() => {
      for (; i < this.received.length; i++) {
        if (pred(this.received[i]!)) {
          found = this.received[i];
          return true;
        }
      }
      return false;
    }, ms);
    return found;
  }

  /** Closes the client end and waits for the read loop. */
  async close(): Promise<void> {
    this.#closingResolve();
    this.duplex.close();
    await this.done;
  }
}
