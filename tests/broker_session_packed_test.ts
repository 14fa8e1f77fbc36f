/**
 * I/O-free tests of the packed queue: a connected non-persistent session
 * keeps its queued QoS 1 messages as encoded packets (broker/_packed_bytes.ts,
 * broker/_message_queue.ts) and its sent ones as packet ids only. What the
 * client gets must be what it got with a queue of messages.
 */

import assert from "node:assert/strict";
import {
  type PublishEncoding,
  Session,
  type SessionLink,
} from "../broker/session.ts";
import { PackedBytes } from "../broker/_packed_bytes.ts";
import type {
  Packet,
  ProtocolVersion,
  PublishPacket,
  QoS,
} from "../codec/packet.ts";
import type { StoredMessage } from "../broker/store/store.ts";
import { sessionCtx, wirePublish } from "./_session_fixture.ts";

/** Keeps what it is handed and decodes it only when asked (as held output). */
class HoldingLink implements SessionLink {
  held: { enc: PublishEncoding; packetId: number; dup: boolean }[] = [];
  room = true;
  maxPacketSize = Infinity;
  constructor(readonly version: ProtocolVersion, readonly sendWindow: number) {}
  writable(): boolean {
    return this.room;
  }
  sendPublish(enc: PublishEncoding, packetId: number, dup: boolean): void {
    this.held.push({ enc, packetId, dup });
  }
  send(_p: Packet): void {}
  get sent(): PublishPacket[] {
    return this.held.map(({ enc, packetId, dup }) =>
      wirePublish(enc, packetId, dup, this.version)
    );
  }
}

function msg(body: string, topic = "t", qos: QoS = 1): StoredMessage {
  return { topic, payload: new TextEncoder().encode(body), qos, retain: false };
}

const body = (p: PublishPacket) => new TextDecoder().decode(p.payload);

Deno.test("a non-persistent session sends queued QoS 1 messages in order, with their topic, retain flag, subscription ids and payload, small and large", () => {
  const s = new Session("c", 5, 0, sessionCtx({ maxQueuedMessages: 1000 }));
  const link = new HoldingLink(5, 1);
  s.attach(link);
  const big = "x".repeat(5000); // above what is packed: queued as a message
  const bodies: string[] = [];
  for (let i = 0; i < 300; i++) {
    const b = i % 50 === 7 ? big + i : `m${i}-` + "y".repeat(i % 200);
    bodies.push(b);
    s.deliver(msg(b, `t/${i % 3}`), 1, i % 2 === 0, [i + 1], undefined);
  }
  assert.equal(s.queued, 299);
  const queuedBytes = bodies.slice(1).reduce((n, b) => n + b.length + 3, 0);
  assert.equal(s.queuedBytes, queuedBytes);
  // Acknowledged one at a time while more are queued: the bytes handed to
  // the link stay intact (it may hold them until a commit) as the queue
  // takes new messages.
  for (let i = 300; i < 600; i++) {
    const b = `n${i}`;
    bodies.push(b);
    s.deliver(msg(b, `t/${i % 3}`), 1, i % 2 === 0, [i + 1], undefined);
    s.onPuback(link.held.at(-1)!.packetId);
  }
  while (s.queued > 0) s.onPuback(link.held.at(-1)!.packetId);
  const got = link.sent;
  assert.deepEqual(got.map(body), bodies);
  assert.deepEqual(got.map((p) => p.topic), bodies.map((_, i) => `t/${i % 3}`));
  assert.deepEqual(got.map((p) => p.retain), bodies.map((_, i) => i % 2 === 0));
  assert.deepEqual(
    got.map((p) => p.properties?.subscriptionIdentifiers),
    bodies.map((_, i) => [i + 1]),
  );
  assert.ok(got.every((p) => p.qos === 1 && !p.dup));
  assert.equal(s.queued, 0);
  assert.equal(s.queuedBytes, 0);
  assert.equal(s.inflightCount, 1);
});

Deno.test("a full packed queue drops its oldest message for a new one, and counts it", () => {
  const s = new Session("c", 4, 0, sessionCtx({ maxQueuedMessages: 3 }));
  const link = new HoldingLink(4, 1);
  s.attach(link);
  for (let i = 1; i <= 6; i++) {
    s.deliver(msg(String(i)), 1, false, undefined, undefined);
  }
  assert.equal(s.dropped, 2); // 2 and 3
  assert.equal(s.queued, 3);
  for (let i = 0; i < 3; i++) s.onPuback(link.held.at(-1)!.packetId);
  assert.deepEqual(link.sent.map(body), ["1", "4", "5", "6"]);
});

Deno.test("maxQueuedBytes counts a packed message's payload and topic as it counts a queued one", () => {
  const s = new Session(
    "c",
    4,
    0,
    sessionCtx({ maxQueuedMessages: 100, maxQueuedBytes: 25 }),
  );
  const link = new HoldingLink(4, 1);
  s.attach(link);
  s.deliver(msg("first"), 1, false, undefined, undefined); // sent
  for (let i = 0; i < 4; i++) {
    s.deliver(msg("12345678", "tt"), 1, false, undefined, undefined); // 10 bytes
  }
  assert.equal(s.queued, 2);
  assert.equal(s.queuedBytes, 20);
  assert.equal(s.dropped, 2);
});

Deno.test("a packed message the owner may no longer read when it is due is not sent", () => {
  let allowed = true;
  const s = new Session(
    "c",
    4,
    0,
    sessionCtx({
      authorizeRead: (_c, topic) => allowed || topic !== "secret",
      authorizationEpoch: () => (allowed ? 0 : 1),
    }),
  );
  const link = new HoldingLink(4, 1);
  s.attach(link);
  s.deliver(msg("a"), 1, false, undefined, undefined);
  s.deliver(msg("b", "secret"), 1, false, undefined, undefined);
  s.deliver(msg("c"), 1, false, undefined, undefined);
  allowed = false;
  s.onPuback(link.held.at(-1)!.packetId);
  s.onPuback(link.held.at(-1)!.packetId);
  assert.deepEqual(link.sent.map(body), ["a", "c"]);
  assert.equal(s.queued, 0);
});

Deno.test("a persistent session's queued and in-flight messages are kept whole and resent after a reconnect v3:[MQTT-4.4.0-1]", () => {
  const s = new Session("p", 4, 60, sessionCtx());
  const l1 = new HoldingLink(4, 1);
  s.attach(l1);
  for (let i = 1; i <= 3; i++) {
    s.deliver(msg(String(i)), 1, false, undefined, undefined);
  }
  s.detach(Date.now());
  const l2 = new HoldingLink(4, 5);
  s.attach(l2);
  assert.deepEqual(l2.sent.map((p) => [body(p), p.dup]), [
    ["1", true],
    ["2", false],
    ["3", false],
  ]);
});

Deno.test("PackedBytes returns what was pushed, in order, across buffers of every size, and reuses or drops them", () => {
  const p = new PackedBytes();
  const want: number[][] = [];
  let next = 0;
  const push = (n: number) => {
    const b = Uint8Array.from({ length: n }, (_, i) => (next + i) & 0xff);
    want.push([...b]);
    p.push(b, n + 1000);
    next++;
  };
  // Grow to the largest buffers, then run as a full queue does: one out,
  // one in, for several buffers' worth.
  for (let i = 0; i < 5000; i++) push(i % 4097);
  for (let i = 0; i < 20000; i++) {
    const w = want.shift()!;
    if (i % 2 === 0) {
      assert.equal(p.headSize(), w.length + 1000);
      assert.deepEqual([...p.take()], w);
    } else assert.equal(p.skip(), w.length + 1000);
    push((i * 7) % 300);
  }
  assert.equal(p.length, want.length);
  while (want.length > 0) assert.deepEqual([...p.take()], want.shift()!);
  assert.equal(p.length, 0);
  push(3);
  assert.deepEqual([...p.take()], want.shift()!);
  assert.ok(PackedBytes.fits(4096));
  assert.ok(!PackedBytes.fits(4097));
});
