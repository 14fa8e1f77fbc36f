/**
 * The MQTT-over-TCP listener: `Deno.listen`, Nagle off, each connection a
 * `ConnDuplex` (lean reads, fast read path). A failed accept (out of file
 * descriptors, say) never ends the loop: it waits and tries again (see
 * `_accept_errors.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ConnDuplex } from "../../codec/_conn_duplex.ts";
import type { Duplex } from "../../codec/duplex.ts";
import { type Listener, type ListenerAddr, listenerUrl } from "./listener.ts";
import { AcceptFailures } from "./_accept_errors.ts";
import { ConnectionCount, TrackedConnDuplex } from "./_tracked.ts";
import { listenError } from "./listen_error.ts";

const log = getLogger(["kite", "broker", "listen"]);

/** Options of `listenTcp()`. */
export interface TcpListenOptions {
  /** The address to bind. */
  hostname: string;
  /** The port (0: any free one). */
  port: number;
  /** Connections this listener holds at most; more are closed at once. */
  maxConnections?: number | undefined;
}

/**
 * A TCP listener.
 *
 * @example
 * ```ts ignore
 * const l = new TcpListener({ hostname: "127.0.0.1", port: 0 });
 * console.log(l.addr.port);
 * l.close();
 * ```
 */
export class TcpListener implements Listener {
  readonly addr: ListenerAddr;
  #listener: Deno.Listener;
  #closed = false;
  #failures: AcceptFailures;
  #count: ConnectionCount | undefined;

  /**
   * Binds at once; throws when the address cannot be bound (the system's
   * error class, with a message naming the address: `listenError`).
   */
  constructor(options: TcpListenOptions) {
    try {
      this.#listener = Deno.listen({
        hostname: options.hostname,
        port: options.port,
      });
    } catch (e) {
      throw listenError(options.hostname, options.port, e);
    }
    const a = this.#listener.addr as Deno.NetAddr;
    this.addr = { protocol: "mqtt", hostname: a.hostname, port: a.port };
    this.#failures = new AcceptFailures(log, listenerUrl(this.addr));
    if (options.maxConnections !== undefined) {
      this.#count = new ConnectionCount(
        options.maxConnections,
        log,
        listenerUrl(this.addr),
      );
    }
  }

  async *accept(): AsyncIterable<Duplex> {
    const listener = this.#listener;
    while (!this.#closed) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.#closed || e instanceof Deno.errors.BadResource) return;
        await this.#failures.failed(e);
        continue;
      }
      this.#failures.succeeded();
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch {
        // not TCP
      }
      const count = this.#count;
      if (count === undefined) yield new ConnDuplex(conn);
      else if (count.tryAcquire()) yield new TrackedConnDuplex(conn, count);
      else conn.close();
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failures.cancel();
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
  }
}
