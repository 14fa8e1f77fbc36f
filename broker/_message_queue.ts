/**
 * `MessageQueue`: the messages a session holds for its client beyond those in
 * flight, oldest first, with the counts its drop policy needs (private to
 * the broker; the policy itself is `Session`'s): how many are QoS 0, and how
 * many bytes they hold (payload plus topic length, as `maxQueuedBytes`
 * counts them).
 *
 * An entry is an `OutgoingMessage`, or, for a QoS 1 message that a
 * connected non-persistent session queues (see `Session`), its topic: the
 * PUBLISH packet is then encoded for the connection and its bytes kept in
 * `PackedBytes`, in the same order. A packed entry costs about its encoded
 * size; an `OutgoingMessage` with its message and payload copy about 250
 * bytes more.
 *
 * The policy (`Session`'s `#enqueue`): with `maxQueuedMessages` (and
 * `maxQueuedBytes` when set) reached, the oldest queued QoS 0 message is
 * dropped first, else the oldest, until the new one fits (a message larger
 * than `maxQueuedBytes` on its own is dropped instead). Each episode is
 * logged once at warning level (the running count at debug level) and
 * counted in `Session.dropped` and the metrics.
 *
 * @module
 */

import { Fifo } from "../codec/_fifo.ts";
import { publishPacketIdOffset } from "../codec/encode.ts";
import type { ProtocolVersion } from "../codec/packet.ts";
import {
  encodePublish,
  type FanoutCache,
  type OutgoingMessage,
  type PublishEncoding,
} from "./delivery.ts";
import type { SessionLink } from "./session_link.ts";
import type { StoredMessage } from "./store/store.ts";
import { PackedBytes } from "./_packed_bytes.ts";

/** What a message counts against `maxQueuedBytes`. */
function sizeOf(m: StoredMessage): number {
  return m.payload.byteLength + m.topic.length;
}

/** A queued entry: a message, or the topic of a packed QoS 1 one. */
export type QueueEntry = OutgoingMessage | string;

/**
 * The encoding to queue `m` packed as, for a non-persistent session
 * connected on `link`: a QoS 1 message outside shared groups, without an
 * expiry, at most 4 KiB encoded and within the client's Maximum Packet Size
 * (a larger one is queued as it is and dropped when it is due). Else
 * undefined.
 */
export function packedEncoding(
  link: SessionLink | undefined,
  persistent: boolean,
  m: OutgoingMessage,
  cache: FanoutCache | undefined,
): Uint8Array | undefined {
  if (
    link === undefined || persistent || m.qos !== 1 ||
    m.group !== undefined || m.message.expiresAt !== undefined
  ) return undefined;
  const v = link.version;
  const enc = cache?.get(v, 1, m.retain, m.subIds) ??
    encodePublish(m.message, v, 1, m.retain, m.subIds, Date.now());
  const n = enc.bytes.length;
  return n <= link.maxPacketSize && PackedBytes.fits(n) ? enc.bytes : undefined;
}

/**
 * Removes and returns the messages of shared groups that `canMove` (see
 * `Session.takeShared`): QoS 1 ones in flight, then queued ones (a packed
 * entry belongs to no group).
 */
export function takeShared(
  inflight: Map<number, OutgoingMessage> | undefined,
  queue: MessageQueue | undefined,
  canMove: (group: object) => boolean,
): OutgoingMessage[] {
  const out: OutgoingMessage[] = [];
  for (const [id, m] of inflight ?? []) {
    if (m.group === undefined || m.qos !== 1) continue;
    if (!canMove(m.group)) continue;
    inflight!.delete(id);
    out.push(m);
  }
  if (queue !== undefined && queue.length > 0) {
    const moved = queue.retain((m) =>
      m.group === undefined || m.qos === 0 || !canMove(m.group)
    );
    for (const m of moved) out.push(m);
  }
  return out;
}

/**
 * A session's queue.
 *
 * @example
 * ```ts ignore
 * const q = new MessageQueue();
 * q.push(m);
 * q.evict(); // the oldest QoS 0 message, else the oldest
 * ```
 */
export class MessageQueue {
  #items = new Fifo<QueueEntry>();
  #packed: PackedBytes | undefined;
  #qos0 = 0;
  #bytes = 0;

  /** Messages queued. */
  get length(): number {
    return this.#items.length;
  }

  /** Bytes queued (payload plus topic length of each). */
  get bytes(): number {
    return this.#bytes;
  }

  /** What `m` would add to `bytes`. */
  static sizeOf(m: OutgoingMessage): number {
    return sizeOf(m.message);
  }

  /** Appends `m`. */
  push(m: OutgoingMessage): void {
    this.#items.push(m);
    this.#bytes += sizeOf(m.message);
    if (m.qos === 0) this.#qos0++;
  }

  /**
   * Appends QoS 1 `message` as `enc` (at most 4 KiB, see `packs`), encoded
   * for the connection it will be sent on.
   */
  pushPacked(message: StoredMessage, enc: Uint8Array): void {
    const size = sizeOf(message);
    (this.#packed ??= new PackedBytes()).push(enc, size);
    this.#items.push(message.topic);
    this.#bytes += size;
  }

  /** The oldest entry, left in place. */
  peek(): QueueEntry | undefined {
    return this.#items.peek();
  }

  /** Removes and returns the oldest entry. */
  shift(): QueueEntry | undefined {
    const m = this.#items.shift();
    if (m !== undefined) this.#taken(m);
    return m;
  }

  /**
   * Removes the oldest entry, a packed one with topic `topic` (from
   * `peek`): its encoding, packet id to be patched.
   */
  shiftPacked(topic: string, version: ProtocolVersion): PublishEncoding {
    this.#items.shift();
    const size = this.#packed!.headSize();
    this.#bytes -= size;
    const bytes = this.#packed!.take();
    return {
      bytes,
      idOffset: publishPacketIdOffset(bytes),
      version,
      topic,
      // The size it was queued with is payload and topic (`sizeOf`).
      payloadBytes: size - topic.length,
    };
  }

  /** Removes the drop victim: the oldest QoS 0 message, else the oldest. */
  evict(): QueueEntry | undefined {
    const m = this.#qos0 > 0
      ? this.#items.removeFirst((v) => typeof v !== "string" && v.qos === 0)
      : this.#items.shift();
    if (m !== undefined) this.#taken(m);
    return m;
  }

  /**
   * Keeps the messages for which `keep` is true, and every packed one;
   * returns the others.
   */
  retain(keep: (m: OutgoingMessage) => boolean): OutgoingMessage[] {
    const removed = this.#items.retain((v) =>
      typeof v === "string" || keep(v)
    ) as OutgoingMessage[];
    for (const m of removed) this.#taken(m);
    return removed;
  }

  /** Removes every QoS 0 message. */
  dropQos0(): void {
    if (this.#qos0 > 0) this.retain((m) => m.qos > 0);
  }

  #taken(m: QueueEntry): void {
    if (typeof m === "string") {
      this.#bytes -= this.#packed!.skip();
      return;
    }
    this.#bytes -= sizeOf(m.message);
    if (m.qos === 0) this.#qos0--;
  }
}
