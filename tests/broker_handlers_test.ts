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
 * ignored unless the row expects one (its text is for people).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Broker, type BrokerInit } from "../broker/broker.ts";
import { encode } from "../codec/encode.ts";
import { decode, PacketDecoder } from "../codec/decode.ts";
import type { Duplex } from "../codec/duplex.ts";
import type {
  ConnackPacket,
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
} from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { withTimeout } from "./_helpers.ts";
import { MemoryListener } from "./_memory_duplex.ts";

/** One row: what the client sends, what the broker must answer. */
interface Row {
  /** What is checked, with the spec statement. */
  name: string;
  /** The protocol version the packets are encoded and decoded with. */
  version: ProtocolVersion;
  /** Broker options for this row. */
  options?: BrokerInit;
  /** Packets (encoded with the codec) or raw bytes (what it refuses to encode). */
  in: (Packet | Uint8Array)[];
  /**
   * The packets the broker sends, in order ("closed": none, and the broker
   * closes the connection).
   */
  out: Packet[] | "closed";
  /** After `out`, the broker closes the connection. */
  closes?: true;
  /**
   * A second client (3.1.1) subscribed to `filter` at QoS 0 before the row
   * runs gets exactly `out` by the time the row's connection is done (wills).
   */
  observe?: { filter: string; out: Packet[] };
}

// ------------------------------------------------------------------ packets

function connect(
  version: ProtocolVersion,
  extra: Partial<ConnectPacket> = {},
): ConnectPacket {
  return {
    type: "connect",
    protocolVersion: version,
    clientId: "c",
    cleanStart: true,
    keepAlive: 0,
    ...extra,
  };
}

const c4 = (extra?: Partial<ConnectPacket>) => connect(4, extra);
const c5 = (extra?: Partial<ConnectPacket>) => connect(5, extra);

const CONNACK4: ConnackPacket = {
  type: "connack",
  sessionPresent: false,
  reasonCode: 0,
};

/** The CONNACK of a v5 client with the default settings (and `props`). */
function connack5(props: Properties = {}): ConnackPacket {
  return {
    type: "connack",
    sessionPresent: false,
    reasonCode: 0,
    properties: {
      receiveMaximum: 65535,
      maximumPacketSize: 262144,
      topicAliasMaximum: 10,
      wildcardSubscriptionAvailable: 1,
      sharedSubscriptionAvailable: 1,
      subscriptionIdentifierAvailable: 1,
      ...props,
    },
  };
}

function refused(reasonCode: number): ConnackPacket {
  return { type: "connack", sessionPresent: false, reasonCode };
}

const enc = new TextEncoder();

function publish(
  topic: string,
  qos: QoS,
  packetId?: number,
  extra: Partial<PublishPacket> = {},
): PublishPacket {
  const p: PublishPacket = {
    type: "publish",
    topic,
    payload: enc.encode("x"),
    qos,
    retain: false,
    dup: false,
    ...extra,
  };
  if (packetId !== undefined) p.packetId = packetId;
  return p;
}

function subscribe(packetId: number, ...filters: [string, QoS][]): Packet {
  return {
    type: "subscribe",
    packetId,
    subscriptions: filters.map(([filter, qos]) => ({ filter, qos })),
  };
}

function suback(packetId: number, ...reasonCodes: number[]): Packet {
  return { type: "suback", packetId, reasonCodes };
}

function ack(
  type: "puback" | "pubrec" | "pubrel" | "pubcomp",
  packetId: number,
  reasonCode?: number,
): Packet {
  return reasonCode === undefined
    ? { type, packetId }
    : { type, packetId, reasonCode };
}

function disconnect(reasonCode?: number, properties?: Properties): Packet {
  const p: Packet = { type: "disconnect" };
  if (reasonCode !== undefined) p.reasonCode = reasonCode;
  if (properties !== undefined) p.properties = properties;
  return p;
}

const PINGREQ: Packet = { type: "pingreq" };
const PINGRESP: Packet = { type: "pingresp" };

/** A fixed header + body, for packets the codec will not encode. */
function raw(first: number, ...body: number[]): Uint8Array {
  if (body.length > 127) throw new Error("raw(): one length byte only");
  return new Uint8Array([first, body.length, ...body]);
}

/** A UTF-8 string with its 2-byte length. */
function str(s: string): number[] {
  const b = enc.encode(s);
  return [b.length >> 8, b.length & 0xff, ...b];
}

const will = {
  topic: "will/c",
  payload: enc.encode("gone"),
  qos: 0 as const,
  retain: false,
};

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

// ------------------------------------------------------------------- runner

/**
 * Sent after a row to see that the connection is open and that nothing
 * else came before its answer (an UNSUBACK with a packet id no row uses).
 */
const SENTINEL: Packet = {
  type: "unsubscribe",
  packetId: 0xfffe,
  filters: ["sentinel/never/subscribed"],
};

function sentinelAck(version: ProtocolVersion): Packet {
  return version === 5
    ? { type: "unsuback", packetId: 0xfffe, reasonCodes: [0x11] }
    : { type: "unsuback", packetId: 0xfffe };
}

/** How long one answer may take. */
const STEP_MS = 3000;

/** A packet-level client over a `Duplex`. */
class Peer {
  readonly #duplex: Duplex;
  readonly #version: ProtocolVersion;
  readonly #decoder: PacketDecoder;
  readonly #inbox: (Packet | "closed")[] = [];
  #wake: (() => void) | undefined;
  readonly #reading: Promise<void>;
  #error: unknown;

  constructor(duplex: Duplex, version: ProtocolVersion) {
    this.#duplex = duplex;
    this.#version = version;
    this.#decoder = new PacketDecoder({ version });
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    try {
      while (true) {
        const chunk = await this.#duplex.read();
        if (chunk === null) break;
        this.#decoder.push(chunk, (p) => this.#inbox.push(p));
        this.#wake?.();
      }
    } catch (e) {
      this.#error = e;
    }
    this.#inbox.push("closed");
    this.#wake?.();
  }

  /** Writes `items`: one write each, or all in one write. */
  async send(items: (Packet | Uint8Array)[], oneWrite: boolean): Promise<void> {
    const parts = items.map((p) =>
      p instanceof Uint8Array ? p : encode(p, { version: this.#version })
    );
    if (!oneWrite) {
      for (const b of parts) await this.#duplex.write(b);
      return;
    }
    const all = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
    let pos = 0;
    for (const b of parts) {
      all.set(b, pos);
      pos += b.length;
    }
    await this.#duplex.write(all);
  }

  /** The next packet, or "closed" once the broker closed the connection. */
  async next(): Promise<Packet | "closed"> {
    // A chunk may end inside a packet: wait until one is complete.
    while (this.#inbox.length === 0) {
      await withTimeout(
        new Promise<void>((r) => this.#wake = r),
        STEP_MS,
        "the broker's answer",
      ).finally(() => this.#wake = undefined);
    }
    if (this.#error !== undefined) throw this.#error;
    const p = this.#inbox.shift()!;
    if (p === "closed") this.#inbox.unshift(p); // stays closed
    return p;
  }

  async close(): Promise<void> {
    this.#duplex.close();
    await this.#reading;
  }
}

/** `expected` as the codec decodes it (its canonical form). */
function canonical(p: Packet, version: ProtocolVersion): Packet {
  const v = p.type === "connect" ? p.protocolVersion : version;
  return decode(encode(p, { version: v }), { version: v });
}

/** `actual` without a Reason String the row does not ask for. */
function comparable(actual: Packet, expected: Packet): Packet {
  const props = "properties" in actual ? actual.properties : undefined;
  const wanted = "properties" in expected ? expected.properties : undefined;
  if (props?.reasonString === undefined || wanted?.reasonString !== undefined) {
    return actual;
  }
  const { reasonString: _, ...rest } = props;
  const copy = { ...actual } as Packet & { properties?: Properties };
  if (Object.keys(rest).length > 0 || wanted !== undefined) {
    copy.properties = rest;
  } else delete copy.properties;
  return copy;
}

function show(p: Packet | "closed"): string {
  return p === "closed"
    ? "closed"
    : JSON.stringify(p, (_, v) =>
      v instanceof Uint8Array ? new TextDecoder().decode(v) : v);
}

async function expectPackets(
  peer: Peer,
  expected: Packet[],
  version: ProtocolVersion,
  what: string,
): Promise<void> {
  for (let i = 0; i < expected.length; i++) {
    const want = canonical(expected[i]!, version);
    const got = await peer.next();
    assert.ok(
      got !== "closed",
      `${what} #${i}: closed, expected ${show(want)}`,
    );
    assert.deepEqual(comparable(got, want), want, `${what} #${i}`);
  }
}

type Mode = "a write per packet" | "one write" | "a byte per chunk";
const MODES: Mode[] = ["a write per packet", "one write", "a byte per chunk"];

async function runRow(row: Row, mode: Mode): Promise<void> {
  const broker = new Broker({ sysInterval: 0, ...row.options });
  await broker.start();
  const listener = new MemoryListener(
    mode === "a byte per chunk" ? { maxChunk: 1 } : {},
  );
  broker.serve(listener);
  const peers: Peer[] = [];
  try {
    let observer: Peer | undefined;
    if (row.observe !== undefined) {
      observer = new Peer(listener.dial(), 4);
      peers.push(observer);
      await observer.send(
        [c4({ clientId: "observer" }), subscribe(1, [row.observe.filter, 0])],
        false,
      );
      await expectPackets(observer, [CONNACK4, suback(1, 0)], 4, "observer");
    }
    const peer = new Peer(listener.dial(), row.version);
    peers.push(peer);
    await peer.send(row.in, mode === "one write");
    if (row.out === "closed") {
      const got = await peer.next();
      assert.equal(show(got), "closed", "the broker closes, sending nothing");
    } else {
      await expectPackets(peer, row.out, row.version, "answer");
      if (row.closes === true) {
        const got = await peer.next();
        assert.equal(show(got), "closed", "then the broker closes");
      } else {
        // Still open, and nothing else was sent before the sentinel's answer.
        await peer.send([SENTINEL], false);
        await expectPackets(
          peer,
          [sentinelAck(row.version)],
          row.version,
          "then open, nothing more",
        );
      }
    }
    if (observer !== undefined) {
      // The broker routes a will before it reads the observer's sentinel.
      await observer.send([SENTINEL], false);
      await expectPackets(
        observer,
        [...row.observe!.out, sentinelAck(4)],
        4,
        "observer",
      );
    }
  } finally {
    for (const p of peers) await p.close();
    await broker.close();
  }
}

for (const row of ROWS) {
  Deno.test(`Connection: ${row.name}`, async (t) => {
    for (const mode of MODES) {
      await t.step(mode, () => runRow(row, mode));
    }
  });
}
