/**
 * Wildcards: `+` matches one topic level, `#` any number of levels
 * (including none) at the end of a filter.
 *
 * ```sh
 * deno run -A examples/wildcards.ts
 * ```
 *
 * @module
 */

import { Client } from "@kite/mqtt/client";

const options = {
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
};
const topics = [
  "home/kitchen/temp",
  "home/garage/temp",
  "home/kitchen/light",
  "home/kitchen/fridge/temp",
  "home",
];
const filters = ["home/+/temp", "home/kitchen/#", "home/#"];

// One subscriber per filter, so each shows exactly what its filter matches.
const subscribers = await Promise.all(filters.map(async (filter) => {
  const c = new Client(options);
  await c.connect();
  const matched: string[] = [];
  await c.subscribe(filter, 1, (m) => {
    matched.push(m.topic);
  });
  await c.subscribe("demo/wildcards/end", 1); // marks the end of the run
  const { promise: end, resolve } = Promise.withResolvers<void>();
  c.onMessage((m) => {
    if (m.topic === "demo/wildcards/end") resolve();
  });
  return { filter, c, matched, end };
}));

const publisher = new Client(options);
await publisher.connect();
for (const t of topics) await publisher.publish(t, "x", 1);
// Messages of one publisher reach each subscriber in order [MQTT-4.6.0-6]:
// once the end marker arrived, everything before it did.
await publisher.publish("demo/wildcards/end", "", 1);
await Promise.all(subscribers.map((s) => s.end));

for (const s of subscribers) {
  console.log(`${s.filter.padEnd(15)} matched ${s.matched.join(", ")}`);
  await s.c.disconnect();
}
await publisher.disconnect();
console.log(`${topics.length} topics published`);
