/**
 * Shared subscriptions `$share/{group}/{filter}` (v5, and accepted for
 * 3.1.1 clients): one member per group per message, round-robin among
 * online members with room, redistribution when a member leaves.
 */

import assert from "node:assert/strict";
import type { ConnectPacket, ProtocolVersion, QoS } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { RawClient, startBroker, text } from "./_helpers.ts";

async function member(
  port: number,
  clientId: string,
  filter: string,
  qos: QoS,
  version: ProtocolVersion = 5,
  extra: Partial<ConnectPacket> = {},
): Promise<RawClient> {
  const { client, connack } = await RawClient.connect(port, {
    protocolVersion: version,
    clientId,
    ...extra,
  });
  assert.equal(connack.reasonCode, 0);
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter, qos }],
  });
  const suback = await client.expect("suback");
  assert.deepEqual(suback.reasonCodes, [qos]);
  return client;
}

Deno.test("Broker sends each message to exactly one member of each group, round-robin, 3.1.1 members included", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await member(port, "a", "$share/g1/sh/#", 0);
  const b = await member(port, "b", "$share/g1/sh/#", 0, 4);
  const c = await member(port, "c", "$share/g1/sh/#", 0);
  const x = await member(port, "x", "$share/g2/sh/+", 0, 4);
  for (let i = 0; i < 9; i++) broker.publish("sh/t", String(i));
  const got = async (cl: RawClient, n: number) => {
    const out: string[] = [];
    for (let i = 0; i < n; i++) {
      out.push(text((await cl.expectPublish()).payload));
    }
    await cl.expectNothing((p) => p.type === "publish", 50);
    return out;
  };
  assert.deepEqual(await got(a, 3), ["0", "3", "6"]);
  assert.deepEqual(await got(b, 3), ["1", "4", "7"]);
  assert.deepEqual(await got(c, 3), ["2", "5", "8"]);
  // The only member of g2 gets them all.
  assert.equal((await got(x, 9)).length, 9);
  for (const cl of [a, b, c, x]) await cl.disconnect();
  await broker.close();
});

Deno.test("Broker skips a member whose receive window is full", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const slow = await member(port, "slow", "$share/g/w/#", 1, 5, {
    properties: { receiveMaximum: 1 },
  });
  const fast = await member(port, "fast", "$share/g/w/#", 1);
  for (let i = 0; i < 5; i++) broker.publish("w/t", String(i), { qos: 1 });
  const s = await slow.expectPublish();
  assert.equal(text(s.payload), "0");
  // slow does not acknowledge: every other message goes to fast.
  const f: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = await fast.expectPublish();
    f.push(text(m.payload));
    await fast.send({ type: "puback", packetId: m.packetId! });
  }
  assert.deepEqual(f, ["1", "2", "3", "4"]);
  await slow.expectNothing((p) => p.type === "publish", 50);
  for (const cl of [slow, fast]) await cl.disconnect();
  await broker.close();
});

Deno.test("Broker hands a leaving member's queued QoS 1/2 and in-flight QoS 1 messages to another member; never an in-flight QoS 2 [MQTT-4.8.2-5]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const leaver = await member(port, "leaver", "$share/g/r/#", 2, 5, {
    properties: { receiveMaximum: 2 },
  });
  // a (QoS 1) and b (QoS 2) in flight (window 2); c and d queued.
  broker.publish("r/t", "a", { qos: 1 });
  broker.publish("r/t", "b", { qos: 2 });
  broker.publish("r/t", "c", { qos: 1 });
  broker.publish("r/t", "d", { qos: 2 });
  assert.equal(text((await leaver.expectPublish()).payload), "a");
  assert.equal(text((await leaver.expectPublish()).payload), "b");
  const stayer = await member(port, "stayer", "$share/g/r/#", 2);
  // The leaver goes away without acknowledging (socket closed).
  await leaver.close();
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const m = await stayer.expectPublish();
    // A new delivery to this member, not a resend.
    assert.equal(m.dup, false);
    got.push(text(m.payload));
    if (m.qos === 1) {
      await stayer.send({ type: "puback", packetId: m.packetId! });
      continue;
    }
    await stayer.send({ type: "pubrec", packetId: m.packetId! });
    await stayer.expect("pubrel");
    await stayer.send({ type: "pubcomp", packetId: m.packetId! });
  }
  assert.deepEqual(got.sort(), ["a", "c", "d"]);
  // b may have reached the leaver's application: it goes nowhere else.
  await stayer.expectNothing((p) => p.type === "publish", 100);
  await stayer.disconnect();
  await broker.close();
});

Deno.test("Broker discards a shared message its member answered with PUBACK 0x80: it never goes to another member [MQTT-4.8.2-6]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const first = await member(port, "first", "$share/g/x/#", 1, 5);
  broker.publish("x/t", "refused", { qos: 1 });
  const m = await first.expectPublish();
  assert.equal(text(m.payload), "refused");
  await first.send({
    type: "puback",
    packetId: m.packetId!,
    reasonCode: ReasonCode.UnspecifiedError,
  });
  const second = await member(port, "second", "$share/g/x/#", 1, 5);
  // The first member leaves: a message it had not acknowledged would move
  // to the second one; this one was acknowledged (with a failure).
  await first.close();
  broker.publish("x/t", "next", { qos: 1 });
  const n = await second.expectPublish();
  assert.equal(text(n.payload), "next");
  await second.send({ type: "puback", packetId: n.packetId! });
  await second.expectNothing((p) => p.type === "publish", 100);
  await second.disconnect();
  await broker.close();
});

Deno.test("Broker keeps a persistent member's shared messages when no other member is online, resent with DUP on return", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const fields = {
    cleanStart: false,
    properties: { sessionExpiryInterval: 60 },
  };
  const m1 = await member(port, "p1", "$share/g/k/#", 1, 5, fields);
  broker.publish("k/t", "kept", { qos: 1 });
  const first = await m1.expectPublish();
  await m1.close();
  const { client, connack } = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "p1",
    ...fields,
  });
  assert.equal(connack.sessionPresent, true);
  const again = await client.expectPublish("k/t");
  assert.equal(again.dup, true);
  assert.equal(again.packetId, first.packetId);
  await client.send({ type: "puback", packetId: again.packetId! });
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker sends no retained messages on a shared subscribe (4.8.2)", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  broker.publish("rt/x", "retained", { retain: true });
  const a = await member(port, "a", "$share/g/rt/#", 1);
  await a.expectNothing((p) => p.type === "publish");
  // A normal subscription does get it.
  const b = await member(port, "b", "rt/#", 1);
  assert.equal(text((await b.expectPublish("rt/x")).payload), "retained");
  for (const cl of [a, b]) await cl.disconnect();
  await broker.close();
});

Deno.test("Broker refuses shared subscriptions when sharedSubscriptionAvailable is false: v5 0x9E, 3.1.1 0x80", async () => {
  const broker = await startBroker({ sharedSubscriptionAvailable: false });
  const port = broker.addr.port;
  for (const version of [5, 4] as const) {
    const { client, connack } = await RawClient.connect(port, {
      protocolVersion: version,
    });
    if (version === 5) {
      assert.equal(connack.properties?.sharedSubscriptionAvailable, 0);
    }
    await client.send({
      type: "subscribe",
      packetId: 3,
      subscriptions: [{ filter: "$share/g/t", qos: 1 }],
    });
    const suback = await client.expect("suback");
    assert.deepEqual(suback.reasonCodes, [
      version === 5 ? ReasonCode.SharedSubscriptionsNotSupported : 0x80,
    ]);
    await client.disconnect();
  }
  await broker.close();
});

Deno.test("Broker stops sending to a member that unsubscribed from the group", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await member(port, "a", "$share/g/u/#", 0);
  const b = await member(port, "b", "$share/g/u/#", 0);
  await a.send({ type: "unsubscribe", packetId: 2, filters: ["$share/g/u/#"] });
  assert.deepEqual((await a.expect("unsuback")).reasonCodes, [0]);
  for (let i = 0; i < 3; i++) broker.publish("u/t", String(i));
  for (let i = 0; i < 3; i++) await b.expectPublish();
  await a.expectNothing((p) => p.type === "publish");
  for (const cl of [a, b]) await cl.disconnect();
  await broker.close();
});
