/**
 * Kite's MQTT 3.1.1/5.0 client for browsers: the same client as in Deno
 * (`WebClient`, exported here as `Client` too) over WebSocket only, with no
 * Deno-only code. `deno task build:browser` bundles this module into
 * `dist/kite-client.js`, an ES module a page imports:
 *
 * ```ts ignore
 * import { Client } from "./kite-client.js";
 * const client = new Client({ url: "ws://127.0.0.1:8080/mqtt" });
 * await client.connect();
 * await client.subscribe("chat/#", 1, (m) => console.log(m.topic, m.payloadText));
 * await client.publish("chat/lobby", "hello from the page", 1);
 * ```
 *
 * A `wss://` server's certificate is checked against the browser's trust
 * store; the `tls` settings (CA, client certificate) only apply in Deno.
 *
 * @module
 */

export * from "./_api.ts";
export { WebClient as Client } from "./web_client.ts";
export * from "./message.ts";
export * from "./reconnect.ts";
export * from "./state.ts";
export * from "../codec/errors.ts";
export * from "../codec/reason_code.ts";
export type * from "../codec/packet.ts";
