/**
 * Transports: what the broker reads bytes from and writes bytes to.
 *
 * The broker serves a client over any `Duplex` (codec/duplex.ts); a
 * listener makes one per accepted connection. `Transport` (`{readable,
 * writable, close}`) is the stream form users hand to
 * `Broker.handleConnection()`, and `connTransport()` adapts a `Deno.Conn`
 * (TCP, TLS) to it with lean reads.
 *
 * @module
 */

import { connDuplex } from "../codec/_conn_duplex.ts";

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
