import assert from "node:assert/strict";
import {
  decode,
  encode,
  MalformedPacketError,
  type Packet,
  PacketDecoder,
  PROPERTY_TABLE,
  publishPacketIdOffset,
} from "../codec/mod.ts";

Deno.test("PROPERTY_TABLE has unique identifiers and names", () => {
  assert.equal(new Set(PROPERTY_TABLE.map((p) => p.id)).size, 27);
  assert.equal(new Set(PROPERTY_TABLE.map((p) => p.name)).size, 27);
  const repeat = PROPERTY_TABLE.filter((p) => p.repeat).map((p) => p.name);
  assert.deepEqual(repeat.sort(), [
    "subscriptionIdentifiers",
    "userProperties",
  ]);
});

Deno.test("publishPacketIdOffset() finds the packet id of a shared QoS 1/2 encoding", () => {
  const cases: [Packet & { type: "publish" }, 4 | 5][] = [
    [{
      type: "publish",
      topic: "t",
      payload: new Uint8Array(3),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 1,
    }, 4],
    [{
      type: "publish",
      topic: "a/é",
      payload: new Uint8Array(300),
      qos: 2,
      retain: true,
      dup: false,
      packetId: 9,
    }, 4],
    [{
      type: "publish",
      topic: "x",
      payload: new Uint8Array(20000),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 2,
      properties: { userProperties: [["k", "v"]] },
    }, 5],
  ];
  for (const [p, version] of cases) {
    const bytes = encode(p, { version });
    const at = publishPacketIdOffset(bytes);
    assert.equal((bytes[at]! << 8) | bytes[at + 1]!, p.packetId);
    bytes[at] = 0xbe;
    bytes[at + 1] = 0xef;
    bytes[0] = bytes[0]! | 0x08; // DUP
    assert.deepEqual(decode(bytes, { version }), {
      ...p,
      packetId: 0xbeef,
      dup: true,
    });
  }
});

Deno.test("publishPacketIdOffset() rejects a QoS 0 PUBLISH and other packets", () => {
  const q0 = encode({
    type: "publish",
    topic: "t",
    payload: new Uint8Array(0),
    qos: 0,
    retain: false,
    dup: false,
  });
  assert.throws(() => publishPacketIdOffset(q0), MalformedPacketError);
  assert.throws(
    () => publishPacketIdOffset(new Uint8Array([0xc0, 0])),
    MalformedPacketError,
  );
  assert.throws(
    () => publishPacketIdOffset(new Uint8Array([0x32, 5, 0, 9])),
    MalformedPacketError,
  );
});

Deno.test("encode() ignores v5 fields below MQTT 5.0", () => {
  const p: Packet = {
    type: "puback",
    packetId: 3,
    reasonCode: 0x10,
    properties: { reasonString: "x" },
  };
  assert.deepEqual(encode(p, { version: 4 }), new Uint8Array([0x40, 2, 0, 3]));
});

Deno.test("PacketDecoder.push() copies a packet assembled across chunks once, off the chunks", () => {
  const bytes = encode({
    type: "publish",
    topic: "t",
    payload: new Uint8Array([1, 2, 3]),
    qos: 0,
    retain: false,
    dup: false,
  });
  const d = new PacketDecoder({ version: 4 });
  const out: Packet[] = [];
  const a = bytes.slice(0, 3);
  const b = bytes.slice(3);
  d.push(a, (p) => out.push(p));
  d.push(b, (p) => out.push(p));
  const p = out[0]!;
  assert.equal(p.type, "publish");
  if (p.type === "publish") {
    assert.deepEqual(p.payload, new Uint8Array([1, 2, 3]));
    assert.notEqual(p.payload.buffer, a.buffer);
    assert.notEqual(p.payload.buffer, b.buffer);
    // Overwriting the chunks afterwards does not change the packet.
    a.fill(0);
    b.fill(0);
    assert.deepEqual(p.payload, new Uint8Array([1, 2, 3]));
  }
});

Deno.test("PacketDecoder.push() is unusable after onPacket throws", () => {
  const d = new PacketDecoder({ version: 4 });
  const two = new Uint8Array([0xc0, 0, 0xd0, 0]);
  const boom = new Error("boom");
  assert.throws(() =>
    d.push(two, () => {
      throw boom;
    }), (e) => e === boom);
  assert.throws(() => d.push(two, () => {}), (e) => e === boom);
});

Deno.test("decode() returns the right topic when similar topics alternate (topic cache)", () => {
  const topics = ["a/b", "a/c", "b/a", "a/b", "é/x", "a/b/", "A/b"];
  for (let round = 0; round < 3; round++) {
    for (const topic of topics) {
      const p = decode(
        encode({
          type: "publish",
          topic,
          payload: new Uint8Array(0),
          qos: 0,
          retain: false,
          dup: false,
        }),
      );
      assert.equal(p.type === "publish" && p.topic, topic);
    }
  }
  // A cached valid topic never hides an invalid one of the same length.
  assert.throws(
    () => decode(new Uint8Array([0x30, 5, 0, 3, 0x61, 0x2f, 0x23])),
    MalformedPacketError,
  );
});
