/**
 * Session state: what outlives a connection (subscriptions, messages queued
 * and in flight, QoS 2 ids received) and the I/O-free rules that move
 * messages from the queue to the wire. A `Session` talks to its connection
 * only through `SessionLink`, so these rules can be tested without sockets.
 *
 * The offline queue's drop policy is in `#enqueue` (see `_message_queue.ts`
 * and the README's Limits); read authorization per delivery in `mayRead`
 * (see `_read_cache.ts`).
 *
 * @module
 */

import { Fifo } from "../codec/_fifo.ts";
import { Inflight } from "./_inflight.ts";
import { PacketIdAllocator } from "../codec/_packet_ids.ts";
import { MessageQueue, packedEncoding, takeShared } from "./_message_queue.ts";
import { outgoingOf, outgoingRecordOf, recordOf } from "./_session_record.ts";
import {
  encodePublish,
  type FanoutCache,
  type OutgoingMessage,
  ownPayload,
  type PublishEncoding,
  SENT_QOS1,
} from "./delivery.ts";
import type { ProtocolVersion, QoS } from "../codec/packet.ts";
import type {
  OutgoingRecord,
  SessionOwner,
  SessionRecord,
  StoredMessage,
  StoredWill,
} from "./store/store.ts";
import { DropReason } from "./metrics.ts";
import { countDrop, logDrop } from "./_session_drops.ts";
import type { SharedMember } from "./dispatcher.ts";
import type {
  SessionContext,
  SessionLink,
  SessionSubscription,
} from "./session_link.ts";
import { identityOf, logReadRefused, ReadCache } from "./_read_cache.ts";
import { AS_DOUBLE } from "../codec/_double.ts";

export type {
  SessionContext,
  SessionLink,
  SessionSubscription,
} from "./session_link.ts";
export {
  encodePublish,
  FanoutCache,
  type OutgoingMessage,
  ownPayload,
  type PublishEncoding,
} from "./delivery.ts";

const OUTPUT_FULL = "output buffer full";
const TOO_LARGE = "message above the client's Maximum Packet Size";
const OVER_BYTES = "message larger than maxQueuedBytes";
const clearEncoding = (m: OutgoingMessage) => m.enc = undefined;

/**
 * The state of one client session.
 *
 * @example
 * ```ts ignore
 * const s = new Session("c1", 4, 3600, ctx);
 * s.deliver(message, 1, false, undefined, undefined);
 * console.log(s.queued); // 1 (offline)
 * ```
 */
export class Session implements SharedMember {
  /** The client identifier. */
  readonly clientId: string;
  /** The protocol version of the last connection. */
  protocolVersion: ProtocolVersion;
  /** Seconds the session outlives its connection (0xFFFFFFFF: never). */
  expiryInterval: number;
  // Allocated on first use: an idle connection's session has none of them.
  #subscriptions: Map<string, SessionSubscription> | undefined;
  #inflight: Inflight | undefined; // kept once made (see _inflight.ts)
  #incomingQos2: Set<number> | undefined;

  /** Subscriptions by filter (as subscribed, `$share/...` included). */
  get subscriptions(): Map<string, SessionSubscription> {
    return this.#subscriptions ??= new Map();
  }
  /** QoS 1/2 messages sent and not yet completed, by packet id. */
  get inflight(): Map<number, OutgoingMessage> {
    return (this.#inflight ??= new Inflight()).map;
  }
  /** The message in flight under `packetId`, if any (allocates nothing). */
  inflightMessage(packetId: number): OutgoingMessage | undefined {
    return this.#inflight?.get(packetId);
  }
  /** QoS 2 packet ids received and not yet released. */
  get incomingQos2(): Set<number> {
    return this.#incomingQos2 ??= new Set();
  }
  /** How many subscriptions it holds (allocates nothing). */
  get subscriptionCount(): number {
    return this.#subscriptions?.size ?? 0;
  }
  /** PUBREL: forgets a received QoS 2 id (false: unknown); see `#forget`. */
  releaseIncomingQos2(packetId: number): boolean {
    const set = this.#incomingQos2;
    if (set === undefined || !set.delete(packetId)) return false;
    if (set.size === 0) this.#incomingQos2 = undefined;
    return true;
  }
  /** How many QoS 1/2 messages are in flight (allocates nothing). */
  get inflightCount(): number {
    return this.#inflight?.size ?? 0;
  }
  /** How many QoS 2 packet ids are received and not released (allocates nothing). */
  get incomingQos2Count(): number {
    return this.#incomingQos2?.size ?? 0;
  }
  /** The connection, while connected. */
  link: SessionLink | undefined;
  /** Epoch ms of the disconnect, while offline. */
  disconnectedAt: number | undefined;
  /** The will of the current (or last) connection. */
  will: StoredWill | undefined;
  /**
   * The identity the session belongs to (undefined only for a session
   * loaded from a record that had none, until someone claims it).
   */
  owner: SessionOwner | undefined;
  /** Messages dropped because the queue or output buffer was full. */
  dropped = 0;
  /** Connected with Mosquitto's bridge flag (see `Subscriber.bridge`). */
  bridge = false;

  #ctx: SessionContext;
  /** Allocated on first use, like the maps above. */
  #queue: MessageQueue | undefined;
  /**
   * Retained messages for a new subscription, sent at the pace the client
   * reads, before anything delivered after them (never dropped for a slow
   * reader; bounded by the retained messages the broker holds).
   */
  #replay: Fifo<OutgoingMessage> | undefined;
  /**
   * Messages in flight from an earlier connection not resent yet on this
   * one: the client's Receive Maximum was full. Resent (same packet id,
   * DUP, in order) as acknowledgements make room, before anything else.
   */
  #resend: Fifo<OutgoingMessage> | undefined;
  #nextSeq = AS_DOUBLE; // 1 from the constructor: see _double.ts
  #ids: PacketIdAllocator | undefined; // on first QoS 1/2 delivery
  #dropEpisode = false;
  #username: string | undefined;
  /** `authorizeRead` answers for the owner; made on first use. */
  #read: ReadCache | undefined;

  /** Creates an empty session. */
  constructor(
    clientId: string,
    protocolVersion: ProtocolVersion,
    expiryInterval: number,
    ctx: SessionContext,
  ) {
    this.clientId = clientId;
    this.protocolVersion = protocolVersion;
    this.expiryInterval = expiryInterval;
    this.#ctx = ctx;
    this.#nextSeq = 1;
  }

  /**
   * The user name of the session's owner (the client that connected with
   * it; kept in the stored record). Deliveries are authorized for it.
   */
  get username(): string | undefined {
    return this.#username;
  }
  set username(username: string | undefined) {
    if (username === this.#username) return;
    this.#username = username;
    this.#read = undefined;
  }

  /**
   * Whether the owner may receive a message published to `topic` now (the
   * `authorizeRead` hook, cached; true without one).
   */
  mayRead(topic: string): boolean {
    const hook = this.#ctx.authorizeRead;
    if (hook === undefined) return true;
    this.#read ??= new ReadCache(
      hook,
      this.#ctx.authorizationEpoch,
      identityOf(this.clientId, this.protocolVersion, this.#username),
    );
    if (this.#read.allows(topic)) return true;
    logReadRefused(this.clientId, topic);
    return false;
  }

  /** Whether the session is mirrored into the store (it outlives its connection). */
  get persistent(): boolean {
    return this.expiryInterval > 0;
  }

  /** Messages waiting in the queue (not in flight). */
  get queued(): number {
    return this.#queue?.length ?? 0;
  }

  /**
   * Messages waiting to be sent: queued ones, retained ones to replay, and
   * ones in flight still to be resent.
   */
  get waiting(): number {
    return (this.#queue?.length ?? 0) + (this.#replay?.length ?? 0) +
      (this.#resend?.length ?? 0);
  }

  /** Bytes of the queued messages (payload + topic length, see maxQueuedBytes). */
  get queuedBytes(): number {
    return this.#queue?.bytes ?? 0;
  }

  /** The record the store keeps for this session. */
  record(): SessionRecord {
    return recordOf(this);
  }

  /** Mirrors the session record into the store when persistent. */
  saveRecord(): void {
    if (this.persistent) this.#ctx.store.putSession(this.record());
  }

  /** Restores one stored outgoing message (at start-up). */
  restoreOutgoing(r: OutgoingRecord): void {
    const m = outgoingOf(r);
    if (r.seq >= this.#nextSeq) this.#nextSeq = r.seq + 1;
    if (m.state === "queued") (this.#queue ??= new MessageQueue()).push(m);
    else {
      (this.#inflight ??= new Inflight()).put(m.packetId, m);
      (this.#ids ??= new PacketIdAllocator()).restored(m.packetId);
    }
  }

  /**
   * Delivers one message at `qos` (already the minimum of publish and
   * grant): sent at once when connected with room, else queued (QoS 0 only
   * when `queueQos0Messages`), else dropped.
   */
  deliver(
    message: StoredMessage,
    qos: QoS,
    retain: boolean,
    subIds: number[] | undefined,
    cache: FanoutCache | undefined,
    group?: object,
  ): void {
    if (
      this.#ctx.authorizeRead !== undefined && !this.mayRead(message.topic)
    ) {
      return;
    }
    const link = this.link;
    if (qos === 0) {
      if (link !== undefined && this.#replay === undefined) {
        if (!link.writable()) {
          this.#drop(OUTPUT_FULL, message.topic, DropReason.OutputBufferFull);
          return;
        }
        const enc = cache !== undefined
          ? cache.get(link.version, 0, retain, subIds)
          : encodePublish(message, link.version, 0, retain, subIds, Date.now());
        if (enc.bytes.length > link.maxPacketSize) {
          this.#drop(TOO_LARGE, message.topic, DropReason.TooLarge);
          return;
        }
        link.sendPublish(enc, 0, false);
        return;
      }
      // Behind retained messages being replayed, QoS 0 waits in the queue.
      if (link === undefined && !this.#ctx.queueQos0Messages) return;
    }
    const m: OutgoingMessage = {
      seq: this.#nextSeq++,
      packetId: 0,
      state: "queued",
      qos,
      retain,
      subIds,
      message,
      enc: undefined,
      group,
    };
    if (
      link !== undefined && qos > 0 && this.waiting === 0 &&
      this.inflightCount < link.sendWindow && link.writable()
    ) {
      m.enc = cache !== undefined
        ? cache.get(link.version, qos, retain, subIds)
        : undefined;
      this.#send(link, m);
      return;
    }
    this.#enqueue(m, cache);
  }

  /**
   * Delivers a retained message to a new subscription [MQTT-3.8.4-4]: sent
   * now when the client has room, else replayed in order as it reads (not
   * dropped like a live QoS 0 message to a slow reader, and not counted
   * against `maxQueuedMessages`); messages delivered after it wait behind.
   */
  deliverRetained(
    message: StoredMessage,
    qos: QoS,
    subIds: number[] | undefined,
  ): void {
    const link = this.link;
    if (link === undefined) return;
    if (
      this.#ctx.authorizeRead !== undefined && !this.mayRead(message.topic)
    ) {
      return;
    }
    const m: OutgoingMessage = {
      seq: this.#nextSeq++,
      packetId: 0,
      state: "queued",
      qos,
      retain: true,
      subIds,
      message,
      enc: undefined,
    };
    if (
      this.waiting === 0 && link.writable() &&
      (qos === 0 || this.inflightCount < link.sendWindow)
    ) {
      this.#sendNow(link, m);
      return;
    }
    (this.#replay ??= new Fifo()).push(m);
  }

  /** Sends `m` now (QoS 0 as is; QoS 1/2 with a packet id). */
  #sendNow(link: SessionLink, m: OutgoingMessage): void {
    if (m.qos > 0) {
      this.#send(link, m);
      return;
    }
    const enc = this.#encodingFor(link, m);
    if (enc !== undefined) link.sendPublish(enc, 0, false);
  }

  #enqueue(m: OutgoingMessage, cache?: FanoutCache): void {
    const max = this.#ctx.maxQueuedMessages;
    const maxBytes = this.#ctx.maxQueuedBytes ?? 0;
    const size = MessageQueue.sizeOf(m);
    if (maxBytes > 0 && size > maxBytes) {
      this.#drop(OVER_BYTES, m.message.topic, DropReason.QueueFull);
      return;
    }
    const queue = this.#queue ??= new MessageQueue();
    while (
      queue.length >= max || (maxBytes > 0 && queue.bytes + size > maxBytes)
    ) {
      const victim = queue.evict();
      if (victim === undefined) break;
      const packed = typeof victim === "string";
      if (!packed && victim.qos > 0 && this.persistent) {
        this.#ctx.store.deleteOutgoing(this.clientId, victim.seq);
      }
      this.#drop(
        queue.length + 1 >= max ? "queue full" : "queue over maxQueuedBytes",
        packed ? victim : victim.message.topic,
        DropReason.QueueFull,
      );
    }
    if (max <= 0) return;
    // QoS 1 to a connected non-persistent session: packed (_message_queue.ts).
    const packed = packedEncoding(this.link, this.persistent, m, cache);
    if (packed !== undefined) return queue.pushPacked(m.message, packed);
    ownPayload(m.message);
    queue.push(m);
    if (m.qos > 0 && this.persistent) this.#persist(m);
  }

  #drop(why: string, topic: string, reason: DropReason): void {
    this.dropped++;
    countDrop(this.#ctx.stats, reason);
    logDrop(this, why, topic, !this.#dropEpisode);
    this.#dropEpisode = true;
  }

  #persist(m: OutgoingMessage): void {
    this.#ctx.store.putOutgoing(this.clientId, outgoingRecordOf(m));
  }

  /** The encoding of `m` for `link`, or undefined (dropped) if too large. */
  #encodingFor(
    link: SessionLink,
    m: OutgoingMessage,
  ): PublishEncoding | undefined {
    let enc = m.enc;
    if (enc === undefined || enc.version !== link.version) {
      enc = encodePublish(
        m.message,
        link.version,
        m.qos,
        m.retain,
        m.subIds,
        Date.now(),
      );
      m.enc = enc;
    }
    if (enc.bytes.length > link.maxPacketSize) {
      // v5 [MQTT-3.1.2-24]: never send a packet above the client's maximum;
      // the message is dropped for this client as if delivered.
      this.#drop(TOO_LARGE, m.message.topic, DropReason.TooLarge);
      return undefined;
    }
    return enc;
  }

  /** Sends a queued (or new) QoS 1/2 message; false when it was dropped. */
  #send(link: SessionLink, m: OutgoingMessage): boolean {
    const enc = this.#encodingFor(link, m);
    if (enc === undefined) {
      if (this.persistent) this.#ctx.store.deleteOutgoing(this.clientId, m.seq);
      return false;
    }
    m.packetId = (this.#ids ??= new PacketIdAllocator()).next(this.#inflight);
    m.state = "sent";
    // The encoding is not kept: a resend (rare) encodes again.
    m.enc = undefined;
    if (m.qos === 1 && m.group === undefined && !this.persistent) {
      this.#sendUnkept(link, enc, m.packetId);
      return true;
    }
    (this.#inflight ??= new Inflight()).put(m.packetId, m);
    ownPayload(m.message);
    if (this.persistent) {
      this.#persist(m);
      // QoS 2 to a persistent session: the packet id must be durable before
      // the client holds it, or a crash could deliver the message twice.
      if (m.qos === 2) {
        link.sendPublish(enc, m.packetId, false, true);
        return true;
      }
    }
    link.sendPublish(enc, m.packetId, false);
    return true;
  }

  /** Sends a QoS 1 PUBLISH held in flight as `SENT_QOS1` only. */
  #sendUnkept(
    link: SessionLink,
    enc: PublishEncoding,
    id = (this.#ids ??= new PacketIdAllocator()).next(this.#inflight),
  ): void {
    (this.#inflight ??= new Inflight()).put(id, SENT_QOS1);
    link.sendPublish(enc, id, false);
  }

  /**
   * Sends retained messages to replay, then queued messages, while the
   * window and the output buffer allow.
   */
  pump(): void {
    const link = this.link;
    if (link === undefined) return;
    const resend = this.#resend;
    if (resend !== undefined) {
      // On the wire: in flight, less what still waits to be resent.
      while (resend.length > 0) {
        if (this.inflightCount - resend.length >= link.sendWindow) return;
        if (!link.writable()) return;
        this.#resendNow(link, resend.shift()!);
      }
      this.#resend = undefined;
    }
    const replay = this.#replay;
    if (replay !== undefined) {
      while (replay.length > 0) {
        const head = replay.peek()!;
        if (head.qos > 0 && this.inflightCount >= link.sendWindow) return;
        if (!link.writable()) return;
        replay.shift();
        if (
          head.message.expiresAt !== undefined &&
          head.message.expiresAt <= Date.now()
        ) {
          countDrop(this.#ctx.stats, DropReason.Expired);
          continue;
        }
        if (
          this.#ctx.authorizeRead !== undefined &&
          !this.mayRead(head.message.topic)
        ) continue; // the rules changed while it waited: they win
        this.#sendNow(link, head);
      }
      this.#replay = undefined;
    }
    let now = 0;
    while (this.queued > 0) {
      const queue = this.#queue!;
      const head = queue.peek()!;
      if (typeof head === "string") {
        // Packed (QoS 1, a non-persistent session): sent as encoded.
        if (this.inflightCount >= link.sendWindow || !link.writable()) break;
        if (this.#ctx.authorizeRead !== undefined && !this.mayRead(head)) {
          queue.shift();
          continue;
        }
        this.#sendUnkept(link, queue.shiftPacked(head, link.version));
        continue;
      }
      if (head.qos > 0 && this.inflightCount >= link.sendWindow) break;
      if (!link.writable()) break;
      queue.shift();
      if (
        this.#ctx.authorizeRead !== undefined &&
        !this.mayRead(head.message.topic)
      ) {
        // The rules changed since it was queued (or restored): they win.
        if (head.qos > 0 && this.persistent) {
          this.#ctx.store.deleteOutgoing(this.clientId, head.seq);
        }
        continue;
      }
      if (head.message.expiresAt !== undefined) {
        if (now === 0) now = Date.now();
        if (head.message.expiresAt <= now) {
          countDrop(this.#ctx.stats, DropReason.Expired);
          if (head.qos > 0 && this.persistent) {
            this.#ctx.store.deleteOutgoing(this.clientId, head.seq);
          }
          continue;
        }
        head.enc = undefined;
      }
      this.#sendNow(link, head);
    }
    if (this.queued === 0) this.#dropEpisode = false;
  }

  /**
   * Attaches a connection and resends what was in flight, with the original
   * packet ids [MQTT-4.4.0-1]: PUBREL for those that got PUBREC, PUBLISH
   * with DUP for unacknowledged ones, in the order first sent
   * [MQTT-4.6.0-1] and no more at once than the new connection's Receive
   * Maximum [MQTT-3.3.4-7] (the rest as acknowledgements make room); then
   * sends what was queued.
   */
  attach(link: SessionLink): void {
    this.link = link;
    this.disconnectedAt = undefined;
    const inflight = this.inflightCount > 0 ? this.#inflight!.map : undefined;
    if (inflight !== undefined) {
      // Never here: a session that held SENT_QOS1 ended with its connection.
      for (const [id, m] of inflight) if (m === SENT_QOS1) inflight.delete(id);
      let onWire = 0;
      for (const m of inflight.values()) {
        if (m.state !== "pubrec") continue;
        link.send({ type: "pubrel", packetId: m.packetId }, true);
        onWire++;
      }
      for (const m of [...inflight.values()]) {
        if (m.state === "pubrec") continue;
        if (onWire < link.sendWindow) {
          if (this.#resendNow(link, m)) onWire++;
        } else (this.#resend ??= new Fifo()).push(m);
      }
    }
    this.pump();
  }

  /** Resends an unacknowledged PUBLISH (DUP); false when it was dropped. */
  #resendNow(link: SessionLink, m: OutgoingMessage): boolean {
    // Not resent to an owner who may no longer read it.
    const enc = this.#ctx.authorizeRead !== undefined &&
        !this.mayRead(m.message.topic)
      ? undefined
      : this.#encodingFor(link, m);
    if (enc === undefined) {
      this.#forget(m);
      return false;
    }
    m.enc = undefined;
    if (m.qos === 2 && this.persistent) {
      link.sendPublish(enc, m.packetId, true, true);
    } else link.sendPublish(enc, m.packetId, true);
    return true;
  }

  /** Forgets a message in flight: completed, refused or dropped. */
  #forget(m: OutgoingMessage, packetId = m.packetId): void {
    this.#inflight?.delete(packetId);
    this.#unresend(m);
    if (this.persistent) this.#ctx.store.deleteOutgoing(this.clientId, m.seq);
  }

  /** Forgets a message acknowledged before it was resent. */
  #unresend(m: OutgoingMessage): void {
    const resend = this.#resend;
    if (resend !== undefined && resend.length > 0) {
      resend.removeFirst((v) => v === m);
    }
  }

  /** Detaches the connection (the session goes offline). */
  detach(now: number): void {
    this.link = undefined;
    this.disconnectedAt = now;
    // Still in flight: the next connection resends them.
    this.#resend = undefined;
    // Retained messages not replayed yet: QoS 1/2 ones are kept like any
    // queued message (bounded), QoS 0 ones as configured.
    const replay = this.#replay;
    if (replay !== undefined) {
      this.#replay = undefined;
      for (const m of replay) {
        if (m.qos > 0 || this.#ctx.queueQos0Messages) this.#enqueue(m);
      }
    }
    // QoS 0 messages are not kept for an offline session unless configured.
    if (!this.#ctx.queueQos0Messages) this.#queue?.dropQos0();
    // Encodings pin payload copies of other versions; drop them.
    this.#inflight?.forEach(clearEncoding);
  }

  /** PUBACK from the client; false if the id is unknown. */
  onPuback(packetId: number): boolean {
    const m = this.#inflight?.get(packetId);
    if (m === undefined || m.qos !== 1) return false;
    this.#forget(m, packetId);
    this.pump();
    return true;
  }

  /** PUBREC from the client; false if the id is unknown. */
  onPubrec(packetId: number, failed: boolean): boolean {
    const m = this.#inflight?.get(packetId);
    if (m === undefined || m.qos !== 2) return false;
    // Received before it was resent: no need to resend it.
    this.#unresend(m);
    if (failed) {
      // A v5 PUBREC with a failure reason code ends the flow: no PUBREL.
      this.#forget(m);
      this.pump();
      return true;
    }
    m.state = "pubrec";
    m.enc = undefined;
    if (this.persistent) this.#persist(m);
    return true;
  }

  /** PUBCOMP from the client; false if the id is unknown. */
  onPubcomp(packetId: number): boolean {
    const m = this.#inflight?.get(packetId);
    if (m === undefined || m.state !== "pubrec") return false;
    this.#forget(m);
    this.pump();
    return true;
  }

  /**
   * Removes and returns the QoS 1/2 messages routed to this session through
   * a shared subscription group whose group `canMove`: queued ones, and QoS
   * 1 ones in flight. A QoS 2 message in flight stays: its delivery must be
   * completed to this client, never to another [MQTT-4.8.2-4]
   * [MQTT-4.8.2-5]. Used when the member leaves, so another member gets
   * them.
   */
  takeShared(canMove: (group: object) => boolean): OutgoingMessage[] {
    const out = takeShared(
      this.inflightCount > 0 ? this.#inflight!.map : undefined,
      this.#queue,
      canMove,
    );
    for (const m of out) {
      if (m.state !== "queued") this.#unresend(m);
      if (this.persistent) this.#ctx.store.deleteOutgoing(this.clientId, m.seq);
    }
    return out;
  }

  /** Whether a connection is attached. */
  get online(): boolean {
    return this.link !== undefined;
  }

  /** Whether a connection is attached and its output buffer has room. */
  writable(): boolean {
    return this.link?.writable() === true;
  }

  /** Whether the link has room for one more QoS 1/2 message now. */
  hasRoom(): boolean {
    const link = this.link;
    return link !== undefined && this.inflightCount < link.sendWindow &&
      this.waiting === 0 && link.writable();
  }

  /** Forgets every queued and in-flight message (session discarded). */
  clearMessages(): void {
    this.#queue = undefined;
    this.#replay = undefined;
    this.#resend = undefined;
    this.#inflight?.clear();
    this.#incomingQos2?.clear();
  }
}
