/**
 * The MQTT-over-TCP listener, Nagle off: each connection a `HandleDuplex`
 * (read by callback through the runtime's stream handles, nothing pending
 * per idle connection: codec/_handle_io.ts) or, with `Deno.listen` where
 * the runtime has no such handles, a `ConnDuplex` (lean reads, fast read
 * path). A failed accept (out of file descriptors, say) never ends
 * accepting: the handle listener listens again each second (`rearm`), the
 * `Deno.listen` loop waits and tries again (see `_accept_errors.ts`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { isIP } from "node:net";
import { ConnDuplex } from "../../codec/_conn_duplex.ts";
import {
  HandleDuplex,
  listenHandle,
  rearm,
  type ServerHandle,
  type StreamHandle,
} from "../../codec/_handle_io.ts";
import type { Duplex } from "../../codec/duplex.ts";
import { type Listener, type ListenerAddr, listenerUrl } from "./listener.ts";
import { AcceptFailures } from "./_accept_errors.ts";
import {
  ConnectionCount,
  ReadyQueue,
  TrackedConnDuplex,
  TrackedHandleDuplex,
} from "./_tracked.ts";
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
  /**
   * How connections are read and written: `"handles"` (the default where
   * the runtime has them) through the stream handles `node:net` is built
   * on, read by callback, with nothing pending per idle connection;
   * `"deno"`: `Deno.listen` and the connections' own reads and writes
   * (`Deno.Conn`). Handles fall back to `"deno"` where the runtime has
   * none, for a host name that is not an IP address, without the net
   * permission for the address, or when binding fails (`Deno.listen` then
   * says why).
   */
  io?: "handles" | "deno" | undefined;
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
  #listener: Deno.Listener | undefined;
  /** The stream-handle listener (codec/_handle_io.ts), when in use. */
  #server: ServerHandle | undefined;
  #ready: ReadyQueue | undefined;
  #rearmTimer: ReturnType<typeof setInterval> | undefined;
  #closed = false;
  #failures: AcceptFailures;
  #count: ConnectionCount | undefined;

  /**
   * Binds at once; throws when the address cannot be bound (the system's
   * error class, with a message naming the address: `listenError`).
   */
  constructor(options: TcpListenOptions) {
    const server = options.io === "deno"
      ? undefined
      : handleServer(options.hostname, options.port, (c) => this.#take(c));
    if (server !== undefined) {
      this.#server = server;
      this.#ready = new ReadyQueue();
      const a: { address?: string; port?: number } = {};
      server.getsockname(a);
      this.addr = {
        protocol: "mqtt",
        hostname: a.address ?? options.hostname,
        port: a.port ?? options.port,
      };
      // See `rearm`: an accept that failed (out of descriptors) stops the
      // handle until it listens again.
      const timer = setInterval(() => rearm(server), REARM_MS);
      Deno.unrefTimer(timer);
      this.#rearmTimer = timer;
    } else {
      let listener: Deno.Listener;
      try {
        listener = Deno.listen({
          hostname: options.hostname,
          port: options.port,
        });
      } catch (e) {
        throw listenError(options.hostname, options.port, e);
      }
      this.#listener = listener;
      const a = listener.addr as Deno.NetAddr;
      this.addr = { protocol: "mqtt", hostname: a.hostname, port: a.port };
    }
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
    if (this.#ready !== undefined) {
      yield* this.#ready.accept();
      return;
    }
    const listener = this.#listener!;
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

  /** A connection the handle listener accepted (see `#ready`). */
  #take(client: StreamHandle): void {
    const count = this.#count;
    if (count !== undefined && !count.tryAcquire()) {
      client.close();
      return;
    }
    this.#ready!.push(
      count === undefined
        ? new HandleDuplex(client)
        : new TrackedHandleDuplex(client, count),
    );
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failures.cancel();
    if (this.#server !== undefined) {
      clearInterval(this.#rearmTimer);
      this.#server.onconnection = undefined;
      this.#server.close();
      this.#ready!.end();
      return;
    }
    try {
      this.#listener!.close();
    } catch {
      // already closed
    }
  }
}

/** How often a handle listener listens again (see `rearm`). */
const REARM_MS = 1000;

/**
 * A handle listener on `hostname:port` (see `listenHandle`), or undefined
 * when `hostname` is not an IP address or the net permission for it is not
 * granted (`Deno.listen` resolves names and asks for permissions).
 */
function handleServer(
  hostname: string,
  port: number,
  onConnection: (client: StreamHandle) => void,
): ServerHandle | undefined {
  const family = isIP(hostname);
  if (family === 0) return undefined;
  try {
    const host = family === 6 ? `[${hostname}]` : hostname;
    const p = Deno.permissions.querySync({
      name: "net",
      host: `${host}:${port}`,
    });
    if (p.state !== "granted") return undefined;
  } catch {
    return undefined;
  }
  return listenHandle(hostname, port, onConnection);
}
