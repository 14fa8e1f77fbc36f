/**
 * v5 Message Expiry Interval: expired messages are never delivered (queued
 * for an offline session, queued behind a full receive window, retained),
 * and what is forwarded carries the remaining interval [MQTT-3.3.2-5]
 * [MQTT-3.3.2-6]. Time is moved forward by skewing `Date.now()` (the broker
 * reads the clock only through it), so no test sleeps.
 */

import assert from "node:assert/strict";
import type { Properties, PublishPacket, QoS } from "../codec/packet.ts";
import {
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne as subscribe,
  text,
  withTimeout,
} from "./_helpers.ts";

const realNow = Date.now;
let skew = 0;

/** Runs `fn` with a clock that `advance()` moves forward. */
async function withClock(fn: () => Promise<void>): Promise<void> {
  skew = 0;
  Date.now = () => realNow() + skew;
  try {
    await fn();
  } finally {
    Date.now = realNow;
  }
}

function advance(seconds: number): void {
  skew += seconds * 1000;
}

function pub(
  topic: string,
  payload: string,
  qos: QoS,
  properties?: Properties,
  retain = false,
): PublishPacket {
  const packetId = 100 + payload.length;
  return publishPacket(topic, payload, { qos, retain, packetId, properties });
}

Deno.test("Broker forwards the Message Expiry Interval to online subscribers [MQTT-3.3.2-6]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(sub.client, "e/#", 1);
  const v4 = await RawClient.connect(port, { protocolVersion: 4 });
  await subscribe(v4.client, "e/#", 1);
  const p = await RawClient.connect(port, { protocolVersion: 5 });
  await p.client.send(pub("e/1", "x", 1, { messageExpiryInterval: 30 }));
  await p.client.expect("puback");
  const m = await sub.client.expectPublish("e/1");
  assert.equal(m.properties?.messageExpiryInterval, 30);
  // A 3.1.1 subscriber gets the message, without properties.
  const m4 = await v4.client.expectPublish("e/1");
  assert.equal(m4.properties, undefined);
  for (const c of [sub, v4, p]) await c.client.disconnect();
  await broker.close();
});

Deno.test("Broker drops queued messages of an offline session once expired, forwards the remaining interval of the others", async () => {
  await withClock(async () => {
    const broker = await startBroker();
    const port = broker.addr.port;
    const fields = {
      protocolVersion: 5 as const,
      clientId: "exp-off",
      cleanStart: false,
      properties: { sessionExpiryInterval: 600 },
    };
    const s = await RawClient.connect(port, fields);
    await subscribe(s.client, "q/#", 1);
    await s.client.disconnect();
    const p = await RawClient.connect(port, { protocolVersion: 5 });
    await p.client.send(
      pub("q/short", "a", 1, { messageExpiryInterval: 5 }),
      pub("q/long", "bb", 1, { messageExpiryInterval: 100 }),
      pub("q/none", "ccc", 1),
    );
    for (let i = 0; i < 3; i++) await p.client.expect("puback");
    advance(6);
    const back = await RawClient.connect(port, fields);
    assert.equal(back.connack.sessionPresent, true);
    const first = await back.client.expectPublish();
    assert.equal(first.topic, "q/long");
    // 100 s less the 6 s spent queued (rounded up).
    assert.equal(first.properties?.messageExpiryInterval, 94);
    const second = await back.client.expectPublish();
    assert.equal(second.topic, "q/none");
    assert.equal(second.properties?.messageExpiryInterval, undefined);
    await back.client.expectNothing((x) => x.type === "publish");
    await back.client.disconnect();
    await p.client.disconnect();
    await broker.close();
  });
});

Deno.test("Broker drops a message that expired while queued behind a full receive window", async () => {
  await withClock(async () => {
    const broker = await startBroker();
    const port = broker.addr.port;
    const sub = await RawClient.connect(port, {
      protocolVersion: 5,
      properties: { receiveMaximum: 1 },
    });
    await subscribe(sub.client, "w/#", 1);
    broker.publish("w/1", "first", { qos: 1 });
    const first = await sub.client.expectPublish("w/1");
    // The window (1) is full: these wait in the session queue.
    const p = await RawClient.connect(port, { protocolVersion: 5 });
    await p.client.send(pub("w/2", "b", 1, { messageExpiryInterval: 2 }));
    await p.client.send(pub("w/3", "cc", 1, { messageExpiryInterval: 20 }));
    await p.client.expect("puback");
    await p.client.expect("puback");
    await sub.client.expectNothing((x) => x.type === "publish", 50);
    advance(3);
    await sub.client.send({ type: "puback", packetId: first.packetId! });
    const next = await sub.client.expectPublish();
    assert.equal(next.topic, "w/3");
    assert.equal(next.properties?.messageExpiryInterval, 17);
    await sub.client.send({ type: "puback", packetId: next.packetId! });
    await sub.client.expectNothing((x) => x.type === "publish");
    await sub.client.disconnect();
    await p.client.disconnect();
    await broker.close();
  });
});

Deno.test("Broker never sends an expired retained message; a live one carries the remaining interval", async () => {
  await withClock(async () => {
    const broker = await startBroker();
    const port = broker.addr.port;
    const p = await RawClient.connect(port, { protocolVersion: 5 });
    await p.client.send(
      pub("r/short", "s", 1, { messageExpiryInterval: 2 }, true),
      pub("r/long", "ll", 1, { messageExpiryInterval: 10 }, true),
    );
    await p.client.expect("puback");
    await p.client.expect("puback");
    advance(4);
    const sub = await RawClient.connect(port, { protocolVersion: 5 });
    await subscribe(sub.client, "r/#", 1);
    const m = await sub.client.expectPublish();
    assert.equal(m.topic, "r/long");
    assert.equal(m.retain, true);
    assert.equal(text(m.payload), "ll");
    assert.equal(m.properties?.messageExpiryInterval, 6);
    await sub.client.expectNothing((x) => x.type === "publish");
    await sub.client.disconnect();
    await p.client.disconnect();
    await broker.close();
  });
});

Deno.test("Broker frees expired retained messages (and their stored copy)", async () => {
  await withClock(async () => {
    const broker = await startBroker();
    const p = await RawClient.connect(broker.addr.port, { protocolVersion: 5 });
    await p.client.send(
      pub("fr/a", "a", 1, { messageExpiryInterval: 2 }, true),
      pub("fr/b", "b", 1, undefined, true),
    );
    await p.client.expect("puback");
    await p.client.expect("puback");
    assert.equal(broker.retainedCount, 2);
    advance(10);
    await withTimeout(
      (async () => {
        while (broker.retainedCount !== 1) {
          await new Promise((r) => setTimeout(r, 20));
        }
      })(),
      2000,
      "the sweep to free the expired retained message",
    );
    await p.client.disconnect();
    await broker.close();
  });
});

Deno.test("Broker as QoS 2 sender: a message already sent does not expire, it is sent again on resume [MQTT-4.3.3-7]", async () => {
  await withClock(async () => {
    const broker = await startBroker();
    const port = broker.addr.port;
    const fields = {
      protocolVersion: 5 as const,
      clientId: "exp-q2",
      cleanStart: false,
      properties: { sessionExpiryInterval: 600 },
    };
    const s = await RawClient.connect(port, fields);
    await subscribe(s.client, "e/#", 2);
    const p = await RawClient.connect(port, { protocolVersion: 5 });
    await p.client.send(pub("e/t", "m", 2, { messageExpiryInterval: 5 }));
    const rec = await p.client.expect("pubrec");
    await p.client.send({ type: "pubrel", packetId: rec.packetId });
    await p.client.expect("pubcomp");
    const first = await s.client.expectPublish("e/t");
    assert.equal(first.qos, 2);
    // No PUBREC: the client goes away while the message is in flight.
    await s.client.close();
    advance(60);
    const back = await RawClient.connect(port, fields);
    assert.equal(back.connack.sessionPresent, true);
    const again = await back.client.expectPublish("e/t");
    assert.equal(again.dup, true);
    assert.equal(again.packetId, first.packetId);
    await back.client.send({ type: "pubrec", packetId: again.packetId! });
    await back.client.expect("pubrel");
    await back.client.send({ type: "pubcomp", packetId: again.packetId! });
    await back.client.disconnect();
    await p.client.disconnect();
    await broker.close();
  });
});

Deno.test("Broker as QoS 2 receiver: PUBREL of an expired message still gets PUBCOMP [MQTT-4.3.3-13]", async () => {
  await withClock(async () => {
    const broker = await startBroker();
    const port = broker.addr.port;
    const p = await RawClient.connect(port, { protocolVersion: 5 });
    await p.client.send(pub("e/q2", "x", 2, { messageExpiryInterval: 1 }));
    const rec = await p.client.expect("pubrec");
    advance(30);
    await p.client.send({ type: "pubrel", packetId: rec.packetId });
    const comp = await p.client.expect("pubcomp");
    assert.equal(comp.packetId, rec.packetId);
    assert.equal(comp.reasonCode ?? 0, 0);
    await p.client.disconnect();
    await broker.close();
  });
});
