/**
 * Packets in -> packets out: a table of rows, each driving one broker
 * `Connection` (through `Broker.start()` + `broker.serve()` with an
 * in-memory `Listener`, no sockets) and checking exactly what comes back and
 * whether the broker then closes the connection.
 *
 * Every row runs three times, with the input in one write per packet, in
 * a single write, and one byte per chunk (both directions), so that the
 * same answers come whatever the chunking.
 *
 * Answers are compared with `deepEqual` after a round trip of the expected
 * packets through the codec (its canonical form); a v5 Reason String is
 * ignored unless the row expects one (its text is for people). The runner
 * and the packet helpers are in _broker_rows.ts.
 *
 * @module
 */

import { ReasonCode } from "../codec/reason_code.ts";
import {
  ack,
  c4,
  c5,
  CONNACK4,
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

// --------------------------------------------------------------------- rows

const ROWS: Row[] = [
  // CONNECT
  {
    name:
      "CONNECT 3.1.1 clean session: CONNACK 0, Session Present 0 [MQTT-3.2.2-1]",
    version: 4,
    in: [c4()],
    out: [CONNACK4],
  },
  {
    name:
      "CONNECT 3.1.1 clean session 0 without a stored session: Session Present 0 [MQTT-3.2.2-3]",
    version: 4,
    in: [c4({ cleanStart: false })],
    out: [CONNACK4],
  },
  {
    name:
      "CONNECT v5: CONNACK with Receive Maximum, Maximum Packet Size, Topic Alias Maximum and the available features (3.2.2.3)",
    version: 5,
    in: [c5()],
    out: [connack5()],
  },
  {
    name:
      "CONNECT v5 to a QoS 1 broker without retain: CONNACK with Maximum QoS 1, Retain Available 0 and the granted Session Expiry Interval [MQTT-3.2.2-9]",
    version: 5,
    options: { maxQos: 1, retainAvailable: false, sessionExpiryInterval: 60 },
    in: [c5({ properties: { sessionExpiryInterval: 7200 } })],
    out: [
      connack5({
        maximumQoS: 1,
        retainAvailable: 0,
        sessionExpiryInterval: 60,
      }),
    ],
  },
  {
    name:
      "CONNECT 3.1.1 with an empty client id and clean session 0: CONNACK 0x02, closed [MQTT-3.1.3-8]",
    version: 4,
    in: [c4({ clientId: "", cleanStart: false })],
    out: [refused(0x02)],
    closes: true,
  },
  {
    name:
      "CONNECT v5 with an empty client id and clean start 0: CONNACK 0x85, closed [MQTT-3.1.3-8]",
    version: 5,
    in: [c5({ clientId: "", cleanStart: false })],
    out: [refused(ReasonCode.ClientIdentifierNotValid)],
    closes: true,
  },
  {
    name:
      "CONNECT with protocol level 6: CONNACK 0x01 (3.1.1 form), closed [MQTT-3.1.2-2]",
    version: 4,
    // CONNECT | "MQTT" | level 6 | clean | keep alive 0 | client id "c"
    in: [raw(0x10, ...str("MQTT"), 6, 0x02, 0, 0, ...str("c"))],
    out: [refused(0x01)],
    closes: true,
  },
  {
    name:
      "CONNECT v5 with a Maximum Packet Size of 2, below any CONNACK: closed, nothing sent [MQTT-3.1.2-24]",
    version: 5,
    in: [c5({ properties: { maximumPacketSize: 2 } })],
    out: "closed",
  },
  {
    name:
      "CONNECT v5 with a Maximum Packet Size 1 byte below the CONNACK (22 bytes): closed, nothing sent [MQTT-3.1.2-24]",
    version: 5,
    in: [c5({ properties: { maximumPacketSize: 21 } })],
    out: "closed",
  },
  {
    name:
      "CONNECT v5 with a Maximum Packet Size equal to the CONNACK (22 bytes): the CONNACK [MQTT-3.1.2-24]",
    version: 5,
    in: [c5({ properties: { maximumPacketSize: 22 } })],
    out: [connack5()],
  },
  {
    name:
      "CONNECT v5 refused (empty client id, clean start 0) with a Maximum Packet Size of 2: closed, nothing sent [MQTT-3.1.2-24]",
    version: 5,
    in: [
      c5({
        clientId: "",
        cleanStart: false,
        properties: { maximumPacketSize: 2 },
      }),
    ],
    out: "closed",
  },
  {
    name: "PINGREQ before CONNECT: closed, nothing sent [MQTT-3.1.0-1]",
    version: 4,
    in: [PINGREQ, c4()],
    out: "closed",
  },
  {
    name: "PUBLISH before CONNECT: closed, nothing sent [MQTT-3.1.0-1]",
    version: 4,
    in: [publish("t", 0)],
    out: "closed",
  },
  {
    name: "a second CONNECT v5: DISCONNECT 0x82, closed [MQTT-3.1.0-2]",
    version: 5,
    in: [c5(), c5()],
    out: [connack5(), disconnect(ReasonCode.ProtocolError)],
    closes: true,
  },
  {
    name: "a second CONNECT 3.1.1: closed [MQTT-3.1.0-2]",
    version: 4,
    in: [c4(), c4()],
    out: [CONNACK4],
    closes: true,
  },
  // PINGREQ
  {
    name: "PINGREQ 3.1.1: PINGRESP [MQTT-3.12.4-1]",
    version: 4,
    in: [c4(), PINGREQ, PINGREQ],
    out: [CONNACK4, PINGRESP, PINGRESP],
  },
  // SUBSCRIBE, UNSUBSCRIBE
  {
    name:
      "SUBSCRIBE 3.1.1: SUBACK with the packet id and the granted QoS per filter, in order [MQTT-3.8.4-2] [MQTT-3.8.4-5]",
    version: 4,
    in: [c4(), subscribe(9, ["a", 2], ["b/+", 0], ["c/#", 1])],
    out: [CONNACK4, suback(9, 2, 0, 1)],
  },
  {
    name:
      "SUBSCRIBE v5 to a QoS 1 broker: granted QoS at most 1 [MQTT-3.8.4-7]",
    version: 5,
    options: { maxQos: 1 },
    in: [c5(), subscribe(1, ["a", 2], ["b", 0])],
    out: [connack5({ maximumQoS: 1 }), suback(1, 1, 0)],
  },
  {
    name:
      "SUBSCRIBE 3.1.1 with a filter the broker refuses ($share, shared subscriptions off): SUBACK 0x80 for it, granted for the others [MQTT-3.8.4-5]",
    version: 4,
    options: { sharedSubscriptionAvailable: false },
    in: [c4(), subscribe(2, ["$share/g/a", 1], ["a", 1])],
    out: [CONNACK4, suback(2, 0x80, 1)],
  },
  {
    name:
      "SUBSCRIBE v5 with the invalid filter a/#/b: DISCONNECT 0x81 (malformed), closed [MQTT-4.7.1-1] (v5 numbering)",
    version: 5,
    in: [c5(), subscribe(3, ["a", 1], ["a/#/b", 1])],
    out: [connack5(), disconnect(ReasonCode.MalformedPacket)],
    closes: true,
  },
  {
    name:
      "SUBSCRIBE 3.1.1 with the invalid filter a/#/b: closed [MQTT-4.7.1-2] [MQTT-4.8.0-1] (3.1.1 numbering)",
    version: 4,
    in: [c4(), subscribe(3, ["a/#/b", 1])],
    out: [CONNACK4],
    closes: true,
  },
  {
    name:
      "SUBSCRIBE v5 with No Local on a shared subscription: DISCONNECT 0x82 [MQTT-3.8.3-4]",
    version: 5,
    in: [c5(), {
      type: "subscribe",
      packetId: 4,
      subscriptions: [{ filter: "$share/g/a", qos: 1, noLocal: true }],
    }],
    out: [connack5(), disconnect(ReasonCode.ProtocolError)],
    closes: true,
  },
  {
    name:
      "UNSUBSCRIBE 3.1.1: UNSUBACK with the packet id, also where no subscription existed [MQTT-3.10.4-4] [MQTT-3.10.4-5]",
    version: 4,
    in: [
      c4(),
      subscribe(1, ["a", 0]),
      { type: "unsubscribe", packetId: 2, filters: ["a"] },
      { type: "unsubscribe", packetId: 3, filters: ["never"] },
    ],
    out: [
      CONNACK4,
      suback(1, 0),
      { type: "unsuback", packetId: 2 },
      { type: "unsuback", packetId: 3 },
    ],
  },
  {
    name:
      "UNSUBSCRIBE v5: UNSUBACK 0x00 for a subscription, 0x11 where none existed (3.11.3)",
    version: 5,
    in: [c5(), subscribe(1, ["a", 0]), {
      type: "unsubscribe",
      packetId: 2,
      filters: ["a", "never", "a"],
    }],
    out: [connack5(), suback(1, 0), {
      type: "unsuback",
      packetId: 2,
      reasonCodes: [0, ReasonCode.NoSubscriptionExisted, 0x11],
    }],
  },
  // PUBLISH and its acknowledgements
  {
    name:
      "PUBLISH QoS 1 3.1.1: PUBACK with its packet id, after the delivery it caused [MQTT-4.3.2-2]",
    version: 4,
    in: [c4(), subscribe(1, ["t", 0]), publish("t", 1, 7)],
    out: [CONNACK4, suback(1, 0), publish("t", 0), ack("puback", 7)],
  },
  {
    name:
      "PUBLISH QoS 1 v5 with a matching subscription: PUBACK 0x00 [MQTT-4.3.2-4]",
    version: 5,
    in: [c5(), subscribe(1, ["t", 1]), publish("t", 1, 7)],
    out: [connack5(), suback(1, 1), publish("t", 1, 1), ack("puback", 7)],
  },
  {
    name:
      "PUBLISH QoS 1 v5 without matching subscribers: PUBACK 0x10 (3.4.2.1)",
    version: 5,
    in: [c5(), publish("nobody", 1, 7)],
    out: [connack5(), ack("puback", 7, ReasonCode.NoMatchingSubscribers)],
  },
  {
    name: "PUBLISH QoS 2 3.1.1: PUBREC, then PUBREL: PUBCOMP [MQTT-4.3.3-2]",
    version: 4,
    in: [c4(), publish("t", 2, 5), ack("pubrel", 5)],
    out: [CONNACK4, ack("pubrec", 5), ack("pubcomp", 5)],
  },
  {
    name:
      "PUBLISH QoS 2 v5 without matching subscribers: PUBREC 0x10, PUBREL: PUBCOMP 0x00 [MQTT-4.3.3-8] [MQTT-4.3.3-11]",
    version: 5,
    in: [c5(), publish("nobody", 2, 5), ack("pubrel", 5)],
    out: [
      connack5(),
      ack("pubrec", 5, ReasonCode.NoMatchingSubscribers),
      ack("pubcomp", 5),
    ],
  },
  {
    name:
      "a duplicate QoS 2 PUBLISH before PUBREL: PUBREC again, delivered once [MQTT-4.3.3-10]",
    version: 5,
    in: [
      c5(),
      subscribe(1, ["t", 0]),
      publish("t", 2, 5),
      publish("t", 2, 5, { dup: true }),
      ack("pubrel", 5),
    ],
    out: [
      connack5(),
      suback(1, 0),
      publish("t", 0),
      ack("pubrec", 5),
      ack("pubrec", 5),
      ack("pubcomp", 5),
    ],
  },
  {
    name: "PUBREL v5 for an unknown packet id: PUBCOMP 0x92 (3.7.2.1)",
    version: 5,
    in: [c5(), ack("pubrel", 42)],
    out: [
      connack5(),
      ack("pubcomp", 42, ReasonCode.PacketIdentifierNotFound),
    ],
  },
  // Acknowledgements of the wrong kind for a message the broker sent
  {
    name:
      "PUBREC 3.1.1 for a QoS 1 message the broker sent: closed (protocol violation) [MQTT-4.8.0-1]",
    version: 4,
    in: [c4(), subscribe(1, ["t", 1]), publish("t", 1, 7), ack("pubrec", 1)],
    out: [CONNACK4, suback(1, 1), publish("t", 1, 1), ack("puback", 7)],
    closes: true,
  },
  {
    name:
      "PUBCOMP 3.1.1 for a QoS 1 message the broker sent: closed (protocol violation) [MQTT-4.8.0-1]",
    version: 4,
    in: [c4(), subscribe(1, ["t", 1]), publish("t", 1, 7), ack("pubcomp", 1)],
    out: [CONNACK4, suback(1, 1), publish("t", 1, 1), ack("puback", 7)],
    closes: true,
  },
  {
    name:
      "PUBACK 3.1.1 for a QoS 2 message the broker sent: closed (protocol violation) [MQTT-4.8.0-1]",
    version: 4,
    in: [c4(), subscribe(1, ["t", 2]), publish("t", 2, 7), ack("puback", 1)],
    out: [CONNACK4, suback(1, 2), publish("t", 2, 1), ack("pubrec", 7)],
    closes: true,
  },
  {
    name:
      "PUBREC v5 for a QoS 1 message the broker sent: DISCONNECT 0x82, closed [MQTT-4.13.1-1]",
    version: 5,
    in: [c5(), subscribe(1, ["t", 1]), publish("t", 1, 7), ack("pubrec", 1)],
    out: [
      connack5(),
      suback(1, 1),
      publish("t", 1, 1),
      ack("puback", 7),
      disconnect(ReasonCode.ProtocolError),
    ],
    closes: true,
  },
  {
    name:
      "PUBACK v5 for a QoS 2 message the broker sent: DISCONNECT 0x82, closed [MQTT-4.13.1-1]",
    version: 5,
    in: [c5(), subscribe(1, ["t", 2]), publish("t", 2, 7), ack("puback", 1)],
    out: [
      connack5(),
      suback(1, 2),
      publish("t", 2, 1),
      ack("pubrec", 7),
      disconnect(ReasonCode.ProtocolError),
    ],
    closes: true,
  },
  {
    name:
      "PUBCOMP v5 for a QoS 2 message the broker sent, before its PUBREC: DISCONNECT 0x82, closed [MQTT-4.13.1-1]",
    version: 5,
    in: [c5(), subscribe(1, ["t", 2]), publish("t", 2, 7), ack("pubcomp", 1)],
    out: [
      connack5(),
      suback(1, 2),
      publish("t", 2, 1),
      ack("pubrec", 7),
      disconnect(ReasonCode.ProtocolError),
    ],
    closes: true,
  },
  {
    name:
      "PUBACK and PUBCOMP 3.1.1 for unknown packet ids: ignored; PUBREC: PUBREL",
    version: 4,
    in: [c4(), ack("puback", 3), ack("pubcomp", 4), ack("pubrec", 5)],
    out: [CONNACK4, ack("pubrel", 5)],
  },
  {
    name: "PUBREC v5 for an unknown packet id: PUBREL 0x92 (3.6.2.1)",
    version: 5,
    in: [c5(), ack("pubrec", 5)],
    out: [
      connack5(),
      ack("pubrel", 5, ReasonCode.PacketIdentifierNotFound),
    ],
  },
  {
    name:
      "PUBLISH v5 with Topic Alias 0: DISCONNECT 0x94, closed [MQTT-3.3.2-8]",
    version: 5,
    in: [
      c5(),
      // PUBLISH QoS 0 | topic "t" | properties: Topic Alias (0x23) 0 | "x"
      raw(0x30, ...str("t"), 3, 0x23, 0, 0, 0x78),
    ],
    out: [connack5(), disconnect(ReasonCode.TopicAliasInvalid)],
    closes: true,
  },
  {
    name:
      "PUBLISH v5 with a Topic Alias above the broker's maximum: DISCONNECT 0x94 [MQTT-3.3.2-9]",
    version: 5,
    in: [c5(), publish("t", 0, undefined, { properties: { topicAlias: 11 } })],
    out: [connack5(), disconnect(ReasonCode.TopicAliasInvalid)],
    closes: true,
  },
  {
    name:
      "PUBLISH v5 with a Subscription Identifier: DISCONNECT 0x82 [MQTT-3.3.4-6]",
    version: 5,
    in: [
      c5(),
      publish("t", 0, undefined, {
        properties: { subscriptionIdentifiers: [1] },
      }),
    ],
    out: [connack5(), disconnect(ReasonCode.ProtocolError)],
    closes: true,
  },
  {
    name:
      "PUBLISH v5 past the broker's Receive Maximum of QoS 2 messages not released: DISCONNECT 0x93 [MQTT-3.3.4-7]",
    version: 5,
    options: { receiveMaximum: 2 },
    in: [c5(), publish("t", 2, 1), publish("t", 2, 2), publish("t", 2, 3)],
    out: [
      connack5({ receiveMaximum: 2 }),
      ack("pubrec", 1, ReasonCode.NoMatchingSubscribers),
      ack("pubrec", 2, ReasonCode.NoMatchingSubscribers),
      disconnect(ReasonCode.ReceiveMaximumExceeded),
    ],
    closes: true,
  },
  // DISCONNECT
  {
    name:
      "DISCONNECT 3.1.1: closed, the will discarded [MQTT-3.1.2-10] [MQTT-3.14.4-3]",
    version: 4,
    in: [c4({ will }), disconnect()],
    out: [CONNACK4],
    closes: true,
    observe: { filter: "will/#", out: [] },
  },
  {
    name: "DISCONNECT v5 0x00: closed, the will discarded [MQTT-3.1.2-10]",
    version: 5,
    in: [c5({ will }), disconnect(0)],
    out: [connack5()],
    closes: true,
    observe: { filter: "will/#", out: [] },
  },
  {
    name:
      "DISCONNECT v5 0x04 (with will): closed, the will published (3.14.2.1)",
    version: 5,
    in: [c5({ will }), disconnect(ReasonCode.DisconnectWithWillMessage)],
    out: [connack5()],
    closes: true,
    observe: {
      filter: "will/#",
      out: [publish("will/c", 0, undefined, { payload: will.payload })],
    },
  },
  {
    name:
      "DISCONNECT v5 with a Session Expiry Interval after 0 at CONNECT: DISCONNECT 0x82 [MQTT-3.14.2-2]",
    version: 5,
    in: [c5(), disconnect(0, { sessionExpiryInterval: 60 })],
    out: [connack5(), disconnect(ReasonCode.ProtocolError)],
    closes: true,
  },
];

registerRows(ROWS);
