/**
 * The broker against the normative statements of MQTT 5.0: packet-level
 * sessions over the row runner of _broker_rows.ts, each citing the
 * statements it checks (see docs/conformance.md). Every row speaks 5.0
 * (`v5_` file: the citations are 5.0 ids).
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Packet, Properties } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  ack,
  c5,
  connack5,
  disconnect,
  PINGREQ,
  PINGRESP,
  publish,
  raw,
  refused,
  registerRows,
  type Row,
  str,
  suback,
  subscribe,
  will,
} from "./_broker_rows.ts";
import { RawClient, startBroker } from "./_helpers.ts";

const enc = new TextEncoder();
const SP1 = { ...connack5(), sessionPresent: true };
/** A CONNECT that keeps its session 60 s after the connection. */
const p5 = (clientId = "c", properties: Properties = {}) =>
  c5({
    clientId,
    cleanStart: false,
    properties: { sessionExpiryInterval: 60, ...properties },
  });

function retained(topic: string, payload: string, qos: 0 | 1 = 0): Packet {
  return publish(topic, qos, qos === 0 ? undefined : 9, {
    retain: true,
    payload: enc.encode(payload),
  });
}

function unsubscribe(packetId: number, ...filters: string[]): Packet {
  return { type: "unsubscribe", packetId, filters };
}

function unsuback(packetId: number, ...reasonCodes: number[]): Packet {
  return { type: "unsuback", packetId, reasonCodes };
}

function sub(
  packetId: number,
  filter: string,
  qos: 0 | 1 | 2,
  options: {
    noLocal?: boolean;
    retainAsPublished?: boolean;
    retainHandling?: 0 | 1 | 2;
  } = {},
  properties?: Properties,
): Packet {
  const p: Packet = {
    type: "subscribe",
    packetId,
    subscriptions: [{ filter, qos, ...options }],
  };
  if (properties !== undefined) p.properties = properties;
  return p;
}

const protocolError = disconnect(ReasonCode.ProtocolError);
const malformed = disconnect(ReasonCode.MalformedPacket);

const ROWS: Row[] = [
  // Data representation, identifiers, flags
  {
    name:
      "a topic starting with EF BB BF (U+FEFF) is kept: it matches only the same filter [MQTT-1.5.4-3]",
    version: 5,
    in: [c5(), subscribe(1, ["\ufeffa", 0], ["a", 0]), publish("\ufeffa", 0)],
    out: [connack5(), suback(1, 0, 0), publish("\ufeffa", 0)],
  },
  {
    name:
      "a Remaining Length in more bytes than needed (0x82 0x00 for 2): DISCONNECT 0x81 [MQTT-1.5.5-1] [MQTT-4.13.1-1]",
    version: 5,
    // PINGREQ with remaining length 0 written in two bytes
    in: [c5(), new Uint8Array([0xc0, 0x80, 0x00])],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name:
      "a user property whose value is not UTF-8: DISCONNECT 0x81 [MQTT-1.5.7-1]",
    version: 5,
    // PUBLISH QoS 0 | "t" | properties: user property "k" = FF | "x"
    in: [
      c5(),
      raw(0x30, ...str("t"), 7, 0x26, ...str("k"), 0, 1, 0xff, 0x78),
    ],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name:
      "QoS 0 to a subscriber: QoS 0, DUP 0, no packet id, topic first, Property Length 0, no Topic Alias nor Authentication Method unasked [MQTT-2.2.1-2] [MQTT-4.3.1-1] [MQTT-2.2.2-1] [MQTT-3.3.2-1] [MQTT-3.3.4-1] [MQTT-3.1.2-27] [MQTT-4.12.0-6]",
    version: 5,
    in: [c5(), subscribe(1, ["t", 0]), publish("t", 0)],
    out: [connack5(), suback(1, 0), publish("t", 0)],
  },
  {
    name:
      "QoS 1 to a subscriber: a fresh packet id per message, QoS 1, DUP 0, kept until PUBACK; PUBACK echoes the id [MQTT-4.3.2-1] [MQTT-4.3.2-2] [MQTT-4.3.2-3] [MQTT-2.2.1-4] [MQTT-2.2.1-5] [MQTT-3.4.2-1]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["t", 1]),
      publish("t", 1, 7),
      publish("t", 1, 8),
      ack("puback", 1),
      publish("t", 1, 9),
    ],
    out: [
      connack5(),
      suback(1, 1),
      publish("t", 1, 1),
      ack("puback", 7),
      publish("t", 1, 2),
      ack("puback", 8),
      publish("t", 1, 3),
      ack("puback", 9),
    ],
  },
  {
    name:
      "QoS 2 to a subscriber: QoS 2 DUP 0, PUBREC -> PUBREL with the id, PUBCOMP ends it [MQTT-4.3.3-1] [MQTT-4.3.3-2] [MQTT-4.3.3-3] [MQTT-4.3.3-4] [MQTT-4.3.3-5] [MQTT-2.1.3-1] [MQTT-2.2.1-5] [MQTT-3.5.2-1] [MQTT-3.6.2-1] [MQTT-3.7.2-1]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["t", 2]),
      publish("t", 2, 7),
      ack("pubrec", 1),
      ack("pubcomp", 1),
      ack("pubrel", 7),
      publish("t", 2, 8),
    ],
    out: [
      connack5(),
      suback(1, 2),
      publish("t", 2, 1),
      ack("pubrec", 7),
      ack("pubrel", 1),
      ack("pubcomp", 7),
      publish("t", 2, 2),
      ack("pubrec", 8),
    ],
  },
  {
    name:
      "a PUBLISH received with DUP 1 is forwarded with DUP 0; after its PUBACK the same packet id is a new message [MQTT-3.3.1-3] [MQTT-4.3.2-5]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["t", 1]),
      publish("t", 1, 7, { dup: true }),
      publish("t", 1, 7, { dup: true }),
    ],
    out: [
      connack5(),
      suback(1, 1),
      publish("t", 1, 1),
      ack("puback", 7),
      publish("t", 1, 2),
      ack("puback", 7),
    ],
  },
  {
    name:
      "after its PUBCOMP the same QoS 2 packet id is a new message [MQTT-4.3.3-12]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["t", 0]),
      publish("t", 2, 5),
      ack("pubrel", 5),
      publish("t", 2, 5),
    ],
    out: [
      connack5(),
      suback(1, 0),
      publish("t", 0),
      ack("pubrec", 5),
      ack("pubcomp", 5),
      publish("t", 0),
      ack("pubrec", 5),
    ],
  },
  {
    name: "a PUBLISH with QoS 3: DISCONNECT 0x81 [MQTT-3.3.1-4]",
    version: 5,
    in: [c5(), raw(0x36, ...str("t"), 0, 1, 0)],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name:
      "a PUBLISH with a wildcard in its topic name: DISCONNECT, closed [MQTT-4.7.0-1] [MQTT-3.3.2-2]",
    version: 5,
    in: [c5(), raw(0x30, ...str("a/+"), 0, 0x78)],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name:
      "a topic name of 65,535 bytes, the longest a string holds, is delivered [MQTT-4.7.3-3]",
    version: 5,
    in: [c5(), subscribe(1, ["#", 0]), publish("x".repeat(65535), 0)],
    out: [connack5(), suback(1, 0), publish("x".repeat(65535), 0)],
  },
  {
    name:
      "a Response Topic with a wildcard: DISCONNECT 0x81, closed, not forwarded [MQTT-3.3.2-14]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["t", 0]),
      publish("t", 0, undefined, { properties: { responseTopic: "r/#" } }),
    ],
    out: [connack5(), suback(1, 0), malformed],
    closes: true,
  },
  {
    name:
      "a Response Topic or a Content Type that is not UTF-8: DISCONNECT 0x81 [MQTT-3.3.2-13] [MQTT-3.3.2-19]",
    version: 5,
    // PUBLISH QoS 0 | "t" | properties: Response Topic (0x08) FF | "x"
    in: [c5(), raw(0x30, ...str("t"), 4, 0x08, 0, 1, 0xff, 0x78)],
    out: [connack5(), malformed],
    closes: true,
  },
  // CONNECT and CONNACK
  {
    name:
      "CONNECT level 5 with protocol name MQTX: refused with a v5 CONNACK 0x84 and closed v5:[MQTT-3.1.2-1]",
    version: 5,
    in: [raw(0x10, ...str("MQTX"), 5, 0x02, 0, 0, 0, ...str("c"))],
    out: [refused(0x84)],
    closes: true,
  },
  {
    name:
      "CONNECT with the reserved flag set: closed, nothing sent [MQTT-3.1.2-3] [MQTT-3.1.4-1]",
    version: 5,
    // CONNECT | "MQTT" | 5 | flags 0x03 | keep alive 0 | no properties | "c"
    in: [raw(0x10, ...str("MQTT"), 5, 0x03, 0, 0, 0, ...str("c"))],
    out: "closed",
  },
  {
    name:
      "CONNECT accepted: CONNACK 0x00 first, Session Present 0 for Clean Start 1, before anything else, and only one [MQTT-3.1.4-5] [MQTT-3.2.0-1] [MQTT-3.2.0-2] [MQTT-3.2.2-2] [MQTT-3.8.4-1]",
    version: 5,
    in: [c5(), subscribe(1, ["t", 0])],
    out: [connack5(), suback(1, 0)],
  },
  {
    name: "a client id of 23 letters and digits is accepted [MQTT-3.1.3-5]",
    version: 5,
    in: [c5({ clientId: "abcdefghijXYZ0123456789" })],
    out: [connack5()],
  },
  {
    name:
      "the authenticate hook refuses: CONNACK 0x87 with Session Present 0, no DISCONNECT, closed, and what followed the CONNECT is not processed [MQTT-3.1.4-2] [MQTT-3.1.4-6] [MQTT-3.2.2-6] [MQTT-3.2.2-7] [MQTT-3.2.2-8] [MQTT-3.14.0-1] [MQTT-4.13.2-1]",
    version: 5,
    options: {
      allowAnonymous: true,
      authenticate: (ctx) =>
        ctx.clientId === "c" ? ReasonCode.NotAuthorized : ReasonCode.Success,
    },
    in: [c5(), publish("seen", 0)],
    out: [refused(ReasonCode.NotAuthorized)],
    closes: true,
    observe: { filter: "seen", out: [] },
  },
  {
    name:
      "Request Response Information 0: the broker returns no Response Information [MQTT-3.1.2-28]",
    version: 5,
    in: [c5({ properties: { requestResponseInformation: 0 } })],
    out: [connack5()],
  },
  {
    name:
      "no Server Keep Alive in the CONNACK: the client's 1 s keep alive applies, DISCONNECT 0x8D after 1.5 s [MQTT-3.2.2-22] [MQTT-3.1.2-22] [MQTT-3.14.2-1] [MQTT-3.14.4-1] [MQTT-3.14.4-2] [MQTT-4.13.2-1]",
    version: 5,
    in: [c5({ keepAlive: 1 })],
    out: [connack5(), disconnect(ReasonCode.KeepAliveTimeout)],
    closes: true,
  },
  {
    name: "PINGREQ: PINGRESP [MQTT-3.12.4-1]",
    version: 5,
    in: [c5(), PINGREQ, PINGREQ],
    out: [connack5(), PINGRESP, PINGRESP],
  },
  {
    name:
      "a broker without QoS 2 still accepts SUBSCRIBE requesting QoS 0, 1 and 2 (granted at most 1) [MQTT-3.2.2-10]",
    version: 5,
    options: { maxQos: 1 },
    in: [c5(), subscribe(1, ["a", 0], ["b", 1], ["c", 2])],
    out: [connack5({ maximumQoS: 1 }), suback(1, 0, 1, 1)],
  },
  {
    name:
      "a Reason String that would take a refusing CONNACK past the client's Maximum Packet Size is left out [MQTT-3.2.2-19]",
    version: 5,
    options: {
      allowAnonymous: true,
      authenticate: () => ReasonCode.NotAuthorized,
    },
    in: [c5({ properties: { maximumPacketSize: 20 } })],
    out: [refused(ReasonCode.NotAuthorized)],
    closes: true,
    strict: true,
  },
  // Sessions
  {
    name:
      "Clean Start 0 with a session: resumed, Session Present 1, the subscription still there; the session outlived the connection [MQTT-3.1.2-5] [MQTT-3.1.2-23] [MQTT-3.1.4-4] [MQTT-3.2.2-3] [MQTT-3.1.3-2] [MQTT-4.1.0-1]",
    version: 5,
    before: [{
      version: 5,
      in: [p5(), subscribe(1, ["t", 1])],
      out: [connack5(), suback(1, 1)],
    }],
    in: [p5(), publish("t", 1, 7)],
    out: [SP1, publish("t", 1, 1), ack("puback", 7)],
  },
  {
    name:
      "Clean Start 0 without a session: a new one, Session Present 0 [MQTT-3.1.2-6] [MQTT-3.2.2-3]",
    version: 5,
    in: [p5(), subscribe(1, ["t", 0]), publish("t", 0)],
    out: [connack5(), suback(1, 0), publish("t", 0)],
  },
  {
    name:
      "messages for an offline session are kept and sent on return, after the CONNACK [MQTT-4.5.0-1] [MQTT-3.2.0-1]",
    version: 5,
    before: [{
      version: 5,
      in: [p5(), subscribe(1, ["t", 2])],
      out: [connack5(), suback(1, 2)],
    }],
    setup: (b) => {
      b.publish("t", "one", { qos: 1 });
      b.publish("t", "two", { qos: 2 });
    },
    in: [p5()],
    out: [
      SP1,
      publish("t", 1, 1, { payload: enc.encode("one") }),
      publish("t", 2, 2, { payload: enc.encode("two") }),
    ],
  },
  {
    name:
      "a PUBLISH sent again after a reconnect has DUP 1 and its first packet id [MQTT-3.3.1-1]",
    version: 5,
    before: [{
      version: 5,
      in: [p5(), subscribe(1, ["t", 1]), publish("t", 1, 7)],
      out: [connack5(), suback(1, 1), publish("t", 1, 1), ack("puback", 7)],
    }],
    in: [p5()],
    out: [SP1, publish("t", 1, 1, { dup: true })],
  },
  {
    name:
      "a PUBLISH the client answered with PUBACK 0x80 counts as acknowledged: not sent again on resume [MQTT-4.4.0-2]",
    version: 5,
    before: [{
      version: 5,
      in: [
        p5(),
        subscribe(1, ["t", 1]),
        publish("t", 1, 7),
        ack("puback", 1, ReasonCode.UnspecifiedError),
      ],
      out: [connack5(), suback(1, 1), publish("t", 1, 1), ack("puback", 7)],
    }],
    in: [p5()],
    out: [SP1],
  },
  {
    name:
      "a QoS 2 message released (PUBREL sent) is not sent again as a PUBLISH on resume: the PUBREL is [MQTT-4.3.3-6]",
    version: 5,
    before: [{
      version: 5,
      in: [p5(), subscribe(1, ["t", 2]), publish("t", 2, 7), ack("pubrec", 1)],
      out: [
        connack5(),
        suback(1, 2),
        publish("t", 2, 1),
        ack("pubrec", 7),
        ack("pubrel", 1),
      ],
    }],
    in: [p5(), ack("pubrel", 7)],
    out: [SP1, ack("pubrel", 1), ack("pubcomp", 7)],
  },
  // Wills
  {
    name:
      "a will (Will Retain 0) is stored and published on a lost connection, not retained; its user properties keep their order [MQTT-3.1.2-7] [MQTT-3.1.2-8] [MQTT-3.1.2-14] [MQTT-3.1.3-10]",
    version: 5,
    in: [
      c5({
        will: {
          ...will,
          properties: { userProperties: [["z", "1"], ["a", "2"], ["z", "0"]] },
        },
      }),
    ],
    out: [connack5()],
    drop: true,
    observe: {
      filter: "will/#",
      version: 5,
      out: [
        publish("will/c", 0, undefined, {
          payload: will.payload,
          properties: {
            userProperties: [["z", "1"], ["a", "2"], ["z", "0"]],
          },
        }),
      ],
    },
    after: [{
      version: 5,
      in: [c5({ clientId: "late" }), subscribe(1, ["will/#", 0])],
      out: [connack5(), suback(1, 0)],
    }],
  },
  {
    name:
      "a will with Will Retain 1 is published as a retained message [MQTT-3.1.2-15]",
    version: 5,
    in: [c5({ will: { ...will, retain: true } })],
    out: [connack5()],
    drop: true,
    observe: {
      filter: "will/#",
      out: [publish("will/c", 0, undefined, { payload: will.payload })],
    },
    after: [{
      version: 5,
      in: [c5({ clientId: "late" }), subscribe(1, ["will/#", 0])],
      out: [
        connack5(),
        suback(1, 0),
        publish("will/c", 0, undefined, {
          payload: will.payload,
          retain: true,
        }),
      ],
    }],
  },
  {
    name:
      "a reconnect before the Will Delay Interval ends: the will is not sent [MQTT-3.1.3-9]",
    version: 5,
    before: [{
      version: 5,
      in: [
        p5("c", {}),
        // (the step drops the connection: no DISCONNECT)
      ].map((p) =>
        p.type === "connect"
          ? {
            ...p,
            will: { ...will, properties: { willDelayInterval: 60 } },
          }
          : p
      ),
      out: [connack5()],
      drop: true,
    }],
    in: [p5(), disconnect(0)],
    out: [SP1],
    closes: true,
    observe: { filter: "will/#", out: [] },
  },
  {
    name:
      "DISCONNECT 0x00: the will is discarded [MQTT-3.14.4-3] [MQTT-3.1.2-10]",
    version: 5,
    in: [c5({ will }), disconnect(0)],
    out: [connack5()],
    closes: true,
    observe: { filter: "will/#", out: [] },
  },
  // Retained messages
  {
    name:
      "a retained message replaces the one before and reaches a new subscriber; RETAIN 0 replaces nothing [MQTT-3.3.1-5] [MQTT-3.3.1-8]",
    version: 5,
    before: [{
      version: 5,
      in: [
        c5({ clientId: "pub" }),
        retained("r/a", "first", 1),
        retained("r/a", "second"),
        publish("r/a", 0, undefined, { payload: enc.encode("not kept") }),
      ],
      out: [connack5(), ack("puback", 9, ReasonCode.NoMatchingSubscribers)],
    }],
    in: [c5(), subscribe(1, ["r/a", 1])],
    out: [
      connack5(),
      suback(1, 1),
      publish("r/a", 0, undefined, {
        retain: true,
        payload: enc.encode("second"),
      }),
    ],
  },
  {
    name:
      "an empty retained message is delivered as usual, removes the retained one and is not kept [MQTT-3.3.1-6] [MQTT-3.3.1-7]",
    version: 5,
    before: [{
      version: 5,
      in: [c5({ clientId: "pub" }), retained("r/a", "old")],
      out: [connack5()],
    }],
    in: [
      c5(),
      sub(1, "r/#", 0, { retainAsPublished: true }),
      retained("r/a", ""),
      sub(2, "r/#", 0),
    ],
    out: [
      connack5(),
      suback(1, 0),
      publish("r/a", 0, undefined, {
        retain: true,
        payload: enc.encode("old"),
      }),
      publish("r/a", 0, undefined, { retain: true, payload: new Uint8Array() }),
      suback(2, 0),
    ],
  },
  // SUBSCRIBE and UNSUBSCRIBE
  {
    name:
      "SUBSCRIBE with three filters: one SUBACK with its packet id, a reason code per filter in order, from the SUBACK table [MQTT-3.8.4-2] [MQTT-3.8.4-5] [MQTT-3.8.4-6] [MQTT-3.9.3-1] [MQTT-3.9.3-2] [MQTT-2.2.1-6]",
    version: 5,
    options: {
      sharedSubscriptionAvailable: false,
      wildcardSubscriptionAvailable: false,
    },
    in: [
      c5(),
      subscribe(5, ["a", 1], ["$share/g/b", 2], ["c/+", 0], ["d", 2]),
    ],
    out: [
      connack5({
        sharedSubscriptionAvailable: 0,
        wildcardSubscriptionAvailable: 0,
      }),
      suback(
        5,
        1,
        ReasonCode.SharedSubscriptionsNotSupported,
        ReasonCode.WildcardSubscriptionsNotSupported,
        2,
      ),
    ],
  },
  {
    name:
      "reserved bits set in the subscription options: DISCONNECT 0x81 [MQTT-3.8.3-5]",
    version: 5,
    // SUBSCRIBE | id 1 | no properties | "a" options 0x40
    in: [c5(), raw(0x82, 0, 1, 0, ...str("a"), 0x40)],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name:
      "subscribing again to a filter replaces the subscription: its new QoS, one delivery, the retained message again (Retain Handling 0) [MQTT-3.8.4-3] [MQTT-3.8.4-4]",
    version: 5,
    before: [{
      version: 5,
      in: [c5({ clientId: "pub" }), retained("r", "kept")],
      out: [connack5()],
    }],
    in: [
      c5(),
      subscribe(1, ["r", 0]),
      subscribe(2, ["r", 1]),
      publish("r", 1, 7),
    ],
    out: [
      connack5(),
      suback(1, 0),
      publish("r", 0, undefined, { retain: true, payload: enc.encode("kept") }),
      suback(2, 1),
      publish("r", 0, undefined, { retain: true, payload: enc.encode("kept") }),
      publish("r", 1, 1),
      ack("puback", 7),
    ],
  },
  {
    name:
      "a shared subscription delivers at the QoS granted to it [MQTT-4.8.2-3]",
    version: 5,
    in: [c5(), subscribe(1, ["$share/g/t", 0]), publish("t", 1, 7)],
    out: [connack5(), suback(1, 0), publish("t", 0), ack("puback", 7)],
  },
  {
    name:
      "through a wildcard the topic of a delivery matches the filter [MQTT-3.3.2-3]",
    version: 5,
    in: [c5(), subscribe(1, ["a/+", 0]), publish("a/b", 0)],
    out: [connack5(), suback(1, 0), publish("a/b", 0)],
  },
  {
    name:
      "UNSUBSCRIBE compares filters character by character; one UNSUBACK with the packet id and a code per filter, in order [MQTT-3.10.4-1] [MQTT-3.10.4-4] [MQTT-3.10.4-5] [MQTT-3.10.4-6] [MQTT-3.11.3-1] [MQTT-3.11.3-2]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["a/+", 0], ["a/b", 1]),
      unsubscribe(2, "a/+", "A/B"),
      publish("a/b", 1, 7),
    ],
    out: [
      connack5(),
      suback(1, 0, 1),
      unsuback(2, 0, ReasonCode.NoSubscriptionExisted),
      publish("a/b", 1, 1),
      ack("puback", 7),
    ],
  },
  {
    name:
      "after UNSUBSCRIBE no new message of that subscription is sent [MQTT-3.10.4-2]",
    version: 5,
    in: [c5(), subscribe(1, ["a", 0]), unsubscribe(2, "a"), publish("a", 0)],
    out: [connack5(), suback(1, 0), unsuback(2, 0)],
  },
  {
    name:
      "a QoS 2 delivery under way when its subscription goes is completed [MQTT-3.10.4-3]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["t", 2]),
      publish("t", 2, 7),
      unsubscribe(2, "t"),
      ack("pubrec", 1),
    ],
    out: [
      connack5(),
      suback(1, 2),
      publish("t", 2, 1),
      ack("pubrec", 7),
      unsuback(2, 0),
      ack("pubrel", 1),
    ],
  },
  // Flow control
  {
    name:
      "the client's Receive Maximum of 1: one QoS 1 message in flight, the next after its PUBACK; PINGREQ and SUBSCRIBE answered meanwhile [MQTT-3.3.4-9] [MQTT-3.3.4-10] [MQTT-4.9.0-1] [MQTT-4.9.0-2] [MQTT-4.9.0-3]",
    version: 5,
    in: [
      c5({ properties: { receiveMaximum: 1 } }),
      subscribe(1, ["t", 1]),
      publish("t", 1, 7),
      publish("t", 1, 8),
      PINGREQ,
      subscribe(2, ["u", 0]),
      ack("puback", 1),
    ],
    out: [
      connack5(),
      suback(1, 1),
      publish("t", 1, 1),
      ack("puback", 7),
      ack("puback", 8),
      PINGRESP,
      suback(2, 0),
      publish("t", 1, 2),
    ],
  },
  {
    name:
      "a PUBLISH larger than the client's Maximum Packet Size is dropped for it, as if delivered [MQTT-3.1.2-25] [MQTT-3.1.2-24]",
    version: 5,
    in: [
      c5({ properties: { maximumPacketSize: 64 } }),
      subscribe(1, ["t", 1]),
      publish("t", 1, 7, { payload: new Uint8Array(100) }),
      publish("t", 1, 8),
    ],
    out: [
      connack5(),
      suback(1, 1),
      ack("puback", 7),
      publish("t", 1, 1),
      ack("puback", 8),
    ],
  },
  {
    name:
      "a PUBACK Reason String that would pass the client's Maximum Packet Size is left out [MQTT-3.4.2-2]",
    version: 5,
    options: { authorizePublish: () => ReasonCode.NotAuthorized },
    in: [c5({ properties: { maximumPacketSize: 24 } }), publish("t", 1, 7)],
    out: [connack5(), ack("puback", 7, ReasonCode.NotAuthorized)],
    strict: true,
  },
  {
    name:
      "a PUBREC Reason String that would pass the client's Maximum Packet Size is left out [MQTT-3.5.2-2]",
    version: 5,
    options: { authorizePublish: () => ReasonCode.NotAuthorized },
    in: [c5({ properties: { maximumPacketSize: 24 } }), publish("t", 2, 7)],
    out: [connack5(), ack("pubrec", 7, ReasonCode.NotAuthorized)],
    strict: true,
  },
  {
    name:
      "a DISCONNECT Reason String that would pass the client's Maximum Packet Size is left out [MQTT-3.14.2-3]",
    version: 5,
    in: [c5({ properties: { maximumPacketSize: 24 } }), c5()],
    out: [connack5(), protocolError],
    closes: true,
    strict: true,
  },
  {
    name:
      "a PUBREC 0x87 ends the exchange: the same packet id is then a new message [MQTT-4.3.3-9]",
    version: 5,
    options: {
      authorizePublish: (_client, topic) =>
        topic === "d" ? ReasonCode.NotAuthorized : ReasonCode.Success,
    },
    in: [
      c5(),
      subscribe(1, ["#", 0]),
      publish("d", 2, 5),
      publish("t", 2, 5),
    ],
    out: [
      connack5(),
      suback(1, 0),
      ack("pubrec", 5, ReasonCode.NotAuthorized),
      publish("t", 0),
      ack("pubrec", 5),
    ],
  },
  {
    name:
      "an AUTH Reason String that would pass the client's Maximum Packet Size is left out [MQTT-3.15.2-2] [MQTT-4.12.0-2]",
    version: 5,
    options: {
      enhancedAuth: (ctx) =>
        ctx.method !== "TOY" ? undefined : {
          step: () => ({
            reasonCode: ReasonCode.ContinueAuthentication,
            reasonString: "send the password, please, in the next AUTH",
          }),
        },
    },
    in: [
      c5({
        properties: { authenticationMethod: "TOY", maximumPacketSize: 20 },
      }),
      disconnect(0),
    ],
    out: [{
      type: "auth",
      reasonCode: ReasonCode.ContinueAuthentication,
      properties: { authenticationMethod: "TOY" },
    }],
    closes: true,
    strict: true,
  },
  // Malformed fixed headers
  {
    name: "PUBREL with flags 0000: DISCONNECT 0x81 [MQTT-3.6.1-1]",
    version: 5,
    in: [c5(), raw(0x60, 0, 1)],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name: "SUBSCRIBE with flags 0000: DISCONNECT 0x81 [MQTT-3.8.1-1]",
    version: 5,
    in: [c5(), raw(0x80, 0, 1, 0, ...str("a"), 0)],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name: "UNSUBSCRIBE with flags 0000: DISCONNECT 0x81 [MQTT-3.10.1-1]",
    version: 5,
    in: [c5(), raw(0xa0, 0, 1, 0, ...str("a"))],
    out: [connack5(), malformed],
    closes: true,
  },
  {
    name:
      "DISCONNECT with a reserved bit set: DISCONNECT 0x81, the will published [MQTT-3.14.1-1]",
    version: 5,
    in: [c5({ will }), raw(0xe1, 0)],
    out: [connack5(), malformed],
    closes: true,
    observe: {
      filter: "will/#",
      out: [publish("will/c", 0, undefined, { payload: will.payload })],
    },
  },
  {
    name: "AUTH with a reserved bit set: DISCONNECT 0x81 [MQTT-3.15.1-1]",
    version: 5,
    in: [c5(), raw(0xf1, 0)],
    out: [connack5(), malformed],
    closes: true,
  },
  // Ordering
  {
    name:
      "every topic is ordered: one publisher's QoS 1 messages arrive in the order sent [MQTT-4.6.0-5] [MQTT-4.6.0-6]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["o", 1]),
      publish("o", 1, 1, { payload: enc.encode("1") }),
      publish("o", 1, 2, { payload: enc.encode("2") }),
      publish("o", 1, 3, { payload: enc.encode("3") }),
    ],
    out: [
      connack5(),
      suback(1, 1),
      publish("o", 1, 1, { payload: enc.encode("1") }),
      ack("puback", 1),
      publish("o", 1, 2, { payload: enc.encode("2") }),
      ack("puback", 2),
      publish("o", 1, 3, { payload: enc.encode("3") }),
      ack("puback", 3),
    ],
  },
];

registerRows(ROWS, "MQTT 5.0 broker");

Deno.test("MQTT 5.0 broker: an empty client id gets a unique Assigned Client Identifier, used as the client id [MQTT-3.1.3-6] [MQTT-3.1.3-7] [MQTT-3.2.2-16]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await RawClient.connect(port, { protocolVersion: 5, clientId: "" });
  const b = await RawClient.connect(port, { protocolVersion: 5, clientId: "" });
  const idA = a.connack.properties?.assignedClientIdentifier;
  const idB = b.connack.properties?.assignedClientIdentifier;
  assert.ok(idA && idB);
  assert.notEqual(idA, idB);
  // The session is known under the assigned id: a takeover with it works.
  const again = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: idA,
  });
  assert.equal(
    (await a.client.expect("disconnect")).reasonCode,
    ReasonCode.SessionTakenOver,
  );
  await a.client.close();
  await again.client.disconnect();
  await b.client.disconnect();
  await broker.close();
});
