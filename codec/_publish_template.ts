/**
 * Publish templates (private to the package): a PUBLISH encoded once and
 * shared by every receiver that gets the same wire form. Per connection only
 * the packet id and DUP flag are patched into the copy that is written
 * (`OutputQueue`), and a v5 Topic Alias is set by rewriting the encoding
 * (`aliasPublish`), never by encoding the message again.
 *
 * @module
 */

import type { ProtocolVersion } from "./packet.ts";
import { allocPacket, varintSize, writeVarint } from "./_writer.ts";

/** A PUBLISH encoded once; `idOffset` is -1 for QoS 0. */
export interface PublishTemplate {
  /** The encoded packet (packet id a placeholder). */
  bytes: Uint8Array;
  /** Where the packet id is, -1 for QoS 0. */
  idOffset: number;
  /** The protocol version it is encoded for. */
  version: ProtocolVersion;
  /** The topic (for v5 outgoing topic aliases). */
  topic: string;
  /** Payload bytes (counted in `$SYS/broker/publish/bytes/sent`). */
  payloadBytes: number;
  /**
   * Forms with a Topic Alias in use (empty topic), by alias, shared by the
   * connections that gave this topic the same alias.
   */
  aliased?: Map<number, { bytes: Uint8Array; idOffset: number }>;
}

/**
 * Rewrites an encoded v5 PUBLISH to carry Topic Alias `alias` (first in its
 * properties, the others kept in order), with the topic name kept (the alias
 * is being set) or emptied (the alias is in use) [MQTT-3.3.2-12].
 */
export function aliasPublish(
  enc: PublishTemplate,
  alias: number,
  withTopic: boolean,
): { bytes: Uint8Array; idOffset: number } {
  const b = enc.bytes;
  let pos = 1;
  while (b[pos]! & 0x80) pos++;
  pos++; // variable header
  const topicLen = (b[pos]! << 8) | b[pos + 1]!;
  const topicEnd = pos + 2 + topicLen;
  const idLen = enc.idOffset >= 0 ? 2 : 0;
  let q = topicEnd + idLen;
  let propsLen = 0;
  let mul = 1;
  let c: number;
  do {
    c = b[q++]!;
    propsLen += (c & 0x7f) * mul;
    mul *= 128;
  } while (c & 0x80);
  const tail = b.length - q; // properties + payload
  const newPropsLen = propsLen + 3;
  const newTopicLen = withTopic ? topicLen : 0;
  const remaining = 2 + newTopicLen + idLen + varintSize(newPropsLen) + tail +
    3;
  // From the codec's slab allocator: a small `new Uint8Array` costs more
  // than the whole rewrite.
  const out = allocPacket(b[0]!, remaining);
  let o = out.length - remaining;
  out[o++] = newTopicLen >> 8;
  out[o++] = newTopicLen & 0xff;
  if (withTopic) {
    copyBytes(b, pos + 2, topicEnd, out, o);
    o += topicLen;
  }
  let idOffset = -1;
  if (idLen > 0) {
    idOffset = o;
    out[o++] = b[topicEnd]!;
    out[o++] = b[topicEnd + 1]!;
  }
  o = writeVarint(out, o, newPropsLen);
  out[o++] = 0x23; // Topic Alias
  out[o++] = alias >> 8;
  out[o++] = alias & 0xff;
  copyBytes(b, q, b.length, out, o);
  return { bytes: out, idOffset };
}

/** Copies `src[from..to)` to `dst` at `at` (a loop for short runs: no view). */
function copyBytes(
  src: Uint8Array,
  from: number,
  to: number,
  dst: Uint8Array,
  at: number,
): void {
  if (to - from > 256) {
    dst.set(src.subarray(from, to), at);
    return;
  }
  for (let i = from; i < to; i++) dst[at++] = src[i]!;
}

/**
 * The most topic text (UTF-16 code units: bytes for ASCII topics) the
 * Topic Aliases of one connection hold. A receiver may allow 65,535 aliases
 * and topics reach 65,535 bytes: without a bound one connection could make
 * the sender keep 4 GiB of topic strings.
 */
export const OUTGOING_ALIAS_CHARS = 64 * 1024;

/**
 * The Topic Aliases a sender gave topics on one connection (v5), first come,
 * first served up to the receiver's Topic Alias Maximum and
 * {@linkcode OUTGOING_ALIAS_CHARS} of topic text, never remapped.
 */
export class OutgoingAliases extends Map<string, number> {
  /** The receiver's Topic Alias Maximum. */
  readonly max: number;
  /** The topic text the aliases hold (sum of the topics' lengths). */
  chars = 0;

  /** An empty table for aliases 1..max. */
  constructor(max: number) {
    super();
    this.max = max;
  }
}

/**
 * The aliased form of `enc` for one connection: the topic's alias when it
 * has one (that form shared among connections with the same alias for the
 * topic, the packet id patched in the copy the output queue makes), else a
 * new alias while `aliases` has room (count and topic text), else undefined
 * (sent as is: full topic, no alias). Setting
 * an alias adds 3-4 bytes: not past the receiver's `maxPacketSize`.
 */
export function aliasedForm(
  enc: PublishTemplate,
  aliases: OutgoingAliases,
  maxPacketSize: number,
): { bytes: Uint8Array; idOffset: number } | undefined {
  let alias = aliases.get(enc.topic);
  if (alias !== undefined) {
    const forms = enc.aliased ??= new Map();
    let a = forms.get(alias);
    if (a === undefined) {
      a = aliasPublish(enc, alias, false);
      forms.set(alias, a);
    }
    return a;
  }
  if (aliases.size >= aliases.max) return undefined;
  const chars = aliases.chars + enc.topic.length;
  if (chars > OUTGOING_ALIAS_CHARS) return undefined;
  if (enc.bytes.length + 4 > maxPacketSize) return undefined;
  alias = aliases.size + 1;
  aliases.set(enc.topic, alias);
  aliases.chars = chars;
  return aliasPublish(enc, alias, true);
}
