/** I/O-free tests of `Session`: delivery, window, queue policy, resume. */

import assert from "node:assert/strict";
import {
  ownPayload,
  type PublishEncoding,
  Session,
  type SessionLink,
} from "../broker/session.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import type {
  Packet,
  ProtocolVersion,
  PublishPacket,
  QoS,
} from "../codec/packet.ts";
import type { StoredMessage } from "../broker/store/store.ts";
import { sessionCtx, wirePublish } from "./_session_fixture.ts";
import { RawClient, startBroker } from "./_helpers.ts";

class FakeLink implements SessionLink {
  sent: PublishPacket[] = [];
  packets: Packet[] = [];
  room = true;
  maxPacketSize = Infinity;
  constructor(readonly version: ProtocolVersion, readonly sendWindow: number) {}
  writable(): boolean {
    return this.room;
  }
  sendPublish(enc: PublishEncoding, packetId: number, dup: boolean): void {
    this.sent.push(wirePublish(enc, packetId, dup, this.version));
  }
  send(p: Packet): void {
    this.packets.push(p);
  }
}

function msg(n: number, qos: QoS = 1): StoredMessage {
  return {
    topic: "t",
    payload: new TextEncoder().encode(String(n)),
    qos,
    retain: false,
  };
}

const body = (p: PublishPacket) => new TextDecoder().decode(p.payload);

Deno.test("Session.deliver() keeps at most sendWindow QoS 1 messages in flight and queues the rest in order", () => {
  const s = new Session("c", 4, 0, sessionCtx());
  const link = new FakeLink(4, 2);
  s.attach(link);
  for (let i = 1; i <= 5; i++) {
    s.deliver(msg(i), 1, false, undefined, undefined);
  }
  assert.deepEqual(link.sent.map(body), ["1", "2"]);
  assert.equal(s.queued, 3);
  s.onPuback(link.sent[0]!.packetId!);
  assert.deepEqual(link.sent.map(body), ["1", "2", "3"]);
  s.onPuback(link.sent[1]!.packetId!);
  s.onPuback(link.sent[2]!.packetId!);
  assert.deepEqual(link.sent.map(body), ["1", "2", "3", "4", "5"]);
  assert.equal(new Set(link.sent.map((p) => p.packetId)).size, 5);
});

Deno.test("Session starts a new in-flight map and QoS 2 id set once the old ones empty: ids, DUP resends and PUBREL answers unchanged v5:[MQTT-4.3.3-13] v5:[MQTT-4.4.0-1]", () => {
  // The emptied Map/Set is dropped (a long-lived one rehashes into V8's old
  // generation); what the session knows must not change with it.
  const s = new Session("c", 5, 60, sessionCtx());
  const link = new FakeLink(5, 10);
  s.attach(link);
  s.deliver(msg(1), 1, false, undefined, undefined);
  s.onPuback(link.sent[0]!.packetId!);
  assert.equal(s.inflightCount, 0);
  s.deliver(msg(2), 1, false, undefined, undefined);
  s.deliver(msg(3), 2, false, undefined, undefined);
  assert.equal(s.inflightCount, 2);
  const ids = link.sent.map((p) => p.packetId);
  assert.equal(new Set(ids).size, 3, `distinct packet ids: ${ids}`);
  // Both still in flight after the drop: resent with DUP on reattach.
  s.detach(Date.now());
  const again = new FakeLink(5, 10);
  s.attach(again);
  assert.deepEqual(again.sent.map((p) => [body(p), p.dup]), [
    ["2", true],
    ["3", true],
  ]);
  // [MQTT-4.3.3-13]: a received QoS 2 id is known until its PUBREL; after
  // the set empties, the same id is a new message again.
  s.incomingQos2.add(7);
  s.incomingQos2.add(8);
  assert.equal(s.releaseIncomingQos2(7), true);
  assert.equal(s.releaseIncomingQos2(7), false);
  assert.equal(s.releaseIncomingQos2(8), true);
  assert.equal(s.incomingQos2Count, 0);
  assert.equal(s.releaseIncomingQos2(8), false);
  s.incomingQos2.add(8);
  assert.equal(s.incomingQos2.has(8), true);
  assert.equal(s.releaseIncomingQos2(8), true);
});

Deno.test("Session queue drops the oldest QoS 0 message first, then the oldest, when full", () => {
  const s = new Session(
    "c",
    4,
    60,
    sessionCtx({ maxQueuedMessages: 3, queueQos0Messages: true }),
  );
  s.deliver(msg(1, 1), 1, false, undefined, undefined);
  s.deliver(msg(2, 0), 0, false, undefined, undefined);
  s.deliver(msg(3, 1), 1, false, undefined, undefined);
  s.deliver(msg(4, 1), 1, false, undefined, undefined); // drops 2 (QoS 0)
  s.deliver(msg(5, 1), 1, false, undefined, undefined); // drops 1 (oldest)
  assert.equal(s.dropped, 2);
  const link = new FakeLink(4, 10);
  s.attach(link);
  assert.deepEqual(link.sent.map(body), ["3", "4", "5"]);
});

Deno.test("Session.attach() resends in-flight PUBLISH with DUP and PUBREL for PUBREC'd ones v5:[MQTT-4.4.0-1]", () => {
  const s = new Session("c", 5, 60, sessionCtx());
  const l1 = new FakeLink(5, 10);
  s.attach(l1);
  s.deliver(msg(1, 1), 1, false, undefined, undefined);
  s.deliver(msg(2, 2), 2, false, undefined, undefined);
  const [a, b] = l1.sent;
  s.onPubrec(b!.packetId!, false);
  s.detach(Date.now());
  const l2 = new FakeLink(4, 10); // resumes with another protocol version
  s.attach(l2);
  assert.equal(l2.sent.length, 1);
  assert.equal(l2.sent[0]!.dup, true);
  assert.equal(l2.sent[0]!.packetId, a!.packetId);
  assert.deepEqual(l2.packets, [{ type: "pubrel", packetId: b!.packetId! }]);
});

Deno.test("Session persists outgoing messages of a persistent session and forgets them when acknowledged", async () => {
  const store = new MemoryStore();
  const s = new Session("p", 4, 60, sessionCtx({ store }));
  s.saveRecord();
  const link = new FakeLink(4, 10);
  s.attach(link);
  s.deliver(msg(1, 1), 1, false, undefined, undefined);
  let state = await store.load();
  assert.equal(state.sessions[0]!.outgoing.length, 1);
  assert.equal(state.sessions[0]!.outgoing[0]!.state, "sent");
  s.onPuback(link.sent[0]!.packetId!);
  state = await store.load();
  assert.equal(state.sessions[0]!.outgoing.length, 0);
});

Deno.test("Broker respects a v5 client's Receive Maximum [MQTT-3.3.4-9]", async () => {
  const broker = await startBroker();
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "rm",
    properties: { receiveMaximum: 2 },
  });
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "rm", qos: 1 }],
  });
  await client.expect("suback");
  for (let i = 0; i < 4; i++) broker.publish("rm", String(i), { qos: 1 });
  const a = await client.expectPublish("rm");
  await client.expectPublish("rm");
  await client.expectNothing((p) => p.type === "publish", 100);
  await client.send({ type: "puback", packetId: a.packetId! });
  await client.expectPublish("rm");
  await client.expectNothing((p) => p.type === "publish", 100);
  await client.disconnect();
  await broker.close();
});

Deno.test("ownPayload copies a payload and Correlation Data that are small views of a large buffer, and leaves tight ones", () => {
  const chunk = new Uint8Array(64 * 1024);
  chunk.set([1, 2, 3], 100);
  chunk.set([9, 8], 200);
  const message: StoredMessage = {
    topic: "t",
    payload: chunk.subarray(100, 103),
    qos: 1,
    retain: false,
    properties: {
      correlationData: chunk.subarray(200, 202),
      contentType: "x",
    },
  };
  ownPayload(message);
  // Same bytes, no longer pinning the 64 KiB chunk.
  assert.deepEqual([...message.payload], [1, 2, 3]);
  assert.deepEqual([...message.properties!.correlationData!], [9, 8]);
  assert.notEqual(message.payload.buffer, chunk.buffer);
  assert.notEqual(message.properties!.correlationData!.buffer, chunk.buffer);
  assert.ok(message.payload.buffer.byteLength < chunk.byteLength);
  assert.equal(message.properties!.contentType, "x");
  chunk.fill(0); // the chunk is reused: the message keeps its bytes
  assert.deepEqual([...message.payload], [1, 2, 3]);
  assert.deepEqual([...message.properties!.correlationData!], [9, 8]);
  // A payload that is (nearly) its whole buffer is kept as it is.
  const tight = new Uint8Array([5, 6, 7]);
  const m2: StoredMessage = {
    topic: "t",
    payload: tight,
    qos: 0,
    retain: false,
  };
  ownPayload(m2);
  assert.equal(m2.payload, tight);
});
