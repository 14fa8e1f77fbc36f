/**
 * The broker against the normative statements of MQTT 3.1.1: packet-level
 * sessions over the row runner of _broker_rows.ts, each citing the
 * statements it checks (see docs/conformance.md). Every row speaks 3.1.1
 * (`v3_` file: the citations are 3.1.1 ids).
 *
 * @module
 */

import assert from "node:assert/strict";
import { ReasonCode } from "../codec/reason_code.ts";
import type { Packet } from "../codec/packet.ts";
import {
  ack,
  c4,
  CONNACK4,
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
const SP1 = { ...CONNACK4, sessionPresent: true };
const persistent = (clientId = "c") => c4({ clientId, cleanStart: false });

function retained(topic: string, payload: string, qos: 0 | 1 = 0): Packet {
  return publish(topic, qos, qos === 0 ? undefined : 9, {
    retain: true,
    payload: enc.encode(payload),
  });
}

function unsubscribe(packetId: number, ...filters: string[]): Packet {
  return { type: "unsubscribe", packetId, filters };
}

const unsuback = (packetId: number): Packet => ({ type: "unsuback", packetId });

const ROWS: Row[] = [
  // Strings, identifiers, flags
  {
    name:
      "a topic starting with EF BB BF (U+FEFF) is kept: it matches only the same filter, and is delivered unchanged [MQTT-1.5.3-3]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["\ufeffa", 0], ["a", 0]),
      publish("\ufeffa", 0),
    ],
    out: [CONNACK4, suback(1, 0, 0), publish("\ufeffa", 0)],
  },
  {
    name:
      "QoS 0 to a subscriber: PUBLISH QoS 0, DUP 0, no packet id, topic first [MQTT-2.3.1-5] [MQTT-4.3.1-1] [MQTT-3.3.2-1] [MQTT-3.3.4-1]",
    version: 4,
    in: [c4(), subscribe(1, ["t", 0]), publish("t", 0)],
    out: [CONNACK4, suback(1, 0), publish("t", 0)],
  },
  {
    name:
      "QoS 1 to a subscriber: a fresh packet id per message, QoS 1, DUP 0, kept until PUBACK; each PUBACK echoes the publisher's id [MQTT-4.3.2-1] [MQTT-2.3.1-4] [MQTT-2.3.1-6] [MQTT-3.3.4-1]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["t", 1]),
      publish("t", 1, 7),
      publish("t", 1, 8),
      ack("puback", 1),
      publish("t", 1, 9),
    ],
    out: [
      CONNACK4,
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
      "QoS 2 to a subscriber: PUBLISH QoS 2 DUP 0, PUBREC -> PUBREL (flags 0010), PUBCOMP ends it; PUBREC/PUBCOMP echo the publisher's id [MQTT-4.3.3-1] [MQTT-2.2.2-1] [MQTT-2.3.1-6] [MQTT-3.3.4-1]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["t", 2]),
      publish("t", 2, 7),
      ack("pubrec", 1),
      ack("pubcomp", 1),
      ack("pubrel", 7),
      publish("t", 2, 8),
    ],
    out: [
      CONNACK4,
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
      "a PUBLISH received with DUP 1 is forwarded with DUP 0 (not a retransmission) [MQTT-3.3.1-3]",
    version: 4,
    in: [c4(), subscribe(1, ["t", 1]), publish("t", 1, 7, { dup: true })],
    out: [CONNACK4, suback(1, 1), publish("t", 1, 1), ack("puback", 7)],
  },
  {
    name:
      "a PUBLISH with a wildcard in its topic name: closed [MQTT-4.7.1-1] [MQTT-3.3.2-2]",
    version: 4,
    // PUBLISH QoS 0 | topic "a/+" | "x"
    in: [c4(), raw(0x30, ...str("a/+"), 0x78)],
    out: [CONNACK4],
    closes: true,
  },
  {
    name:
      "a topic name of 65,535 bytes, the longest a string holds, is delivered [MQTT-4.7.3-3]",
    version: 4,
    in: [c4(), subscribe(1, ["#", 0]), publish("x".repeat(65535), 0)],
    out: [CONNACK4, suback(1, 0), publish("x".repeat(65535), 0)],
  },
  // CONNECT and CONNACK
  {
    name:
      "CONNECT with protocol name MQTX: not processed as MQTT, refused (CONNACK 0x01) and closed [MQTT-3.1.2-1]",
    version: 4,
    // CONNECT | "MQTX" | level 4 | clean | keep alive 0 | client id "c"
    in: [
      raw(0x10, ...str("MQTX"), 4, 0x02, 0, 0, ...str("c")),
      publish("seen", 0),
    ],
    out: [refused(0x01)],
    closes: true,
    observe: { filter: "seen", out: [] },
  },
  {
    name:
      "CONNECT cut short (no client id field): closed without CONNACK [MQTT-3.1.4-1]",
    version: 4,
    in: [raw(0x10, ...str("MQTT"), 4, 0x02, 0, 0)],
    out: "closed",
  },
  {
    name:
      "CONNECT accepted: CONNACK return code 0 is the first packet, before a SUBACK sent in the same write [MQTT-3.1.4-4] [MQTT-3.2.0-1] [MQTT-3.8.4-1]",
    version: 4,
    in: [c4(), subscribe(1, ["t", 0])],
    out: [CONNACK4, suback(1, 0)],
  },
  {
    name: "a client id of 23 letters and digits is accepted [MQTT-3.1.3-5]",
    version: 4,
    in: [c4({ clientId: "abcdefghijXYZ0123456789" })],
    out: [CONNACK4],
  },
  {
    name:
      "an empty client id with clean session 1 is accepted under a unique id of its own [MQTT-3.1.3-6]",
    version: 4,
    in: [c4({ clientId: "" }), subscribe(1, ["t", 0]), publish("t", 0)],
    out: [CONNACK4, suback(1, 0), publish("t", 0)],
  },
  {
    name:
      "a client id the authenticate hook refuses (0x85): CONNACK 0x02, Session Present 0, closed [MQTT-3.1.3-9] [MQTT-3.2.2-4] [MQTT-3.2.2-5]",
    version: 4,
    options: {
      allowAnonymous: true,
      authenticate: () => ReasonCode.ClientIdentifierNotValid,
    },
    in: [c4()],
    out: [refused(0x02)],
    closes: true,
  },
  {
    name:
      "a refused CONNECT: nothing after it in the same write is processed [MQTT-3.1.4-5]",
    version: 4,
    in: [c4({ clientId: "", cleanStart: false }), publish("seen", 0)],
    out: [refused(0x02)],
    closes: true,
    observe: { filter: "seen", out: [] },
  },
  {
    name: "keep alive 1 s and silence: closed after 1.5 s [MQTT-3.1.2-24]",
    version: 4,
    in: [c4({ keepAlive: 1 })],
    out: [CONNACK4],
    closes: true,
  },
  {
    name: "keep alive: PINGREQ answered by PINGRESP [MQTT-3.12.4-1]",
    version: 4,
    in: [c4({ keepAlive: 1 }), PINGREQ],
    out: [CONNACK4, PINGRESP],
  },
  // Sessions
  {
    name:
      "clean session 0 resumes the session of that client id: Session Present 1, the subscription still there [MQTT-3.1.2-4] [MQTT-3.1.4-3] [MQTT-3.1.3-2] [MQTT-4.1.0-1]",
    version: 4,
    before: [{
      version: 4,
      in: [persistent(), subscribe(1, ["t", 1])],
      out: [CONNACK4, suback(1, 1)],
    }],
    in: [persistent(), publish("t", 1, 7)],
    out: [SP1, publish("t", 1, 1), ack("puback", 7)],
  },
  {
    name:
      "while a clean session 0 client is away its QoS 1 and 2 messages are kept and sent when it returns [MQTT-3.1.2-5] [MQTT-4.5.0-1]",
    version: 4,
    before: [{
      version: 4,
      in: [persistent(), subscribe(1, ["t", 2])],
      out: [CONNACK4, suback(1, 2)],
    }],
    setup: (b) => {
      b.publish("t", "one", { qos: 1 });
      b.publish("t", "two", { qos: 2 });
    },
    in: [persistent()],
    out: [
      SP1,
      publish("t", 1, 1, { payload: enc.encode("one") }),
      publish("t", 2, 2, { payload: enc.encode("two") }),
    ],
  },
  {
    name:
      "clean session 1 discards the stored session and its own ends with the connection [MQTT-3.1.2-6] [MQTT-3.2.2-1] [MQTT-4.1.0-2]",
    version: 4,
    before: [{
      version: 4,
      in: [persistent(), subscribe(1, ["t", 0])],
      out: [CONNACK4, suback(1, 0)],
    }],
    in: [c4(), publish("t", 0), disconnect()],
    out: [CONNACK4],
    closes: true,
    after: [{
      version: 4,
      in: [persistent()],
      out: [CONNACK4],
    }],
  },
  {
    name:
      "a PUBLISH sent again after a reconnect has DUP 1 and its first packet id [MQTT-3.3.1-1]",
    version: 4,
    before: [{
      version: 4,
      in: [
        persistent(),
        subscribe(1, ["t", 1]),
        publish("t", 1, 7),
      ],
      out: [CONNACK4, suback(1, 1), publish("t", 1, 1), ack("puback", 7)],
    }],
    in: [persistent()],
    out: [SP1, publish("t", 1, 1, { dup: true })],
  },
  // Wills
  {
    name:
      "a will with Will Retain 0 is published on a lost connection, not retained [MQTT-3.1.2-8] [MQTT-3.1.2-16]",
    version: 4,
    in: [c4({ will })],
    out: [CONNACK4],
    drop: true,
    observe: {
      filter: "will/#",
      out: [publish("will/c", 0, undefined, { payload: will.payload })],
    },
    after: [{
      version: 4,
      in: [c4({ clientId: "late" }), subscribe(1, ["will/#", 0])],
      out: [CONNACK4, suback(1, 0)],
    }],
  },
  {
    name:
      "a will with Will Retain 1 is published as a retained message [MQTT-3.1.2-17]",
    version: 4,
    in: [c4({ will: { ...will, retain: true } })],
    out: [CONNACK4],
    drop: true,
    observe: {
      filter: "will/#",
      out: [publish("will/c", 0, undefined, { payload: will.payload })],
    },
    after: [{
      version: 4,
      in: [c4({ clientId: "late" }), subscribe(1, ["will/#", 0])],
      out: [
        CONNACK4,
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
      "no Will Flag: nothing is published on a lost connection [MQTT-3.1.2-12]",
    version: 4,
    in: [c4()],
    out: [CONNACK4],
    drop: true,
    observe: { filter: "#", out: [] },
  },
  // Retained messages
  {
    name:
      "retained messages outlive the publisher's session and reach a new subscriber with RETAIN 1 at their QoS [MQTT-3.1.2-7] [MQTT-3.3.1-5] [MQTT-3.3.1-8]",
    version: 4,
    before: [{
      version: 4,
      in: [c4({ clientId: "pub" }), retained("r/a", "kept", 1)],
      out: [CONNACK4, ack("puback", 9)],
    }],
    in: [c4(), subscribe(1, ["r/#", 1])],
    out: [
      CONNACK4,
      suback(1, 1),
      publish("r/a", 1, 1, { retain: true, payload: enc.encode("kept") }),
    ],
  },
  {
    name:
      "a QoS 0 retained message replaces the one retained before; a RETAIN 0 message replaces nothing [MQTT-3.3.1-7] [MQTT-3.3.1-12]",
    version: 4,
    before: [{
      version: 4,
      in: [
        c4({ clientId: "pub" }),
        retained("r/a", "first", 1),
        retained("r/a", "second"),
        publish("r/a", 0, undefined, { payload: enc.encode("not kept") }),
      ],
      out: [CONNACK4, ack("puback", 9)],
    }],
    in: [c4(), subscribe(1, ["r/a", 1])],
    out: [
      CONNACK4,
      suback(1, 1),
      publish("r/a", 0, undefined, {
        retain: true,
        payload: enc.encode("second"),
      }),
    ],
  },
  {
    name:
      "an empty retained message is not kept: a later subscriber gets nothing [MQTT-3.3.1-11]",
    version: 4,
    before: [{
      version: 4,
      in: [c4({ clientId: "pub" }), retained("r/a", "")],
      out: [CONNACK4],
    }],
    in: [c4(), subscribe(1, ["r/a", 1])],
    out: [CONNACK4, suback(1, 1)],
  },
  // SUBSCRIBE
  {
    name:
      "SUBSCRIBE with three filters: one SUBACK, a return code per filter in their order, only 0x00-0x02/0x80 [MQTT-3.8.4-4] [MQTT-3.9.3-1] [MQTT-3.9.3-2] [MQTT-2.3.1-7]",
    version: 4,
    options: { sharedSubscriptionAvailable: false },
    in: [c4(), subscribe(5, ["a", 1], ["$share/g/b", 2], ["c", 0])],
    out: [CONNACK4, suback(5, 1, 0x80, 0)],
  },
  {
    name:
      "wildcard subscriptions off: a filter with + or # gets 0x80, the others their QoS [MQTT-3.8.3-2]",
    version: 4,
    options: { wildcardSubscriptionAvailable: false },
    in: [c4(), subscribe(1, ["a/+", 1], ["#", 0], ["a/b", 2])],
    out: [CONNACK4, suback(1, 0x80, 0x80, 2)],
  },
  {
    name: "a requested QoS of 3: closed (malformed) [MQTT-3.8.3-4]",
    version: 4,
    // SUBSCRIBE | id 1 | "a" QoS 3
    in: [c4(), raw(0x82, 0, 1, ...str("a"), 3)],
    out: [CONNACK4],
    closes: true,
  },
  {
    name:
      "reserved bits set in a requested-QoS byte: closed (malformed) [MQTT-3.8.3-4]",
    version: 4,
    // SUBSCRIBE | id 1 | "a" 0x04 (a reserved bit)
    in: [c4(), raw(0x82, 0, 1, ...str("a"), 4)],
    out: [CONNACK4],
    closes: true,
  },
  {
    name:
      "subscribing again to the same filter replaces the subscription (new QoS, one delivery) and sends the retained message again [MQTT-3.8.4-3]",
    version: 4,
    before: [{
      version: 4,
      in: [c4({ clientId: "pub" }), retained("r", "kept")],
      out: [CONNACK4],
    }],
    in: [
      c4(),
      subscribe(1, ["r", 0]),
      subscribe(2, ["r", 1]),
      publish("r", 1, 7),
    ],
    out: [
      CONNACK4,
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
      "a message is delivered at the lower of its QoS and the granted QoS; through a wildcard its topic matches the filter [MQTT-3.8.4-6] [MQTT-3.3.2-3]",
    version: 4,
    in: [c4(), subscribe(1, ["a/+", 0]), publish("a/b", 2, 7)],
    out: [CONNACK4, suback(1, 0), publish("a/b", 0), ack("pubrec", 7)],
  },
  {
    name:
      "overlapping subscriptions: one delivery at the highest granted QoS [MQTT-3.3.5-1]",
    version: 4,
    in: [c4(), subscribe(1, ["a/+", 0], ["a/#", 1]), publish("a/b", 1, 7)],
    out: [CONNACK4, suback(1, 0, 1), publish("a/b", 1, 1), ack("puback", 7)],
  },
  // UNSUBSCRIBE
  {
    name:
      "UNSUBSCRIBE compares filters character by character: a/+ goes, a/b and A/B stay untouched [MQTT-3.10.4-1] [MQTT-2.3.1-7]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["a/+", 0], ["a/b", 1]),
      unsubscribe(2, "a/+", "A/B"),
      publish("a/b", 1, 7),
    ],
    out: [
      CONNACK4,
      suback(1, 0, 1),
      unsuback(2),
      publish("a/b", 1, 1),
      ack("puback", 7),
    ],
  },
  {
    name:
      "after UNSUBSCRIBE no new message of that subscription is sent; several filters get one UNSUBACK [MQTT-3.10.4-2] [MQTT-3.10.4-6]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["a", 0], ["b", 0]),
      unsubscribe(2, "a", "b"),
      publish("a", 0),
      publish("b", 0),
    ],
    out: [CONNACK4, suback(1, 0, 0), unsuback(2)],
  },
  {
    name:
      "a QoS 2 delivery under way when its subscription goes is completed [MQTT-3.10.4-3]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["t", 2]),
      publish("t", 2, 7),
      unsubscribe(2, "t"),
      ack("pubrec", 1),
      ack("pubcomp", 1),
    ],
    out: [
      CONNACK4,
      suback(1, 2),
      publish("t", 2, 1),
      ack("pubrec", 7),
      unsuback(2),
      ack("pubrel", 1),
    ],
  },
  // Malformed fixed headers
  {
    name: "PUBREL with flags 0000: closed (malformed) [MQTT-3.6.1-1]",
    version: 4,
    in: [c4(), raw(0x60, 0, 1)],
    out: [CONNACK4],
    closes: true,
  },
  {
    name: "SUBSCRIBE with flags 0000: closed (malformed) [MQTT-3.8.1-1]",
    version: 4,
    in: [c4(), raw(0x80, 0, 1, ...str("a"), 0)],
    out: [CONNACK4],
    closes: true,
  },
  {
    name: "UNSUBSCRIBE with flags 0000: closed (malformed) [MQTT-3.10.1-1]",
    version: 4,
    in: [c4(), raw(0xa0, 0, 1, ...str("a"))],
    out: [CONNACK4],
    closes: true,
  },
  {
    name:
      "DISCONNECT with a reserved bit set: closed, and the will is published (not a DISCONNECT) [MQTT-3.14.1-1]",
    version: 4,
    in: [c4({ will }), raw(0xe1)],
    out: [CONNACK4],
    closes: true,
    observe: {
      filter: "will/#",
      out: [publish("will/c", 0, undefined, { payload: will.payload })],
    },
  },
  // Ordering, authorization, errors
  {
    name:
      "every topic is ordered: one publisher's QoS 1 messages arrive in the order sent [MQTT-4.6.0-5] [MQTT-4.6.0-6]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["o", 1]),
      publish("o", 1, 1, { payload: enc.encode("1") }),
      publish("o", 1, 2, { payload: enc.encode("2") }),
      publish("o", 1, 3, { payload: enc.encode("3") }),
    ],
    out: [
      CONNACK4,
      suback(1, 1),
      publish("o", 1, 1, { payload: enc.encode("1") }),
      ack("puback", 1),
      publish("o", 1, 2, { payload: enc.encode("2") }),
      ack("puback", 2),
      publish("o", 1, 3, { payload: enc.encode("3") }),
      ack("puback", 3),
    ],
  },
  {
    name:
      "a PUBLISH the client may not make: acknowledged as usual (PUBACK), not delivered [MQTT-3.3.5-2]",
    version: 4,
    options: { authorizePublish: () => ReasonCode.NotAuthorized },
    in: [c4(), subscribe(1, ["t", 1]), publish("t", 1, 7)],
    out: [CONNACK4, suback(1, 1), ack("puback", 7)],
  },
  {
    name:
      "a hook that fails while a PUBLISH is processed: the connection is closed [MQTT-4.8.0-2]",
    version: 4,
    options: {
      authorizePublish: () => {
        throw new Error("store unavailable");
      },
    },
    in: [c4(), publish("t", 1, 7)],
    out: [CONNACK4],
    closes: true,
  },
];

registerRows(ROWS, "MQTT 3.1.1 broker");

Deno.test("MQTT 3.1.1 broker: a CONNECT with the client id of a connected client closes the older connection [MQTT-3.1.4-2]", async () => {
  const broker = await startBroker();
  const first = await RawClient.connect(broker.addr.port, { clientId: "dup" });
  const second = await RawClient.connect(broker.addr.port, { clientId: "dup" });
  assert.equal(second.connack.reasonCode, 0);
  await first.client.waitClosed();
  await first.client.close();
  await second.client.disconnect();
  await broker.close();
});
