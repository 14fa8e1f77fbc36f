/**
 * Kite: an MQTT 3.1.1 + 5.0 broker, client and codec for Deno.
 *
 * The shortest broker:
 *
 * ```ts ignore
 * import { Broker } from "@kite/mqtt";
 *
 * const broker = new Broker({ port: 1883 });
 * await broker.listen();
 * console.log("listening on", broker.addr);
 * // ... later
 * await broker.close();
 * ```
 *
 * The shortest client:
 *
 * ```ts ignore
 * import { Client } from "@kite/mqtt";
 *
 * const client = new Client({ host: "127.0.0.1", port: 1883 });
 * await client.connect();
 * await client.subscribe("sensor/+/temp", { qos: 1 }, (msg) => {
 *   console.log(msg.topic, msg.payloadText);
 * });
 * await client.publish("sensor/kitchen/temp", "21.5", { qos: 1 });
 * await client.disconnect();
 * ```
 *
 * Sub-modules: `@kite/mqtt/broker`, `@kite/mqtt/client` and
 * `@kite/mqtt/codec` export the same pieces one area at a time.
 *
 * @module
 */

export * from "./codec/mod.ts";
export * from "./broker/mod.ts";
export * from "./client/mod.ts";
