import assert from "node:assert/strict";
import {
  decode,
  encode,
  MalformedPacketError,
  MqttError,
  PacketDecoder,
  PacketTooLargeError,
  ProtocolError,
  ReasonCode,
  UnsupportedProtocolError,
} from "../codec/mod.ts";
import type { Packet, ProtocolVersion } from "../codec/mod.ts";
import { bin, pkt, props, str, u16, u32, vbi } from "./codec_fixture_table.ts";

type ErrorClass = new (...args: never[]) => MqttError;

interface ErrorRow {
  name: string;
  version: ProtocolVersion;
  bytes: Uint8Array;
  error: ErrorClass;
  code: number;
}

const M = { error: MalformedPacketError, code: ReasonCode.MalformedPacket };
const P = { error: ProtocolError, code: ReasonCode.ProtocolError };

const connectHead = (level: number, flags: number): number[][] => [
  str(level === 3 ? "MQIsdp" : "MQTT"),
  [level],
  [flags],
  u16(60),
];

const ROWS: ErrorRow[] = [
  // Fixed header [MQTT-2.2.2-2]
  { name: "reserved packet type 0", version: 4, bytes: pkt(0x00), ...M },
  { name: "PUBREL flags 0b0000", version: 4, bytes: pkt(0x60, u16(1)), ...M },
  {
    name: "SUBSCRIBE flags 0b0000",
    version: 4,
    bytes: pkt(0x80, u16(1), str("a"), [0]),
    ...M,
  },
  {
    name: "UNSUBSCRIBE flags 0b0011",
    version: 4,
    bytes: pkt(0xa3, u16(1), str("a")),
    ...M,
  },
  { name: "PUBACK flags 0b0001", version: 4, bytes: pkt(0x41, u16(1)), ...M },
  { name: "PINGREQ flags 0b1000", version: 4, bytes: pkt(0xc8), ...M },
  {
    name: "CONNECT flags 0b0010",
    version: 4,
    bytes: pkt(0x12, ...connectHead(4, 2), str("c")),
    ...M,
  },
  { name: "AUTH in 3.1.1", version: 4, bytes: pkt(0xf0), ...M },
  {
    name: "PUBLISH QoS 3 v3:[MQTT-3.3.1-4]",
    version: 4,
    bytes: pkt(0x36, str("a"), u16(1)),
    ...M,
  },
  {
    name: "PUBLISH QoS 0 with DUP [MQTT-3.3.1-2]",
    version: 4,
    bytes: pkt(0x38, str("a")),
    ...M,
  },
  // Remaining length
  {
    name: "remaining length over four bytes",
    version: 4,
    bytes: new Uint8Array([0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
    ...M,
  },
  {
    name: "remaining length not minimal",
    version: 4,
    bytes: new Uint8Array([0xc0, 0x80, 0x00]),
    ...M,
  },
  {
    name: "remaining length past the buffer",
    version: 4,
    bytes: new Uint8Array([0x30, 10, 0, 1, 0x61]),
    ...M,
  },
  {
    name: "bytes after the packet",
    version: 4,
    bytes: new Uint8Array([0xc0, 0, 0]),
    ...M,
  },
  {
    name: "incomplete fixed header",
    version: 4,
    bytes: new Uint8Array([0x30, 0x80]),
    ...M,
  },
  // Body shorter or longer than its fields
  { name: "PUBACK body too short", version: 4, bytes: pkt(0x40, [0]), ...M },
  {
    name: "3.1.1 PUBACK body too long",
    version: 4,
    bytes: pkt(0x40, u16(1), [0]),
    ...M,
  },
  { name: "PINGREQ with a body", version: 4, bytes: pkt(0xc0, [0]), ...M },
  {
    name: "3.1.1 DISCONNECT with a body",
    version: 4,
    bytes: pkt(0xe0, [0]),
    ...M,
  },
  {
    name: "3.1.1 UNSUBACK body too long",
    version: 4,
    bytes: pkt(0xb0, u16(1), [0]),
    ...M,
  },
  {
    name: "PUBLISH topic length past the body",
    version: 4,
    bytes: pkt(0x30, [0, 5, 0x61]),
    ...M,
  },
  {
    name: "CONNECT truncated after flags",
    version: 4,
    bytes: pkt(0x10, str("MQTT"), [4], [2]),
    ...M,
  },
  {
    name: "CONNECT with trailing bytes",
    version: 4,
    bytes: pkt(0x10, ...connectHead(4, 2), str("c"), [0]),
    ...M,
  },
  { name: "CONNACK too short", version: 4, bytes: pkt(0x20, [0]), ...M },
  {
    name: "CONNACK reserved flags v5:[MQTT-3.2.2-1]",
    version: 4,
    bytes: pkt(0x20, [2], [0]),
    ...M,
  },
  {
    name: "5.0 property length past the packet",
    version: 5,
    bytes: pkt(0x40, u16(1), [0], [5, 0x1f]),
    ...M,
  },
  {
    name: "5.0 property value past the property length",
    version: 5,
    bytes: pkt(0x40, u16(1), [0], [2, 0x1f, 0], [0x41]),
    ...M,
  },
  // Strings v3:[MQTT-1.5.3-1] v3:[MQTT-1.5.3-2] v5:[MQTT-1.5.4-1] v5:[MQTT-1.5.4-2]
  {
    name: "topic with an invalid UTF-8 byte",
    version: 4,
    bytes: pkt(0x30, [0, 2, 0x61, 0xff]),
    ...M,
  },
  {
    name: "topic with an overlong encoding",
    version: 4,
    bytes: pkt(0x30, [0, 2, 0xc0, 0xaf]),
    ...M,
  },
  {
    name: "topic with an encoded surrogate",
    version: 4,
    bytes: pkt(0x30, [0, 3, 0xed, 0xa0, 0x80]),
    ...M,
  },
  {
    name: "long topic with a truncated sequence",
    version: 4,
    bytes: pkt(0x30, [0, 40, ...new Array(39).fill(0x61), 0xe2]),
    ...M,
  },
  {
    name: "topic with U+0000",
    version: 4,
    bytes: pkt(0x30, [0, 3, 0x61, 0, 0x62]),
    ...M,
  },
  {
    name: "long topic with U+0000",
    version: 4,
    bytes: pkt(0x30, [0, 40, ...new Array(39).fill(0x61), 0]),
    ...M,
  },
  {
    name: "client id with U+0000",
    version: 4,
    bytes: pkt(0x10, ...connectHead(4, 2), [0, 1, 0]),
    ...M,
  },
  {
    name: "user property with invalid UTF-8",
    version: 5,
    bytes: pkt(0xe0, [0], props([0x26, ...str("k"), 0, 1, 0xfe])),
    ...M,
  },
  // Topic names and filters
  {
    name: "PUBLISH topic with + [MQTT-3.3.2-2]",
    version: 4,
    bytes: pkt(0x30, str("a/+")),
    ...M,
  },
  {
    name: "PUBLISH topic with # [MQTT-3.3.2-2]",
    version: 5,
    bytes: pkt(0x30, str("#"), props()),
    ...M,
  },
  {
    name: "3.1.1 PUBLISH empty topic",
    version: 4,
    bytes: pkt(0x30, str("")),
    ...P,
  },
  {
    name: "5.0 PUBLISH empty topic without alias",
    version: 5,
    bytes: pkt(0x30, str(""), props()),
    ...P,
  },
  {
    name: "will topic with a wildcard",
    version: 4,
    bytes: pkt(0x10, ...connectHead(4, 0x06), str("c"), str("w/#"), bin([])),
    ...M,
  },
  {
    name: "SUBSCRIBE filter a/#/b",
    version: 4,
    bytes: pkt(0x82, u16(1), str("a/#/b"), [0]),
    ...M,
  },
  {
    name: "SUBSCRIBE filter a+",
    version: 4,
    bytes: pkt(0x82, u16(1), str("a+"), [0]),
    ...M,
  },
  {
    name: "UNSUBSCRIBE filter a+",
    version: 4,
    bytes: pkt(0xa2, u16(1), str("a+")),
    ...M,
  },
  {
    name: "SUBSCRIBE bad shared subscription",
    version: 5,
    bytes: pkt(0x82, u16(1), props(), str("$share/g"), [0]),
    ...M,
  },
  // Packet identifiers v3:[MQTT-2.3.1-1] v5:[MQTT-2.2.1-3]
  {
    name: "PUBLISH QoS 1 packet id 0",
    version: 4,
    bytes: pkt(0x32, str("a"), u16(0)),
    ...P,
  },
  { name: "PUBACK packet id 0", version: 4, bytes: pkt(0x40, u16(0)), ...P },
  { name: "PUBREL packet id 0", version: 5, bytes: pkt(0x62, u16(0)), ...P },
  {
    name: "SUBSCRIBE packet id 0",
    version: 4,
    bytes: pkt(0x82, u16(0), str("a"), [0]),
    ...P,
  },
  {
    name: "UNSUBSCRIBE packet id 0",
    version: 4,
    bytes: pkt(0xa2, u16(0), str("a")),
    ...P,
  },
  {
    name: "SUBACK packet id 0",
    version: 4,
    bytes: pkt(0x90, u16(0), [0]),
    ...P,
  },
  // SUBSCRIBE / UNSUBSCRIBE payloads
  {
    name: "SUBSCRIBE without payload v3:[MQTT-3.8.3-3]",
    version: 4,
    bytes: pkt(0x82, u16(1)),
    ...P,
  },
  {
    name: "5.0 SUBSCRIBE without payload [MQTT-3.8.3-2]",
    version: 5,
    bytes: pkt(0x82, u16(1), props()),
    ...P,
  },
  {
    name: "UNSUBSCRIBE without payload [MQTT-3.10.3-2]",
    version: 4,
    bytes: pkt(0xa2, u16(1)),
    ...P,
  },
  {
    name: "SUBSCRIBE filter without options byte",
    version: 4,
    bytes: pkt(0x82, u16(1), str("a")),
    ...M,
  },
  {
    name: "3.1.1 SUBSCRIBE reserved option bits",
    version: 4,
    bytes: pkt(0x82, u16(1), str("a"), [0x04]),
    ...M,
  },
  {
    name: "5.0 SUBSCRIBE reserved option bits",
    version: 5,
    bytes: pkt(0x82, u16(1), props(), str("a"), [0x40]),
    ...M,
  },
  {
    name: "SUBSCRIBE QoS 3",
    version: 5,
    bytes: pkt(0x82, u16(1), props(), str("a"), [0x03]),
    ...M,
  },
  {
    name: "SUBSCRIBE retain handling 3",
    version: 5,
    bytes: pkt(0x82, u16(1), props(), str("a"), [0x30]),
    ...P,
  },
  {
    name: "SUBSCRIBE no local on a shared subscription",
    version: 5,
    bytes: pkt(0x82, u16(1), props(), str("$share/g/a"), [0x04]),
    ...P,
  },
  // CONNECT
  {
    name: "CONNECT reserved flag v3:[MQTT-3.1.2-3]",
    version: 4,
    bytes: pkt(0x10, ...connectHead(4, 0x03), str("c")),
    ...M,
  },
  {
    name: "CONNECT will QoS without will flag v3:[MQTT-3.1.2-13]",
    version: 4,
    bytes: pkt(0x10, ...connectHead(4, 0x0a), str("c")),
    ...M,
  },
  {
    name: "CONNECT will retain without will flag v5:[MQTT-3.1.2-13]",
    version: 5,
    bytes: pkt(0x10, ...connectHead(5, 0x22), props(), str("c")),
    ...M,
  },
  {
    name: "CONNECT will QoS 3 v3:[MQTT-3.1.2-14]",
    version: 4,
    bytes: pkt(0x10, ...connectHead(4, 0x1e), str("c"), str("w"), bin([])),
    ...M,
  },
  {
    name: "3.1.1 CONNECT password without user name [MQTT-3.1.2-22]",
    version: 4,
    bytes: pkt(0x10, ...connectHead(4, 0x42), str("c"), bin([1])),
    ...P,
  },
  {
    name: "3.1 CONNECT password without user name",
    version: 3,
    bytes: pkt(0x10, ...connectHead(3, 0x42), str("c"), bin([1])),
    ...P,
  },
  {
    name: "CONNECT level 6",
    version: 4,
    bytes: pkt(0x10, str("MQTT"), [6], [2], u16(0), str("c")),
    error: MqttError,
    code: ReasonCode.UnsupportedProtocolVersion,
  },
  {
    name:
      "CONNECT level 0x85 (the bridge bit on 5.0: Mosquitto refuses it too)",
    version: 5,
    bytes: pkt(0x10, str("MQTT"), [0x85], [2], u16(0), [0], str("c")),
    error: UnsupportedProtocolError,
    code: ReasonCode.UnsupportedProtocolVersion,
  },
  {
    name: "CONNECT unknown protocol name",
    version: 4,
    bytes: pkt(0x10, str("MQTX"), [4], [2], u16(0), str("c")),
    error: MqttError,
    code: ReasonCode.UnsupportedProtocolVersion,
  },
  {
    name: "CONNECT level 5 with an unknown protocol name v5:[MQTT-3.1.2-1]",
    version: 5,
    bytes: pkt(0x10, str("MQTX"), [5], [2], u16(0), [0], str("c")),
    error: UnsupportedProtocolError,
    code: ReasonCode.UnsupportedProtocolVersion,
  },
  {
    name: "CONNECT MQIsdp with level 4",
    version: 4,
    bytes: pkt(0x10, str("MQIsdp"), [4], [2], u16(0), str("c")),
    error: MqttError,
    code: ReasonCode.UnsupportedProtocolVersion,
  },
  // Properties (2.2.2)
  {
    name: "property not allowed in the packet (topic alias in CONNECT)",
    version: 5,
    bytes: pkt(0x10, ...connectHead(5, 2), props([0x23, ...u16(1)]), str("c")),
    ...M,
  },
  {
    name: "property not allowed in will properties",
    version: 5,
    bytes: pkt(
      0x10,
      ...connectHead(5, 6),
      props(),
      str("c"),
      props([0x11, ...u32(1)]),
      str("w"),
      bin([]),
    ),
    ...M,
  },
  {
    name: "property not allowed in UNSUBSCRIBE",
    version: 5,
    bytes: pkt(0xa2, u16(1), props([0x1f, ...str("r")]), str("a")),
    ...M,
  },
  {
    name: "unknown property identifier",
    version: 5,
    bytes: pkt(0xe0, [0], props([0x05, 0])),
    ...M,
  },
  {
    name: "duplicate session expiry interval",
    version: 5,
    bytes: pkt(0xe0, [0], props([0x11, ...u32(1)], [0x11, ...u32(2)])),
    ...P,
  },
  {
    name: "duplicate reason string",
    version: 5,
    bytes: pkt(
      0x40,
      u16(1),
      [0],
      props([0x1f, ...str("a")], [0x1f, ...str("b")]),
    ),
    ...P,
  },
  {
    name: "two subscription identifiers in SUBSCRIBE",
    version: 5,
    bytes: pkt(0x82, u16(1), props([0x0b, 1], [0x0b, 2]), str("a"), [0]),
    ...P,
  },
  {
    name: "subscription identifier 0 in PUBLISH",
    version: 5,
    bytes: pkt(0x30, str("a"), props([0x0b, 0])),
    ...P,
  },
  {
    name: "subscription identifier 0 in SUBSCRIBE (3.8.2.1.2)",
    version: 5,
    bytes: pkt(0x82, u16(1), props([0x0b, 0]), str("a"), [0]),
    ...P,
  },
  {
    name: "subscription identifier varint over four bytes",
    version: 5,
    bytes: pkt(0x30, str("a"), props([0x0b, 0xff, 0xff, 0xff, 0xff, 1])),
    ...M,
  },
  {
    name: "payload format indicator 2",
    version: 5,
    bytes: pkt(0x30, str("a"), props([0x01, 2])),
    ...P,
  },
  {
    name: "maximum QoS 2",
    version: 5,
    bytes: pkt(0x20, [0], [0], props([0x24, 2])),
    ...P,
  },
  {
    name: "request problem information 2",
    version: 5,
    bytes: pkt(0x10, ...connectHead(5, 2), props([0x17, 2]), str("c")),
    ...P,
  },
  {
    name: "receive maximum 0",
    version: 5,
    bytes: pkt(0x10, ...connectHead(5, 2), props([0x21, ...u16(0)]), str("c")),
    ...P,
  },
  {
    name: "maximum packet size 0",
    version: 5,
    bytes: pkt(0x20, [0], [0], props([0x27, ...u32(0)])),
    ...P,
  },
  {
    name: "5.0 PUBLISH with a wildcard in its Response Topic [MQTT-3.3.2-14]",
    version: 5,
    bytes: pkt(0x30, str("a"), props([0x08, ...str("r/#")])),
    ...M,
  },
  {
    name: "5.0 PUBLISH with an empty Response Topic [MQTT-3.3.2-14]",
    version: 5,
    bytes: pkt(0x30, str("a"), props([0x08, ...str("")])),
    ...M,
  },
  {
    name: "topic alias 0 [MQTT-3.3.2-8]",
    version: 5,
    bytes: pkt(0x30, str("a"), props([0x23, ...u16(0)])),
    error: MqttError,
    code: ReasonCode.TopicAliasInvalid,
  },
  {
    name: "property length varint over four bytes",
    version: 5,
    bytes: pkt(0xe0, [0], [0x80, 0x80, 0x80, 0x80, 0x01]),
    ...M,
  },
  {
    name: "property identifier of two bytes",
    version: 5,
    bytes: pkt(0xe0, [0], [2, ...vbi(0x81)]),
    ...M,
  },
];

for (const row of ROWS) {
  Deno.test(`decode() rejects ${row.name}`, () => {
    assert.throws(
      () => decode(row.bytes, { version: row.version }),
      (e: unknown) => {
        assert.ok(e instanceof row.error, `${e} is not a ${row.error.name}`);
        assert.equal((e as MqttError).reasonCode, row.code, String(e));
        return true;
      },
    );
  });
}

Deno.test("PacketDecoder.push() rejects each error row, fed in one chunk and bytewise", () => {
  for (const row of ROWS) {
    // decode()-only rows (framing of a single buffer) do not apply to a stream.
    if (
      /past the buffer|after the packet|incomplete fixed header/.test(row.name)
    ) continue;
    for (const bytewise of [false, true]) {
      const d = new PacketDecoder({ version: row.version });
      assert.throws(() => {
        if (bytewise) {
          for (let i = 0; i < row.bytes.length; i++) {
            d.push(row.bytes.subarray(i, i + 1), () => {});
          }
        } else d.push(row.bytes, () => {});
      }, (e: unknown) => {
        assert.ok(e instanceof row.error, `${row.name}: ${e}`);
        assert.equal((e as MqttError).reasonCode, row.code, row.name);
        return true;
      });
    }
  }
});

Deno.test("decode() reports the protocol level of an unsupported CONNECT (UnsupportedProtocolError)", () => {
  for (
    const [name, level] of [["MQTX", 5], ["MQTT", 6], ["MQTX", 4]] as const
  ) {
    const bytes = pkt(0x10, str(name), [level], [2], u16(0), [0], str("c"));
    assert.throws(
      () => decode(bytes),
      (e) =>
        e instanceof UnsupportedProtocolError && e.protocolLevel === level &&
        e.reasonCode === ReasonCode.UnsupportedProtocolVersion,
    );
  }
});

Deno.test("PacketDecoder.push() rejects a packet over maxPacketSize from its header alone", () => {
  const d = new PacketDecoder({ version: 4, maxPacketSize: 100 });
  // Header of a 1000-byte PUBLISH; no body bytes pushed yet.
  assert.throws(
    () => d.push(new Uint8Array([0x30, ...vbi(997)]), () => {}),
    PacketTooLargeError,
  );
  assert.equal(d.buffered, 0);
  // Header split across pushes.
  const d2 = new PacketDecoder({ version: 4, maxPacketSize: 200 });
  d2.push(new Uint8Array([0x30, 0xe5]), () => {});
  assert.equal(d2.buffered, 2);
  assert.throws(
    () => d2.push(new Uint8Array([0x07]), () => {}),
    (e) =>
      e instanceof PacketTooLargeError &&
      e.reasonCode === ReasonCode.PacketTooLarge,
  );
  // Exactly at the limit is accepted.
  const d3 = new PacketDecoder({ version: 4, maxPacketSize: 10 });
  let n = 0;
  d3.push(pkt(0x30, str("a"), [1, 2, 3, 4, 5]), () => n++);
  assert.equal(n, 1);
  assert.throws(
    () => d3.push(pkt(0x30, str("a"), [1, 2, 3, 4, 5, 6]), () => {}),
    PacketTooLargeError,
  );
});

Deno.test("decode() rejects a packet over maxPacketSize", () => {
  assert.throws(
    () => decode(pkt(0x30, str("abc"), [1]), { maxPacketSize: 6 }),
    PacketTooLargeError,
  );
});

Deno.test("PacketDecoder.push() without a version requires CONNECT first [MQTT-3.1.0-1]", () => {
  const d = new PacketDecoder();
  assert.throws(() => d.push(pkt(0xc0), () => {}), ProtocolError);
});

Deno.test("PacketDecoder.push() stays failed after an error", () => {
  const d = new PacketDecoder({ version: 4 });
  let err: unknown;
  try {
    d.push(pkt(0x36, str("a"), u16(1)), () => {});
  } catch (e) {
    err = e;
  }
  assert.ok(err instanceof MalformedPacketError);
  assert.throws(() => d.push(pkt(0xc0), () => {}), (e) => e === err);
});

Deno.test("PacketDecoder.push() rejects a bad first byte before the header completes", () => {
  const d = new PacketDecoder({ version: 4 });
  assert.throws(
    () => d.push(new Uint8Array([0x36]), () => {}),
    MalformedPacketError,
  );
});

interface EncodeRow {
  name: string;
  version: ProtocolVersion;
  packet: Packet;
  error: ErrorClass;
  code: number;
}

const pub = (extra: Partial<Packet & { type: "publish" }>): Packet => ({
  type: "publish",
  topic: "a",
  payload: new Uint8Array(0),
  qos: 0,
  retain: false,
  dup: false,
  ...extra,
} as Packet);

const ENCODE_ROWS: EncodeRow[] = [
  {
    name: "a property not allowed in the packet",
    version: 5,
    packet: { type: "puback", packetId: 1, properties: { topicAlias: 1 } },
    ...M,
  },
  {
    name: "a will property in CONNECT properties",
    version: 5,
    packet: {
      type: "connect",
      protocolVersion: 5,
      clientId: "c",
      cleanStart: true,
      keepAlive: 0,
      properties: { willDelayInterval: 1 },
    },
    ...M,
  },
  {
    name: "a byte flag of 2",
    version: 5,
    packet: pub({ properties: { payloadFormatIndicator: 2 } }),
    ...P,
  },
  {
    name: "subscription identifier 0",
    version: 5,
    packet: pub({ properties: { subscriptionIdentifiers: [0] } }),
    ...P,
  },
  {
    name: "two subscription identifiers in SUBSCRIBE",
    version: 5,
    packet: {
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "a", qos: 0 }],
      properties: { subscriptionIdentifiers: [1, 2] },
    },
    ...P,
  },
  {
    name: "topic alias 0",
    version: 5,
    packet: pub({ properties: { topicAlias: 0 } }),
    error: MqttError,
    code: ReasonCode.TopicAliasInvalid,
  },
  {
    name: "QoS 1 PUBLISH without packet id",
    version: 4,
    packet: pub({ qos: 1 }),
    ...P,
  },
  {
    name: "PUBACK packet id 0",
    version: 4,
    packet: { type: "puback", packetId: 0 },
    ...P,
  },
  {
    name: "empty SUBSCRIBE",
    version: 4,
    packet: { type: "subscribe", packetId: 1, subscriptions: [] },
    ...P,
  },
  {
    name: "empty UNSUBSCRIBE",
    version: 4,
    packet: { type: "unsubscribe", packetId: 1, filters: [] },
    ...P,
  },
  {
    name: "3.1.1 password without user name",
    version: 4,
    packet: {
      type: "connect",
      protocolVersion: 4,
      clientId: "c",
      cleanStart: true,
      keepAlive: 0,
      password: new Uint8Array(1),
    },
    ...P,
  },
  { name: "AUTH in 3.1.1", version: 4, packet: { type: "auth" }, ...P },
  {
    name: "a topic with U+0000",
    version: 4,
    packet: pub({ topic: "a\u0000" }),
    ...M,
  },
  {
    name: "a topic with a lone surrogate",
    version: 4,
    packet: pub({ topic: "a\ud800" }),
    ...M,
  },
  {
    name: "a topic over 65535 bytes",
    version: 4,
    packet: pub({ topic: "é".repeat(40000) }),
    ...M,
  },
  { name: "QoS 3", version: 4, packet: pub({ qos: 3 as 0 }), ...M },
];

for (const row of ENCODE_ROWS) {
  Deno.test(`encode() rejects ${row.name}`, () => {
    assert.throws(() => encode(row.packet, { version: row.version }), (e) => {
      assert.ok(e instanceof row.error, String(e));
      assert.equal((e as MqttError).reasonCode, row.code);
      return true;
    });
  });
}

Deno.test("PacketDecoder.push() rejects an oversized packet from a partial header", () => {
  const d = new PacketDecoder({ version: 4, maxPacketSize: 100 });
  // Two length bytes with continuation: at least 128 * 128 bytes follow.
  assert.throws(
    () => d.push(new Uint8Array([0x30, 0x80, 0x80]), () => {}),
    PacketTooLargeError,
  );
  assert.equal(d.buffered, 0);
  // A tiny limit never holds more header bytes than it allows.
  const tiny = new PacketDecoder({ version: 4, maxPacketSize: 2 });
  tiny.push(new Uint8Array([0xc0]), () => {});
  assert.equal(tiny.buffered, 1);
  assert.throws(
    () => tiny.push(new Uint8Array([0x80]), () => {}),
    PacketTooLargeError,
  );
});
