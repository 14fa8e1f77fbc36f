/**
 * Packet encoding: {@linkcode encode} turns a {@linkcode Packet} into its wire
 * bytes for MQTT 3.1, 3.1.1 or 5.0. Each encoder computes the exact size
 * first and writes into one Uint8Array.
 *
 * @module
 */

import type {
  AckPacket,
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from "./packet.ts";
import { MalformedPacketError, MqttError, ProtocolError } from "./errors.ts";
import { ReasonCode } from "./reason_code.ts";
import {
  CONTEXT_BIT,
  PROPERTY_BY_NAME,
  type PropertyContext,
  type PropertyInfo,
} from "./properties.ts";
import {
  allocPacket,
  binaryLength,
  MAX_VARINT,
  stringLength,
  utf8Length,
  varintSize,
  writeBinary,
  writeString,
  writeU16,
  writeU32,
  writeVarint,
} from "./_writer.ts";

/** Options for {@linkcode encode}. */
export interface EncodeOptions {
  /**
   * Protocol version of the connection (default 4, MQTT 3.1.1; 3 encodes as
   * 3.1.1). CONNECT always uses its own `protocolVersion`.
   */
  version?: ProtocolVersion;
}

function checkInt(v: number, max: number, what: string): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new MalformedPacketError(`${what} ${v} is not an integer 0..${max}`);
  }
}

function checkPacketId(id: number | undefined, type: string): number {
  if (id === undefined || !Number.isInteger(id) || id < 1 || id > 0xffff) {
    throw new ProtocolError(
      `${type} needs a packet identifier 1..65535, got ${id} [MQTT-2.2.1-3]`,
    );
  }
  return id;
}

function checkByte(v: number, what: string): number {
  checkInt(v, 0xff, what);
  return v;
}

/**
 * Byte length of the property block content (without its length prefix),
 * validating every property against the table for `ctx`.
 */
function propsLength(
  props: Properties | undefined,
  ctx: PropertyContext,
): number {
  if (props === undefined) return 0;
  const bit = CONTEXT_BIT[ctx];
  let len = 0;
  for (const name in props) {
    const value = (props as Record<string, unknown>)[name];
    if (value === undefined) continue;
    const info = PROPERTY_BY_NAME.get(name);
    if (info === undefined) {
      throw new MalformedPacketError(`unknown property "${name}"`);
    }
    if ((info.mask & bit) === 0) {
      throw new MalformedPacketError(
        `property ${name} is not allowed in ${ctx} [MQTT-2.2.2-2]`,
      );
    }
    len += valueLength(info, value, ctx);
  }
  return len;
}

function valueLength(
  info: PropertyInfo,
  value: unknown,
  ctx: PropertyContext,
): number {
  const name = info.name;
  switch (info.type) {
    case "byte":
      checkInt(value as number, 0xff, name);
      if (info.flag === true && (value as number) > 1) {
        throw new ProtocolError(`${name} ${value} (must be 0 or 1)`);
      }
      return 2;
    case "u16":
      checkInt(value as number, 0xffff, name);
      if (value === 0) {
        if (info.id === 0x21) throw new ProtocolError("receiveMaximum 0");
        if (info.id === 0x23) {
          throw new MqttError(
            ReasonCode.TopicAliasInvalid,
            "topic alias 0 [MQTT-3.3.2-8]",
          );
        }
      }
      return 3;
    case "u32":
      checkInt(value as number, 0xffffffff, name);
      if (value === 0 && info.id === 0x27) {
        throw new ProtocolError("maximumPacketSize 0");
      }
      return 5;
    case "string":
      return 3 + stringLength(value as string, name);
    case "binary":
      return 3 + binaryLength(value as Uint8Array, name);
    case "varint": {
      const ids = value as number[];
      if (ctx === "subscribe" && ids.length > 1) {
        throw new ProtocolError(
          "SUBSCRIBE carries at most one subscription identifier",
        );
      }
      let len = 0;
      for (const id of ids) {
        checkInt(id, MAX_VARINT, name);
        if (id === 0) {
          throw new ProtocolError("subscription identifier 0 [MQTT-3.8.2-1]");
        }
        len += 1 + varintSize(id);
      }
      return len;
    }
    case "pair": {
      let len = 0;
      for (const [k, v] of value as [string, string][]) {
        len += 5 + stringLength(k, "user property key") +
          stringLength(v, "user property value");
      }
      return len;
    }
  }
}

/** Writes the property block (length prefix + content of length `len`). */
function writeProps(
  buf: Uint8Array,
  pos: number,
  props: Properties | undefined,
  len: number,
): number {
  pos = writeVarint(buf, pos, len);
  if (len === 0 || props === undefined) return pos;
  for (const name in props) {
    const value = (props as Record<string, unknown>)[name];
    if (value === undefined) continue;
    const info = PROPERTY_BY_NAME.get(name)!;
    const id = info.id;
    switch (info.type) {
      case "byte":
        buf[pos++] = id;
        buf[pos++] = value as number;
        break;
      case "u16":
        buf[pos++] = id;
        pos = writeU16(buf, pos, value as number);
        break;
      case "u32":
        buf[pos++] = id;
        pos = writeU32(buf, pos, value as number);
        break;
      case "string": {
        const s = value as string;
        buf[pos++] = id;
        pos = writeString(buf, pos, s, utf8Length(s));
        break;
      }
      case "binary":
        buf[pos++] = id;
        pos = writeBinary(buf, pos, value as Uint8Array);
        break;
      case "varint":
        for (const n of value as number[]) {
          buf[pos++] = id;
          pos = writeVarint(buf, pos, n);
        }
        break;
      case "pair":
        for (const [k, v] of value as [string, string][]) {
          buf[pos++] = id;
          pos = writeString(buf, pos, k, utf8Length(k));
          pos = writeString(buf, pos, v, utf8Length(v));
        }
        break;
    }
  }
  return pos;
}

function encodeConnect(p: ConnectPacket): Uint8Array {
  const v = p.protocolVersion;
  if (v !== 3 && v !== 4 && v !== 5) {
    throw new MalformedPacketError(`unknown protocol version ${v}`);
  }
  const v5 = v === 5;
  const nameLen = v === 3 ? 6 : 4;
  const keepAlive = p.keepAlive;
  checkInt(keepAlive, 0xffff, "keepAlive");
  let pl = 0;
  let rl = 2 + nameLen + 1 + 1 + 2;
  if (v5) {
    pl = propsLength(p.properties, "connect");
    rl += varintSize(pl) + pl;
  }
  const idLen = stringLength(p.clientId, "client identifier");
  rl += 2 + idLen;
  const will = p.will;
  let wpl = 0;
  let wtLen = 0;
  if (will !== undefined) {
    if (will.qos !== 0 && will.qos !== 1 && will.qos !== 2) {
      throw new MalformedPacketError(`will QoS ${will.qos} [MQTT-3.1.2-14]`);
    }
    if (v5) {
      wpl = propsLength(will.properties, "will");
      rl += varintSize(wpl) + wpl;
    }
    wtLen = stringLength(will.topic, "will topic");
    rl += 2 + wtLen + 2 + binaryLength(will.payload, "will payload");
  }
  let userLen = 0;
  if (p.username !== undefined) {
    userLen = stringLength(p.username, "user name");
    rl += 2 + userLen;
  } else if (p.password !== undefined && !v5) {
    throw new ProtocolError(
      "a password needs a user name before MQTT 5.0 [MQTT-3.1.2-22]",
    );
  }
  if (p.password !== undefined) {
    rl += 2 + binaryLength(p.password, "password");
  }
  const buf = allocPacket(0x10, rl);
  let pos = buf.length - rl;
  if (v === 3) {
    // 00 06 "MQIsdp"
    buf.set([0, 6, 0x4d, 0x51, 0x49, 0x73, 0x64, 0x70], pos);
    pos += 8;
  } else {
    // 00 04 "MQTT"
    buf.set([0, 4, 0x4d, 0x51, 0x54, 0x54], pos);
    pos += 6;
  }
  buf[pos++] = p.bridge === true ? v | 0x80 : v;
  let flags = p.cleanStart ? 0x02 : 0;
  if (will !== undefined) {
    flags |= 0x04 | (will.qos << 3) | (will.retain ? 0x20 : 0);
  }
  if (p.password !== undefined) flags |= 0x40;
  if (p.username !== undefined) flags |= 0x80;
  buf[pos++] = flags;
  pos = writeU16(buf, pos, keepAlive);
  if (v5) pos = writeProps(buf, pos, p.properties, pl);
  pos = writeString(buf, pos, p.clientId, idLen);
  if (will !== undefined) {
    if (v5) pos = writeProps(buf, pos, will.properties, wpl);
    pos = writeString(buf, pos, will.topic, wtLen);
    pos = writeBinary(buf, pos, will.payload);
  }
  if (p.username !== undefined) {
    pos = writeString(buf, pos, p.username, userLen);
  }
  if (p.password !== undefined) writeBinary(buf, pos, p.password);
  return buf;
}

function encodeConnack(p: ConnackPacket, v5: boolean): Uint8Array {
  let rl = 2;
  let pl = 0;
  if (v5) {
    pl = propsLength(p.properties, "connack");
    rl += varintSize(pl) + pl;
  }
  const buf = allocPacket(0x20, rl);
  let pos = buf.length - rl;
  buf[pos++] = p.sessionPresent ? 1 : 0;
  buf[pos++] = checkByte(p.reasonCode, "reasonCode");
  if (v5) writeProps(buf, pos, p.properties, pl);
  return buf;
}

function encodePublish(p: PublishPacket, v5: boolean): Uint8Array {
  const qos = p.qos;
  if (qos !== 0 && qos !== 1 && qos !== 2) {
    throw new MalformedPacketError(`PUBLISH QoS ${qos} [MQTT-3.3.1-4]`);
  }
  const topic = p.topic;
  const tl = stringLength(topic, "topic name");
  const payload = p.payload;
  let rl = 2 + tl + payload.length;
  if (qos !== 0) rl += 2;
  let pl = 0;
  if (v5) {
    const props = p.properties;
    if (props !== undefined) pl = propsLength(props, "publish");
    rl += varintSize(pl) + pl;
  }
  const buf = allocPacket(
    0x30 | (p.dup ? 0x08 : 0) | (qos << 1) | (p.retain ? 1 : 0),
    rl,
  );
  let pos = writeString(buf, buf.length - rl, topic, tl);
  if (qos !== 0) pos = writeU16(buf, pos, checkPacketId(p.packetId, "PUBLISH"));
  if (v5) pos = writeProps(buf, pos, p.properties, pl);
  buf.set(payload, pos);
  return buf;
}

const ACK_FIRST = { puback: 0x40, pubrec: 0x50, pubrel: 0x62, pubcomp: 0x70 };

/**
 * Reason code + properties tail shared by acks, DISCONNECT and AUTH: omitted
 * when the code is 0 and there are no properties.
 */
function encodeWithReason(
  first: number,
  idLen: number,
  packetId: number,
  reasonCode: number | undefined,
  props: Properties | undefined,
  ctx: PropertyContext,
  v5: boolean,
): Uint8Array {
  let rl = idLen;
  let pl = 0;
  const rc = reasonCode ?? 0;
  let withCode = false;
  if (v5) {
    pl = propsLength(props, ctx);
    if (pl > 0) rl += 1 + varintSize(pl) + pl;
    else if (rc !== 0) rl += 1;
    withCode = rl > idLen;
  }
  const buf = allocPacket(first, rl);
  let pos = buf.length - rl;
  if (idLen === 2) pos = writeU16(buf, pos, packetId);
  if (withCode) {
    buf[pos++] = checkByte(rc, "reasonCode");
    if (pl > 0) writeProps(buf, pos, props, pl);
  }
  return buf;
}

function encodeAck(p: AckPacket, v5: boolean): Uint8Array {
  return encodeWithReason(
    ACK_FIRST[p.type],
    2,
    checkPacketId(p.packetId, p.type),
    p.reasonCode,
    p.properties,
    p.type,
    v5,
  );
}

function encodeSubscribe(p: SubscribePacket, v5: boolean): Uint8Array {
  const id = checkPacketId(p.packetId, "SUBSCRIBE");
  const subs = p.subscriptions;
  if (subs.length === 0) {
    throw new ProtocolError("SUBSCRIBE without subscriptions [MQTT-3.8.3-3]");
  }
  let rl = 2;
  let pl = 0;
  if (v5) {
    pl = propsLength(p.properties, "subscribe");
    rl += varintSize(pl) + pl;
  }
  const lens = new Array<number>(subs.length);
  for (let i = 0; i < subs.length; i++) {
    const s = subs[i]!;
    if (s.qos !== 0 && s.qos !== 1 && s.qos !== 2) {
      throw new MalformedPacketError(`subscription QoS ${s.qos}`);
    }
    if (s.retainHandling !== undefined) {
      checkInt(s.retainHandling, 2, "retainHandling");
    }
    const l = stringLength(s.filter, "topic filter");
    lens[i] = l;
    rl += 3 + l;
  }
  const buf = allocPacket(0x82, rl);
  let pos = writeU16(buf, buf.length - rl, id);
  if (v5) pos = writeProps(buf, pos, p.properties, pl);
  for (let i = 0; i < subs.length; i++) {
    const s = subs[i]!;
    pos = writeString(buf, pos, s.filter, lens[i]!);
    let o: number = s.qos;
    if (v5) {
      if (s.noLocal) o |= 0x04;
      if (s.retainAsPublished) o |= 0x08;
      o |= (s.retainHandling ?? 0) << 4;
    }
    buf[pos++] = o;
  }
  return buf;
}

function encodeSuback(p: SubackPacket, v5: boolean): Uint8Array {
  const id = checkPacketId(p.packetId, "SUBACK");
  const codes = p.reasonCodes;
  let rl = 2 + codes.length;
  let pl = 0;
  if (v5) {
    pl = propsLength(p.properties, "suback");
    rl += varintSize(pl) + pl;
  }
  const buf = allocPacket(0x90, rl);
  let pos = writeU16(buf, buf.length - rl, id);
  if (v5) pos = writeProps(buf, pos, p.properties, pl);
  for (const c of codes) buf[pos++] = checkByte(c, "reason code");
  return buf;
}

function encodeUnsubscribe(p: UnsubscribePacket, v5: boolean): Uint8Array {
  const id = checkPacketId(p.packetId, "UNSUBSCRIBE");
  const filters = p.filters;
  if (filters.length === 0) {
    throw new ProtocolError(
      "UNSUBSCRIBE without topic filters [MQTT-3.10.3-2]",
    );
  }
  let rl = 2;
  let pl = 0;
  if (v5) {
    pl = propsLength(p.properties, "unsubscribe");
    rl += varintSize(pl) + pl;
  }
  const lens = filters.map((f) => stringLength(f, "topic filter"));
  for (const l of lens) rl += 2 + l;
  const buf = allocPacket(0xa2, rl);
  let pos = writeU16(buf, buf.length - rl, id);
  if (v5) pos = writeProps(buf, pos, p.properties, pl);
  for (let i = 0; i < filters.length; i++) {
    pos = writeString(buf, pos, filters[i]!, lens[i]!);
  }
  return buf;
}

function encodeUnsuback(p: UnsubackPacket, v5: boolean): Uint8Array {
  const id = checkPacketId(p.packetId, "UNSUBACK");
  if (!v5) {
    const buf = allocPacket(0xb0, 2);
    writeU16(buf, 2, id);
    return buf;
  }
  const codes = p.reasonCodes ?? [];
  const pl = propsLength(p.properties, "unsuback");
  const rl = 2 + varintSize(pl) + pl + codes.length;
  const buf = allocPacket(0xb0, rl);
  let pos = writeU16(buf, buf.length - rl, id);
  pos = writeProps(buf, pos, p.properties, pl);
  for (const c of codes) buf[pos++] = checkByte(c, "reason code");
  return buf;
}

function encodeDisconnect(p: DisconnectPacket, v5: boolean): Uint8Array {
  return encodeWithReason(
    0xe0,
    0,
    0,
    p.reasonCode,
    p.properties,
    "disconnect",
    v5,
  );
}

function encodeAuth(p: AuthPacket, v5: boolean): Uint8Array {
  if (!v5) throw new ProtocolError("AUTH exists only in MQTT 5.0");
  return encodeWithReason(0xf0, 0, 0, p.reasonCode, p.properties, "auth", v5);
}

/**
 * Encodes one packet into a new Uint8Array of exactly its size.
 *
 * Properties are checked against the property table (a property not allowed
 * in the packet, a flag other than 0/1, a subscription identifier 0 throw a
 * typed {@linkcode MqttError}); they are ignored below MQTT 5.0. Optional v5
 * reason codes are written in the shortest form the spec allows.
 *
 * @param packet The packet.
 * @param options `version` of the connection (default 4); CONNECT uses its
 * own `protocolVersion`.
 * @returns The wire bytes.
 * @throws {MqttError} for a packet that cannot be encoded faithfully.
 *
 * @example
 * ```ts
 * import { encode } from "@kite/mqtt/codec";
 * const bytes = encode({
 *   type: "publish",
 *   topic: "a/b",
 *   payload: new TextEncoder().encode("hi"),
 *   qos: 0,
 *   retain: false,
 *   dup: false,
 * });
 * console.log(bytes); // Uint8Array(9) [48, 7, 0, 3, 97, 47, 98, 104, 105]
 * ```
 */
export function encode(packet: Packet, options?: EncodeOptions): Uint8Array {
  const v5 = options?.version === 5;
  switch (packet.type) {
    case "publish":
      return encodePublish(packet, v5);
    case "connect":
      return encodeConnect(packet);
    case "connack":
      return encodeConnack(packet, v5);
    case "puback":
    case "pubrec":
    case "pubrel":
    case "pubcomp":
      return encodeAck(packet, v5);
    case "subscribe":
      return encodeSubscribe(packet, v5);
    case "suback":
      return encodeSuback(packet, v5);
    case "unsubscribe":
      return encodeUnsubscribe(packet, v5);
    case "unsuback":
      return encodeUnsuback(packet, v5);
    case "pingreq":
      return new Uint8Array([0xc0, 0]);
    case "pingresp":
      return new Uint8Array([0xd0, 0]);
    case "disconnect":
      return encodeDisconnect(packet, v5);
    case "auth":
      return encodeAuth(packet, v5);
    default:
      throw new MalformedPacketError(
        `unknown packet type ${(packet as { type: unknown }).type}`,
      );
  }
}

/**
 * The offset of the two-byte packet identifier inside an encoded QoS 1 or 2
 * PUBLISH, so that one encoding can be shared among subscribers and only the
 * identifier patched (the DUP flag is bit 0x08 of byte 0).
 *
 * @param bytes An encoded PUBLISH with QoS > 0.
 * @returns The offset of the packet identifier's high byte.
 * @throws {MalformedPacketError} when `bytes` is not such a PUBLISH.
 *
 * @example
 * ```ts
 * import { encode, publishPacketIdOffset } from "@kite/mqtt/codec";
 * const bytes = encode({
 *   type: "publish", topic: "t", payload: new Uint8Array(), qos: 1,
 *   retain: false, dup: false, packetId: 1,
 * });
 * const at = publishPacketIdOffset(bytes); // 5
 * bytes[at] = 0x12; // packet id 0x1234
 * bytes[at + 1] = 0x34;
 * ```
 */
export function publishPacketIdOffset(bytes: Uint8Array): number {
  const first = bytes[0];
  if (first === undefined || (first & 0xf0) !== 0x30 || (first & 0x06) === 0) {
    throw new MalformedPacketError("not an encoded QoS 1 or 2 PUBLISH");
  }
  let i = 1;
  while (i < 5 && ((bytes[i] ?? 0) & 0x80) !== 0) i++;
  i++;
  const at = i + 2 + (((bytes[i] ?? 0) << 8) | (bytes[i + 1] ?? 0));
  if (at + 2 > bytes.length) {
    throw new MalformedPacketError("encoded PUBLISH is truncated");
  }
  return at;
}
