/**
 * Will message: a client registers a will at connect; when it vanishes
 * without a DISCONNECT (crash, lost network), the broker publishes it.
 *
 * ```sh
 * deno run -A examples/will.ts
 * ```
 *
 * @module
 */

import { Client } from "@kite/mqtt/client";

const options = {
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
};

const watcher = new Client(options);
await watcher.connect();
const { promise: will, resolve } = Promise.withResolvers<string>();
await watcher.subscribe(
  "demo/will/+",
  1,
  (m) => resolve(`${m.topic}: ${m.payloadText}`),
);

const device = new Client({
  ...options,
  clientId: "will-demo-device",
  will: {
    topic: "demo/will/will-demo-device",
    payload: "offline (unexpectedly)",
    qos: 1,
  },
});
await device.connect();
console.log("device connected with a will");

// close() drops the socket without DISCONNECT: to the broker this is a crash.
await device.close();
console.log("device dropped its connection");

console.log(`watcher got the will: ${await will}`);
await watcher.disconnect();
