/**
 * What the listeners share (private): {@linkcode ConnectionCount} (a
 * listener's live connections against its `maxConnections`),
 * {@linkcode TrackedConnDuplex} (a socket duplex that gives its place back
 * when closed) and {@linkcode ReadyQueue} (connections made ready by a
 * background task, handed out by `accept()`).
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { ConnDuplex } from "../../codec/_conn_duplex.ts";
import { HandleDuplex, type StreamHandle } from "../../codec/_handle_io.ts";
import type { Duplex } from "../../codec/duplex.ts";
import type { IdentifiedDuplex } from "./listener.ts";

/** At most one "refused" log line per this interval. */
const LOG_INTERVAL_MS = 10_000;

/**
 * Live connections of one listener. `tryAcquire()` takes a place (false:
 * `max` reached, the caller refuses the connection); each place taken is
 * given back once with `release()`.
 */
export class ConnectionCount {
  /** Connections holding a place now. */
  live = 0;
  readonly max: number;
  #log: Logger;
  #url: string;
  #refused = 0;
  #lastLog = -Infinity;

  /** For the listener at `url`; `max` Infinity: no limit. */
  constructor(max: number, log: Logger, url: string) {
    this.max = max;
    this.#log = log;
    this.#url = url;
  }

  /** Takes a place; false (and a rate-limited log line) when full. */
  tryAcquire(): boolean {
    if (this.live < this.max) {
      this.live++;
      return true;
    }
    this.#refused++;
    const now = Date.now();
    if (now - this.#lastLog >= LOG_INTERVAL_MS) {
      this.#log.warn(
        "{url}: {count} connection(s) refused: the listener's maxConnections ({max}) reached",
        { url: this.#url, count: this.#refused, max: this.max },
      );
      this.#lastLog = now;
      this.#refused = 0;
    }
    return false;
  }

  /** Gives a place back. */
  release(): void {
    this.live--;
  }
}

/**
 * A `ConnDuplex` (lean reads, fast read path) that gives its listener place
 * back when closed, and may carry the peer's verified identity.
 */
export class TrackedConnDuplex extends ConnDuplex implements IdentifiedDuplex {
  #count: ConnectionCount;
  readonly peerIdentity: string | undefined;

  /** Wraps `conn`, holding a place of `count` (taken already). */
  constructor(
    conn: Deno.Conn,
    count: ConnectionCount,
    peerIdentity?: string,
  ) {
    super(conn);
    this.#count = count;
    this.peerIdentity = peerIdentity;
  }

  override close(): void {
    if (!this.isClosed) this.#count.release();
    super.close();
  }
}

/** A `HandleDuplex` that gives its listener place back when closed. */
export class TrackedHandleDuplex extends HandleDuplex {
  #count: ConnectionCount;

  /** Wraps `handle`, holding a place of `count` (taken already). */
  constructor(handle: StreamHandle, count: ConnectionCount) {
    super(handle);
    this.#count = count;
  }

  override close(): void {
    if (!this.isClosed) this.#count.release();
    super.close();
  }
}

/**
 * Duplexes made ready in the background (a TLS handshake done, a WebSocket
 * open), waiting for `accept()` to take them. Its length is bounded by what
 * the listener lets in (its `maxConnections`, the handshakes it runs at
 * once); the broker takes each at once.
 */
export class ReadyQueue {
  #items: Duplex[] = [];
  #waiter: ((d: Duplex | undefined) => void) | undefined;
  #closed = false;

  /** Hands `d` to the waiting `next()`, or keeps it; closes it after `end()`. */
  push(d: Duplex): void {
    if (this.#closed) {
      d.close();
      return;
    }
    const w = this.#waiter;
    if (w !== undefined) {
      this.#waiter = undefined;
      w(d);
    } else this.#items.push(d);
  }

  /** The next duplex, or undefined once `end()` was called. */
  next(): Promise<Duplex | undefined> {
    const d = this.#items.shift();
    if (d !== undefined) return Promise.resolve(d);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve) => this.#waiter = resolve);
  }

  /** The duplexes as they come, until `end()`: a listener's `accept()`. */
  async *accept(): AsyncIterable<Duplex> {
    while (true) {
      const d = await this.next();
      if (d === undefined) return;
      yield d;
    }
  }

  /** No more: a waiting `next()` gets undefined; kept duplexes are closed. */
  end(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const d of this.#items) d.close();
    this.#items = [];
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(undefined);
  }
}
