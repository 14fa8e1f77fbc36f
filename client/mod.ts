/**
 * Kite's async MQTT 3.1.1/5.0 client for Deno, over TCP, TLS and WebSocket
 * (`@kite/mqtt/browser` has the same client for browsers, WebSocket only).
 *
 * ```ts ignore
 * import { Client } from "@kite/mqtt/client";
 * const client = new Client({ host: "127.0.0.1", port: 1883 });
 * // or { url: "mqtts://broker.example", tls: { caFile: "ca.crt" } }
 * // or { url: "wss://broker.example/mqtt" }
 * await client.connect();
 * await client.subscribe("sensors/#", 1, (m) => console.log(m.topic, m.payloadText));
 * await client.publish("sensors/kitchen/temp", "21.5", { qos: 1 });
 * const reply = await client.request("svc/echo", "hi"); // v5 request/response
 * await client.disconnect();
 * ```
 *
 * Events (`client.on(name, listener)` returns an unsubscribe function):
 * `connect`, `disconnect`, `reconnect`, `offline`, `close`, `error`.
 *
 * @module
 */

export * from "./client.ts";
export * from "./message.ts";
export * from "./reconnect.ts";
export * from "./state.ts";
export * from "./sync_client.ts";
