/**
 * Packet decoding: {@linkcode PacketDecoder} turns a byte stream into packets
 * (split at any byte, many per chunk) and {@linkcode decode} decodes exactly
 * one whole packet. Every rule a receiver must check fails with a typed
 * {@linkcode MqttError}: 0x81 malformed, 0x82 protocol error, 0x84
 * unsupported protocol version, 0x94 topic alias invalid, 0x95 too large.
 *
 * Payloads, binary properties, passwords and will payloads are views
 * (`subarray`) of the bytes they were decoded from, never copied twice: of
 * the pushed chunk when the packet lies within one chunk, of one exact-size
 * region when it was assembled across chunks (small packets are cut from a
 * shared slab, see `alloc` in _slab.ts). A view keeps its chunk alive,
 * so do not reuse or overwrite a chunk after pushing it (copy a payload you
 * keep for long if its chunk is large).
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
  PacketTooLargeError,
  ProtocolError,
} from "./errors.ts";
import { ReasonCode } from "./reason_code.ts";
import { CONTEXT_BIT, PROPERTY_BY_ID } from "./properties.ts";
import { isValidTopicFilter, isValidTopicName } from "./topic.ts";
import { decodeUtf8, Reader } from "./_reader.ts";
import { alloc } from "./_slab.ts";

/** The largest possible MQTT packet: 1 + 4 + 268,435,455 bytes. */
export const MAX_PACKET_SIZE = 268_435_460;

/** Options for {@linkcode PacketDecoder} and {@linkcode decode}. */
export interface DecoderOptions {
  /**
   * Protocol version of the connection. Leave undefined on the server side:
   * the decoder then expects a CONNECT first and adopts its version.
   */
  version?: ProtocolVersion;
  /**
   * Largest accepted packet in bytes, fixed header included (default and
   * maximum {@linkcode MAX_PACKET_SIZE}).
   */
  maxPacketSize?: number;
}

const C = CONTEXT_BIT;
const EMPTY = new Uint8Array(0);
const reader = new Reader(EMPTY, 0, 0);

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
function checkFirstByte(first: number, version: ProtocolVersion | undefined) {
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
  if (version === undefined && type !== 1) {
    throw new ProtocolError(
      `the first packet must be CONNECT, got ${TYPES[type]} [MQTT-3.1.0-1]`,
    );
  }
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
  const level = r.u8("protocol level");
  if (
    !((name === "MQTT" && (level === 4 || level === 5)) ||
      (name === "MQIsdp" && level === 3))
  ) {
    throw new MqttError(
      ReasonCode.UnsupportedProtocolVersion,
      `unsupported protocol "${name}" level ${level} [MQTT-3.1.2-2]`,
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
  p.reasonCode = r.u8("reason code");
  if (r.pos === r.end) return;
  const props = readProps(r, ctx, what);
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
function decodeBody(
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

function checkMaxSize(n: number | undefined): number {
  if (n === undefined) return MAX_PACKET_SIZE;
  if (!Number.isInteger(n) || n < 2) {
    throw new RangeError(`maxPacketSize must be an integer >= 2, got ${n}`);
  }
  return Math.min(n, MAX_PACKET_SIZE);
}

/**
 * An incremental decoder: push chunks of a byte stream, get packets.
 *
 * Packets may be split at any byte and many may arrive in one chunk; a packet
 * within one chunk is decoded in place (no copy), a packet split across
 * chunks is copied once into a buffer of its exact size. The size is checked
 * against `maxPacketSize` as soon as the fixed header is complete, before
 * any of the body is buffered, so `buffered` never exceeds `maxPacketSize`.
 *
 * After `push` throws, the decoder is unusable: every later push throws the
 * same error.
 *
 * @example
 * ```ts
 * import { PacketDecoder } from "@kite/mqtt/codec";
 * const decoder = new PacketDecoder({ version: 4 });
 * const bytes = new Uint8Array([0x30, 0x05, 0x00, 0x01, 0x74, 0x68, 0x69]);
 * decoder.push(bytes.subarray(0, 3), (p) => console.log(p));
 * decoder.push(bytes.subarray(3), (p) => console.log(p.type)); // "publish"
 * ```
 */
export class PacketDecoder {
  /** Protocol version; set from the CONNECT when it was undefined. */
  version: ProtocolVersion | undefined;
  /** Largest accepted packet in bytes, fixed header included. */
  maxPacketSize: number;

  /** A fixed header split across chunks (allocated on first need). */
  #hdr: Uint8Array | undefined;
  #hdrFill = 0;
  #asm: Uint8Array | undefined;
  #asmFill = 0;
  #asmHeader = 0;
  #error: unknown;

  /** Creates a decoder; see {@linkcode DecoderOptions}. */
  constructor(options?: DecoderOptions) {
    this.version = options?.version;
    this.maxPacketSize = checkMaxSize(options?.maxPacketSize);
  }

  /** Bytes of an incomplete packet held by the decoder. */
  get buffered(): number {
    return this.#asm !== undefined ? this.#asmFill : this.#hdrFill;
  }

  /**
   * Decodes every complete packet in `chunk` (plus what was buffered) and
   * calls `onPacket` for each, in order, synchronously.
   *
   * @throws {MqttError} on bad input. After any exception (also one thrown
   * by `onPacket`, which propagates) the decoder is unusable.
   */
  push(chunk: Uint8Array, onPacket: (packet: Packet) => void): void {
    if (this.#error !== undefined) throw this.#error;
    try {
      this.#push(chunk, onPacket);
    } catch (e) {
      // The stream position is lost either way: fail for good.
      this.#error = e ?? new Error("push failed");
      this.#asm = undefined;
      this.#hdrFill = 0;
      this.#asmFill = 0;
      throw e;
    } finally {
      reader.buf = EMPTY;
    }
  }

  #emit(p: Packet, onPacket: (packet: Packet) => void): void {
    if (this.version === undefined && p.type === "connect") {
      this.version = p.protocolVersion;
    }
    onPacket(p);
  }

  /** Total size from a complete fixed header, after the size check. */
  #total(first: number, rl: number, hlen: number): number {
    const total = hlen + rl;
    if (total > this.maxPacketSize) {
      throw new PacketTooLargeError(
        `packet of ${total} bytes exceeds the maximum packet size ${this.maxPacketSize}`,
      );
    }
    checkFirstByte(first, this.version);
    return total;
  }

  /**
   * With `fill` header bytes and no end of the remaining length yet, the
   * packet has at least `fill + 1` header bytes and, when a length byte was
   * seen, 128^(fill-1) body bytes (the next length byte is not 0).
   */
  #checkPartial(fill: number): void {
    if (fill > 1 && fill + 1 + 128 ** (fill - 1) > this.maxPacketSize) {
      throw new PacketTooLargeError(
        `packet exceeds the maximum packet size ${this.maxPacketSize}`,
      );
    }
  }

  #push(chunk: Uint8Array, onPacket: (packet: Packet) => void): void {
    const len = chunk.length;
    let pos = 0;
    // 1. Finish a fixed header split across chunks.
    if (this.#hdrFill > 0) {
      const hdr = this.#hdr!;
      while (pos < len) {
        hdr[this.#hdrFill++] = chunk[pos++]!;
        const rl = parseRemainingLength(hdr, 0, this.#hdrFill);
        if (rl === -1) {
          this.#checkPartial(this.#hdrFill);
          continue;
        }
        const hlen = this.#hdrFill;
        const total = this.#total(hdr[0]!, rl, hlen);
        this.#hdrFill = 0;
        this.#asm = alloc(total);
        this.#asm.set(hdr.subarray(0, hlen));
        this.#asmFill = hlen;
        this.#asmHeader = hlen;
        break;
      }
      if (this.#hdrFill > 0) return;
    }
    // 2. Finish a packet body split across chunks (one copy).
    const asm = this.#asm;
    if (asm !== undefined) {
      const n = Math.min(asm.length - this.#asmFill, len - pos);
      asm.set(chunk.subarray(pos, pos + n), this.#asmFill);
      this.#asmFill += n;
      pos += n;
      if (this.#asmFill < asm.length) return;
      this.#asm = undefined;
      this.#asmFill = 0;
      const first = asm[0]!;
      this.#emit(
        decodeBody(
          first,
          asm,
          this.#asmHeader,
          asm.length,
          first < 0x20 ? 4 : this.version ?? 4,
        ),
        onPacket,
      );
    }
    // 3. Whole packets inside this chunk, decoded in place.
    while (pos < len) {
      const rl = parseRemainingLength(chunk, pos, len);
      if (rl === -1) {
        // Incomplete fixed header: keep at most 4 bytes.
        const rest = len - pos;
        (this.#hdr ??= new Uint8Array(5)).set(chunk.subarray(pos, len));
        this.#hdrFill = rest;
        // Fail early on a bad first byte or a size that cannot fit.
        checkFirstByte(chunk[pos]!, this.version);
        this.#checkPartial(rest);
        return;
      }
      const first = chunk[pos]!;
      const hlen = headerLength(rl);
      const total = this.#total(first, rl, hlen);
      if (len - pos >= total) {
        const p = decodeBody(
          first,
          chunk,
          pos + hlen,
          pos + total,
          first < 0x20 ? 4 : this.version ?? 4,
        );
        pos += total;
        this.#emit(p, onPacket);
      } else {
        const asm = alloc(total);
        asm.set(chunk.subarray(pos, len));
        this.#asm = asm;
        this.#asmFill = len - pos;
        this.#asmHeader = hlen;
        return;
      }
    }
  }
}

function headerLength(rl: number): number {
  return rl < 0x80 ? 2 : rl < 0x4000 ? 3 : rl < 0x200000 ? 4 : 5;
}

/**
 * Parses the remaining length after the first byte at `pos`; returns -1 when
 * the header is incomplete; throws for more than four length bytes. The
 * header length is derived from the value (so a non-minimal encoding is
 * rejected as malformed rather than mis-sized).
 */
function parseRemainingLength(
  buf: Uint8Array,
  pos: number,
  end: number,
): number {
  let value = 0;
  let mul = 1;
  for (let i = 1; i <= 4; i++) {
    if (pos + i >= end) return -1;
    const b = buf[pos + i]!;
    value += (b & 0x7f) * mul;
    if ((b & 0x80) === 0) {
      if (headerLength(value) !== i + 1) {
        throw new MalformedPacketError(
          "remaining length is not minimally encoded",
        );
      }
      return value;
    }
    mul *= 128;
  }
  throw new MalformedPacketError(
    "remaining length longer than four bytes [MQTT-1.5.5]",
  );
}

/**
 * Decodes exactly one whole packet.
 *
 * `options.version` defaults to 4 for packets other than CONNECT (which
 * carries its own version). Views of `bytes` are kept (see the module doc).
 *
 * @throws {MqttError} on bad input, or MalformedPacketError when `bytes` is
 * not exactly one packet.
 *
 * @example
 * ```ts
 * import { decode } from "@kite/mqtt/codec";
 * const p = decode(new Uint8Array([0xc0, 0x00])); // { type: "pingreq" }
 * ```
 */
export function decode(bytes: Uint8Array, options?: DecoderOptions): Packet {
  const version = options?.version ?? 4;
  const max = checkMaxSize(options?.maxPacketSize);
  const rl = parseRemainingLength(bytes, 0, bytes.length);
  if (rl === -1) throw new MalformedPacketError("incomplete fixed header");
  const hlen = headerLength(rl);
  if (hlen + rl > max) {
    throw new PacketTooLargeError(
      `packet of ${hlen + rl} bytes exceeds the maximum packet size ${max}`,
    );
  }
  const first = bytes[0]!;
  checkFirstByte(first, version);
  if (hlen + rl !== bytes.length) {
    throw new MalformedPacketError(
      `remaining length ${rl} does not match the ${bytes.length} bytes given`,
    );
  }
  try {
    return decodeBody(first, bytes, hlen, hlen + rl, version);
  } finally {
    reader.buf = EMPTY;
  }
}
