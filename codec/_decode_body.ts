/**
 * Packet body decoding (private to the codec): the first-byte checks, the
 * v5 property reader, and one decoder per packet type, all reading through
 * one shared `Reader`. `decode.ts` frames packets and calls `decodeBody`.
 *
 * @module
 */

import type {
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  QoS,
  Subscription,
  Will,
} from "./packet.ts";
import {
  MalformedPacketError,
  MqttError,
  ProtocolError,
  UnsupportedProtocolError,
} from "./errors.ts";
import { ReasonCode } from "./reason_code.ts";
import { CONTEXT_BIT, PROPERTY_BY_ID } from "./properties.ts";
import { isValidTopicFilter, isValidTopicName } from "./topic.ts";
import { decodeUtf8, Reader } from "./_reader.ts";

const C = CONTEXT_BIT;
/** An empty array (what the shared reader holds between packets). */
export const EMPTY: Uint8Array = new Uint8Array(0);
/** The one reader every packet body is decoded with (decoding is synchronous). */
export const reader: Reader = new Reader(EMPTY, 0, 0);

const TYPES = [
  "",
  "connect",
  "connack",
  "publish",
  "puback",
  "pubrec",
  "pubrel",
  "pubcomp",
  "subscribe",
  "suback",
  "unsubscribe",
  "unsuback",
  "pingreq",
  "pingresp",
  "disconnect",
  "auth",
] as const;
const NAMES: readonly string[] = TYPES.map((t) => t.toUpperCase());

/**
 * Checks the first byte of a fixed header (type, reserved flags, QoS) so that
 * garbage fails before its body is buffered.
 */
export function checkFirstByte(
  first: number,
  version: ProtocolVersion | undefined,
) {
  const type = first >> 4;
  const flags = first & 0x0f;
  if (type === 0) {
    throw new MalformedPacketError("reserved packet type 0");
  }
  if (type === 3) {
    if ((flags & 0x06) === 0x06) {
      throw new MalformedPacketError("PUBLISH with QoS 3 [MQTT-3.3.1-4]");
    }
    if (flags === 0x08) {
      throw new MalformedPacketError(
        "PUBLISH QoS 0 with DUP set [MQTT-3.3.1-2]",
      );
    }
    if (version === undefined) throw notConnectFirst(type);
    return;
  }
  if (type === 15 && version !== undefined && version !== 5) {
    throw new MalformedPacketError("AUTH exists only in MQTT 5.0");
  }
  const want = type === 6 || type === 8 || type === 10 ? 2 : 0;
  if (flags !== want) {
    throw new MalformedPacketError(
      `${
        TYPES[type]
      } with reserved flags ${flags} (must be ${want}) [MQTT-2.2.2-2]`,
    );
  }
  if (version === undefined && type !== 1) throw notConnectFirst(type);
}

function notConnectFirst(type: number): ProtocolError {
  return new ProtocolError(
    `the first packet must be CONNECT, got ${TYPES[type]} [MQTT-3.1.0-1]`,
  );
}

function packetId(r: Reader, what: string): number {
  const id = r.u16("packet identifier");
  if (id === 0) {
    throw new ProtocolError(`${what} with packet identifier 0 [MQTT-2.2.1-3]`);
  }
  return id;
}

/** Reads a property block and checks it against the table for `ctx`. */
function readProps(
  r: Reader,
  ctx: number,
  what: string,
): Properties | undefined {
  const len = r.varint("property length");
  if (len === 0) return undefined;
  const outerEnd = r.end;
  const end = r.pos + len;
  if (end > outerEnd) {
    throw new MalformedPacketError(`${what} properties longer than the packet`);
  }
  r.end = end;
  const props: Record<string, unknown> = {};
  while (r.pos < end) {
    const id = r.varint("property identifier");
    const info = PROPERTY_BY_ID[id];
    if (info === undefined || (info.mask & ctx) === 0) {
      // [MQTT-2.2.2-2] a property not valid for the packet is malformed.
      throw new MalformedPacketError(
        info === undefined
          ? `unknown property identifier 0x${id.toString(16)} in ${what}`
          : `property ${info.name} is not allowed in ${what}`,
      );
    }
    const name = info.name;
    if (!info.repeat && props[name] !== undefined) {
      throw new ProtocolError(`${what} has property ${name} more than once`);
    }
    switch (info.type) {
      case "byte": {
        const v = r.u8(name);
        if (info.flag === true && v > 1) {
          throw new ProtocolError(`${what} has ${name} ${v} (must be 0 or 1)`);
        }
        props[name] = v;
        break;
      }
      case "u16": {
        const v = r.u16(name);
        if (v === 0) {
          if (id === 0x21) {
            throw new ProtocolError(`${what} has receiveMaximum 0`);
          }
          if (id === 0x23) {
            throw new MqttError(
              ReasonCode.TopicAliasInvalid,
              "topic alias 0 [MQTT-3.3.2-8]",
            );
          }
        }
        props[name] = v;
        break;
      }
      case "u32": {
        const v = r.u32(name);
        if (v === 0 && id === 0x27) {
          throw new ProtocolError(`${what} has maximumPacketSize 0`);
        }
        props[name] = v;
        break;
      }
      case "string":
        props[name] = r.string(name);
        break;
      case "binary":
        props[name] = r.binary(name);
        break;
      case "varint": {
        const v = r.varint(name);
        if (v === 0) {
          throw new ProtocolError(
            "subscription identifier 0 [MQTT-3.3.4-6] [MQTT-3.8.2-1]",
          );
        }
        const list = props[name] as number[] | undefined;
        if (list === undefined) props[name] = [v];
        else if (ctx === C.subscribe) {
          throw new ProtocolError(
            "SUBSCRIBE has more than one subscription identifier",
          );
        } else list.push(v);
        break;
      }
      case "pair": {
        const k = r.string("user property key");
        const v = r.string("user property value");
        const list = props[name] as [string, string][] | undefined;
        if (list === undefined) props[name] = [[k, v]];
        else list.push([k, v]);
        break;
      }
    }
  }
  r.end = outerEnd;
  return props as Properties;
}

function decodeConnect(r: Reader): ConnectPacket {
  const name = r.string("protocol name");
  const raw = r.u8("protocol level");
  // Bit 7 is Mosquitto's bridge flag (`try_private`): 3.1 and 3.1.1 only,
  // as Mosquitto takes it (a v5 bridge uses subscription options instead).
  const level = raw === 0x83 || raw === 0x84 ? raw & 0x7f : raw;
  if (
    !((name === "MQTT" && (level === 4 || level === 5)) ||
      (name === "MQIsdp" && level === 3))
  ) {
    // The level says which CONNACK form the client reads: a level-5
    // CONNECT with another name gets a v5 CONNACK 0x84 [MQTT-3.1.2-1].
    throw new UnsupportedProtocolError(
      level,
      `unsupported protocol "${name}" level ${level} [MQTT-3.1.2-1] [MQTT-3.1.2-2]`,
    );
  }
  const version = level as ProtocolVersion;
  const v5 = version === 5;
  const flags = r.u8("connect flags");
  if ((flags & 0x01) !== 0) {
    throw new MalformedPacketError(
      "CONNECT reserved flag is set [MQTT-3.1.2-3]",
    );
  }
  const hasWill = (flags & 0x04) !== 0;
  const willQos = (flags >> 3) & 3;
  const willRetain = (flags & 0x20) !== 0;
  if (!hasWill && (willQos !== 0 || willRetain)) {
    throw new MalformedPacketError(
      "will QoS or retain set without the will flag [MQTT-3.1.2-11] [MQTT-3.1.2-13] [MQTT-3.1.2-15]",
    );
  }
  if (willQos === 3) {
    throw new MalformedPacketError("will QoS 3 [MQTT-3.1.2-14]");
  }
  const hasUser = (flags & 0x80) !== 0;
  const hasPass = (flags & 0x40) !== 0;
  if (hasPass && !hasUser && !v5) {
    throw new ProtocolError(
      "password flag without user name flag [MQTT-3.1.2-22]",
    );
  }
  const keepAlive = r.u16("keep alive");
  const properties = v5 ? readProps(r, C.connect, "CONNECT") : undefined;
  const clientId = r.string("client identifier");
  const p: ConnectPacket = {
    type: "connect",
    protocolVersion: version,
    clientId,
    cleanStart: (flags & 0x02) !== 0,
    keepAlive,
  };
  if (properties !== undefined) p.properties = properties;
  if (raw !== level) p.bridge = true;
  if (hasWill) {
    const wp = v5 ? readProps(r, C.will, "will") : undefined;
    const topic = r.string("will topic");
    if (!isValidTopicName(topic)) {
      throw new MalformedPacketError(`invalid will topic "${topic}"`);
    }
    const will: Will = {
      topic,
      payload: r.binary("will payload"),
      qos: willQos as QoS,
      retain: willRetain,
    };
    if (wp !== undefined) will.properties = wp;
    p.will = will;
  }
  if (hasUser) p.username = r.string("user name");
  if (hasPass) p.password = r.binary("password");
  r.done("CONNECT");
  return p;
}

/** v5 reason code + properties tail (acks, DISCONNECT, AUTH). */
function reasonTail(
  r: Reader,
  p: { reasonCode?: number; properties?: Properties },
  ctx: number,
  what: string,
): void {
  if (r.pos === r.end) return;
  const code = r.u8("reason code");
  const props = r.pos === r.end ? undefined : readProps(r, ctx, what);
  // Absent means 0x00: a 0x00 with no properties is the same packet as the
  // short form (and is what encode() writes for it).
  if (code !== 0 || props !== undefined) p.reasonCode = code;
  if (props !== undefined) p.properties = props;
}

function decodeSubscribe(r: Reader, v5: boolean): Packet {
  const id = packetId(r, "SUBSCRIBE");
  const properties = v5 ? readProps(r, C.subscribe, "SUBSCRIBE") : undefined;
  const subscriptions: Subscription[] = [];
  while (r.pos < r.end) {
    const filter = r.string("topic filter");
    const o = r.u8("subscription options");
    const qos = o & 3;
    if (qos === 3) {
      throw new MalformedPacketError(
        `subscription QoS 3 for "${filter}" [MQTT-3-8.3-4]`,
      );
    }
    if ((o & (v5 ? 0xc0 : 0xfc)) !== 0) {
      throw new MalformedPacketError(
        `reserved subscription option bits set for "${filter}" [MQTT-3.8.3-5]`,
      );
    }
    if (!isValidTopicFilter(filter)) {
      throw new MalformedPacketError(`invalid topic filter "${filter}"`);
    }
    const s: Subscription = { filter, qos: qos as QoS };
    if (v5) {
      const rh = (o >> 4) & 3;
      if (rh === 3) {
        throw new ProtocolError(`retain handling 3 for "${filter}"`);
      }
      if ((o & 0x04) !== 0) {
        if (filter.startsWith("$share/")) {
          throw new ProtocolError(
            `no local on shared subscription "${filter}" [MQTT-3.8.3-4]`,
          );
        }
        s.noLocal = true;
      }
      if ((o & 0x08) !== 0) s.retainAsPublished = true;
      if (rh !== 0) s.retainHandling = rh as 1 | 2;
    }
    subscriptions.push(s);
  }
  if (subscriptions.length === 0) {
    throw new ProtocolError("SUBSCRIBE without subscriptions [MQTT-3.8.3-3]");
  }
  const p: Packet = { type: "subscribe", packetId: id, subscriptions };
  if (properties !== undefined) p.properties = properties;
  return p;
}

function decodeUnsubscribe(r: Reader, v5: boolean): Packet {
  const id = packetId(r, "UNSUBSCRIBE");
  const properties = v5
    ? readProps(r, C.unsubscribe, "UNSUBSCRIBE")
    : undefined;
  const filters: string[] = [];
  while (r.pos < r.end) {
    const filter = r.string("topic filter");
    if (!isValidTopicFilter(filter)) {
      throw new MalformedPacketError(`invalid topic filter "${filter}"`);
    }
    filters.push(filter);
  }
  if (filters.length === 0) {
    throw new ProtocolError(
      "UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]",
    );
  }
  const p: Packet = { type: "unsubscribe", packetId: id, filters };
  if (properties !== undefined) p.properties = properties;
  return p;
}

/*
 * Topic name cache: decoding a short topic costs more than the rest of a
 * small PUBLISH, and topics repeat. A direct-mapped table keyed by a hash of
 * the bytes holds recently seen ASCII topic names that passed validation; a
 * hit is confirmed byte by byte, so the cache never changes a result. It is
 * module-wide (shared by all decoders); entries are short strings only.
 */
const TOPIC_CACHE_SIZE = 4096;
const TOPIC_CACHE_MAX = 64;
const topicCache: (string | undefined)[] = new Array(TOPIC_CACHE_SIZE).fill(
  undefined,
);
const topicSeen = new Int32Array(TOPIC_CACHE_SIZE);

function readTopic(r: Reader): string {
  const len = r.u16("topic name");
  const buf = r.buf;
  const start = r.pos;
  const end = start + len;
  if (end > r.end) {
    throw new MalformedPacketError("packet too short for topic name");
  }
  r.pos = end;
  if (len === 0) return "";
  if (len > TOPIC_CACHE_MAX) return validTopic(decodeUtf8(buf, start, end));
  let h = 0x811c9dc5;
  for (let i = start; i < end; i++) h = Math.imul(h ^ buf[i]!, 0x01000193);
  const slot = (h >>> 0) & (TOPIC_CACHE_SIZE - 1);
  const cached = topicCache[slot];
  if (cached !== undefined && cached.length === len) {
    let i = 0;
    while (i < len && cached.charCodeAt(i) === buf[start + i]) i++;
    if (i === len) return cached;
  }
  const topic = validTopic(decodeUtf8(buf, start, end));
  // Cache ASCII topics only, and only on their second sighting (a cheap
  // hash per slot remembers the first) so one-off topics cost no GC churn.
  if (topic.length === len) {
    if (topicSeen[slot] === h) topicCache[slot] = topic;
    else topicSeen[slot] = h;
  }
  return topic;
}

function validTopic(topic: string): string {
  if (!isValidTopicName(topic)) {
    throw new MalformedPacketError(
      `invalid topic name "${topic}" [MQTT-3.3.2-2]`,
    );
  }
  return topic;
}

function decodePublish(r: Reader, first: number, v5: boolean): Packet {
  const qos = ((first >> 1) & 3) as QoS;
  const topic = readTopic(r);
  let packetIdValue = 0;
  if (qos !== 0) packetIdValue = packetId(r, "PUBLISH");
  const properties = v5 ? readProps(r, C.publish, "PUBLISH") : undefined;
  const responseTopic = properties?.responseTopic;
  if (responseTopic !== undefined && !isValidTopicName(responseTopic)) {
    throw new MalformedPacketError(
      `invalid response topic "${responseTopic}" [MQTT-3.3.2-14]`,
    );
  }
  if (topic.length === 0 && properties?.topicAlias === undefined) {
    throw new ProtocolError(
      "PUBLISH with an empty topic name and no topic alias [MQTT-3.3.2-1]",
    );
  }
  const p: Packet = {
    type: "publish",
    topic,
    payload: r.rest(),
    qos,
    retain: (first & 1) !== 0,
    dup: (first & 8) !== 0,
  };
  if (qos !== 0) p.packetId = packetIdValue;
  if (properties !== undefined) p.properties = properties;
  return p;
}

/**
 * Decodes the body `buf[start, end)` of a packet whose first header byte is
 * `first` (already checked by checkFirstByte).
 */
export function decodeBody(
  first: number,
  buf: Uint8Array,
  start: number,
  end: number,
  version: ProtocolVersion,
): Packet {
  const r = reader;
  r.buf = buf;
  r.pos = start;
  r.end = end;
  const v5 = version === 5;
  const type = first >> 4;
  let p: Packet;
  switch (type) {
    case 3:
      return decodePublish(r, first, v5);
    case 1:
      return decodeConnect(r);
    case 2: {
      const flags = r.u8("connack flags");
      if ((flags & 0xfe) !== 0) {
        throw new MalformedPacketError(
          "CONNACK reserved flags set [MQTT-3.2.2-1]",
        );
      }
      p = {
        type: "connack",
        sessionPresent: flags === 1,
        reasonCode: r.u8("connect reason code"),
      };
      if (v5) {
        const props = readProps(r, C.connack, "CONNACK");
        if (props !== undefined) p.properties = props;
      }
      break;
    }
    case 4:
    case 5:
    case 6:
    case 7: {
      const t = TYPES[type] as "puback" | "pubrec" | "pubrel" | "pubcomp";
      p = { type: t, packetId: packetId(r, NAMES[type]!) };
      if (v5) reasonTail(r, p, C[t], NAMES[type]!);
      break;
    }
    case 8:
      p = decodeSubscribe(r, v5);
      break;
    case 9: {
      const id = packetId(r, "SUBACK");
      const props = v5 ? readProps(r, C.suback, "SUBACK") : undefined;
      const codes = Array.from(r.rest());
      if (codes.length === 0) {
        throw new ProtocolError("SUBACK without reason codes");
      }
      p = { type: "suback", packetId: id, reasonCodes: codes };
      if (props !== undefined) p.properties = props;
      break;
    }
    case 10:
      p = decodeUnsubscribe(r, v5);
      break;
    case 11: {
      p = { type: "unsuback", packetId: packetId(r, "UNSUBACK") };
      if (v5) {
        const props = readProps(r, C.unsuback, "UNSUBACK");
        if (props !== undefined) p.properties = props;
        p.reasonCodes = Array.from(r.rest());
      }
      break;
    }
    case 12:
      p = { type: "pingreq" };
      break;
    case 13:
      p = { type: "pingresp" };
      break;
    case 14:
      p = { type: "disconnect" };
      if (v5) reasonTail(r, p, C.disconnect, "DISCONNECT");
      break;
    case 15:
      if (!v5) throw new MalformedPacketError("AUTH exists only in MQTT 5.0");
      p = { type: "auth" };
      reasonTail(r, p, C.auth, "AUTH");
      break;
    default:
      throw new MalformedPacketError(`reserved packet type ${type}`);
  }
  r.done(NAMES[type]!);
  return p;
}
