/**
 * v5 topic aliases, both ways: from clients (the broker's Topic Alias
 * Maximum) and to clients that allow them (theirs).
 */

import assert from "node:assert/strict";
import { Client } from "../client/client.ts";
import { decode } from "../codec/decode.ts";
import { encode as encodePacket } from "../codec/encode.ts";
import type { PublishPacket, QoS } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { aliasPublish } from "../codec/_publish_template.ts";
import { encodePublish } from "../broker/session.ts";
import {
  bytes,
  publishPacket,
  RawClient,
  startBroker,
  text,
  withTimeout,
} from "./_helpers.ts";

function pub(
  topic: string,
  payload: string,
  qos: QoS = 0,
  alias?: number,
): PublishPacket {
  const properties = alias === undefined ? undefined : { topicAlias: alias };
  return publishPacket(topic, payload, { qos, packetId: 1, properties });
}

Deno.test("Broker advertises topicAliasMaximum in CONNACK (default 10, configurable)", async () => {
  const broker = await startBroker();
  const r = await RawClient.connect(broker.addr.port, { protocolVersion: 5 });
  assert.equal(r.connack.properties?.topicAliasMaximum, 10);
  await r.client.disconnect();
  await broker.close();
  const b2 = await startBroker({ topicAliasMaximum: 3 });
  const r2 = await RawClient.connect(b2.addr.port, { protocolVersion: 5 });
  assert.equal(r2.connack.properties?.topicAliasMaximum, 3);
  await r2.client.disconnect();
  await b2.close();
});

Deno.test("Broker resolves client topic aliases per connection: set, use, replace [MQTT-3.3.2-12]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, { protocolVersion: 5 });
  await sub.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "al/#", qos: 1 }],
  });
  await sub.client.expect("suback");
  const p = await RawClient.connect(port, { protocolVersion: 5 });
  await p.client.send(pub("al/one", "1", 0, 1));
  await p.client.send(pub("", "2", 1, 1));
  assert.equal((await p.client.expect("puback")).reasonCode, undefined);
  // The same alias now names another topic.
  await p.client.send(pub("al/two", "3", 0, 1));
  await p.client.send(pub("", "4", 0, 1));
  const got: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = await sub.client.expectPublish();
    // The subscriber never sees the publisher's alias.
    assert.equal(m.properties?.topicAlias, undefined);
    got.push(`${m.topic}=${text(m.payload)}`);
  }
  assert.deepEqual(got, ["al/one=1", "al/one=2", "al/two=3", "al/two=4"]);
  // Another connection does not share the mapping: alias 1 is unknown there.
  const q = await RawClient.connect(port, { protocolVersion: 5 });
  await q.client.send(pub("", "x", 0, 1));
  await q.client.expectClosedWith(
    "disconnect",
    ReasonCode.ProtocolError,
  );
  for (const c of [sub, p, q]) await c.client.close();
  await broker.close();
});

Deno.test("Broker refuses topic alias 0 and above its maximum with DISCONNECT 0x94 [MQTT-3.3.2-8] [MQTT-3.3.2-9]", async () => {
  const broker = await startBroker({ topicAliasMaximum: 2 });
  const port = broker.addr.port;
  for (const alias of [3, 65535]) {
    const c = await RawClient.connect(port, { protocolVersion: 5 });
    await c.client.send(pub("t", "x", 0, alias));
    const d = await c.client.expect("disconnect");
    assert.equal(d.reasonCode, ReasonCode.TopicAliasInvalid);
    assert.match(d.properties?.reasonString ?? "", /topic alias/);
    await c.client.waitClosed();
    await c.client.close();
  }
  // Alias 0 is refused by the decoder already (the same code).
  const c = await RawClient.connect(port, { protocolVersion: 5 });
  const raw = encodePacket(pub("t", "x", 0, 1), { version: 5 });
  // Patch the alias value (last property before the payload) to 0.
  const at = raw.indexOf(0x23);
  raw[at + 1] = 0;
  raw[at + 2] = 0;
  await c.client.sendBytes(raw);
  assert.equal(
    (await c.client.expect("disconnect")).reasonCode,
    ReasonCode.TopicAliasInvalid,
  );
  await c.client.waitClosed();
  await c.client.close();
  await broker.close();
});

Deno.test("Broker answers an empty topic with an unknown alias with DISCONNECT 0x82", async () => {
  const broker = await startBroker();
  const c = await RawClient.connect(broker.addr.port, { protocolVersion: 5 });
  await c.client.send(pub("", "x", 1, 4));
  await c.client.expectClosedWith(
    "disconnect",
    ReasonCode.ProtocolError,
  );
  await c.client.close();
  await broker.close();
});

Deno.test("Broker aliases repeated topics to a client that allows it, up to its maximum, per connection [MQTT-3.1.2-26] [MQTT-3.3.2-11] [MQTT-3.3.2-7]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, {
    protocolVersion: 5,
    properties: { topicAliasMaximum: 2 },
  });
  sub.client.recordBytes = true;
  await sub.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "t/#", qos: 1 }],
  });
  await sub.client.expect("suback");
  const plain = await RawClient.connect(port, { protocolVersion: 5 });
  await plain.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "t/#", qos: 1 }],
  });
  await plain.client.expect("suback");
  const order = ["t/a", "t/a", "t/b", "t/c", "t/b", "t/c", "t/a"];
  for (const [i, t] of order.entries()) {
    broker.publish(t, String(i), { qos: i % 2 === 0 ? 1 : 0 });
  }
  const seen: [string, number | undefined][] = [];
  for (let i = 0; i < order.length; i++) {
    const m = await sub.client.expectPublish();
    seen.push([m.topic, m.properties?.topicAlias]);
    assert.equal(text(m.payload), String(i));
    if (m.qos > 0) {
      await sub.client.send({ type: "puback", packetId: m.packetId! });
    }
  }
  assert.deepEqual(seen, [
    ["t/a", 1], // alias set with the topic
    ["", 1], // then only the alias [MQTT-3.3.2-12]
    ["t/b", 2],
    ["t/c", undefined], // the client's maximum (2) is used up
    ["", 2],
    ["t/c", undefined],
    ["", 1],
  ]);
  // A subscriber without Topic Alias Maximum gets full topics, no alias.
  for (let i = 0; i < order.length; i++) {
    const m = await plain.client.expectPublish();
    assert.equal(m.topic, order[i]);
    assert.equal(m.properties?.topicAlias, undefined);
  }
  // The aliases are per connection: a new connection starts over.
  await sub.client.disconnect();
  const again = await RawClient.connect(port, {
    protocolVersion: 5,
    properties: { topicAliasMaximum: 2 },
  });
  await again.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "t/#", qos: 0 }],
  });
  await again.client.expect("suback");
  broker.publish("t/c", "n");
  const m = await again.client.expectPublish();
  assert.deepEqual([m.topic, m.properties?.topicAlias], ["t/c", 1]);
  await again.client.disconnect();
  await plain.client.disconnect();
  await broker.close();
});

Deno.test("aliasPublish() rewrites a shared encoding without changing the other properties or payload", () => {
  const message = {
    topic: "a/b",
    payload: bytes("hello"),
    qos: 1 as QoS,
    retain: false,
    properties: {
      contentType: "text/plain",
      userProperties: [["k", "v"], ["k", "w"]] as [string, string][],
    },
  };
  const enc = encodePublish(message, 5, 1, false, [7], Date.now());
  for (const withTopic of [true, false]) {
    const out = aliasPublish(enc, 300, withTopic);
    out.bytes[out.idOffset] = 0x12;
    out.bytes[out.idOffset + 1] = 0x34;
    const p = decode(out.bytes, { version: 5 }) as PublishPacket;
    assert.equal(p.topic, withTopic ? "a/b" : "");
    assert.equal(p.packetId, 0x1234);
    assert.equal(text(p.payload), "hello");
    assert.deepEqual(p.properties, {
      topicAlias: 300,
      contentType: "text/plain",
      userProperties: [["k", "v"], ["k", "w"]] as [string, string][],
      subscriptionIdentifiers: [7],
    });
  }
  // QoS 0: no packet id.
  const enc0 = encodePublish(message, 5, 0, false, undefined, Date.now());
  const out0 = aliasPublish(enc0, 1, false);
  assert.equal(out0.idOffset, -1);
  const p0 = decode(out0.bytes, { version: 5 }) as PublishPacket;
  assert.equal(p0.properties?.topicAlias, 1);
  assert.equal(text(p0.payload), "hello");
});

Deno.test("Client with topicAliasMaximum receives aliased messages from Kite with their full topics", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = new Client({
    port,
    topicAliasMaximum: 5,
    reconnect: false,
  });
  await sub.connect();
  const got: string[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  await sub.subscribe("c/#", 1, (m) => {
    got.push(`${m.topic}=${m.payloadText}`);
    if (got.length === 4) resolve();
  });
  const pub = new Client({ port, autoTopicAliases: true, reconnect: false });
  await pub.connect();
  for (const t of ["c/x", "c/x", "c/y", "c/x"]) await pub.publish(t, "p", 1);
  await withTimeout(promise, 2000, "4 messages");
  assert.deepEqual(got, ["c/x=p", "c/x=p", "c/y=p", "c/x=p"]);
  await pub.disconnect();
  await sub.disconnect();
  await broker.close();
});

Deno.test("Broker shares an aliased encoding among subscribers, each with its own packet id", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const subs: RawClient[] = [];
  for (let i = 0; i < 2; i++) {
    const s = await RawClient.connect(port, {
      protocolVersion: 5,
      properties: { topicAliasMaximum: 1 },
    });
    await s.client.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: i === 0 ? "#" : "sh/#", qos: 1 }],
    });
    await s.client.expect("suback");
    subs.push(s.client);
  }
  const ack = async (s: RawClient, topic: string) => {
    const m = await s.expectPublish(topic);
    await s.send({ type: "puback", packetId: m.packetId! });
    return m;
  };
  // Both set alias 1 for sh/t; then subscriber 0 alone gets a message
  // (its alias is used up: full topic), so its packet ids run ahead.
  broker.publish("sh/t", "0", { qos: 1 });
  for (const s of subs) assert.equal((await ack(s, "sh/t")).topic, "sh/t");
  broker.publish("solo", "x", { qos: 1 });
  assert.equal((await ack(subs[0]!, "solo")).properties?.topicAlias, undefined);
  broker.publish("sh/t", "1", { qos: 1 });
  const got = await Promise.all(subs.map((s) => ack(s, "")));
  for (const m of got) {
    assert.equal(m.properties?.topicAlias, 1);
    assert.equal(text(m.payload), "1");
  }
  assert.deepEqual(got.map((m) => m.packetId), [3, 2]);
  for (const s of subs) await s.disconnect();
  await broker.close();
});
