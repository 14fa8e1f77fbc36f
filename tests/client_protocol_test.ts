/**
 * Client protocol behaviour that real brokers do not show on demand, against
 * a scripted fake broker: resend after reconnect, duplicate QoS 2, incoming
 * topic aliases, keep alive timeout, enhanced authentication, server
 * DISCONNECT, giving up, queue limits.
 */

import assert from "node:assert/strict";
import {
  Client,
  ClientOfflineError,
  type DisconnectEvent,
  type Message,
} from "../client/mod.ts";
import { MqttError, QuotaExceededError } from "../codec/errors.ts";
import type { Packet } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  counter,
  FakeBroker,
  type FakeConnection,
  within,
} from "./client_helpers.ts";

const enc = new TextEncoder();
const FAST = { initialDelay: 10, maxDelay: 50, jitter: 0 };

async function accept(
  c: FakeConnection,
  sessionPresent = false,
  properties: Record<string, unknown> = {},
): Promise<void> {
  await c.next("connect");
  await c.send({
    type: "connack",
    sessionPresent,
    reasonCode: 0,
    properties,
  } as Packet);
}

/** A broker that accepts every connection and closes the first one. */
function closesFirstConnection(): FakeBroker {
  let first = true;
  return new FakeBroker(async (c) => {
    await accept(c);
    if (first) {
      first = false;
      c.close();
    }
  });
}

function publish(
  topic: string,
  payload: string,
  extra: Partial<Extract<Packet, { type: "publish" }>> = {},
): Packet {
  return {
    type: "publish",
    topic,
    payload: enc.encode(payload),
    qos: 0,
    retain: false,
    dup: false,
    ...extra,
  };
}

Deno.test("Client resends unacknowledged PUBLISH with DUP and PUBREL when the session is present v5:[MQTT-4.4.0-1]", async () => {
  const seen = Promise.withResolvers<[Packet, Packet]>();
  await using broker = new FakeBroker(async (c, i) => {
    if (i === 0) {
      await accept(c);
      await c.next("publish"); // QoS 1, never acknowledged
      const q2 = await c.next("publish"); // QoS 2: PUBREC, then drop
      await c.send({ type: "pubrec", packetId: q2.packetId! });
      await c.next("pubrel");
      c.close();
      return;
    }
    await accept(c, true);
    const again = await c.next("publish");
    const rel = await c.next("pubrel");
    seen.resolve([again, rel]);
    await c.send({ type: "puback", packetId: again.packetId! });
    await c.send({ type: "pubcomp", packetId: rel.packetId });
  });
  const client = new Client({
    port: broker.port,
    reconnect: FAST,
    keepAlive: 0,
  });
  const reconnected = counter(2);
  client.on("connect", () => reconnected.next());
  await client.connect();
  const p1 = client.publish("a", "one", 1);
  const p2 = client.publish("b", "two", 2);
  const [again, rel] = await within(seen.promise, 3000, "resent packets");
  assert.equal(again.type, "publish");
  if (again.type === "publish") {
    assert.equal(again.topic, "a");
    assert.equal(again.dup, true); // v5:[MQTT-3.3.1-1]
    assert.equal(again.qos, 1);
  }
  assert.equal(rel.type, "pubrel");
  assert.deepEqual(await within(Promise.all([p1, p2]), 3000, "acks"), [
    { reasonCode: 0 },
    { reasonCode: 0 },
  ]);
  await client.disconnect();
});

Deno.test("Client sends in-flight PUBLISH again as new when the session is gone, and resubscribes v5:[MQTT-3.2.2-5]", async () => {
  const seen = Promise.withResolvers<[Packet, Packet]>();
  await using broker = new FakeBroker(async (c, i) => {
    if (i === 0) {
      await accept(c);
      const sub = await c.next("subscribe");
      await c.send({
        type: "suback",
        packetId: sub.packetId,
        reasonCodes: [1],
      });
      await c.next("publish");
      const q2 = await c.next("publish");
      await c.send({ type: "pubrec", packetId: q2.packetId! });
      await c.next("pubrel");
      c.close();
      return;
    }
    await accept(c, false);
    const sub = await c.next("subscribe");
    const again = await c.next("publish");
    seen.resolve([sub, again]);
    await c.send({ type: "suback", packetId: sub.packetId, reasonCodes: [1] });
    await c.send({ type: "puback", packetId: again.packetId! });
  });
  const client = new Client({
    port: broker.port,
    reconnect: FAST,
    keepAlive: 0,
  });
  await client.connect();
  await client.subscribe("x/#", 1);
  const p1 = client.publish("a", "one", 1);
  // Its PUBREC came: the broker had it; complete without a session.
  const p2 = client.publish("b", "two", 2);
  const [sub, again] = await within(seen.promise, 3000, "resubscribe");
  assert.equal(sub.type, "subscribe");
  if (sub.type === "subscribe") {
    assert.deepEqual(sub.subscriptions.map((s) => [s.filter, s.qos]), [[
      "x/#",
      1,
    ]]);
  }
  assert.equal(again.type === "publish" && again.dup, false);
  await within(Promise.all([p1, p2]), 3000, "both settle");
  await client.disconnect();
});

Deno.test("Client resubscribes once after a reconnect without a session: no packet id reused while in flight [MQTT-2.2.1-3]", async () => {
  const checked = Promise.withResolvers<Packet[]>();
  await using broker = new FakeBroker(async (c, i) => {
    if (i === 0) {
      await accept(c);
      const sub = await c.next("subscribe");
      await c.send({
        type: "suback",
        packetId: sub.packetId,
        reasonCodes: [1, 1],
      });
      c.close();
      return;
    }
    await accept(c, false);
    // The client publishes "mark" once reconnected: everything it sent
    // after the CONNACK before that is in c.packets by then.
    for (;;) {
      const p = await c.next("publish");
      if (p.topic === "mark") break;
    }
    const subs = c.packets.filter((p) => p.type === "subscribe");
    checked.resolve(subs);
    for (const sub of subs) {
      if (sub.type !== "subscribe") continue;
      await c.send({
        type: "suback",
        packetId: sub.packetId,
        reasonCodes: [1, 1],
      });
    }
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    reconnect: FAST,
    keepAlive: 0,
  });
  let connects = 0;
  client.on("connect", () => {
    if (++connects === 2) client.publish("mark", "");
  });
  await client.connect();
  assert.deepEqual(await client.subscribe(["x/#", "y/#"], 1), [1, 1]);
  const subs = await within(checked.promise, 3000, "resubscribe");
  // A second SUBSCRIBE with the same packet id while the first is in
  // flight breaks [MQTT-2.2.1-3]; one SUBSCRIBE restores both filters.
  const ids = subs.map((p) => p.type === "subscribe" && p.packetId);
  assert.equal(new Set(ids).size, ids.length, `packet ids reused: ${ids}`);
  assert.equal(subs.length, 1);
  const sub = subs[0]!;
  assert.ok(sub.type === "subscribe");
  assert.deepEqual(sub.subscriptions.map((s) => [s.filter, s.qos]), [
    ["x/#", 1],
    ["y/#", 1],
  ]);
  await client.disconnect();
});

Deno.test("Client delivers a QoS 2 message once when the broker sends it twice v5:[MQTT-4.3.3-10]", async () => {
  const done = Promise.withResolvers<void>();
  await using broker = new FakeBroker(async (c) => {
    await accept(c);
    const m = publish("q2", "once", { qos: 2, packetId: 7 });
    await c.send(m);
    await c.next("pubrec");
    await c.send({ ...m, dup: true } as Packet); // PUBREC lost, say
    await c.next("pubrec");
    await c.send({ type: "pubrel", packetId: 7 });
    const comp = await c.next("pubcomp");
    assert.equal(comp.reasonCode ?? 0, 0);
    // The id is free again: a new message with it is delivered.
    await c.send(publish("q2", "again", { qos: 2, packetId: 7 }));
    await c.next("pubrec");
    await c.send({ type: "pubrel", packetId: 7 });
    await c.next("pubcomp");
    done.resolve();
  });
  const client = new Client({
    port: broker.port,
    reconnect: false,
    keepAlive: 0,
  });
  const got: string[] = [];
  client.onMessage((m) => {
    got.push(m.payloadText);
  });
  await client.connect();
  await within(done.promise, 3000, "QoS 2 exchange");
  assert.deepEqual(got, ["once", "again"]);
  await client.disconnect();
});

Deno.test("Client resolves the broker's topic aliases before delivery v5:[MQTT-3.3.2-10]", async () => {
  const done = Promise.withResolvers<void>();
  await using broker = new FakeBroker(async (c) => {
    const connect = await c.next("connect");
    assert.equal(connect.properties?.topicAliasMaximum, 5);
    await c.send({ type: "connack", sessionPresent: false, reasonCode: 0 });
    await c.send(
      publish("long/topic/name", "1", { properties: { topicAlias: 3 } }),
    );
    await c.send(publish("", "2", { properties: { topicAlias: 3 } }));
    await c.send(publish("", "3", { properties: { topicAlias: 4 } })); // never set
    const d = await c.next("disconnect");
    assert.equal(d.reasonCode, ReasonCode.TopicAliasInvalid);
    done.resolve();
  });
  const client = new Client({
    port: broker.port,
    reconnect: false,
    topicAliasMaximum: 5,
  });
  const got: Message[] = [];
  client.onMessage((m) => {
    got.push(m);
  });
  const gone = Promise.withResolvers<DisconnectEvent>();
  client.on("disconnect", (e) => gone.resolve(e));
  await client.connect();
  await within(done.promise, 3000, "DISCONNECT 0x94");
  const e = await within(gone.promise, 3000, "disconnect event");
  assert.equal(e.reasonCode, ReasonCode.TopicAliasInvalid);
  assert.deepEqual(got.map((m) => [m.topic, m.payloadText]), [
    ["long/topic/name", "1"],
    ["long/topic/name", "2"],
  ]);
  assert.equal(got[1]!.properties.topicAlias, undefined);
  await client.close();
});

Deno.test("Client closes and reconnects when no PINGRESP comes (keep alive)", async () => {
  await using broker = new FakeBroker(async (c, i) => {
    await accept(c);
    if (i === 0) {
      await c.next("pingreq", 5000); // and never answer
      await c.next("disconnect", 5000).catch(() => {});
    } else {
      const ping = await c.next("pingreq", 5000).catch(() => undefined);
      if (ping) await c.send({ type: "pingresp" });
      await c.next("disconnect", 5000).catch(() => {});
    }
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 1,
    pingTimeout: 300,
    reconnect: FAST,
  });
  const lost = Promise.withResolvers<DisconnectEvent>();
  const back = counter(2);
  client.on("disconnect", (e) => lost.resolve(e));
  client.on("connect", () => back.next());
  const reconnects: number[] = [];
  client.on("reconnect", (e) => reconnects.push(e.attempt));
  await client.connect();
  const e = await within(lost.promise, 4000, "keep alive timeout");
  assert.equal(e.reasonCode, ReasonCode.KeepAliveTimeout);
  assert.equal(e.willReconnect, true);
  await within(back.promise, 3000, "reconnect");
  assert.deepEqual(reconnects, [1]);
  await client.disconnect();
});

Deno.test("Client answers AUTH with the auth callback (v5 enhanced authentication), sending nothing else before its CONNACK [MQTT-3.1.2-30] [MQTT-4.12.0-3] [MQTT-4.12.0-5]", async () => {
  await using broker = new FakeBroker(async (c) => {
    const connect = await c.next("connect");
    assert.equal(connect.properties?.authenticationMethod, "TOY");
    assert.deepEqual(
      connect.properties?.authenticationData,
      enc.encode("hello"),
    );
    await c.send({
      type: "auth",
      reasonCode: ReasonCode.ContinueAuthentication,
      properties: {
        authenticationMethod: "TOY",
        authenticationData: enc.encode("challenge"),
      },
    });
    const auth = await c.next("auth");
    assert.equal(auth.reasonCode, ReasonCode.ContinueAuthentication);
    assert.equal(auth.properties?.authenticationMethod, "TOY");
    // The publish asked for meanwhile waits for the CONNACK.
    assert.deepEqual(c.packets.map((p) => p.type), ["connect", "auth"]);
    const ok = new TextDecoder().decode(auth.properties?.authenticationData) ===
      "response:challenge";
    await c.send({
      type: "connack",
      sessionPresent: false,
      reasonCode: ok ? 0 : ReasonCode.NotAuthorized,
      properties: { authenticationMethod: "TOY" },
    });
    const early = await c.next("publish");
    assert.equal(early.topic, "early");
    await c.send({ type: "puback", packetId: early.packetId! });
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    reconnect: false,
    authenticationMethod: "TOY",
    authenticationData: enc.encode("hello"),
    auth: ({ method, data }) => {
      assert.equal(method, "TOY");
      return enc.encode("response:" + new TextDecoder().decode(data));
    },
  });
  const connecting = client.connect();
  const early = client.publish("early", "x", 1);
  const connack = await connecting;
  assert.equal(connack.reasonCode, 0);
  await early;
  await client.disconnect();
});

Deno.test("Client reports the broker's DISCONNECT reason and does not reconnect after 0x8E SessionTakenOver", async () => {
  await using broker = new FakeBroker(async (c) => {
    await accept(c);
    await c.send({
      type: "disconnect",
      reasonCode: ReasonCode.SessionTakenOver,
      properties: { reasonString: "another client" },
    });
    c.close();
  });
  const client = new Client({ port: broker.port, reconnect: FAST });
  const gone = Promise.withResolvers<DisconnectEvent>();
  const closed = Promise.withResolvers<void>();
  client.on("disconnect", (e) => gone.resolve(e));
  client.on("close", () => closed.resolve());
  await client.connect();
  const pending = client.publish("a", "x", 1); // rejected when the client closes
  const e = await within(gone.promise, 3000, "disconnect");
  assert.equal(e.initiator, "server");
  assert.equal(e.reasonCode, ReasonCode.SessionTakenOver);
  assert.equal(e.packet?.properties?.reasonString, "another client");
  assert.equal(e.willReconnect, false);
  await within(closed.promise, 3000, "close");
  await assert.rejects(pending, ClientOfflineError);
  await client.close();
});

Deno.test("Client gives up after reconnect.maxAttempts and rejects what is pending", async () => {
  const broker = closesFirstConnection();
  const client = new Client({
    port: broker.port,
    reconnect: { ...FAST, maxAttempts: 2 },
  });
  const attempts: number[][] = [];
  client.on("reconnect", (e) => attempts.push([e.attempt, e.delay]));
  const errors: Error[] = [];
  client.on("error", (e) => errors.push(e));
  const closed = Promise.withResolvers<string>();
  client.on("close", (e) => closed.resolve(e.reason));
  const offline = Promise.withResolvers<void>();
  client.on("offline", () => offline.resolve());
  await client.connect();
  await within(offline.promise, 3000, "offline");
  await broker.close(); // nothing listens any more
  const queued = client.publish("a", "x", 1);
  await within(closed.promise, 3000, "close");
  assert.deepEqual(attempts, [[1, 10], [2, 20]]); // backoff: 10 ms, then x2
  assert.ok(
    errors.every((e) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.ServerUnavailable
    ),
  );
  await assert.rejects(queued, ClientOfflineError);
  await client.close();
});

Deno.test("Client rejects publishes past maxQueued with 0x97 and QoS 0 offline per queueQoS0Offline", async () => {
  let release!: () => void;
  const hold = new Promise<void>((r) => release = r);
  await using broker = new FakeBroker(async (c, i) => {
    await accept(c, false, { receiveMaximum: 1 });
    if (i === 0) {
      await c.next("publish");
      await hold;
      c.close();
    } else {
      for (;;) {
        const p = await c.next("publish").catch(() => undefined);
        if (!p) return;
        if (p.type === "publish" && p.qos === 1) {
          await c.send({ type: "puback", packetId: p.packetId! });
        }
      }
    }
  });
  const client = new Client({
    port: broker.port,
    reconnect: FAST,
    maxQueued: 2,
    queueQoS0Offline: false,
    keepAlive: 0,
  });
  await client.connect();
  const inflight = client.publish("a", "1", 1); // in flight (receive maximum 1)
  const q1 = client.publish("a", "2", 1); // queued
  const q2 = client.publish("a", "3", 0); // queued (online)
  await assert.rejects(client.publish("a", "4", 1), (e: unknown) => {
    assert.ok(e instanceof QuotaExceededError);
    assert.equal(e.reasonCode, ReasonCode.QuotaExceeded);
    return true;
  });
  const offline = Promise.withResolvers<void>();
  client.on("offline", () => offline.resolve());
  release();
  await within(offline.promise, 3000, "offline");
  // The queued QoS 0 message is dropped on connection loss, new ones refused.
  await assert.rejects(q2, ClientOfflineError);
  await assert.rejects(client.publish("a", "5", 0), ClientOfflineError);
  await within(Promise.all([inflight, q1]), 3000, "QoS 1 after reconnect");
  await client.disconnect();
});

Deno.test("Client.connect() rejects with TimeoutError when no CONNACK comes", async () => {
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.next("disconnect", 2000).catch(() => {}); // never answer
  });
  const client = new Client({
    port: broker.port,
    connectTimeout: 100,
    reconnect: false,
  });
  await assert.rejects(
    client.connect(),
    (e: unknown) => e instanceof MqttError && e.name === "TimeoutError",
  );
  assert.equal(client.connected, false);
  await client.close();
});

Deno.test("Client.disconnect() while waiting to reconnect stops and rejects what is queued", async () => {
  const broker = closesFirstConnection();
  const client = new Client({
    port: broker.port,
    reconnect: { initialDelay: 60_000, maxDelay: 60_000 },
  });
  const offline = Promise.withResolvers<void>();
  client.on("offline", () => offline.resolve());
  await client.connect();
  await within(offline.promise, 3000, "offline");
  const queued = client.publish("a", "x", 1);
  assert.equal(client.queued, 1);
  await client.disconnect(); // clears the 60 s reconnect timer (sanitizers)
  await assert.rejects(queued, ClientOfflineError);
  await broker.close();
});

Deno.test("Client.subscribe() rejects a request the codec cannot encode and frees its packet id", async () => {
  await using broker = new FakeBroker(async (c) => {
    await accept(c);
    const sub = await c.next("subscribe");
    await c.send({ type: "suback", packetId: sub.packetId, reasonCodes: [0] });
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    reconnect: false,
    keepAlive: 0,
  });
  await client.connect();
  await assert.rejects(
    client.subscribe("a", { subscriptionIdentifier: 0 }),
    MqttError,
  );
  assert.equal(client.inFlight, 0);
  assert.deepEqual(await client.subscribe("a", 0), [0]);
  await client.disconnect();
});

Deno.test("Client.reauthenticate() runs a v5 re-authentication through the auth callback [MQTT-4.12.1-1] [MQTT-4.12.0-3] [MQTT-4.12.0-5] [MQTT-3.15.2-1]", async () => {
  await using broker = new FakeBroker(async (c) => {
    await accept(c);
    const start = await c.next("auth");
    assert.equal(start.reasonCode, ReasonCode.ReAuthenticate);
    assert.equal(start.properties?.authenticationMethod, "TOY");
    assert.deepEqual(
      start.properties?.authenticationData,
      enc.encode("token-2"),
    );
    await c.send({
      type: "auth",
      reasonCode: ReasonCode.ContinueAuthentication,
      properties: {
        authenticationMethod: "TOY",
        authenticationData: enc.encode("nonce"),
      },
    });
    const answer = await c.next("auth");
    assert.equal(answer.reasonCode, ReasonCode.ContinueAuthentication);
    assert.equal(answer.properties?.authenticationMethod, "TOY");
    assert.deepEqual(
      answer.properties?.authenticationData,
      enc.encode("signed:nonce"),
    );
    await c.send({
      type: "auth",
      reasonCode: 0,
      properties: { authenticationMethod: "TOY" },
    });
    // A second one is refused: the broker disconnects.
    await c.next("auth");
    await c.send({ type: "disconnect", reasonCode: ReasonCode.NotAuthorized });
    c.close();
  });
  const client = new Client({
    port: broker.port,
    reconnect: false,
    keepAlive: 0,
    authenticationMethod: "TOY",
    auth: ({ data }) => enc.encode("signed:" + new TextDecoder().decode(data)),
  });
  await client.connect();
  const done = await client.reauthenticate(enc.encode("token-2"));
  assert.equal(done.reasonCode, 0);
  await assert.rejects(
    client.reauthenticate(),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.NotAuthorized,
  );
  await client.close();
});
