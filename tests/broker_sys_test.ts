import assert from "node:assert/strict";
import { KITE_VERSION, SYS_TOPICS } from "../broker/mod.ts";
import { RawClient, startBroker, text } from "./_helpers.ts";

Deno.test("Broker publishes $SYS/broker/... topics as retained messages every sysInterval", async () => {
  const broker = await startBroker({ sysInterval: 0.2 });
  const { client } = await RawClient.connect(broker.addr.port, {
    clientId: "sys",
  });
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "$SYS/broker/#", qos: 0 }],
  });
  await client.expect("suback");
  const seen = new Map<string, string>();
  const want = Object.values(SYS_TOPICS) as string[];
  while (want.some((t) => !seen.has(t))) {
    const m = await client.expectPublish(undefined, 2000);
    seen.set(m.topic, text(m.payload));
  }
  assert.equal(seen.get(SYS_TOPICS.version), KITE_VERSION);
  assert.match(seen.get(SYS_TOPICS.uptime)!, /^\d+ seconds$/);
  // The next round reports this client as connected and its subscription.
  const next = async (topic: string, ok: (v: string) => boolean) => {
    while (true) {
      const m = await client.expectPublish(topic, 2000);
      if (ok(text(m.payload))) return;
    }
  };
  await next(SYS_TOPICS.clientsConnected, (v) => v === "1");
  await next(SYS_TOPICS.subscriptions, (v) => v === "1");
  await next(SYS_TOPICS.bytesReceived, (v) => Number(v) > 0);
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker does not send $SYS topics to a '#' subscription [MQTT-4.7.2-1]", async () => {
  const broker = await startBroker({ sysInterval: 0.05 });
  const { client } = await RawClient.connect(broker.addr.port, {
    clientId: "all",
  });
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "#", qos: 0 }],
  });
  await client.expect("suback");
  await client.expectNothing((p) => p.type === "publish", 200);
  await client.disconnect();
  await broker.close();
});
