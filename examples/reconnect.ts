/**
 * Automatic reconnect: the client reconnects with exponential backoff when
 * the connection drops, and reports it through `connect`, `disconnect`,
 * `offline` and `reconnect` events. Requests made while offline are queued
 * and sent after reconnecting.
 *
 * To show a drop without touching your broker, this example runs its own
 * Kite broker on a free port, stops it, and starts it again on that port.
 *
 * ```sh
 * deno run -A examples/reconnect.ts
 * ```
 *
 * @module
 */

import { Broker } from "@kite/mqtt/broker";
import { Client } from "@kite/mqtt/client";

let broker = new Broker({ host: "127.0.0.1", port: 0 });
await broker.listen();
const port = broker.addr.port;

const client = new Client({
  port,
  clientId: "reconnect-demo",
  reconnect: { initialDelay: 100, maxDelay: 2000, backoffMultiplier: 2 },
});
let connects = 0;
const { promise: back, resolve } = Promise.withResolvers<void>();
client.on("connect", (connack) => {
  console.log(`event connect (session present: ${connack.sessionPresent})`);
  if (++connects === 2) resolve();
});
client.on(
  "disconnect",
  (e) =>
    console.log(
      `event disconnect: ${e.reason} (will reconnect: ${e.willReconnect})`,
    ),
);
client.on("offline", () => console.log("event offline"));
client.on(
  "reconnect",
  (e) => console.log(`event reconnect: attempt ${e.attempt} in ${e.delay} ms`),
);

await client.connect();
await broker.close();
console.log("broker stopped");

// Published while offline: queued, sent once the client is back.
const queued = client.publish("demo/reconnect", "sent after reconnecting", 1);

broker = new Broker({ host: "127.0.0.1", port });
await broker.listen();
console.log("broker started again");

await back;
await queued;
console.log("queued message delivered");
await client.disconnect();
await broker.close();
