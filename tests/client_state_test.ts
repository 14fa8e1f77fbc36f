/**
 * Unit tests of the client's I/O-free parts: ClientState (packet ids, flow
 * control, acknowledgements, resend), topic aliases both ways, Backoff and
 * Message.
 */

import assert from "node:assert/strict";
import {
  Backoff,
  ClientState,
  type Entry,
  Message,
  type PublishEntry,
  type PublishResult,
  type SubscribeEntry,
  TopicAliasReceiver,
  TopicAliasSender,
} from "../client/mod.ts";
import { MqttError } from "../codec/errors.ts";
import type { QoS } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";

interface Settled {
  result?: PublishResult;
  error?: Error;
}

function entry(qos: QoS, topic = "t"): PublishEntry & { settled: Settled } {
  const settled: Settled = {};
  return {
    kind: "publish",
    packet: {
      type: "publish",
      topic,
      payload: new Uint8Array(),
      qos,
      retain: false,
      dup: false,
    },
    alias: 0,
    stage: 0,
    resolve: (r) => settled.result = r,
    reject: (e) => settled.error = e,
    settled,
  };
}

Deno.test("ClientState.takeSendable() keeps at most receiveMaximum QoS 1/2 publishes in flight v5:[MQTT-3.3.4-7] v5:[MQTT-4.9.0-1] v5:[MQTT-4.9.0-2]", () => {
  const s = new ClientState();
  s.receiveMaximum = 2;
  const es = [entry(1), entry(2), entry(0), entry(1)];
  for (const e of es) assert.ok(s.enqueue(e));
  const out: unknown[] = [];
  s.takeSendable(out as never);
  // The third QoS > 0 publish waits for a slot; the QoS 0 before it goes.
  assert.deepEqual(out, [es[0], es[1], es[2]]);
  assert.equal(s.publishesInFlight, 2);
  assert.equal(s.queued, 1);
  assert.equal(es[2]!.packet.packetId, undefined); // QoS 0 never gets an id
  // A PUBACK frees a slot.
  assert.equal(
    s.handleAck({ type: "puback", packetId: es[0]!.packet.packetId! }),
    undefined,
  );
  assert.deepEqual(es[0]!.settled.result, { reasonCode: 0 });
  out.length = 0;
  s.takeSendable(out as never);
  assert.deepEqual(out, [es[3]]);
});

Deno.test("ClientState.takeSendable() holds only publishes at the Receive Maximum: a SUBSCRIBE behind them goes out [MQTT-3.3.4-8]", () => {
  const s = new ClientState();
  s.receiveMaximum = 1;
  const subscribe = (filter: string): SubscribeEntry => ({
    kind: "subscribe",
    packet: {
      type: "subscribe",
      packetId: 0,
      subscriptions: [{ filter, qos: 0 }],
    },
    stage: 0,
    resolve() {},
    reject() {},
  });
  const entries: Entry[] = [
    entry(1),
    entry(1),
    subscribe("a"),
    entry(0),
    subscribe("b"),
  ];
  for (const e of entries) s.enqueue(e);
  const out: Entry[] = [];
  s.takeSendable(out);
  // The first publish, then both SUBSCRIBEs; the second publish (and the
  // QoS 0 one behind it, in order) wait for quota.
  assert.deepEqual(out, [entries[0], entries[2], entries[4]]);
  assert.equal(s.queued, 2);
  s.handleAck({ type: "puback", packetId: entries[0]!.packet.packetId! });
  const more: Entry[] = [];
  s.takeSendable(more);
  assert.deepEqual(more, [entries[1], entries[3]]);
});

Deno.test("ClientState assigns unused packet ids and wraps at 65535 v3:[MQTT-2.3.1-1] v3:[MQTT-2.3.1-2] v5:[MQTT-2.2.1-3]", () => {
  const s = new ClientState();
  const a = entry(1);
  s.track(a);
  assert.equal(a.packet.packetId, 1);
  const ids = new Set<number>();
  for (let i = 0; i < 65534; i++) {
    const e = entry(1);
    s.track(e);
    ids.add(e.packet.packetId!);
  }
  assert.equal(ids.size, 65534);
  assert.ok(!ids.has(1) && !ids.has(0));
  assert.equal(s.canSendNow(1), false); // every id in use
  s.handleAck({ type: "puback", packetId: 300 });
  const b = entry(1);
  s.track(b);
  assert.equal(b.packet.packetId, 300);
});

Deno.test("ClientState.handleAck() runs the QoS 2 exchange: PUBREC -> PUBREL, PUBCOMP completes v3:[MQTT-4.3.3-1] v5:[MQTT-4.3.3-3] v5:[MQTT-4.3.3-4] v5:[MQTT-4.3.3-5]", () => {
  const s = new ClientState();
  const e = entry(2);
  s.track(e);
  const id = e.packet.packetId!;
  assert.deepEqual(s.handleAck({ type: "pubrec", packetId: id }), {
    type: "pubrel",
    packetId: id,
  });
  assert.equal(e.stage, 2);
  assert.equal(e.settled.result, undefined);
  assert.equal(s.handleAck({ type: "pubcomp", packetId: id }), undefined);
  assert.deepEqual(e.settled.result, { reasonCode: 0 });
  assert.equal(s.inFlight, 0);
  // A PUBREC for an unknown id gets PUBREL 0x92.
  assert.deepEqual(s.handleAck({ type: "pubrec", packetId: 99 }), {
    type: "pubrel",
    packetId: 99,
    reasonCode: ReasonCode.PacketIdentifierNotFound,
  });
});

Deno.test("ClientState.handleAck() rejects a publish refused with a v5 reason code >= 0x80 [MQTT-4.4.0-2]", () => {
  const s = new ClientState();
  const q1 = entry(1, "a/b");
  const q2 = entry(2, "a/c");
  s.track(q1);
  s.track(q2);
  s.handleAck({
    type: "puback",
    packetId: q1.packet.packetId!,
    reasonCode: ReasonCode.NotAuthorized,
    properties: { reasonString: "acl" },
  });
  assert.ok(q1.settled.error instanceof MqttError);
  assert.equal(
    (q1.settled.error as MqttError).reasonCode,
    ReasonCode.NotAuthorized,
  );
  assert.match(q1.settled.error.message, /a\/b.*NotAuthorized.*acl/);
  // PUBREC >= 0x80 ends the exchange without PUBREL.
  assert.equal(
    s.handleAck({
      type: "pubrec",
      packetId: q2.packet.packetId!,
      reasonCode: ReasonCode.QuotaExceeded,
    }),
    undefined,
  );
  assert.equal(
    (q2.settled.error as MqttError).reasonCode,
    ReasonCode.QuotaExceeded,
  );
  assert.equal(s.publishesInFlight, 0);
  // 0x10 No matching subscribers is a success.
  const q3 = entry(1);
  s.track(q3);
  s.handleAck({
    type: "puback",
    packetId: q3.packet.packetId!,
    reasonCode: ReasonCode.NoMatchingSubscribers,
  });
  assert.deepEqual(q3.settled.result, {
    reasonCode: ReasonCode.NoMatchingSubscribers,
  });
});

Deno.test("ClientState incoming QoS 2: a duplicate is not delivered again until PUBREL v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-10] v5:[MQTT-4.3.3-11]", () => {
  const s = new ClientState();
  assert.equal(s.receiveQos2(5), true);
  assert.equal(s.receiveQos2(5), false);
  assert.deepEqual(s.handleAck({ type: "pubrel", packetId: 5 }), {
    type: "pubcomp",
    packetId: 5,
  });
  assert.equal(s.receiveQos2(5), true);
  s.handleAck({ type: "pubrel", packetId: 5 });
  // An unknown PUBREL still gets a PUBCOMP (0x92 in v5).
  assert.deepEqual(s.handleAck({ type: "pubrel", packetId: 6 }), {
    type: "pubcomp",
    packetId: 6,
    reasonCode: ReasonCode.PacketIdentifierNotFound,
  });
});

Deno.test("ClientState.receivePublish() says what to deliver and which PUBACK/PUBREC to send v3:[MQTT-4.3.2-2] v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.2-4] v5:[MQTT-4.3.3-8]", () => {
  const s = new ClientState();
  const publish = (qos: QoS, packetId?: number) => ({
    type: "publish" as const,
    topic: "t",
    payload: new Uint8Array(),
    qos,
    retain: false,
    dup: false,
    ...(packetId !== undefined ? { packetId } : {}),
  });
  const take = (qos: QoS, packetId?: number) => {
    const r = s.receivePublish(publish(qos, packetId));
    // Copied at once: the result is reused by the next call.
    return { deliver: r.deliver, ack: r.ack && { ...r.ack } };
  };
  assert.deepEqual(take(0), { deliver: true, ack: undefined });
  assert.deepEqual(take(1, 3), {
    deliver: true,
    ack: { type: "puback", packetId: 3 },
  });
  // A QoS 1 resend is delivered again (at least once).
  assert.deepEqual(take(1, 3), {
    deliver: true,
    ack: { type: "puback", packetId: 3 },
  });
  assert.deepEqual(take(2, 4), {
    deliver: true,
    ack: { type: "pubrec", packetId: 4 },
  });
  // Not yet released: acknowledged again, not delivered twice.
  assert.deepEqual(take(2, 4), {
    deliver: false,
    ack: { type: "pubrec", packetId: 4 },
  });
  assert.deepEqual(s.handleAck({ type: "pubrel", packetId: 4 }), {
    type: "pubcomp",
    packetId: 4,
  });
  // Released: the id may carry a new message.
  assert.deepEqual(take(2, 4), {
    deliver: true,
    ack: { type: "pubrec", packetId: 4 },
  });
});

Deno.test("ClientState.onConnack() resends in order: PUBLISH with DUP and PUBREL with a session v3:[MQTT-4.4.0-1] v3:[MQTT-4.6.0-1] v5:[MQTT-4.4.0-1] v5:[MQTT-4.6.0-1] v5:[MQTT-4.3.3-6]", () => {
  const s = new ClientState();
  const a = entry(1);
  const b = entry(2);
  const c = entry(2);
  const sub: SubscribeEntry = {
    kind: "subscribe",
    packet: {
      type: "subscribe",
      packetId: 0,
      subscriptions: [{ filter: "x", qos: 1 }],
    },
    stage: 0,
    resolve() {},
    reject() {},
  };
  for (const e of [a, b, c, sub]) s.track(e);
  s.handleAck({ type: "pubrec", packetId: b.packet.packetId! });
  s.receiveQos2(9);
  const resend = s.onConnack(true, 10);
  assert.deepEqual(resend.map((r) => r.packet.type), [
    "publish",
    "pubrel",
    "publish",
    "subscribe",
  ]);
  assert.equal(a.packet.dup, true);
  assert.equal(c.packet.dup, true);
  assert.equal(s.receiveMaximum, 10);
  assert.equal(s.incomingQos2.has(9), true);
});

Deno.test("ClientState.onConnack() without a session: PUBLISH as new, PUBREC'd QoS 2 complete, incoming QoS 2 forgotten v3:[MQTT-3.1.2-6] v5:[MQTT-3.2.2-5] v5:[MQTT-3.1.2-4]", () => {
  const s = new ClientState();
  const a = entry(1);
  const b = entry(2);
  s.track(a);
  s.track(b);
  s.handleAck({ type: "pubrec", packetId: b.packet.packetId! });
  s.receiveQos2(9);
  const resend = s.onConnack(false, 65535);
  assert.deepEqual(resend.map((r) => r.packet), [a.packet]);
  assert.equal(a.packet.dup, false);
  assert.deepEqual(b.settled.result, { reasonCode: 0 });
  assert.equal(s.publishesInFlight, 1);
  assert.equal(s.incomingQos2.size, 0);
});

Deno.test("ClientState.enqueue() refuses past maxQueued; drain() and dropQueuedQos0() hand entries back", () => {
  const s = new ClientState({ maxQueued: 3 });
  const es = [entry(0), entry(1), entry(0)];
  for (const e of es) assert.ok(s.enqueue(e));
  assert.equal(s.enqueue(entry(1)), false);
  assert.deepEqual(s.dropQueuedQos0(), [es[0], es[2]]);
  assert.equal(s.queued, 1);
  const t = entry(2);
  s.track(t);
  assert.deepEqual(new Set(s.drain()), new Set([es[1], t]));
  assert.equal(s.queued + s.inFlight + s.publishesInFlight, 0);
});

Deno.test("TopicAliasSender assigns, reuses and recycles aliases (automatic mode) v5:[MQTT-3.2.2-17] v5:[MQTT-3.3.2-9] v5:[MQTT-3.3.2-8]", () => {
  const s = new TopicAliasSender(true);
  s.reset(2);
  assert.deepEqual(s.resolve("a", 0), { topic: "a", alias: 1 });
  assert.deepEqual(s.resolve("a", 0), { topic: "", alias: 1 });
  assert.deepEqual(s.resolve("b", 0), { topic: "b", alias: 2 });
  assert.deepEqual(s.resolve("a", 0), { topic: "", alias: 1 }); // a is now most recent
  assert.deepEqual(s.resolve("c", 0), { topic: "c", alias: 2 }); // b was least recent
  assert.deepEqual(s.resolve("b", 0), { topic: "b", alias: 1 });
  s.reset(2); // new connection: every topic is sent in full again
  assert.deepEqual(s.resolve("b", 0), { topic: "b", alias: 1 });
  s.reset(0); // the broker takes no aliases
  assert.deepEqual(s.resolve("b", 0), { topic: "b", alias: 0 });
});

Deno.test("TopicAliasSender manual aliases: set once, then empty topic; bounded by the broker's maximum v5:[MQTT-3.2.2-17] v5:[MQTT-3.3.2-9]", () => {
  const s = new TopicAliasSender(false);
  s.reset(3);
  assert.deepEqual(s.resolve("x", 0), { topic: "x", alias: 0 });
  assert.deepEqual(s.resolve("x", 2), { topic: "x", alias: 2 });
  assert.deepEqual(s.resolve("x", 2), { topic: "", alias: 2 });
  assert.equal(s.topicOf(2), "x");
  assert.deepEqual(s.resolve("y", 2), { topic: "y", alias: 2 }); // remapped
  assert.throws(
    () => s.resolve("z", 4),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.TopicAliasInvalid,
  );
});

Deno.test("TopicAliasReceiver resolves aliases and rejects unknown or too large ones [MQTT-3.3.2-10]", () => {
  const r = new TopicAliasReceiver(4);
  assert.equal(r.resolve("plain", 0), "plain");
  assert.equal(r.resolve("a/b", 4), "a/b");
  assert.equal(r.resolve("", 4), "a/b");
  assert.equal(r.resolve("c", 4), "c");
  assert.equal(r.resolve("", 4), "c");
  const invalid = (e: unknown) =>
    e instanceof MqttError && e.reasonCode === ReasonCode.TopicAliasInvalid;
  assert.throws(() => r.resolve("", 1), invalid);
  assert.throws(() => r.resolve("x", 5), invalid);
  r.reset();
  assert.throws(() => r.resolve("", 4), invalid);
});

Deno.test("Backoff.next() grows by the multiplier up to maxDelay; reset() starts over", () => {
  const b = new Backoff({
    initialDelay: 100,
    maxDelay: 1000,
    backoffMultiplier: 3,
    jitter: 0,
  });
  assert.deepEqual([b.next(), b.next(), b.next(), b.next()], [
    100,
    300,
    900,
    1000,
  ]);
  assert.equal(b.attempt, 4);
  b.reset();
  assert.equal(b.next(), 100);
});

Deno.test("Backoff.next() spreads delays by jitter and counts maxAttempts", () => {
  const lo = new Backoff(
    { initialDelay: 1000, jitter: 0.5, maxAttempts: 2 },
    () => 0,
  );
  const hi = new Backoff({ initialDelay: 1000, jitter: 0.5 }, () => 0.999999);
  assert.equal(lo.next(), 500);
  assert.equal(hi.next(), 1500);
  assert.equal(lo.exhausted, false);
  lo.next();
  assert.equal(lo.exhausted, true);
  assert.throws(() => new Backoff({ jitter: 2 }), RangeError);
  assert.throws(
    () => new Backoff({ initialDelay: 10, maxDelay: 5 }),
    RangeError,
  );
});

Deno.test("Message exposes payloadText, json() and v5 properties", () => {
  const m = new Message({
    type: "publish",
    topic: "a/b",
    payload: new TextEncoder().encode('{"n":1}'),
    qos: 1,
    retain: true,
    dup: true,
    packetId: 3,
    properties: { responseTopic: "r", userProperties: [["k", "v"]] },
  });
  assert.equal(m.payloadText, '{"n":1}');
  assert.deepEqual(m.json(), { n: 1 });
  assert.deepEqual([m.topic, m.qos, m.retain, m.dup], ["a/b", 1, true, true]);
  assert.equal(m.responseTopic, "r");
  assert.deepEqual(m.userProperties, [["k", "v"]]);
  const bad = new Message({
    type: "publish",
    topic: "t",
    payload: new Uint8Array([1]),
    qos: 0,
    retain: false,
    dup: false,
  });
  assert.throws(() => bad.json(), SyntaxError);
  assert.deepEqual(bad.properties, {});
});
