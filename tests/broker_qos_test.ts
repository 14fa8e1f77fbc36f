import assert from "node:assert/strict";
import type { Broker } from "../broker/mod.ts";
import type { ProtocolVersion, PublishPacket, QoS } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { publishPacket, RawClient, startBroker, text } from "./_helpers.ts";

async function subscriber(
  broker: Broker,
  clientId: string,
  filters: [string, QoS][],
  version: ProtocolVersion = 4,
  subscriptionIdentifier?: number,
): Promise<RawClient> {
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: version,
    clientId,
  });
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: filters.map(([filter, qos]) => ({ filter, qos })),
    ...(subscriptionIdentifier !== undefined
      ? { properties: { subscriptionIdentifiers: [subscriptionIdentifier] } }
      : {}),
  });
  await client.expect("suback");
  return client;
}

function pub(
  topic: string,
  payload: string,
  qos: QoS,
  packetId?: number,
): PublishPacket {
  return publishPacket(topic, payload, { qos, packetId: packetId ?? 1 });
}

Deno.test("Broker routes QoS 0, 1 and 2 end to end with each flow's acks, both versions", async () => {
  const broker = await startBroker();
  for (const version of [4, 5] as const) {
    const sub = await subscriber(broker, `s${version}`, [["q/#", 2]], version);
    const { client: p } = await RawClient.connect(broker.addr.port, {
      protocolVersion: version,
      clientId: `p${version}`,
    });
    // QoS 0
    await p.send(pub("q/0", "zero", 0));
    const m0 = await sub.expectPublish("q/0");
    assert.equal(m0.qos, 0);
    assert.equal(m0.packetId, undefined);
    assert.equal(text(m0.payload), "zero");
    // QoS 1 v3:[MQTT-4.3.2-2] v5:[MQTT-4.3.2-4]
    await p.send(pub("q/1", "one", 1, 11));
    assert.equal((await p.expect("puback")).packetId, 11);
    const m1 = await sub.expectPublish("q/1");
    assert.equal(m1.qos, 1);
    await sub.send({ type: "puback", packetId: m1.packetId! });
    // QoS 2 v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-8] v5:[MQTT-4.3.3-11]
    await p.send(pub("q/2", "two", 2, 12));
    assert.equal((await p.expect("pubrec")).packetId, 12);
    await p.send({ type: "pubrel", packetId: 12 });
    assert.equal((await p.expect("pubcomp")).packetId, 12);
    const m2 = await sub.expectPublish("q/2");
    assert.equal(m2.qos, 2);
    await sub.send({ type: "pubrec", packetId: m2.packetId! });
    assert.equal((await sub.expect("pubrel")).packetId, m2.packetId);
    await sub.send({ type: "pubcomp", packetId: m2.packetId! });
    await sub.disconnect();
    await p.disconnect();
  }
  await broker.close();
});

Deno.test("Broker delivers at the minimum of publish QoS and granted QoS", async () => {
  const broker = await startBroker();
  const s1 = await subscriber(broker, "g1", [["m/t", 1]]);
  const s0 = await subscriber(broker, "g0", [["m/t", 0]]);
  const s2 = await subscriber(broker, "g2", [["m/t", 2]]);
  const { client: p } = await RawClient.connect(broker.addr.port, {
    clientId: "mp",
  });
  await p.send(pub("m/t", "x", 2, 3));
  await p.expect("pubrec");
  assert.equal((await s1.expectPublish("m/t")).qos, 1);
  assert.equal((await s0.expectPublish("m/t")).qos, 0);
  assert.equal((await s2.expectPublish("m/t")).qos, 2);
  await p.send(pub("m/t", "y", 0));
  assert.equal((await s2.expectPublish("m/t")).qos, 0);
  for (const c of [s0, s1, s2, p]) await c.disconnect();
  await broker.close();
});

Deno.test("Broker grants at most maxQos and refuses a v5 PUBLISH above it with DISCONNECT 0x9B", async () => {
  const broker = await startBroker({ maxQos: 1 });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "mq",
  });
  await client.send({
    type: "subscribe",
    packetId: 2,
    subscriptions: [{ filter: "a", qos: 2 }],
  });
  assert.deepEqual((await client.expect("suback")).reasonCodes, [1]);
  await client.send(pub("a", "x", 2, 9));
  await client.expectClosedWith(
    "disconnect",
    ReasonCode.QoSNotSupported,
  );
  await client.close();
  await broker.close();
});

Deno.test("Broker suppresses a duplicate QoS 2 PUBLISH until PUBREL v3:[MQTT-4.3.3-2]", async () => {
  const broker = await startBroker();
  const sub = await subscriber(broker, "ds", [["d", 0]]);
  const { client: p } = await RawClient.connect(broker.addr.port, {
    clientId: "dp",
  });
  await p.send(pub("d", "first", 2, 5));
  await p.expect("pubrec");
  await p.send({ ...pub("d", "first", 2, 5), dup: true });
  assert.equal((await p.expect("pubrec")).packetId, 5);
  assert.equal(text((await sub.expectPublish("d")).payload), "first");
  await sub.expectNothing((x) => x.type === "publish");
  await p.send({ type: "pubrel", packetId: 5 });
  await p.expect("pubcomp");
  // After PUBREL the id is free: a new message with it is delivered.
  await p.send(pub("d", "second", 2, 5));
  await p.expect("pubrec");
  assert.equal(text((await sub.expectPublish("d")).payload), "second");
  await sub.disconnect();
  await p.disconnect();
  await broker.close();
});

Deno.test("Broker keeps the order of messages on a topic v3:[MQTT-4.6.0-6]", async () => {
  const broker = await startBroker();
  const sub = await subscriber(broker, "os", [["o", 1]]);
  const { client: p } = await RawClient.connect(broker.addr.port, {
    clientId: "op",
  });
  const n = 200;
  const packets = [];
  for (let i = 0; i < n; i++) {
    packets.push(pub("o", String(i), (i % 3) === 0 ? 0 : 1, i + 1));
  }
  await p.send(...packets);
  for (let i = 0; i < n; i++) {
    const m = await sub.expectPublish("o");
    assert.equal(text(m.payload), String(i));
    if (m.qos > 0) await sub.send({ type: "puback", packetId: m.packetId! });
  }
  await sub.disconnect();
  await p.disconnect();
  await broker.close();
});

Deno.test("Broker delivers once at the highest QoS to a client with overlapping subscriptions (3.1.1)", async () => {
  const broker = await startBroker();
  const sub = await subscriber(broker, "ov", [["a/#", 1], ["a/b", 2], [
    "+/b",
    0,
  ]]);
  const { client: p } = await RawClient.connect(broker.addr.port, {
    clientId: "ovp",
  });
  await p.send(pub("a/b", "x", 2, 1));
  const m = await sub.expectPublish("a/b");
  assert.equal(m.qos, 2);
  await sub.expectNothing((x) => x.type === "publish");
  await sub.disconnect();
  await p.disconnect();
  await broker.close();
});

Deno.test("Broker sends one v5 PUBLISH carrying every matching subscription identifier", async () => {
  const broker = await startBroker();
  const { client: sub } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "sid",
  });
  await sub.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "x/#", qos: 1 }],
    properties: { subscriptionIdentifiers: [7] },
  });
  await sub.expect("suback");
  await sub.send({
    type: "subscribe",
    packetId: 2,
    subscriptions: [{ filter: "x/+", qos: 0 }],
    properties: { subscriptionIdentifiers: [9] },
  });
  await sub.expect("suback");
  broker.publish("x/y", "hello", { qos: 1 });
  const m = await sub.expectPublish("x/y");
  assert.equal(m.qos, 1);
  assert.deepEqual(
    [...(m.properties?.subscriptionIdentifiers ?? [])].sort(),
    [7, 9],
  );
  await sub.expectNothing((x) => x.type === "publish");
  await sub.disconnect();
  await broker.close();
});

Deno.test("Broker patches per-session packet ids into a shared PUBLISH encoding", async () => {
  const broker = await startBroker();
  const a = await subscriber(broker, "pa", [["p/#", 1]]);
  const b = await subscriber(broker, "pb", [["p/x", 1]]);
  broker.publish("p/first", "1", { qos: 1 }); // only a: a's next id moves on
  const a1 = await a.expectPublish("p/first");
  broker.publish("p/x", "2", { qos: 1 });
  const a2 = await a.expectPublish("p/x");
  const b1 = await b.expectPublish("p/x");
  assert.notEqual(a1.packetId, a2.packetId);
  assert.equal(b1.packetId, a1.packetId); // both sessions start at the same id
  assert.equal(text(a2.payload), "2");
  assert.equal(text(b1.payload), "2");
  assert.equal(a2.dup, false);
  await a.disconnect();
  await b.disconnect();
  await broker.close();
});

Deno.test("Broker answers a v5 QoS 1 PUBLISH nobody receives with PUBACK 0x10", async () => {
  const broker = await startBroker();
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "lonely",
  });
  await client.send(pub("nobody/here", "x", 1, 4));
  const ack = await client.expect("puback");
  assert.equal(ack.reasonCode, ReasonCode.NoMatchingSubscribers);
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker applies authorizePublish and authorizeSubscribe with per-version codes", async () => {
  const broker = await startBroker({
    authorizePublish: (_c, topic) =>
      topic.startsWith("secret") ? ReasonCode.NotAuthorized : 0,
    authorizeSubscribe: (_c, filter, qos) =>
      filter === "deny" ? Promise.resolve(ReasonCode.NotAuthorized) : (
        filter === "low" ? 0 : qos
      ),
  });
  const port = broker.addr.port;
  const { client: s5 } = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "z5",
  });
  await s5.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [
      { filter: "deny", qos: 1 },
      { filter: "low", qos: 2 },
      { filter: "secret/#", qos: 1 },
    ],
  });
  assert.deepEqual((await s5.expect("suback")).reasonCodes, [0x87, 0, 1]);
  const s4 = await subscriber(broker, "z4", [["deny", 1]]);
  const { client: s4b } = await RawClient.connect(port, { clientId: "z4b" });
  await s4b.send({
    type: "subscribe",
    packetId: 3,
    subscriptions: [{ filter: "deny", qos: 1 }, { filter: "ok", qos: 1 }],
  });
  assert.deepEqual((await s4b.expect("suback")).reasonCodes, [0x80, 1]);
  await s5.send(pub("secret/x", "no", 1, 8));
  assert.equal((await s5.expect("puback")).reasonCode, 0x87);
  await s5.expectNothing((x) => x.type === "publish");
  for (const c of [s5, s4, s4b]) await c.disconnect();
  await broker.close();
});

Deno.test("Broker unsubscribes with v5 UNSUBACK codes (0x00, 0x11) and stops delivering", async () => {
  const broker = await startBroker();
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "u",
  });
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "u/1", qos: 0 }],
  });
  await client.expect("suback");
  await client.send({
    type: "unsubscribe",
    packetId: 2,
    filters: ["u/1", "u/2"],
  });
  const ua = await client.expect("unsuback");
  assert.deepEqual(ua.reasonCodes, [0x00, 0x11]);
  broker.publish("u/1", "x");
  await client.expectNothing((x) => x.type === "publish");
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker refuses a v5 topic alias above its Topic Alias Maximum with DISCONNECT 0x94", async () => {
  const broker = await startBroker({ topicAliasMaximum: 0 });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "alias",
  });
  await client.send({ ...pub("t", "x", 0), properties: { topicAlias: 1 } });
  assert.equal(
    (await client.expect("disconnect")).reasonCode,
    ReasonCode.TopicAliasInvalid,
  );
  await client.waitClosed();
  await client.close();
  await broker.close();
});

Deno.test("Broker routes $share subscriptions round-robin to one member of each group", async () => {
  const broker = await startBroker();
  const a = await subscriber(broker, "sa", [["$share/g/s/#", 1]], 5);
  const b = await subscriber(broker, "sb", [["$share/g/s/#", 1]], 5);
  const c = await subscriber(broker, "sc", [["s/#", 0]], 5);
  for (let i = 0; i < 4; i++) broker.publish("s/x", String(i), { qos: 1 });
  const got = { a: 0, b: 0 };
  for (let i = 0; i < 4; i++) await c.expectPublish("s/x");
  for (let i = 0; i < 2; i++) {
    await a.expectPublish("s/x");
    got.a++;
    await b.expectPublish("s/x");
    got.b++;
  }
  await a.expectNothing((x) => x.type === "publish", 50);
  assert.deepEqual(got, { a: 2, b: 2 });
  for (const x of [a, b, c]) await x.disconnect();
  await broker.close();
});

Deno.test("Broker refuses wildcard (0xA2) and shared (0x9E) subscriptions when unavailable; 3.1.1 gets 0x80", async () => {
  const broker = await startBroker({
    wildcardSubscriptionAvailable: false,
    sharedSubscriptionAvailable: false,
  });
  const subs = [
    { filter: "a/+", qos: 1 as const },
    { filter: "$share/g/a", qos: 1 as const },
    { filter: "a/b", qos: 1 as const },
  ];
  const { client: c5 } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "nw5",
  });
  await c5.send({ type: "subscribe", packetId: 1, subscriptions: subs });
  assert.deepEqual((await c5.expect("suback")).reasonCodes, [
    ReasonCode.WildcardSubscriptionsNotSupported,
    ReasonCode.SharedSubscriptionsNotSupported,
    1,
  ]);
  const { client: c4 } = await RawClient.connect(broker.addr.port, {
    clientId: "nw4",
  });
  await c4.send({ type: "subscribe", packetId: 1, subscriptions: subs });
  assert.deepEqual((await c4.expect("suback")).reasonCodes, [0x80, 0x80, 1]);
  await c5.disconnect();
  await c4.disconnect();
  await broker.close();
});

Deno.test("Broker never sends a v5 client a PUBLISH above its Maximum Packet Size", async () => {
  const broker = await startBroker();
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "small",
    properties: { maximumPacketSize: 100 },
  });
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "mps", qos: 1 }],
  });
  await client.expect("suback");
  broker.publish("mps", "x".repeat(200), { qos: 1 });
  broker.publish("mps", "x".repeat(200), { qos: 0 });
  broker.publish("mps", "small", { qos: 1 });
  const m = await client.expectPublish("mps");
  assert.equal(text(m.payload), "small");
  await client.expectNothing((p) => p.type === "publish", 100);
  await client.disconnect();
  await broker.close();
});
