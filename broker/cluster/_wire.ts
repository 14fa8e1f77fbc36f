/**
 * A message between nodes (private): the NATS payload is the MQTT payload
 * as is (plain NATS clients read it), and headers carry the rest:
 *
 * - `Kite`: `{qos}{retain};{origin};{seq}[;{publisher}]`: QoS and RETAIN
 *   as published, the sending node's boot id and its message number (to
 *   drop the copies NATS sends for each of a node's overlapping
 *   subscriptions), and the publisher's client id (for No Local), raw when
 *   printable ASCII without `;`, else `~` and base64url;
 * - `Kite-Props`: the v5 properties, JSON (binary values as base64url);
 * - `Kite-Exp`: when the message expires (epoch ms);
 * - `Kite-Topic`: the topic (base64url), on the fallback subject and in
 *   inboxes;
 * - `Kite-Durable`: nodes that get the message through their JetStream
 *   inbox (they drop this copy);
 * - `Kite-Handled`: queue groups the sending node delivered itself (or
 *   sent to one node's inbox);
 * - `Kite-Group`: in an inbox, the queue group the message is for (a
 *   shared subscription with persistent members: the sender picked this
 *   node).
 *
 * A message without a `Kite` header comes from a plain NATS client: QoS 0,
 * not retained.
 *
 * The header block is written and read here rather than through the NATS
 * client's header objects, which cost several allocations per message.
 *
 * @module
 */

import { type MsgHdrs, MsgHdrsImpl } from "@nats-io/transport-node";
import type { Properties, QoS } from "../../codec/packet.ts";
import type { StoredMessage } from "../store/store.ts";
import { alloc } from "../../codec/_slab.ts";
import { base64url, fromBase64url } from "./_keys.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const PLAIN = /^[\x21-\x3a\x3c-\x7e]*$/;

/** What the headers say besides the message. */
export interface WireMeta {
  /** The sending node's boot id (undefined: a plain NATS client). */
  origin: string | undefined;
  /** The sending node's message number. */
  seq: number;
  /** The publisher's client id. */
  publisherId: string | undefined;
  /** Nodes that get this message through their inbox. */
  durable: string | undefined;
  /** Queue groups the sender delivered itself. */
  handled: string | undefined;
  /** The queue group an inbox message is for. */
  group: string | undefined;
}

/** A fresh `WireMeta` (reused by its owner across messages). */
export function wireMeta(): WireMeta {
  return {
    origin: undefined,
    seq: 0,
    publisherId: undefined,
    durable: undefined,
    handled: undefined,
    group: undefined,
  };
}

/**
 * A header block already encoded: what the NATS client's core publish
 * calls (`encode`) of the headers it is given.
 */
class EncodedHeaders {
  constructor(readonly bytes: Uint8Array) {}
  encode(): Uint8Array {
    return this.bytes;
  }
}

/** Extra headers of one message. */
export interface WireExtra {
  topic?: boolean;
  durable?: readonly string[];
  handled?: readonly string[];
  group?: string;
}

/**
 * The header block of `message` (see the module doc), for a core publish
 * (`nats.publish(subject, payload, { headers })`).
 */
export function encodeHeaders(
  message: StoredMessage,
  origin: string,
  seq: number,
  publisherId: string | undefined,
  extra?: WireExtra,
): MsgHdrs {
  let s = (message.retain ? RETAINED : PLAIN_QOS)[message.qos] + origin + ";" +
    seq;
  if (publisherId !== undefined) s += publisherSegment(publisherId);
  s += "\r\n";
  let ascii = true;
  if (message.properties !== undefined) {
    s += `Kite-Props: ${JSON.stringify(message.properties, binaryOut)}\r\n`;
    ascii = false;
  }
  if (message.expiresAt !== undefined) {
    s += `Kite-Exp: ${message.expiresAt}\r\n`;
  }
  if (extra !== undefined) {
    if (extra.topic) {
      s += `Kite-Topic: ${base64url(encoder.encode(message.topic))}\r\n`;
    }
    if (extra.durable !== undefined) {
      s += `Kite-Durable: ${extra.durable.join()}\r\n`;
    }
    if (extra.handled !== undefined) {
      s += `Kite-Handled: ${extra.handled.join()}\r\n`;
    }
    if (extra.group !== undefined) s += `Kite-Group: ${extra.group}\r\n`;
  }
  s += "\r\n";
  // Cut from a slab (the NATS client keeps the bytes until its flush).
  const out = alloc(ascii ? s.length : s.length * 3);
  const { written } = encoder.encodeInto(s, out);
  return new EncodedHeaders(
    written === out.length ? out : out.subarray(0, written),
  ) as unknown as MsgHdrs;
}

const PLAIN_QOS = [0, 1, 2].map((q) => `NATS/1.0\r\nKite: ${q}0;`);
const RETAINED = [0, 1, 2].map((q) => `NATS/1.0\r\nKite: ${q}1;`);

/** `;` and the publisher's id as it goes in the header, by id (bounded). */
const publisherSegments = new Map<string, string>();

function publisherSegment(id: string): string {
  let seg = publisherSegments.get(id);
  if (seg !== undefined) return seg;
  seg = ";" + (PLAIN.test(id) ? id : "~" + base64url(encoder.encode(id)));
  if (publisherSegments.size >= 4096) publisherSegments.clear();
  publisherSegments.set(id, seg);
  return seg;
}

/** The same headers as the NATS client's object (for a JetStream publish). */
export function natsHeaders(h: MsgHdrs): MsgHdrs {
  return h instanceof EncodedHeaders ? MsgHdrsImpl.decode(h.bytes) : h;
}

function binaryOut(_k: string, v: unknown): unknown {
  return v instanceof Uint8Array ? { $b: base64url(v) } : v;
}

function binaryIn(_k: string, v: unknown): unknown {
  if (typeof v === "object" && v !== null && "$b" in v) {
    return fromBase64url(String((v as { $b: unknown }).$b));
  }
  return v;
}

/** The header fields Kite reads ("" when absent). */
interface Fields {
  kite: string;
  props: string;
  exp: string;
  topic: string;
  durable: string;
  handled: string;
  group: string;
}

const fields: Fields = {
  kite: "",
  props: "",
  exp: "",
  topic: "",
  durable: "",
  handled: "",
  group: "",
};

/** A received NATS message, as much of it as is read here. */
export interface WireMsg {
  readonly data: Uint8Array;
  readonly headers?: MsgHdrs | undefined;
}

/** Sets every field of `fields` to "" (absent). */
function clearFields(): void {
  fields.kite = fields.props = fields.exp = "";
  fields.topic =
    fields.durable =
    fields.handled =
    fields.group =
      "";
}

/**
 * Reads Kite's header fields of `m` into `fields`: from the raw header
 * block when the client keeps it (core messages), else from its headers
 * object (JetStream messages).
 */
function readFields(m: WireMsg): void {
  const raw = m as unknown as {
    _rdata?: Uint8Array;
    _msg?: { hdr?: number };
  };
  const hdr = raw._msg?.hdr;
  if (raw._rdata instanceof Uint8Array && typeof hdr === "number") {
    readRawFields(hdr <= 0 ? undefined : raw._rdata.subarray(0, hdr));
    return;
  }
  clearFields();
  const h = m.headers;
  if (h === undefined) return;
  fields.kite = h.get("Kite");
  if (fields.kite === "") return;
  for (const k of h.keys()) {
    if (k !== "Kite") set(k, h.get(k));
  }
}

/** Reads Kite's header fields from a raw header block. */
function readRawFields(block: Uint8Array | undefined): void {
  clearFields();
  if (block === undefined) return;
  const text = decoder.decode(block);
  let at = text.indexOf("\r\n") + 2;
  while (at > 1 && at < text.length) {
    const end = text.indexOf("\r\n", at);
    if (end < 0 || end === at) break;
    const colon = text.indexOf(":", at);
    if (colon > at && colon < end) {
      set(text.slice(at, colon), text.slice(colon + 1, end).trim());
    }
    at = end + 2;
  }
}

function set(key: string, value: string): void {
  switch (key) {
    case "Kite":
      fields.kite = value;
      return;
    case "Kite-Props":
      fields.props = value;
      return;
    case "Kite-Exp":
      fields.exp = value;
      return;
    case "Kite-Topic":
      fields.topic = value;
      return;
    case "Kite-Durable":
      fields.durable = value;
      return;
    case "Kite-Handled":
      fields.handled = value;
      return;
    case "Kite-Group":
      fields.group = value;
      return;
  }
}

/**
 * The message and meta data of a NATS message on `topic` (the subject
 * mapped back, or `Kite-Topic`); undefined when it is malformed.
 */
export function decodeMessage(
  topic: string | undefined,
  m: WireMsg,
  meta: WireMeta,
): StoredMessage | undefined {
  readFields(m);
  return fromFields(topic, m.data, meta);
}

/**
 * The message of a raw header block and payload (one message of an inbox
 * pack, which always carries `Kite-Topic`).
 */
export function decodeRaw(
  block: Uint8Array,
  payload: Uint8Array,
  meta: WireMeta,
): StoredMessage | undefined {
  readRawFields(block);
  return fromFields(undefined, payload, meta);
}

/**
 * Marks a QoS 2 message just decoded with its `origin` (the sender's boot
 * id and number, and the queue group it is for, from `meta`): sessions
 * tell a second delivery by it.
 */
export function markOrigin(message: StoredMessage, meta: WireMeta): boolean {
  if (message.qos !== 2 || meta.origin === undefined) return false;
  message.origin = meta.group === undefined
    ? meta.origin + ";" + meta.seq
    : meta.origin + ";" + meta.seq + ";" + meta.group;
  return true;
}

/** The encoded header block of `encodeHeaders`. */
export function headerBlock(h: MsgHdrs): Uint8Array {
  return (h as unknown as EncodedHeaders).bytes;
}

function fromFields(
  topic: string | undefined,
  data: Uint8Array,
  meta: WireMeta,
): StoredMessage | undefined {
  if (data.constructor !== Uint8Array) {
    // NATS hands Node Buffers (whose slice() is a view): plain bytes.
    data = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
  meta.origin = undefined;
  meta.seq = 0;
  meta.publisherId = undefined;
  meta.durable = undefined;
  meta.handled = undefined;
  meta.group = undefined;
  const kite = fields.kite;
  if (kite === "") {
    if (topic === undefined) return undefined;
    return { topic, payload: data, qos: 0, retain: false };
  }
  const qos = (kite.charCodeAt(0) - 48) as QoS;
  const a = kite.indexOf(";");
  const b = kite.indexOf(";", a + 1);
  if (!(qos === 0 || qos === 1 || qos === 2) || a < 0 || b < 0) {
    return undefined;
  }
  meta.origin = kite.slice(a + 1, b);
  const c = kite.indexOf(";", b + 1);
  meta.seq = Number(c < 0 ? kite.slice(b + 1) : kite.slice(b + 1, c));
  if (c >= 0) {
    const pub = kite.slice(c + 1);
    meta.publisherId = pub.startsWith("~")
      ? decoder.decode(fromBase64url(pub.slice(1)))
      : pub;
  }
  if (fields.topic !== "") topic = decoder.decode(fromBase64url(fields.topic));
  if (topic === undefined || topic === "") return undefined;
  const message: StoredMessage = {
    topic,
    payload: data,
    qos,
    retain: kite.charCodeAt(1) === 49,
  };
  if (fields.props !== "") {
    try {
      message.properties = JSON.parse(fields.props, binaryIn) as Properties;
    } catch {
      return undefined;
    }
  }
  if (fields.exp !== "") message.expiresAt = Number(fields.exp);
  if (fields.durable !== "") meta.durable = fields.durable;
  if (fields.handled !== "") meta.handled = fields.handled;
  if (fields.group !== "") meta.group = fields.group;
  return message;
}

/** Whether the comma list `list` names `item`. */
export function listHas(list: string, item: string): boolean {
  return list === item || list.split(",").includes(item);
}
