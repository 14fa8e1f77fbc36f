/**
 * Topic alias (MQTT 5): after the first PUBLISH maps a long topic to a small
 * number, later ones send only the number, saving bytes per message. The
 * broker says in CONNACK how many aliases it accepts (Topic Alias Maximum).
 *
 * ```sh
 * deno run -A examples/topic_alias.ts
 * ```
 *
 * @module
 */

import { Client } from "@kite/mqtt/client";

const options = {
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
  protocolVersion: 5 as const,
};
const topic = "factory/line-7/station-42/spindle/temperature";
const count = Number(Deno.env.get("KITE_EXAMPLE_COUNT") ?? 5);

const subscriber = new Client(options);
await subscriber.connect();
let got = 0;
const { promise: allGot, resolve } = Promise.withResolvers<void>();
await subscriber.subscribe(topic, 1, (m) => {
  // Aliases are per connection and resolved by the client: we see the topic.
  console.log(`subscriber got ${m.topic} = ${m.payloadText}`);
  if (++got === count) resolve();
});

const publisher = new Client(options);
const connack = await publisher.connect();
const max = connack.properties?.topicAliasMaximum ?? 0;
console.log(`broker accepts ${max} topic aliases`);

if (max > 0) {
  // Manual: give the topic with alias 1 once, then only the alias.
  await publisher.publish(topic, "20.1", { qos: 1, topicAlias: 1 });
  for (let i = 1; i < count; i++) {
    await publisher.publish("", `${20 + i}.1`, { qos: 1, topicAlias: 1 });
  }
  console.log(`sent ${count} messages, the topic only in the first`);
} else {
  // No aliases here: `autoTopicAliases` would use them when the broker allows
  // and sends full topics otherwise, so the same code works everywhere.
  const auto = new Client({ ...options, autoTopicAliases: true });
  await auto.connect();
  for (let i = 0; i < count; i++) {
    await auto.publish(topic, `${20 + i}.1`, 1);
  }
  await auto.disconnect();
  console.log(`sent ${count} messages with full topics`);
}

await allGot;
await Promise.all([publisher.disconnect(), subscriber.disconnect()]);
