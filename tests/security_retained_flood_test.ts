/**
 * Security finding 8: retained messages sent on subscribe go at the pace
 * the subscriber reads, never dropped for a reader that keeps up
 * v3:[MQTT-3.3.1-6].
 */
import assert from "node:assert/strict";
import { Client } from "../client/mod.ts";
import { startBroker, withTimeout } from "./_helpers.ts";

for (const qos of [0, 1] as const) {
  Deno.test(`Broker sends all of 100,000 retained QoS ${qos} messages to a new r/# subscriber that reads`, async () => {
    const broker = await startBroker({ maxQueuedMessages: 1000 });
    const n = 100_000;
    for (let i = 0; i < n; i++) {
      broker.publish(`r/${i}`, `v${i}`, { qos, retain: true });
    }
    const sub = new Client({
      port: broker.addr.port,
      clientId: "replay",
      protocolVersion: 5,
    });
    try {
      await sub.connect();
      const seen = new Set<string>();
      const all = Promise.withResolvers<void>();
      await sub.subscribe("r/#", { qos: 1 }, (m) => {
        assert.equal(m.retain, true);
        seen.add(m.topic);
        if (seen.size === n) all.resolve();
      });
      await withTimeout(all.promise, 30_000, `${n} retained messages`);
      // And a live message after them still arrives, after the replay.
      const live = Promise.withResolvers<string>();
      await sub.subscribe("live", { qos: 1 }, (m) => live.resolve(m.topic));
      broker.publish("live", "now");
      assert.equal(await withTimeout(live.promise, 10_000, "live"), "live");
      assert.equal(broker.stats.messagesDropped, 0);
    } finally {
      await sub.close();
      await broker.close();
    }
  });
}
