/**
 * Retained message: the broker keeps the last retained message of a topic
 * and hands it to every new subscriber at once; an empty retained message
 * clears it.
 *
 * ```sh
 * deno run -A examples/retained.ts
 * ```
 *
 * @module
 */

import { Client, type Message } from "@kite/mqtt/client";

const options = {
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
};
const topic = "demo/retained/lamp";

const publisher = new Client(options);
await publisher.connect();
await publisher.publish(topic, "on", { qos: 1, retain: true });
console.log(`published "on" to ${topic} with retain`);
await publisher.disconnect();

// A client that subscribes later gets the retained message right away.
const late = new Client(options);
await late.connect();
const first = late.messages(); // an async iterator of every message
await late.subscribe(topic, 1);
const { value: msg } = await first.next() as IteratorResult<Message>;
console.log(
  `late subscriber got "${msg.payloadText}" (retain flag: ${msg.retain})`,
);
await first.return?.();
await late.disconnect();

// Publishing an empty retained message removes it.
const cleaner = new Client(options);
await cleaner.connect();
await cleaner.publish(topic, "", { qos: 1, retain: true });
console.log("cleared the retained message");
await cleaner.disconnect();
