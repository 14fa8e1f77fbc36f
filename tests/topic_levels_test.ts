/**
 * Deep topics (issue 19, finding 2): nothing walks topic levels by
 * recursion (retained messages, the matcher, the ACL, the store load), and
 * `maxTopicLevels` refuses deeper topic names and filters.
 */

import assert from "node:assert/strict";
import { Acl, MemoryStore, RetainedMessages } from "../broker/mod.ts";
import { TopicMatcher } from "../codec/topic.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  bytes,
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
} from "./_helpers.ts";

/** `alice` and 12,000 levels below it: 24,005 bytes, 12,001 levels. */
const DEEP = "alice" + "/x".repeat(12000);
/** A filter of `+` for each level of `DEEP`. */
const DEEP_PLUS = "+" + "/+".repeat(12000);

/** A topic (or filter) of `n` levels: `l/l/.../l`. */
function levels(n: number, level = "l"): string {
  return Array.from({ length: n }, () => level).join("/");
}

function matched(r: RetainedMessages, filter: string): string[] {
  const out: string[] = [];
  r.match(filter, (m) => out.push(m.topic));
  return out;
}

Deno.test("RetainedMessages.match() walks a 12,000-level topic without recursion", () => {
  const r = new RetainedMessages();
  for (const t of [DEEP, "$SYS" + "/x".repeat(12000), "b"]) {
    r.set({ topic: t, payload: bytes("v"), qos: 0, retain: true });
  }
  assert.deepEqual(matched(r, "#").sort(), [DEEP, "b"]);
  assert.deepEqual(matched(r, "alice/#"), [DEEP]);
  assert.deepEqual(matched(r, "+/x/#"), [DEEP]);
  assert.deepEqual(matched(r, DEEP_PLUS), [DEEP]);
  assert.deepEqual(matched(r, DEEP), [DEEP]);
  assert.deepEqual(matched(r, DEEP + "/#"), [DEEP]);
  // No wildcard-first filter matches a `$` topic [MQTT-4.7.2-1].
  assert.deepEqual(matched(r, "+/x/#"), [DEEP]);
  assert.deepEqual(matched(r, "$SYS/#").length, 1);
  assert.equal(r.delete(DEEP), true);
  assert.deepEqual(matched(r, "#"), ["b"]);
});

Deno.test("RetainedMessages.match() keeps its depth-first order and the `#` parent rule v3:[MQTT-4.7.1-2] v5:[MQTT-4.7.1-1]", () => {
  const r = new RetainedMessages();
  for (const t of ["a/1", "a", "a/2", "b/1", "a/1/z", "$x/1"]) {
    r.set({ topic: t, payload: bytes(t), qos: 0, retain: true });
  }
  assert.deepEqual(matched(r, "#"), ["a", "a/1", "a/1/z", "a/2", "b/1"]);
  assert.deepEqual(matched(r, "+/+"), ["a/1", "a/2", "b/1"]);
  assert.deepEqual(matched(r, "+/+/#"), ["a/1", "a/1/z", "a/2", "b/1"]);
  // "a/#" matches "a" itself.
  assert.deepEqual(matched(r, "a/#"), ["a", "a/1", "a/1/z", "a/2"]);
  assert.deepEqual(matched(r, "$x/#"), ["$x/1"]);
  assert.deepEqual(matched(r, "+/1"), ["a/1", "b/1"]);
});

Deno.test("TopicMatcher and Acl handle a 12,000-level topic without recursion", () => {
  const m = new TopicMatcher<number>();
  m.set("#", "all", 1);
  m.set("alice/#", "alice", 2);
  m.set(DEEP_PLUS, "plus", 3);
  m.set(DEEP, "exact", 4);
  const seen: number[] = [];
  m.match(DEEP, (v) => seen.push(v));
  assert.deepEqual(seen.sort(), [1, 2, 3, 4]);
  assert.equal(m.hasMatch(DEEP), true);
  assert.equal(m.delete(DEEP_PLUS, "plus"), true);

  const acl = Acl.parse("topic readwrite #\ntopic deny alice/x/x/#\n");
  assert.equal(acl.canRead("c", undefined, DEEP), false);
  assert.equal(acl.canWrite("c", undefined, "bob" + "/x".repeat(12000)), true);
  assert.equal(acl.canSubscribe("c", undefined, DEEP_PLUS), false);
  assert.equal(
    acl.canSubscribe("c", undefined, "bob" + "/+".repeat(12000)),
    true,
  );
});

Deno.test("Broker: a retained message 12,000 levels deep does not drop `#` subscribers, also after a restart", async () => {
  const store = new MemoryStore();
  const b1 = await startBroker({ store, maxTopicLevels: 20000 });
  const port = b1.addr.port;
  const { client: alice } = await RawClient.connect(port, { clientId: "al" });
  await alice.send(publishPacket(DEEP, "deep", { qos: 1, retain: true }));
  await alice.expect("puback");
  for (const [i, filter] of ["#", "alice/#", "+/x/#", DEEP_PLUS].entries()) {
    const version = i % 2 === 0 ? 4 : 5;
    const { client } = await RawClient.connect(port, {
      clientId: `s${i}`,
      protocolVersion: version,
    });
    assert.deepEqual(await subscribeOne(client, filter, 0), [0], filter);
    const m = await client.expect("publish");
    assert.ok(m.topic === DEEP);
    assert.equal(text(m.payload), "deep");
    // Still connected.
    await client.send({ type: "pingreq" });
    await client.expect("pingresp");
    await client.disconnect();
  }
  await alice.disconnect();
  await b1.close();

  // Loaded from the store by a broker with the default limit: still served.
  const b2 = await startBroker({ store });
  assert.equal(b2.retainedCount, 1);
  const { client } = await RawClient.connect(b2.addr.port, { clientId: "s" });
  assert.deepEqual(await subscribeOne(client, "#", 0), [0]);
  const m = await client.expect("publish");
  assert.ok(m.topic === DEEP);
  assert.equal(text(m.payload), "deep");
  await client.send({ type: "pingreq" });
  await client.expect("pingresp");
  await client.disconnect();
  await b2.close();
});

Deno.test("Broker refuses a PUBLISH deeper than maxTopicLevels (default 128): v5 DISCONNECT 0x90, 3.1.1 closed", async () => {
  const broker = await startBroker();
  assert.equal(broker.settings.maxTopicLevels, 128);
  const port = broker.addr.port;
  const { client: sub } = await RawClient.connect(port, { clientId: "sub" });
  await subscribeOne(sub, "#", 0);

  const { client: v5 } = await RawClient.connect(port, {
    clientId: "p5",
    protocolVersion: 5,
  });
  await v5.send(publishPacket(levels(128), "ok"));
  assert.equal(text((await sub.expectPublish(levels(128))).payload), "ok");
  await v5.send(publishPacket(levels(129), "deep", { qos: 1 }));
  await v5.expectClosedWith("disconnect", ReasonCode.TopicNameInvalid);

  const { client: v4 } = await RawClient.connect(port, { clientId: "p4" });
  await v4.send(publishPacket(levels(129), "deep"));
  await v4.waitClosed();
  assert.equal(v4.inbox.length, 0);
  await sub.expectNothing((p) => p.type === "publish");
  for (const c of [sub, v5, v4]) await c.close();
  await broker.close();
});

Deno.test("Broker refuses a SUBSCRIBE filter deeper than maxTopicLevels: v5 SUBACK 0x8F, 3.1.1 0x80; others in the packet granted", async () => {
  const broker = await startBroker({ maxTopicLevels: 4 });
  const port = broker.addr.port;
  for (const version of [4, 5] as const) {
    const { client } = await RawClient.connect(port, {
      clientId: `c${version}`,
      protocolVersion: version,
    });
    await client.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [
        { filter: "a/b/c/d/e", qos: 1 },
        { filter: "a/+/c/#", qos: 1 },
        { filter: "+/+/+/+/+", qos: 0 },
        // The `$share/{group}/` prefix is not a topic level.
        { filter: "$share/g/a/b/c/#", qos: 0 },
        { filter: "$share/g/a/b/c/d/#", qos: 0 },
      ],
    });
    const bad = version === 5 ? ReasonCode.TopicFilterInvalid : 0x80;
    assert.deepEqual((await client.expect("suback")).reasonCodes, [
      bad,
      1,
      bad,
      0,
      bad,
    ]);
    await client.disconnect();
  }
  await broker.close();
});

Deno.test("Broker refuses a will deeper than maxTopicLevels: v5 CONNACK 0x90, 3.1.1 closed without CONNACK v3:[MQTT-3.2.2-6]", async () => {
  const broker = await startBroker({ maxTopicLevels: 3 });
  const port = broker.addr.port;
  const will = {
    topic: "a/b/c/d",
    payload: bytes("gone"),
    qos: 0 as const,
    retain: false,
  };
  const v5 = await RawClient.open(port, 5);
  await v5.send({
    type: "connect",
    protocolVersion: 5,
    clientId: "w5",
    cleanStart: true,
    keepAlive: 0,
    will,
  });
  await v5.expectClosedWith("connack", ReasonCode.TopicNameInvalid);
  const v4 = await RawClient.open(port, 4);
  await v4.send({
    type: "connect",
    protocolVersion: 4,
    clientId: "w4",
    cleanStart: true,
    keepAlive: 0,
    will,
  });
  await v4.waitClosed();
  assert.equal(v4.inbox.length, 0);
  // Three levels are fine.
  const ok = await RawClient.connect(port, {
    clientId: "w",
    will: { ...will, topic: "a/b/c" },
  });
  assert.equal(ok.connack.reasonCode, 0);
  for (const c of [v5, v4, ok.client]) await c.close();
  await broker.close();
});

Deno.test("Broker with maxTopicLevels 0 sets no limit", async () => {
  const broker = await startBroker({ maxTopicLevels: 0 });
  const port = broker.addr.port;
  const { client } = await RawClient.connect(port, { clientId: "c" });
  assert.deepEqual(await subscribeOne(client, levels(300, "+"), 0), [0]);
  await client.send(publishPacket(levels(300), "x"));
  assert.equal(text((await client.expectPublish(levels(300))).payload), "x");
  await client.disconnect();
  await broker.close();
});
