import assert from "node:assert/strict";
import { KITE_VERSION, SYS_TOPICS } from "../broker/mod.ts";
import type { PublishPacket } from "../codec/packet.ts";
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

Deno.test("Broker keeps $SYS values retained while no filter starts with $SYS, and routes them to plain and shared $SYS subscriptions [MQTT-4.7.2-1] v5:[MQTT-4.8.2-1]", async () => {
  // sysPublisher (broker/sys.ts) skips routing when no filter can match a $SYS
  // topic; what a later subscriber gets must not change.
  const broker = await startBroker({ sysInterval: 0.05 });
  const { client: all } = await RawClient.connect(broker.addr.port, {
    clientId: "all",
  });
  await all.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "#", qos: 0 }],
  });
  await all.expect("suback");
  // An update after "all" connected is retained although nobody could get
  // it: a new subscriber's retained value says 1 client, then 2.
  const { client: late } = await RawClient.connect(broker.addr.port, {
    clientId: "late",
  });
  const deadline = Date.now() + 5000;
  let id = 1;
  let seen = "";
  while (seen !== "2" && Date.now() < deadline) {
    await late.send({
      type: "subscribe",
      packetId: id++,
      subscriptions: [{ filter: SYS_TOPICS.clientsConnected, qos: 0 }],
    });
    await late.expect("suback");
    // The retained copy the SUBSCRIBE brings [MQTT-3.3.1-6]; a live update
    // routed while subscribed (retain 0) may come as well and is skipped.
    const m = await late.next(
      (p) =>
        p.type === "publish" && p.topic === SYS_TOPICS.clientsConnected &&
        p.retain,
      2000,
      "the retained $SYS value",
    ) as PublishPacket;
    seen = text(m.payload);
    await late.send({
      type: "unsubscribe",
      packetId: id++,
      filters: [SYS_TOPICS.clientsConnected],
    });
    await late.expect("unsuback");
  }
  assert.equal(seen, "2");
  // A shared subscription to $SYS gets the live updates.
  const { client: shared } = await RawClient.connect(broker.addr.port, {
    clientId: "shared",
    protocolVersion: 5,
  });
  await shared.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "$share/g/" + SYS_TOPICS.uptime, qos: 0 }],
  });
  await shared.expect("suback");
  const m = await shared.expectPublish(SYS_TOPICS.uptime);
  assert.match(text(m.payload), /^\d+ seconds$/);
  await all.expectNothing((p) => p.type === "publish", 100);
  await shared.disconnect();
  await late.disconnect();
  await all.disconnect();
  await broker.close();
});
