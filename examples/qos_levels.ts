/**
 * The three QoS levels: at most once (0), at least once (1, PUBACK), exactly
 * once (2, PUBREC/PUBREL/PUBCOMP). A message is delivered with the lower of
 * the publish QoS and the subscription's maximum QoS.
 *
 * ```sh
 * deno run -A examples/qos_levels.ts
 * ```
 *
 * @module
 */

import { Client, type Message } from "@kite/mqtt/client";

const options = {
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
};
const publisher = new Client(options);
const subscriber = new Client(options);
await Promise.all([publisher.connect(), subscriber.connect()]);

const got: Message[] = [];
const { promise: allThere, resolve } = Promise.withResolvers<void>();
// A QoS 2 subscription receives each message at the QoS it was published with;
// the QoS 1 one caps them at 1.
await subscriber.subscribe("demo/qos/max2", 2, (m) => collect(m, "max QoS 2"));
await subscriber.subscribe("demo/qos/max1", 1, (m) => collect(m, "max QoS 1"));
function collect(m: Message, sub: string) {
  console.log(`  ${sub} subscription got "${m.payloadText}" with QoS ${m.qos}`);
  got.push(m);
  if (got.length === 6) resolve();
}

for (const qos of [0, 1, 2] as const) {
  const t0 = performance.now();
  for (const topic of ["demo/qos/max2", "demo/qos/max1"]) {
    await publisher.publish(topic, `sent with QoS ${qos}`, { qos });
  }
  const what = ["written to the socket", "PUBACK", "PUBCOMP"][qos];
  console.log(
    `QoS ${qos}: publish() resolved on ${what} (${
      (performance.now() - t0).toFixed(1)
    } ms)`,
  );
}

await allThere;
await Promise.all([publisher.disconnect(), subscriber.disconnect()]);
console.log(`done: ${got.length} deliveries`);
