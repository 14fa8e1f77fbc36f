/**
 * The async MQTT client for Deno: `Client`, the user's API, with its
 * options (options.ts) and events (events.ts), which are exported from
 * here. `Client` is `WebClient` (web_client.ts, the whole client, portable)
 * with Deno's transports added: TCP and TLS besides WebSocket, and TLS
 * settings (private CAs, client certificates) for `wss://` too.
 *
 * @module
 */

import { WebClient } from "./web_client.ts";
import type { Dialer } from "./dialer.ts";
import { denoDialer } from "./socket_dialer.ts";

export * from "./_api.ts";
export {
  DenoWebSocketDialer,
  type DenoWebSocketDialerOptions,
  TcpDialer,
  type TcpDialerOptions,
  TlsDialer,
  type TlsDialerOptions,
} from "./socket_dialer.ts";

/**
 * The async MQTT 3.1.1/5.0 client, over TCP, TLS or WebSocket.
 *
 * @example
 * ```ts ignore
 * import { Client } from "@kite/mqtt/client";
 * const client = new Client({ host: "127.0.0.1", port: 1883 });
 * // or: new Client({ url: "mqtts://broker.example", tls: { caFile: "ca.crt" } })
 * // or: new Client({ url: "wss://broker.example/mqtt" })
 * await client.connect();
 * await client.subscribe("sensors/+/temp", { qos: 1 }, (msg) => {
 *   console.log(msg.topic, msg.payloadText);
 * });
 * await client.publish("sensors/kitchen/temp", "21.5", { qos: 1 });
 * await client.disconnect();
 * ```
 */
export class Client extends WebClient {
  /**
   * The dialer of `url`, `host`, `port` and `tls`: TCP (`mqtt://`, the
   * default), TLS (`mqtts://` or `tls`), or WebSocket (`ws://`, `wss://`).
   */
  protected override createDialer(): Dialer {
    return denoDialer(this.options);
  }
}
