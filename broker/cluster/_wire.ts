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
 * - `Kite-Topic`: the topic (base64url), on the fallback subject only;
 * - `Kite-Durable`: nodes that get the message through their JetStream
 *   inbox (they drop this copy);
 * - `Kite-Handled`: queue groups the sending node delivered itself.
 *
 * A message without a `Kite` header comes from a plain NATS client: QoS 0,
 * not retained.
 *
 * @module
 */

import { headers, type MsgHdrs } from "@nats-io/transport-node";
import type { Properties, QoS } from "../../codec/packet.ts";
import type { StoredMessage } from "../store/store.ts";
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
}

/** Headers for `message` (see the module doc). */
export function encodeHeaders(
  message: StoredMessage,
  origin: string,
  seq: number,
  publisherId: string | undefined,
  extra?: {
    topic?: boolean;
    durable?: readonly string[];
    handled?: readonly string[];
  },
): MsgHdrs {
  const h = headers();
  let meta = `${message.qos}${message.retain ? 1 : 0};${origin};${seq}`;
  if (publisherId !== undefined) {
    meta += ";" +
      (PLAIN.test(publisherId)
        ? publisherId
        : "~" + base64url(encoder.encode(publisherId)));
  }
  h.set("Kite", meta);
  if (message.properties !== undefined) {
    h.set("Kite-Props", JSON.stringify(message.properties, binaryOut));
  }
  if (message.expiresAt !== undefined) {
    h.set("Kite-Exp", String(message.expiresAt));
  }
  if (extra?.topic) {
    h.set("Kite-Topic", base64url(encoder.encode(message.topic)));
  }
  if (extra?.durable !== undefined) h.set("Kite-Durable", extra.durable.join());
  if (extra?.handled !== undefined) h.set("Kite-Handled", extra.handled.join());
  return h;
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

/**
 * The message and meta data of a NATS message on `topic` (the subject
 * mapped back, or `Kite-Topic`); undefined when it is malformed.
 */
export function decodeMessage(
  topic: string | undefined,
  data: Uint8Array,
  h: MsgHdrs | undefined,
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
  const kite = h?.get("Kite");
  if (h === undefined || kite === undefined || kite === "") {
    if (topic === undefined) return undefined;
    return { topic, payload: data, qos: 0, retain: false };
  }
  const parts = kite.split(";");
  const qos = Number(kite[0]) as QoS;
  if (parts.length < 3 || !(qos === 0 || qos === 1 || qos === 2)) {
    return undefined;
  }
  meta.origin = parts[1];
  meta.seq = Number(parts[2]);
  const pub = parts.length > 3 ? parts.slice(3).join(";") : undefined;
  if (pub !== undefined) {
    meta.publisherId = pub.startsWith("~")
      ? decoder.decode(fromBase64url(pub.slice(1)))
      : pub;
  }
  const t = h.get("Kite-Topic");
  if (t !== "") topic = decoder.decode(fromBase64url(t));
  if (topic === undefined || topic === "") return undefined;
  const message: StoredMessage = {
    topic,
    payload: data,
    qos,
    retain: kite[1] === "1",
  };
  const props = h.get("Kite-Props");
  if (props !== "") {
    try {
      message.properties = JSON.parse(props, binaryIn) as Properties;
    } catch {
      return undefined;
    }
  }
  const exp = h.get("Kite-Exp");
  if (exp !== "") message.expiresAt = Number(exp);
  const durable = h.get("Kite-Durable");
  if (durable !== "") meta.durable = durable;
  const handled = h.get("Kite-Handled");
  if (handled !== "") meta.handled = handled;
  return message;
}

/** Whether the comma list `list` names `item`. */
export function listHas(list: string, item: string): boolean {
  return list === item || list.split(",").includes(item);
}
