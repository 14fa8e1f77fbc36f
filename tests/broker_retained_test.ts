import assert from "node:assert/strict";
import { RetainedMessages } from "../broker/mod.ts";
import type { PublishPacket, QoS, Subscription } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { bytes, RawClient, startBroker, text } from "./_helpers.ts";

function retained(topic: string, payload: string, qos: QoS = 0): PublishPacket {
  const p: PublishPacket = {
    type: "publish",
    topic,
    payload: bytes(payload),
    qos,
    retain: true,
    dup: false,
  };
  if (qos > 0) p.packetId = 1;
  return p;
}

async function subscribe(
  client: RawClient,
  ...subscriptions: Subscription[]
): Promise<number[]> {
  await client.send({ type: "subscribe", packetId: 1, subscriptions });
  return (await client.expect("suback")).reasonCodes;
}

Deno.test("RetainedMessages.match() follows wildcard rules and skips $ topics for wildcard-first filters [MQTT-4.7.2-1]", () => {
  const r = new RetainedMessages();
  for (const t of ["a", "a/b", "a/b/c", "b/x", "$SYS/up", "/lead"]) {
    r.set({ topic: t, payload: bytes(t), qos: 0, retain: true });
  }
  const m = (f: string) => {
    const out: string[] = [];
    r.match(f, (x) => out.push(x.topic));
    return out.sort();
  };
  assert.deepEqual(m("#"), ["/lead", "a", "a/b", "a/b/c", "b/x"]);
  assert.deepEqual(m("a/#"), ["a", "a/b", "a/b/c"]);
  assert.deepEqual(m("+/b"), ["a/b"]);
  assert.deepEqual(m("+/+"), ["/lead", "a/b", "b/x"]);
  assert.deepEqual(m("$SYS/#"), ["$SYS/up"]);
  assert.deepEqual(m("+/up"), []);
  assert.equal(r.size, 6);
  assert.equal(r.delete("a/b"), true);
  assert.equal(r.delete("a/b"), false);
  assert.deepEqual(m("a/#"), ["a", "a/b/c"]);
  assert.equal(r.size, 5);
});

Deno.test("Broker stores, replaces and clears retained messages and sends them on subscribe with retain 1 v3:[MQTT-3.3.1-6] v3:[MQTT-3.3.1-8] v3:[MQTT-3.3.1-10]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const { client: p } = await RawClient.connect(port, { clientId: "rp" });
  await p.send(
    retained("r/a", "one"),
    retained("r/a", "two"),
    retained("r/b", "b"),
  );
  await p.send({ type: "pingreq" });
  await p.expect("pingresp");
  assert.equal(broker.retainedCount, 2);
  const { client: s } = await RawClient.connect(port, { clientId: "rs" });
  await subscribe(s, { filter: "r/+", qos: 0 });
  const got = [await s.expectPublish(), await s.expectPublish()];
  got.sort((x, y) => x.topic.localeCompare(y.topic));
  assert.deepEqual(got.map((m) => [m.topic, text(m.payload), m.retain]), [
    ["r/a", "two", true],
    ["r/b", "b", true],
  ]);
  // An empty retained payload clears the topic and is forwarded normally.
  await p.send(retained("r/a", ""));
  const cleared = await s.expectPublish("r/a");
  assert.equal(cleared.payload.length, 0);
  assert.equal(cleared.retain, false);
  await p.send({ type: "pingreq" });
  await p.expect("pingresp");
  assert.equal(broker.retainedCount, 1);
  const { client: s2 } = await RawClient.connect(port, { clientId: "rs2" });
  await subscribe(s2, { filter: "r/#", qos: 0 });
  assert.equal((await s2.expectPublish()).topic, "r/b");
  await s2.expectNothing((x) => x.type === "publish", 100);
  for (const c of [p, s, s2]) await c.disconnect();
  await broker.close();
});

Deno.test("Broker clears the retain flag on normal delivery for 3.1.1 v3:[MQTT-3.3.1-9] and keeps it for v5 retain-as-published", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const { client: s4 } = await RawClient.connect(port, { clientId: "f4" });
  await subscribe(s4, { filter: "f", qos: 1 });
  const { client: s5 } = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "f5",
  });
  await subscribe(s5, { filter: "f", qos: 1, retainAsPublished: true });
  const { client: s5n } = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "f5n",
  });
  await subscribe(s5n, { filter: "f", qos: 1 });
  const { client: p } = await RawClient.connect(port, { clientId: "fp" });
  await p.send(retained("f", "v", 1));
  await p.expect("puback");
  assert.equal((await s4.expectPublish("f")).retain, false);
  assert.equal((await s5.expectPublish("f")).retain, true);
  assert.equal((await s5n.expectPublish("f")).retain, false);
  for (const c of [p, s4, s5, s5n]) await c.disconnect();
  await broker.close();
});

Deno.test("Broker does not send $ topics' retained messages to wildcard-first filters [MQTT-4.7.2-1]", async () => {
  const broker = await startBroker();
  broker.publish("$internal/x", "secret", { retain: true });
  broker.publish("pub/x", "open", { retain: true });
  const { client } = await RawClient.connect(broker.addr.port, {
    clientId: "w",
  });
  await subscribe(client, { filter: "#", qos: 0 }, { filter: "+/x", qos: 0 });
  const first = await client.expectPublish();
  assert.equal(first.topic, "pub/x");
  const second = await client.expectPublish();
  assert.equal(second.topic, "pub/x");
  await client.expectNothing((x) => x.type === "publish", 100);
  await subscribe(client, { filter: "$internal/#", qos: 0 });
  assert.equal(
    text((await client.expectPublish("$internal/x")).payload),
    "secret",
  );
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker sends a retained message at the minimum of its QoS and the grant", async () => {
  const broker = await startBroker();
  const { client: p } = await RawClient.connect(broker.addr.port, {
    clientId: "qp",
  });
  await p.send(retained("q", "x", 2));
  await p.expect("pubrec");
  await p.send({ type: "pubrel", packetId: 1 });
  await p.expect("pubcomp");
  const { client: s } = await RawClient.connect(broker.addr.port, {
    clientId: "qs",
  });
  await subscribe(s, { filter: "q", qos: 1 });
  const m = await s.expectPublish("q");
  assert.equal(m.qos, 1);
  assert.equal(m.retain, true);
  await p.disconnect();
  await s.disconnect();
  await broker.close();
});

Deno.test("Broker honours v5 retain handling 1 (new subscriptions only) and 2 (never)", async () => {
  const broker = await startBroker();
  broker.publish("h", "x", { retain: true });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "rh",
  });
  await subscribe(client, { filter: "h", qos: 0, retainHandling: 1 });
  await client.expectPublish("h");
  await subscribe(client, { filter: "h", qos: 0, retainHandling: 1 });
  await client.expectNothing((x) => x.type === "publish", 100);
  await subscribe(client, { filter: "h/#", qos: 0, retainHandling: 2 });
  await client.expectNothing((x) => x.type === "publish", 100);
  await subscribe(client, { filter: "h", qos: 0, retainHandling: 0 });
  await client.expectPublish("h");
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker does not send retained messages on a shared subscription", async () => {
  const broker = await startBroker();
  broker.publish("sh", "x", { retain: true });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "shr",
  });
  assert.deepEqual(await subscribe(client, { filter: "$share/g/sh", qos: 0 }), [
    0,
  ]);
  await client.expectNothing((x) => x.type === "publish", 100);
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker with retainAvailable false refuses a v5 retained PUBLISH with DISCONNECT 0x9A", async () => {
  const broker = await startBroker({ retainAvailable: false });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "nr",
  });
  await client.send(retained("t", "x"));
  assert.equal(
    (await client.expect("disconnect")).reasonCode,
    ReasonCode.RetainNotSupported,
  );
  await client.waitClosed();
  await client.close();
  await broker.close();
});
