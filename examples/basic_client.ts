/**
 * Basic client: connect, subscribe to `sensor/#`, handle messages with
 * `onMessage`, publish with QoS 2, disconnect.
 *
 * ```sh
 * deno run -A examples/broker.ts &   # or any MQTT broker on 1883
 * deno run -A examples/basic_client.ts
 * ```
 *
 * @module
 */

import { Client } from "@kite/mqtt/client";

const client = new Client({
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
});

const connack = await client.connect();
console.log(
  `connected as ${client.clientId} (MQTT ${client.protocolVersion}, session present: ${connack.sessionPresent})`,
);

const { promise: received, resolve } = Promise.withResolvers<void>();
client.onMessage((msg) => {
  console.log(`received ${msg.topic}: ${msg.payloadText} (QoS ${msg.qos})`);
  resolve();
});

const [granted] = await client.subscribe("sensor/#", 2);
console.log(`subscribed to sensor/# with QoS ${granted}`);

// QoS 2: resolves after PUBREC/PUBREL/PUBCOMP, delivered exactly once.
const result = await client.publish("sensor/kitchen/temp", "21.5", { qos: 2 });
console.log(`published with QoS 2, reason code ${result.reasonCode}`);

await received;
await client.disconnect();
console.log("disconnected");
