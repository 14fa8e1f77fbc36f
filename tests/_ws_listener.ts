/**
 * Test helper: the broker's own WebSocket listener (broker/listen/
 * websocket.ts), wrapped so that a test can drop every connection it
 * accepted (`dropAll()`, as a network failure would) to exercise reconnects.
 *
 * ```ts ignore
 * const ws = await TrackedWsListener.open({ hostname: "127.0.0.1", port: 0 });
 * broker.serve(ws);
 * const client = new Client({ url: ws.url });
 * ws.dropAll();
 * ```
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import type { Listener, ListenerAddr } from "../broker/listen/listener.ts";
import {
  WebSocketListener,
  type WebSocketListenOptions,
} from "../broker/listen/websocket.ts";

/** A WebSocket listener whose accepted connections a test can drop. */
export class TrackedWsListener implements Listener {
  #inner: WebSocketListener;
  #live = new Set<Duplex>();

  private constructor(inner: WebSocketListener) {
    this.#inner = inner;
  }

  /** Opens the broker's WebSocket listener with `options`. */
  static async open(
    options: WebSocketListenOptions,
  ): Promise<TrackedWsListener> {
    return new TrackedWsListener(await WebSocketListener.open(options));
  }

  /** Where it listens. */
  get addr(): ListenerAddr {
    return this.#inner.addr;
  }

  /** The URL clients connect to (`ws://127.0.0.1:port/mqtt`). */
  get url(): string {
    return this.#inner.endpoint;
  }

  async *accept(): AsyncIterable<Duplex> {
    for await (const d of this.#inner.accept()) {
      this.#live.add(d);
      yield d;
    }
  }

  /** Closes every connection accepted so far. */
  dropAll(): void {
    for (const d of this.#live) d.close();
    this.#live.clear();
  }

  close(): void {
    this.#inner.close();
  }
}
