/**
 * v5 subscription options (No Local, Retain As Published, Retain Handling)
 * and subscription identifiers.
 */

import assert from "node:assert/strict";
import type {
  Packet,
  PublishPacket,
  QoS,
  Subscription,
} from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { publishPacket, RawClient, startBroker, text } from "./_helpers.ts";

function pub(
  topic: string,
  payload: string,
  qos: QoS = 0,
  retain = false,
): PublishPacket {
  return publishPacket(topic, payload, { qos, retain, packetId: 9 });
}

let nextId = 1;

async function subscribe(
  client: RawClient,
  subscriptions: Subscription[],
  subscriptionIdentifier?: number,
): Promise<number[]> {
  const p: Packet = {
    type: "subscribe",
    packetId: nextId++,
    subscriptions,
  };
  if (subscriptionIdentifier !== undefined) {
    p.properties = { subscriptionIdentifiers: [subscriptionIdentifier] };
  }
  await client.send(p);
  return (await client.expect("suback")).reasonCodes;
}

Deno.test("Broker does not send a client its own messages on a No Local subscription [MQTT-3.8.3-3]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(a.client, [{ filter: "nl/#", qos: 0, noLocal: true }]);
  const b = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(b.client, [{ filter: "nl/#", qos: 0 }]);
  await a.client.send(pub("nl/1", "from a"));
  await b.client.send(pub("nl/2", "from b"));
  // b gets both (no No Local), a only b's.
  assert.equal((await b.client.expectPublish("nl/1")).topic, "nl/1");
  assert.equal((await b.client.expectPublish("nl/2")).topic, "nl/2");
  assert.equal(text((await a.client.expectPublish()).payload), "from b");
  await a.client.expectNothing((x) => x.type === "publish");
  await a.client.disconnect();
  await b.client.disconnect();
  await broker.close();
});

Deno.test("Broker keeps the retain flag only with Retain As Published [MQTT-3.3.1-12] [MQTT-3.3.1-13]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const rap = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(rap.client, [{
    filter: "rap/#",
    qos: 0,
    retainAsPublished: true,
  }]);
  const plain = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(plain.client, [{ filter: "rap/#", qos: 0 }]);
  const p = await RawClient.connect(port, { protocolVersion: 5 });
  await p.client.send(pub("rap/x", "r", 0, true));
  assert.equal((await rap.client.expectPublish("rap/x")).retain, true);
  assert.equal((await plain.client.expectPublish("rap/x")).retain, false);
  // A new subscription's retained message is sent with retain 1 either way.
  const late = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(late.client, [{ filter: "rap/#", qos: 0 }]);
  assert.equal((await late.client.expectPublish("rap/x")).retain, true);
  await p.client.send(pub("rap/x", "", 0, true));
  for (const c of [rap, plain, late, p]) await c.client.disconnect();
  await broker.close();
});

Deno.test("Broker applies Retain Handling 0 (always), 1 (new subscription only), 2 (never) [MQTT-3.3.1-9] [MQTT-3.3.1-10] [MQTT-3.3.1-11]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  broker.publish("rh/t", "kept", { retain: true });
  const c = await RawClient.connect(port, { protocolVersion: 5 });
  const sends: [0 | 1 | 2, boolean][] = [
    [0, true],
    [0, true], // re-subscribing with 0: sent again
    [1, false], // already subscribed: not sent
  ];
  for (const [rh, expected] of sends) {
    await subscribe(c.client, [{ filter: "rh/#", qos: 0, retainHandling: rh }]);
    if (expected) {
      assert.equal(
        text((await c.client.expectPublish("rh/t")).payload),
        "kept",
      );
    } else {
      await c.client.expectNothing((x) => x.type === "publish", 80);
    }
  }
  // 1 on a new subscription: sent.
  await subscribe(c.client, [{ filter: "rh/+", qos: 0, retainHandling: 1 }]);
  assert.equal((await c.client.expectPublish("rh/t")).retain, true);
  // 2: never.
  await subscribe(c.client, [{ filter: "rh/t", qos: 0, retainHandling: 2 }]);
  await c.client.expectNothing((x) => x.type === "publish", 80);
  await c.client.disconnect();
  await broker.close();
});

Deno.test("Broker sends every matching subscription identifier with a message, one PUBLISH per client [MQTT-3.3.4-3] [MQTT-3.3.4-4]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const c = await RawClient.connect(port, { protocolVersion: 5 });
  assert.equal(c.connack.properties?.subscriptionIdentifierAvailable, 1);
  await subscribe(c.client, [{ filter: "si/#", qos: 1 }], 1);
  await subscribe(c.client, [{ filter: "si/+/x", qos: 0 }], 268435455);
  await subscribe(c.client, [{ filter: "si/a/x", qos: 0 }]); // no identifier
  broker.publish("si/a/x", "m", { qos: 1 });
  const m = await c.client.expectPublish("si/a/x");
  assert.equal(m.qos, 1); // the highest granted QoS
  assert.deepEqual(
    [...m.properties!.subscriptionIdentifiers!].sort((a, b) => a - b),
    [1, 268435455],
  );
  await c.client.send({ type: "puback", packetId: m.packetId! });
  await c.client.expectNothing((x) => x.type === "publish");
  // Only the matching subscriptions' identifiers.
  broker.publish("si/b", "n");
  const n = await c.client.expectPublish("si/b");
  assert.deepEqual(n.properties?.subscriptionIdentifiers, [1]);
  // Retained messages sent on subscribe carry that subscription's identifier.
  broker.publish("si/r", "ret", { retain: true });
  await c.client.expectPublish("si/r");
  await subscribe(c.client, [{ filter: "si/r", qos: 0 }], 77);
  const r = await c.client.expectPublish("si/r");
  assert.deepEqual(r.properties?.subscriptionIdentifiers, [77]);
  // A 3.1.1 subscriber never sees them.
  const v4 = await RawClient.connect(port);
  await v4.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "si/#", qos: 0 }],
  });
  await v4.client.expect("suback");
  broker.publish("si/c", "o");
  assert.equal((await v4.client.expectPublish("si/c")).properties, undefined);
  await v4.client.disconnect();
  await c.client.disconnect();
  await broker.close();
});

Deno.test("Broker refuses No Local on a shared subscription with DISCONNECT 0x82 [MQTT-3.8.3-4]", async () => {
  const broker = await startBroker();
  const c = await RawClient.connect(broker.addr.port, { protocolVersion: 5 });
  await c.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "$share/g/t", qos: 0, noLocal: true }],
  });
  await c.client.expectClosedWith("disconnect", ReasonCode.ProtocolError);
  await c.client.close();
  await broker.close();
});
