/**
 * The codec fixture table: `{ name, version, packet, bytes }`, every packet
 * type in MQTT 3.1.1 and 5.0 plus a 3.1 CONNECT, with properties of every
 * wire type. Bytes are built from small helpers so each group is commented;
 * the helpers are independent of the codec.
 */

import type { Packet, ProtocolVersion } from "../codec/packet.ts";

/** One fixture row. */
export interface Fixture {
  name: string;
  version: ProtocolVersion;
  packet: Packet;
  bytes: Uint8Array;
}

type B = number[];

/** Variable Byte Integer. */
export function vbi(n: number): B {
  const out: B = [];
  do {
    let b = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) b |= 0x80;
    out.push(b);
  } while (n > 0);
  return out;
}
/** Two byte integer. */
export const u16 = (n: number): B => [n >> 8, n & 0xff];
/** Four byte integer. */
export const u32 = (n: number): B => [
  (n >>> 24) & 0xff,
  (n >>> 16) & 0xff,
  (n >>> 8) & 0xff,
  n & 0xff,
];
/** UTF-8 string with its length prefix. */
export function str(s: string): B {
  const b = [...new TextEncoder().encode(s)];
  return [...u16(b.length), ...b];
}
/** Binary data with its length prefix. */
export const bin = (b: B): B => [...u16(b.length), ...b];
/** A property block: length prefix + properties. */
export function props(...list: B[]): B {
  const body = list.flat();
  return [...vbi(body.length), ...body];
}
/** A whole packet: first byte, remaining length, body groups. */
export function pkt(first: number, ...groups: B[]): Uint8Array {
  const body = groups.flat();
  return new Uint8Array([first, ...vbi(body.length), ...body]);
}

const te = new TextEncoder();
const u8 = (s: string) => te.encode(s);

export const FIXTURES: Fixture[] = [
  // ---------------------------------------------------------------- MQTT 3.1
  {
    name: "3.1 CONNECT (MQIsdp, level 3)",
    version: 3,
    packet: {
      type: "connect",
      protocolVersion: 3,
      clientId: "old-client",
      cleanStart: true,
      keepAlive: 30,
    },
    bytes: pkt(
      0x10, // CONNECT
      str("MQIsdp"), // protocol name
      [3], // level 3
      [0b0000_0010], // flags: clean session
      u16(30), // keep alive
      str("old-client"), // client id
    ),
  },
  // -------------------------------------------------------------- MQTT 3.1.1
  {
    name: "3.1.1 CONNECT minimal (literal bytes)",
    version: 4,
    packet: {
      type: "connect",
      protocolVersion: 4,
      clientId: "c1",
      cleanStart: true,
      keepAlive: 60,
    },
    // deno-fmt-ignore
    bytes: new Uint8Array([
      0x10, 14, // CONNECT, remaining length 14
      0, 4, 0x4d, 0x51, 0x54, 0x54, // protocol name "MQTT"
      4, // level 4
      0x02, // connect flags: clean session
      0, 60, // keep alive 60 s
      0, 2, 0x63, 0x31, // client id "c1"
    ]),
  },
  {
    name: "3.1.1 CONNECT from a bridge (Mosquitto's try_private: level 0x84)",
    version: 4,
    packet: {
      type: "connect",
      protocolVersion: 4,
      clientId: "b1",
      cleanStart: false,
      keepAlive: 60,
      bridge: true,
    },
    bytes: pkt(
      0x10, // CONNECT
      str("MQTT"), // protocol name
      [0x84], // level 4 with the bridge bit (0x80)
      [0], // flags: none
      u16(60), // keep alive
      str("b1"), // client id
    ),
  },
  {
    name: "3.1 CONNECT from a bridge (level 0x83)",
    version: 3,
    packet: {
      type: "connect",
      protocolVersion: 3,
      clientId: "b1",
      cleanStart: true,
      keepAlive: 60,
      bridge: true,
    },
    bytes: pkt(
      0x10, // CONNECT
      str("MQIsdp"), // protocol name
      [0x83], // level 3 with the bridge bit (0x80)
      [0b0000_0010], // flags: clean session
      u16(60), // keep alive
      str("b1"), // client id
    ),
  },
  {
    name: "3.1.1 CONNECT with will, user name and password",
    version: 4,
    packet: {
      type: "connect",
      protocolVersion: 4,
      clientId: "client-ü",
      cleanStart: false,
      keepAlive: 0,
      will: { topic: "last/will", payload: u8("gone"), qos: 1, retain: true },
      username: "user",
      password: new Uint8Array([1, 2, 0, 255]),
    },
    bytes: pkt(
      0x10,
      str("MQTT"),
      [4],
      [0b1110_1100], // user, password, will retain, will QoS 1, will flag
      u16(0), // keep alive off
      str("client-ü"), // client id (non-ASCII)
      str("last/will"), // will topic
      bin([...u8("gone")]), // will payload
      str("user"), // user name
      bin([1, 2, 0, 255]), // password (binary)
    ),
  },
  {
    name: "3.1.1 CONNACK session present, accepted",
    version: 4,
    packet: { type: "connack", sessionPresent: true, reasonCode: 0 },
    bytes: new Uint8Array([0x20, 2, 0x01, 0x00]), // CONNACK, length 2 | session present | accepted
  },
  {
    name: "3.1.1 CONNACK not authorized (5)",
    version: 4,
    packet: { type: "connack", sessionPresent: false, reasonCode: 5 },
    bytes: new Uint8Array([0x20, 2, 0x00, 0x05]), // CONNACK, length 2 | no session | return code 5
  },
  {
    name: "3.1.1 PUBLISH QoS 0 (literal bytes)",
    version: 4,
    packet: {
      type: "publish",
      topic: "a/b",
      payload: u8("hi"),
      qos: 0,
      retain: false,
      dup: false,
    },
    // deno-fmt-ignore
    bytes: new Uint8Array([
      0x30, 7, // PUBLISH QoS 0, remaining length 7
      0, 3, 0x61, 0x2f, 0x62, // topic "a/b"
      0x68, 0x69, // payload "hi"
    ]),
  },
  {
    name: "3.1.1 PUBLISH QoS 1 dup retain",
    version: 4,
    packet: {
      type: "publish",
      topic: "sensors/🌡/temp",
      payload: u8("21.5"),
      qos: 1,
      retain: true,
      dup: true,
      packetId: 0x1234,
    },
    bytes: pkt(
      0x3b, // PUBLISH, DUP, QoS 1, RETAIN
      str("sensors/🌡/temp"), // topic with a 4-byte character
      u16(0x1234), // packet id
      [...u8("21.5")], // payload
    ),
  },
  {
    name: "3.1.1 PUBLISH QoS 2 empty payload",
    version: 4,
    packet: {
      type: "publish",
      topic: "t",
      payload: new Uint8Array(0),
      qos: 2,
      retain: false,
      dup: false,
      packetId: 65535,
    },
    bytes: pkt(0x34, str("t"), u16(65535)), // PUBLISH QoS 2 | topic "t" | packet id 65535 | no payload
  },
  {
    name: "3.1.1 PUBLISH with a 200-byte payload (2-byte remaining length)",
    version: 4,
    packet: {
      type: "publish",
      topic: "big",
      payload: new Uint8Array(200).fill(7),
      qos: 0,
      retain: false,
      dup: false,
    },
    bytes: pkt(0x30, str("big"), new Array(200).fill(7)), // PUBLISH | topic "big" | 200 payload bytes (length 0xcf 0x01)
  },
  {
    name:
      "5.0 PUBLISH with a 200-byte payload: the remaining length in the 2 bytes it needs, Property Length 0 v5:[MQTT-1.5.5-1] v5:[MQTT-2.2.2-1]",
    version: 5,
    packet: {
      type: "publish",
      topic: "big",
      payload: new Uint8Array(200).fill(7),
      qos: 0,
      retain: false,
      dup: false,
    },
    bytes: pkt(0x30, str("big"), [0], new Array(200).fill(7)), // PUBLISH | topic "big" | no properties | 200 payload bytes (length 0xd0 0x01)
  },
  {
    name: "3.1.1 PUBACK",
    version: 4,
    packet: { type: "puback", packetId: 1 },
    bytes: new Uint8Array([0x40, 2, 0, 1]), // PUBACK, length 2 | packet id 1
  },
  {
    name: "3.1.1 PUBREC",
    version: 4,
    packet: { type: "pubrec", packetId: 2 },
    bytes: new Uint8Array([0x50, 2, 0, 2]), // PUBREC, length 2 | packet id 2
  },
  {
    name: "3.1.1 PUBREL (flags 0b0010)",
    version: 4,
    packet: { type: "pubrel", packetId: 3 },
    bytes: new Uint8Array([0x62, 2, 0, 3]), // PUBREL with flags 0b0010, length 2 | packet id 3
  },
  {
    name: "3.1.1 PUBCOMP",
    version: 4,
    packet: { type: "pubcomp", packetId: 0x0304 },
    bytes: new Uint8Array([0x70, 2, 3, 4]), // PUBCOMP, length 2 | packet id 0x0304
  },
  {
    name: "3.1.1 SUBSCRIBE two filters",
    version: 4,
    packet: {
      type: "subscribe",
      packetId: 10,
      subscriptions: [
        { filter: "a/+/c", qos: 1 },
        { filter: "#", qos: 2 },
      ],
    },
    bytes: pkt(
      0x82, // SUBSCRIBE, flags 0b0010
      u16(10), // packet id
      str("a/+/c"),
      [1], // QoS 1
      str("#"),
      [2], // QoS 2
    ),
  },
  {
    name: "3.1.1 SUBACK with a failure",
    version: 4,
    packet: { type: "suback", packetId: 10, reasonCodes: [1, 2, 0x80] },
    bytes: pkt(0x90, u16(10), [1, 2, 0x80]), // SUBACK | packet id | granted 1, granted 2, failure
  },
  {
    name: "3.1.1 UNSUBSCRIBE two filters",
    version: 4,
    packet: { type: "unsubscribe", packetId: 11, filters: ["a/b", "$SYS/#"] },
    bytes: pkt(0xa2, u16(11), str("a/b"), str("$SYS/#")), // UNSUBSCRIBE 0b0010 | packet id | two filters
  },
  {
    name: "3.1.1 UNSUBACK",
    version: 4,
    packet: { type: "unsuback", packetId: 11 },
    bytes: new Uint8Array([0xb0, 2, 0, 11]), // UNSUBACK, length 2 | packet id 11
  },
  {
    name: "3.1.1 PINGREQ",
    version: 4,
    packet: { type: "pingreq" },
    bytes: new Uint8Array([0xc0, 0]), // PINGREQ, length 0
  },
  {
    name: "3.1.1 PINGRESP",
    version: 4,
    packet: { type: "pingresp" },
    bytes: new Uint8Array([0xd0, 0]), // PINGRESP, length 0
  },
  {
    name: "3.1.1 DISCONNECT",
    version: 4,
    packet: { type: "disconnect" },
    bytes: new Uint8Array([0xe0, 0]), // DISCONNECT, length 0
  },
  // ---------------------------------------------------------------- MQTT 5.0
  {
    name: "5.0 CONNECT with every CONNECT and will property",
    version: 5,
    packet: {
      type: "connect",
      protocolVersion: 5,
      clientId: "v5-client",
      cleanStart: true,
      keepAlive: 120,
      properties: {
        sessionExpiryInterval: 3600,
        receiveMaximum: 100,
        maximumPacketSize: 1048576,
        topicAliasMaximum: 10,
        requestResponseInformation: 1,
        requestProblemInformation: 0,
        userProperties: [["k", "v1"], ["k", "v2"], ["other", ""]],
        authenticationMethod: "SCRAM-SHA-1",
        authenticationData: new Uint8Array([9, 8, 7]),
      },
      will: {
        topic: "status/v5-client",
        payload: u8("offline"),
        qos: 2,
        retain: false,
        properties: {
          willDelayInterval: 5,
          payloadFormatIndicator: 1,
          messageExpiryInterval: 60,
          contentType: "text/plain",
          responseTopic: "reply/here",
          correlationData: new Uint8Array([0xca, 0xfe]),
          userProperties: [["w", "x"]],
        },
      },
      username: "alice",
      password: u8("secret"),
    },
    bytes: pkt(
      0x10,
      str("MQTT"),
      [5], // level 5
      [0b1101_0110], // user, password, will QoS 2, will flag, clean start
      u16(120), // keep alive
      props(
        [0x11, ...u32(3600)], // session expiry interval (u32)
        [0x21, ...u16(100)], // receive maximum (u16)
        [0x27, ...u32(1048576)], // maximum packet size
        [0x22, ...u16(10)], // topic alias maximum
        [0x19, 1], // request response information (byte)
        [0x17, 0], // request problem information
        [0x26, ...str("k"), ...str("v1")], // user property (pair)
        [0x26, ...str("k"), ...str("v2")], // repeated key, order kept
        [0x26, ...str("other"), ...str("")], // empty value
        [0x15, ...str("SCRAM-SHA-1")], // authentication method (string)
        [0x16, ...bin([9, 8, 7])], // authentication data (binary)
      ),
      str("v5-client"), // client id
      props( // will properties
        [0x18, ...u32(5)], // will delay interval
        [0x01, 1], // payload format indicator
        [0x02, ...u32(60)], // message expiry interval
        [0x03, ...str("text/plain")], // content type
        [0x08, ...str("reply/here")], // response topic
        [0x09, ...bin([0xca, 0xfe])], // correlation data
        [0x26, ...str("w"), ...str("x")], // user property
      ),
      str("status/v5-client"), // will topic
      bin([...u8("offline")]), // will payload
      str("alice"), // user name
      bin([...u8("secret")]), // password
    ),
  },
  {
    name: "5.0 CONNECT password without user name, empty client id",
    version: 5,
    packet: {
      type: "connect",
      protocolVersion: 5,
      clientId: "",
      cleanStart: true,
      keepAlive: 10,
      password: new Uint8Array([1]),
    },
    bytes: pkt(
      0x10,
      str("MQTT"),
      [5],
      [0b0100_0010], // password, clean start
      u16(10),
      props(), // no properties
      str(""), // empty client id
      bin([1]), // password
    ),
  },
  {
    name: "5.0 CONNACK with every CONNACK property",
    version: 5,
    packet: {
      type: "connack",
      sessionPresent: false,
      reasonCode: 0,
      properties: {
        sessionExpiryInterval: 0xffffffff,
        receiveMaximum: 65535,
        maximumQoS: 1,
        retainAvailable: 0,
        maximumPacketSize: 268435460,
        assignedClientIdentifier: "auto-1",
        topicAliasMaximum: 5,
        reasonString: "welcome",
        userProperties: [["region", "eu"]],
        wildcardSubscriptionAvailable: 1,
        subscriptionIdentifierAvailable: 1,
        sharedSubscriptionAvailable: 0,
        serverKeepAlive: 30,
        responseInformation: "resp/",
        serverReference: "other:1883",
        authenticationMethod: "m",
        authenticationData: new Uint8Array(0),
      },
    },
    bytes: pkt(
      0x20,
      [0], // no session present
      [0], // success
      props(
        [0x11, ...u32(0xffffffff)], // session expiry (never)
        [0x21, ...u16(65535)], // receive maximum
        [0x24, 1], // maximum QoS 1
        [0x25, 0], // retain not available
        [0x27, ...u32(268435460)], // maximum packet size
        [0x12, ...str("auto-1")], // assigned client id
        [0x22, ...u16(5)], // topic alias maximum
        [0x1f, ...str("welcome")], // reason string
        [0x26, ...str("region"), ...str("eu")], // user property
        [0x28, 1], // wildcard subscriptions available
        [0x29, 1], // subscription identifiers available
        [0x2a, 0], // shared subscriptions not available
        [0x13, ...u16(30)], // server keep alive
        [0x1a, ...str("resp/")], // response information
        [0x1c, ...str("other:1883")], // server reference
        [0x15, ...str("m")], // authentication method
        [0x16, ...bin([])], // empty authentication data
      ),
    ),
  },
  {
    name: "5.0 CONNACK refused without properties",
    version: 5,
    packet: { type: "connack", sessionPresent: false, reasonCode: 0x87 },
    bytes: new Uint8Array([0x20, 3, 0, 0x87, 0]), // CONNACK, length 3 | no session | 0x87 | empty properties
  },
  {
    name: "5.0 PUBLISH QoS 1 with every PUBLISH property",
    version: 5,
    packet: {
      type: "publish",
      topic: "req/1",
      payload: u8("{}"),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 77,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 10,
        topicAlias: 3,
        responseTopic: "res/1",
        correlationData: new Uint8Array([1, 2, 3, 4]),
        userProperties: [["a", "1"], ["a", "2"]],
        subscriptionIdentifiers: [1, 300, 268435455],
        contentType: "application/json",
      },
    },
    bytes: pkt(
      0x32, // PUBLISH QoS 1
      str("req/1"), // topic
      u16(77), // packet id
      props(
        [0x01, 1], // payload format indicator: UTF-8
        [0x02, ...u32(10)], // message expiry
        [0x23, ...u16(3)], // topic alias
        [0x08, ...str("res/1")], // response topic
        [0x09, ...bin([1, 2, 3, 4])], // correlation data
        [0x26, ...str("a"), ...str("1")], // user property
        [0x26, ...str("a"), ...str("2")], // same key again
        [0x0b, ...vbi(1)], // subscription identifier 1
        [0x0b, ...vbi(300)], // 300: two-byte varint
        [0x0b, 0xff, 0xff, 0xff, 0x7f], // the largest, four bytes
        [0x03, ...str("application/json")], // content type
      ),
      [...u8("{}")], // payload
    ),
  },
  {
    name: "5.0 PUBLISH empty topic with a topic alias",
    version: 5,
    packet: {
      type: "publish",
      topic: "",
      payload: u8("x"),
      qos: 0,
      retain: true,
      dup: false,
      properties: { topicAlias: 3 },
    },
    bytes: pkt(0x31, str(""), props([0x23, ...u16(3)]), [0x78]), // PUBLISH QoS 0 RETAIN | empty topic | alias 3 | payload "x"
  },
  {
    name: "5.0 PUBLISH QoS 0 without properties",
    version: 5,
    packet: {
      type: "publish",
      topic: "a",
      payload: new Uint8Array(0),
      qos: 0,
      retain: false,
      dup: false,
    },
    bytes: new Uint8Array([0x30, 4, 0, 1, 0x61, 0]), // PUBLISH, length 4 | topic "a" | empty properties | no payload
  },
  {
    name: "5.0 PUBACK success, short form",
    version: 5,
    packet: { type: "puback", packetId: 5 },
    bytes: new Uint8Array([0x40, 2, 0, 5]), // PUBACK, length 2 | packet id 5 (reason 0x00 implied)
  },
  {
    name: "5.0 PUBACK no matching subscribers, no properties",
    version: 5,
    packet: { type: "puback", packetId: 5, reasonCode: 0x10 },
    bytes: new Uint8Array([0x40, 3, 0, 5, 0x10]), // PUBACK, length 3 | packet id 5 | 0x10, no properties
  },
  {
    name: "5.0 PUBREC with a reason string",
    version: 5,
    packet: {
      type: "pubrec",
      packetId: 6,
      reasonCode: 0x97,
      properties: { reasonString: "quota" },
    },
    bytes: pkt(0x50, u16(6), [0x97], props([0x1f, ...str("quota")])), // PUBREC | packet id | 0x97 quota exceeded | reason string
  },
  {
    name: "5.0 PUBREL packet id not found",
    version: 5,
    packet: { type: "pubrel", packetId: 7, reasonCode: 0x92 },
    bytes: new Uint8Array([0x62, 3, 0, 7, 0x92]), // PUBREL, length 3 | packet id 7 | 0x92
  },
  {
    name: "5.0 PUBCOMP success with a user property",
    version: 5,
    packet: {
      type: "pubcomp",
      packetId: 8,
      reasonCode: 0,
      properties: { userProperties: [["t", "1"]] },
    },
    bytes: pkt(0x70, u16(8), [0], props([0x26, ...str("t"), ...str("1")])), // PUBCOMP | packet id | success | user property
  },
  {
    name: "5.0 SUBSCRIBE with options and a subscription identifier",
    version: 5,
    packet: {
      type: "subscribe",
      packetId: 9,
      properties: {
        subscriptionIdentifiers: [16384],
        userProperties: [["s", "1"]],
      },
      subscriptions: [
        {
          filter: "a/#",
          qos: 2,
          noLocal: true,
          retainAsPublished: true,
          retainHandling: 2,
        },
        { filter: "$share/g/b/+", qos: 0, retainHandling: 1 },
        { filter: "c", qos: 1 },
      ],
    },
    bytes: pkt(
      0x82,
      u16(9),
      props(
        [0x0b, ...vbi(16384)], // subscription identifier (3-byte varint)
        [0x26, ...str("s"), ...str("1")],
      ),
      str("a/#"),
      [0b10_1_1_10], // retain handling 2, RAP, no local, QoS 2
      str("$share/g/b/+"),
      [0b01_0_0_00], // retain handling 1, QoS 0
      str("c"),
      [1],
    ),
  },
  {
    name: "5.0 SUBACK with a reason string",
    version: 5,
    packet: {
      type: "suback",
      packetId: 9,
      reasonCodes: [2, 0, 0x9e],
      properties: { reasonString: "no shared" },
    },
    bytes: pkt(
      0x90, // SUBACK
      u16(9), // packet id
      props([0x1f, ...str("no shared")]), // reason string
      [2, 0, 0x9e], // granted 2, granted 0, shared subscriptions not supported
    ),
  },
  {
    name: "5.0 UNSUBSCRIBE with a user property",
    version: 5,
    packet: {
      type: "unsubscribe",
      packetId: 12,
      filters: ["a/#"],
      properties: { userProperties: [["u", "v"]] },
    },
    bytes: pkt(
      0xa2,
      u16(12),
      props([0x26, ...str("u"), ...str("v")]),
      str("a/#"),
    ),
  },
  {
    name: "5.0 UNSUBACK with reason codes",
    version: 5,
    packet: { type: "unsuback", packetId: 12, reasonCodes: [0, 0x11] },
    bytes: pkt(0xb0, u16(12), props(), [0, 0x11]), // UNSUBACK | packet id | no properties | success, no subscription
  },
  {
    name: "5.0 PINGREQ",
    version: 5,
    packet: { type: "pingreq" },
    bytes: new Uint8Array([0xc0, 0]), // PINGREQ, length 0
  },
  {
    name: "5.0 PINGRESP",
    version: 5,
    packet: { type: "pingresp" },
    bytes: new Uint8Array([0xd0, 0]), // PINGRESP, length 0
  },
  {
    name: "5.0 DISCONNECT normal, short form",
    version: 5,
    packet: { type: "disconnect" },
    bytes: new Uint8Array([0xe0, 0]), // DISCONNECT, length 0 (normal, no properties)
  },
  {
    name: "5.0 DISCONNECT with will message, reason code only",
    version: 5,
    packet: { type: "disconnect", reasonCode: 0x04 },
    bytes: new Uint8Array([0xe0, 1, 0x04]), // DISCONNECT, length 1 | 0x04 with will message
  },
  {
    name: "5.0 DISCONNECT with every DISCONNECT property",
    version: 5,
    packet: {
      type: "disconnect",
      reasonCode: 0x9c,
      properties: {
        sessionExpiryInterval: 0,
        reasonString: "moved",
        serverReference: "b:1883",
        userProperties: [["x", "y"]],
      },
    },
    bytes: pkt(
      0xe0,
      [0x9c], // use another server
      props(
        [0x11, ...u32(0)],
        [0x1f, ...str("moved")],
        [0x1c, ...str("b:1883")],
        [0x26, ...str("x"), ...str("y")],
      ),
    ),
  },
  {
    name: "5.0 AUTH success, short form",
    version: 5,
    packet: { type: "auth" },
    bytes: new Uint8Array([0xf0, 0]), // AUTH, length 0 (success, no properties)
  },
  {
    name: "5.0 AUTH continue with method and data",
    version: 5,
    packet: {
      type: "auth",
      reasonCode: 0x18,
      properties: {
        authenticationMethod: "SCRAM-SHA-1",
        authenticationData: u8("c=biws"),
        reasonString: "step 2",
        userProperties: [["n", "2"]],
      },
    },
    bytes: pkt(
      0xf0,
      [0x18], // continue authentication
      props(
        [0x15, ...str("SCRAM-SHA-1")],
        [0x16, ...bin([...u8("c=biws")])],
        [0x1f, ...str("step 2")],
        [0x26, ...str("n"), ...str("2")],
      ),
    ),
  },
];
