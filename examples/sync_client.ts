/**
 * The blocking client: every call returns when the broker answered, no
 * `await` needed (for synchronous callbacks, plugin APIs, simple scripts).
 * It runs the async client in a Worker and waits with `Atomics.wait`.
 *
 * ```sh
 * deno run -A examples/sync_client.ts
 * ```
 *
 * @module
 */

import { SyncClient } from "@kite/mqtt/client";

// `using` closes it (and its worker) at the end of the scope.
using client = new SyncClient({
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
  timeout: 5000, // each call throws TimeoutError after 5 s without answer
});

const connack = client.connect();
console.log(`connected (reason code ${connack.reasonCode})`);

const [granted] = client.subscribe("demo/sync/#", 1);
console.log(`subscribed with QoS ${granted}`);

for (let i = 1; i <= 3; i++) {
  const { reasonCode } = client.publish(`demo/sync/${i}`, `message ${i}`, 1);
  console.log(`published message ${i}: PUBACK ${reasonCode}`);
}

// receive() blocks for the next message (or returns undefined on timeout).
for (let m = client.receive(2000); m; m = client.receive(200)) {
  console.log(`received ${m.topic}: ${m.payloadText}`);
}

client.disconnect();
console.log("disconnected");
