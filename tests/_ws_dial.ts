/**
 * Test helper: a client `Duplex` over the standard `WebSocket` class
 * (subprotocol `mqtt`), for dialing the broker's WebSocket listeners.
 *
 * ```ts ignore
 * const d = await dialWebSocket("ws://127.0.0.1:8080/mqtt");
 * await d.write(connectBytes);
 * ```
 *
 * @module
 */

import { WebSocketDuplex } from "./_ws_client_duplex.ts";
import type { Duplex } from "../codec/duplex.ts";

/** Options of `dialWebSocket`. */
export interface WebSocketDialOptions {
  /** Subprotocols offered. Default `["mqtt"]`. */
  protocols?: string[];
  /** CA certificates (PEM) for `wss://`. */
  caCerts?: string[];
  /** Extra request headers (`Origin`). */
  headers?: Record<string, string>;
}

/**
 * Opens a WebSocket and resolves with a duplex once it is open; rejects
 * when the handshake fails. The duplex's `close()` also closes the HTTP
 * client made for `caCerts`.
 */
export async function dialWebSocket(
  url: string,
  options: WebSocketDialOptions = {},
): Promise<Duplex & { protocol: string }> {
  const client = options.caCerts === undefined
    ? undefined
    : Deno.createHttpClient({ caCerts: options.caCerts });
  const init: WebSocketOptions = { protocols: options.protocols ?? ["mqtt"] };
  if (client !== undefined) init.client = client;
  if (options.headers !== undefined) init.headers = options.headers;
  const ws = new WebSocket(url, init);
  const opened = Promise.withResolvers<void>();
  const onOpen = () => opened.resolve();
  const onFail = (e: Event) =>
    opened.reject(
      new Error(
        `WebSocket to ${url} failed: ${(e as ErrorEvent).message ?? e.type}`,
      ),
    );
  ws.addEventListener("open", onOpen);
  ws.addEventListener("error", onFail);
  ws.addEventListener("close", onFail);
  try {
    await opened.promise;
  } catch (e) {
    client?.close();
    throw e;
  } finally {
    ws.removeEventListener("open", onOpen);
    ws.removeEventListener("error", onFail);
    ws.removeEventListener("close", onFail);
  }
  const d = new WebSocketDuplex(ws, { inputLimit: 1 << 30 });
  const close = d.close.bind(d);
  let closed = false;
  return Object.assign(d, {
    protocol: ws.protocol,
    close() {
      close();
      if (closed) return;
      closed = true;
      try {
        client?.close();
      } catch {
        // already released with the socket
      }
    },
  });
}
