/**
 * What one client may hold (issue 19, finding 10): `maxQueuedBytes` bounds
 * a session queue by bytes as `maxQueuedMessages` does by count (same drop
 * policy), and `maxSubscriptionsPerClient` refuses subscriptions past it
 * with SUBACK 0x97 (3.1.1 0x80).
 */

import assert from "node:assert/strict";
import { Session, type SessionContext } from "../broker/session.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import type { StoredMessage } from "../broker/store/store.ts";
import { decode } from "../codec/decode.ts";
import type { PublishPacket, QoS } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
  waitFor,
} from "./_helpers.ts";

function ctx(over: Partial<SessionContext> = {}): SessionContext {
  return {
    store: new MemoryStore(),
    maxQueuedMessages: 100,
    queueQos0Messages: true,
    stats: { messagesDropped: 0 },
    ...over,
  };
}

/** A message of `size` queued bytes (payload + topic "t"), payload `n...`. */
function msg(n: number, qos: QoS, size = 100): StoredMessage {
  const payload = new Uint8Array(size - 1);
  payload.set(new TextEncoder().encode(String(n)));
  return { topic: "t", payload, qos, retain: false };
}

function queuedIds(s: Session): number[] {
  // Attach a link that takes everything, and read what comes out.
  const ids: number[] = [];
  s.attach({
    version: 4,
    sendWindow: 1000,
    maxPacketSize: Infinity,
    writable: () => true,
    sendPublish(enc) {
      const p = decode(enc.bytes, { version: 4 }) as PublishPacket;
      ids.push(Number(/^\d+/.exec(text(p.payload))![0]));
    },
    send() {},
  });
  return ids;
}

Deno.test("Session queue with maxQueuedBytes keeps the newest messages within the bytes, counting the dropped ones", () => {
  const c = ctx({ maxQueuedBytes: 1000 });
  const s = new Session("c", 4, 3600, c);
  for (let i = 1; i <= 20; i++) {
    s.deliver(msg(i, 1), 1, false, undefined, undefined);
  }
  assert.equal(s.queued, 10);
  assert.equal(s.queuedBytes, 1000);
  assert.equal(s.dropped, 10);
  assert.equal(c.stats!.messagesDropped, 10);
  assert.deepEqual(queuedIds(s), [11, 12, 13, 14, 15, 16, 17, 18, 19, 20]);
  assert.equal(s.queuedBytes, 0);
});

Deno.test("Session queue over maxQueuedBytes drops the oldest QoS 0 message first, then the oldest", () => {
  const s = new Session("c", 4, 3600, ctx({ maxQueuedBytes: 500 }));
  // 1 (QoS 1), 2 (QoS 0), 3 (QoS 1), 4 (QoS 0), 5 (QoS 1): 500 bytes.
  for (let i = 1; i <= 5; i++) {
    const qos = i % 2 === 0 ? 0 : 1;
    s.deliver(msg(i, qos), qos, false, undefined, undefined);
  }
  // 250 more bytes: QoS 0 messages 2 and 4 go, then the oldest, 1.
  s.deliver(msg(6, 1, 250), 1, false, undefined, undefined);
  assert.equal(s.dropped, 3);
  assert.equal(s.queuedBytes, 450);
  assert.deepEqual(queuedIds(s), [3, 5, 6]);
});

Deno.test("Session drops a message larger than maxQueuedBytes and keeps the queue", () => {
  const s = new Session("c", 4, 3600, ctx({ maxQueuedBytes: 300 }));
  s.deliver(msg(1, 1), 1, false, undefined, undefined);
  s.deliver(msg(2, 1, 301), 1, false, undefined, undefined);
  assert.equal(s.queued, 1);
  assert.equal(s.dropped, 1);
  assert.deepEqual(queuedIds(s), [1]);
});

Deno.test("Session without maxQueuedBytes (0) bounds the queue by count only; its bytes follow every removal", () => {
  const c = ctx({ maxQueuedMessages: 5 });
  const s = new Session("c", 4, 3600, c);
  for (let i = 1; i <= 8; i++) {
    s.deliver(msg(i, 1, 10_000), 1, false, undefined, undefined);
  }
  assert.equal(s.queued, 5);
  assert.equal(s.queuedBytes, 50_000);
  assert.equal(s.dropped, 3);
  s.deliver(msg(9, 0), 0, false, undefined, undefined);
  assert.equal(s.queuedBytes, 40_100);
  // Queued QoS 0 messages are not kept offline unless configured.
  c.queueQos0Messages = false;
  s.detach(Date.now());
  assert.equal(s.queued, 4);
  assert.equal(s.queuedBytes, 40_000);
  s.clearMessages();
  assert.equal(s.queuedBytes, 0);
});

Deno.test("Broker with maxQueuedBytes keeps an offline session's newest messages within the bound", async () => {
  const broker = await startBroker({ maxQueuedBytes: 2048 });
  const port = broker.addr.port;
  const s = await RawClient.connect(port, { clientId: "s", cleanStart: false });
  await subscribeOne(s.client, "q/#", 1);
  await s.client.disconnect();
  await waitFor(() => broker.connectedClients === 0, 2000, "the disconnect");
  const { client: p } = await RawClient.connect(port, { clientId: "p" });
  // 10 messages of 497 + 3 bytes: 4 fit in 2048.
  for (let i = 0; i < 10; i++) {
    const payload = new Uint8Array(497).fill(0x30 + i);
    await p.send(publishPacket(`q/${i}`, payload, { qos: 1, packetId: i + 1 }));
    await p.expect("puback");
  }
  assert.equal(broker.stats.messagesDropped, 6);
  const r = await RawClient.connect(port, { clientId: "s", cleanStart: false });
  const got: string[] = [];
  for (let i = 0; i < 4; i++) {
    const m = await r.client.expectPublish();
    got.push(m.topic);
    await r.client.send({ type: "puback", packetId: m.packetId! });
  }
  assert.deepEqual(got, ["q/6", "q/7", "q/8", "q/9"]);
  await r.client.expectNothing((x) => x.type === "publish");
  await p.disconnect();
  await r.client.disconnect();
  await broker.close();
});

Deno.test("Broker refuses subscriptions past maxSubscriptionsPerClient: v5 SUBACK 0x97, 3.1.1 0x80; a replaced filter counts once", async () => {
  const broker = await startBroker({ maxSubscriptionsPerClient: 3 });
  const port = broker.addr.port;
  for (const version of [4, 5] as const) {
    const { client } = await RawClient.connect(port, {
      clientId: `c${version}`,
      protocolVersion: version,
    });
    assert.deepEqual(await subscribeOne(client, "a", 0), [0]);
    await client.send({
      type: "subscribe",
      packetId: 2,
      subscriptions: [
        { filter: "a", qos: 1 }, // replaces "a": not a new one
        { filter: "b", qos: 1 },
        { filter: "b", qos: 0 }, // the same filter again in the packet
        { filter: "$share/g/c", qos: 1 },
        { filter: "d", qos: 1 },
        { filter: "e", qos: 0 },
      ],
    });
    const quota = version === 5 ? ReasonCode.QuotaExceeded : 0x80;
    const suback = await client.expect("suback");
    assert.deepEqual(suback.reasonCodes, [1, 1, 0, 1, quota, quota]);
    if (version === 5) {
      assert.match(suback.properties?.reasonString ?? "", /d: .*quota/i);
    }
    // A filter refused is not subscribed; one unsubscribed frees a slot.
    broker.publish("d", "x");
    await client.expectNothing((p) => p.type === "publish");
    await client.send({ type: "unsubscribe", packetId: 3, filters: ["b"] });
    await client.expect("unsuback");
    assert.deepEqual(await subscribeOne(client, "d", 0), [0]);
    broker.publish("d", "y");
    assert.equal(text((await client.expectPublish("d")).payload), "y");
    await client.disconnect();
  }
  await broker.close();
});

Deno.test("Broker default maxSubscriptionsPerClient is 10000; 0 sets no limit", async () => {
  const b1 = await startBroker();
  assert.equal(b1.settings.maxSubscriptionsPerClient, 10000);
  await b1.close();
  const broker = await startBroker({ maxSubscriptionsPerClient: 0 });
  const { client } = await RawClient.connect(broker.addr.port, {
    clientId: "many",
  });
  const subscriptions = Array.from({ length: 500 }, (_, i) => ({
    filter: `f/${i}`,
    qos: 0 as const,
  }));
  await client.send({ type: "subscribe", packetId: 1, subscriptions });
  const codes = (await client.expect("suback")).reasonCodes;
  assert.equal(codes.filter((c) => c === 0).length, 500);
  await client.disconnect();
  await broker.close();
});
