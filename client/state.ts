/**
 * The client's protocol state, with no I/O: packet identifiers, the queue of
 * packets waiting to be sent, the in-flight QoS 1/2 publishes (flow control
 * by the broker's Receive Maximum), what to resend after a reconnect, the
 * acknowledgements of incoming publishes and the incoming QoS 2 ids
 * (exactly-once delivery), and topic aliases both ways.
 *
 * The `Client` feeds it packets and events and writes what it returns; tests
 * drive it directly.
 *
 * @module
 */

import type {
  AckPacket,
  Packet,
  Properties,
  PublishPacket,
  SubackPacket,
  SubscribePacket,
  UnsubackPacket,
  UnsubscribePacket,
} from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode, reasonCodeName } from "../codec/reason_code.ts";
import { Fifo } from "../codec/_fifo.ts";
import { MAX_PACKET_ID, PacketIdAllocator } from "../codec/_packet_ids.ts";
import type { PublishTracker } from "./options.ts";

export { TopicAliasReceiver } from "../codec/_topic_alias.ts";

/** What a `publish()` resolves with. */
export interface PublishResult {
  /**
   * 0x00 Success, or 0x10 NoMatchingSubscribers (v5) from the PUBACK/PUBREC;
   * always 0 for QoS 0 and for 3.1.1.
   */
  reasonCode: number;
  /** The v5 properties of the acknowledgement (reason string, ...). */
  properties?: Properties;
}

/** A PUBLISH the user asked for, from `publish()` until it completes. */
export interface PublishEntry {
  /** Discriminant. */
  kind: "publish";
  /**
   * The message as the user meant it: the full topic, no topic alias (the
   * alias is applied per connection at send time), `packetId` set once it
   * is in flight.
   */
  packet: PublishPacket;
  /** The alias the user asked for (manual aliases), 0 for none. */
  alias: number;
  /** 0 = not sent, 1 = PUBLISH sent, 2 = PUBREL sent (QoS 2). */
  stage: 0 | 1 | 2;
  /** Settles `publish()` with success. */
  resolve(result: PublishResult): void;
  /** Settles `publish()` with an error. */
  reject(error: Error): void;
  /** Told of the exchange (`PublishOptions.tracker`). */
  tracker?: PublishTracker;
  /**
   * With a tracker: 1 once its `sent()` was called (or the entry was
   * resumed), 2 while its next write (PUBLISH or PUBREL) waits for `hold`.
   */
  trackerStage?: 0 | 1 | 2;
  /** What the tracker's `sent()` or `received()` returned, while pending. */
  hold?: Promise<unknown> | undefined;
}

/** A SUBSCRIBE from `subscribe()` until its SUBACK. */
export interface SubscribeEntry {
  /** Discriminant. */
  kind: "subscribe";
  /** The packet; `packetId` is set when it is sent. */
  packet: SubscribePacket;
  /** 0 = not sent, 1 = sent. */
  stage: 0 | 1;
  /** Settles with the acknowledgement. */
  resolve(suback: SubackPacket): void;
  /** Settles with an error. */
  reject(error: Error): void;
}

/** An UNSUBSCRIBE from `unsubscribe()` until its UNSUBACK. */
export interface UnsubscribeEntry {
  /** Discriminant. */
  kind: "unsubscribe";
  /** The packet; `packetId` is set when it is sent. */
  packet: UnsubscribePacket;
  /** 0 = not sent, 1 = sent. */
  stage: 0 | 1;
  /** Settles with the acknowledgement. */
  resolve(unsuback: UnsubackPacket): void;
  /** Settles with an error. */
  reject(error: Error): void;
}

/** Anything the client queues or keeps in flight. */
export type Entry = PublishEntry | SubscribeEntry | UnsubscribeEntry;

/** What `ClientState.onConnack()` says to send again, in order. */
export type Resend =
  | { entry: PublishEntry; packet: PublishPacket }
  | { entry: Entry; packet: Packet };

/**
 * I/O-free client protocol state.
 *
 * Queue policy: at most `maxQueued` entries wait to be sent (offline, or
 * held back by the broker's Receive Maximum); `enqueue()` returns false when
 * full and the caller rejects that request (0x97 QuotaExceeded). Entries are
 * sent in FIFO order; a QoS 1/2 publish at the head that has no flow-control
 * quota holds back the publishes behind it, which keeps the order of
 * messages, but not SUBSCRIBE or UNSUBSCRIBE, which go out at once
 * [MQTT-3.3.4-8].
 *
 * @example
 * ```ts
 * import { ClientState, type Entry } from "@kite/mqtt/client";
 * const state = new ClientState({ maxQueued: 100 });
 * state.receiveMaximum = 1;
 * const packet = {
 *   type: "publish", topic: "t", payload: new Uint8Array(), qos: 1,
 *   retain: false, dup: false,
 * } as const;
 * state.enqueue({ kind: "publish", packet: { ...packet }, alias: 0, stage: 0,
 *   resolve() {}, reject() {} });
 * state.enqueue({ kind: "publish", packet: { ...packet }, alias: 0, stage: 0,
 *   resolve() {}, reject() {} });
 * const out: Entry[] = [];
 * state.takeSendable(out);
 * out.length; // 1: the second publish waits for the first one's PUBACK
 * ```
 */
export class ClientState {
  /** The broker's Receive Maximum (CONNACK), 65535 when absent. */
  receiveMaximum = 65535;
  /** The largest number of queued (unsent) entries. */
  readonly maxQueued: number;
  /** Packet ids of QoS 2 messages received and not yet released (PUBREL). */
  readonly incomingQos2: Set<number> = new Set();

  #queue = new Fifo<Entry>();
  #inflight = new Map<number, Entry>();
  #publishesInFlight = 0;
  /** Queued SUBSCRIBE/UNSUBSCRIBE entries (they never wait for quota). */
  #queuedControl = 0;
  #ids = new PacketIdAllocator();
  // What receivePublish() returns: reused, so that answering a message
  // allocates nothing beyond what the caller encodes.
  #receipt: { deliver: boolean; ack: AckPacket | undefined } = {
    deliver: true,
    ack: undefined,
  };
  #puback: AckPacket = { type: "puback", packetId: 0 };
  #pubrec: AckPacket = { type: "pubrec", packetId: 0 };
  /** Acknowledged by the application (`manualAcks`), not on receipt. */
  readonly #manual: boolean;
  /** QoS 2 ids delivered with `manualAcks` and not yet acknowledged. */
  #unacked: Set<number> | undefined;

  /**
   * Creates an empty state; `manualAcks`: received QoS 1/2 messages are
   * acknowledged by `ackReceived()`, not on receipt.
   */
  constructor(options: { maxQueued?: number; manualAcks?: boolean } = {}) {
    this.maxQueued = options.maxQueued ?? 10_000;
    this.#manual = options.manualAcks === true;
  }

  /**
   * The publish in flight with `packetId` when its next write waits for its
   * tracker (`PublishEntry.hold`), else undefined.
   */
  held(packetId: number): PublishEntry | undefined {
    const e = this.#inflight.get(packetId);
    return e?.kind === "publish" && e.trackerStage === 2 ? e : undefined;
  }

  /** Whether `entry` is in flight (sent, not yet complete). */
  isInFlight(entry: Entry): boolean {
    const id = entry.packet.packetId;
    return id !== undefined && this.#inflight.get(id) === entry;
  }

  /** Entries waiting to be sent. */
  get queued(): number {
    return this.#queue.length;
  }

  /** QoS 1/2 publishes sent and not yet completed. */
  get publishesInFlight(): number {
    return this.#publishesInFlight;
  }

  /** Every entry sent and waiting for its acknowledgement. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** True when a publish of this QoS may be sent right now, bypassing the queue. */
  canSendNow(qos: number): boolean {
    if (this.#queue.length !== 0) return false;
    if (qos === 0) return true;
    return this.#publishesInFlight < this.receiveMaximum &&
      this.#inflight.size < MAX_PACKET_ID;
  }

  /** Queues an entry; false when the queue is full (`maxQueued`). */
  enqueue(entry: Entry): boolean {
    if (this.queued >= this.maxQueued) return false;
    this.#queue.push(entry);
    if (entry.kind !== "publish") this.#queuedControl++;
    return true;
  }

  /**
   * Moves an entry in flight: assigns its packet id and marks it sent. For
   * QoS 0 publishes it does nothing (they are never in flight).
   */
  track(entry: Entry): void {
    if (entry.kind === "publish") {
      if (entry.packet.qos === 0) return;
      this.#publishesInFlight++;
    }
    const id = this.#ids.next(this.#inflight);
    entry.packet.packetId = id;
    entry.stage = 1;
    this.#inflight.set(id, entry);
  }

  /**
   * Puts a publish from an earlier run back in flight with `packetId`
   * (stage 1, or 2 when `released`: its PUBREC had come), to be resent by
   * `onConnack()`. False when the id is taken.
   */
  resume(entry: PublishEntry, packetId: number, released: boolean): boolean {
    if (this.#inflight.has(packetId)) return false;
    entry.packet.packetId = packetId;
    entry.packet.dup = true;
    entry.stage = released && entry.packet.qos === 2 ? 2 : 1;
    this.#inflight.set(packetId, entry);
    this.#publishesInFlight++;
    this.#ids.restored(packetId);
    return true;
  }

  /**
   * Takes from the queue every entry that may be sent now (flow control and
   * free packet ids permitting), tracks it, and appends it to `out`.
   */
  takeSendable(out: Entry[]): void {
    const q = this.#queue;
    for (let e = q.peek(); e !== undefined; e = q.peek()) {
      const needsId = e.kind !== "publish" || e.packet.qos > 0;
      if (needsId) {
        if (this.#inflight.size >= MAX_PACKET_ID) break;
        if (
          e.kind === "publish" &&
          this.#publishesInFlight >= this.receiveMaximum
        ) break;
      }
      q.shift();
      if (e.kind !== "publish") this.#queuedControl--;
      this.track(e);
      out.push(e);
    }
    // Only PUBLISH waits for the broker's Receive Maximum: a SUBSCRIBE or
    // UNSUBSCRIBE behind a held publish goes now [MQTT-3.3.4-8].
    if (this.#queuedControl > 0 && q.length > 0) {
      for (const e of q.retain(isPublish)) {
        this.#queuedControl--;
        if (this.#inflight.size >= MAX_PACKET_ID) {
          // No packet id free: back in the queue (after the publishes).
          q.push(e);
          this.#queuedControl++;
          continue;
        }
        this.track(e);
        out.push(e);
      }
    }
  }

  /**
   * Handles a PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK or UNSUBACK: settles
   * the entry it completes and returns the packet to send in reply, if any
   * (PUBREL after PUBREC, PUBCOMP after PUBREL).
   */
  handleAck(
    packet: AckPacket | SubackPacket | UnsubackPacket,
  ): Packet | undefined {
    const id = packet.packetId;
    if (packet.type === "pubrel") {
      // Release of an incoming QoS 2 message [MQTT-4.3.3-11]: answer even
      // for an unknown id (a resent PUBREL after our PUBCOMP was lost).
      const known = this.incomingQos2.delete(id);
      const reply: AckPacket = { type: "pubcomp", packetId: id };
      if (!known) reply.reasonCode = ReasonCode.PacketIdentifierNotFound;
      return reply;
    }
    const e = this.#inflight.get(id);
    switch (packet.type) {
      case "puback": {
        if (e?.kind !== "publish" || e.packet.qos !== 1) return undefined;
        this.#complete(id);
        settlePublish(e, packet);
        return undefined;
      }
      case "pubrec": {
        if (e?.kind !== "publish" || e.packet.qos !== 2) {
          return {
            type: "pubrel",
            packetId: id,
            reasonCode: ReasonCode.PacketIdentifierNotFound,
          };
        }
        const code = packet.reasonCode ?? 0;
        if (code >= 0x80) {
          // The exchange ends here: no PUBREL [MQTT-4.3.3].
          this.#complete(id);
          settlePublish(e, packet);
          return undefined;
        }
        e.stage = 2;
        const hold = e.tracker?.received(id);
        if (hold !== undefined) {
          e.trackerStage = 2; // the PUBREL waits (see `held()`)
          e.hold = hold;
        }
        return { type: "pubrel", packetId: id };
      }
      case "pubcomp": {
        if (e?.kind !== "publish" || e.stage !== 2) return undefined;
        this.#complete(id);
        // 0x92 after a reconnect still means the broker had the message.
        e.resolve(ackResult({ ...packet, reasonCode: 0 }));
        e.tracker?.done(undefined);
        return undefined;
      }
      case "suback": {
        if (e?.kind !== "subscribe") return undefined;
        this.#inflight.delete(id);
        e.resolve(packet);
        return undefined;
      }
      case "unsuback": {
        if (e?.kind !== "unsubscribe") return undefined;
        this.#inflight.delete(id);
        e.resolve(packet);
        return undefined;
      }
    }
  }

  /**
   * Handles an incoming PUBLISH: says whether to deliver it to the user and
   * which acknowledgement to send once it is delivered: a PUBACK for QoS 1,
   * a PUBREC for QoS 2, none for QoS 0. A QoS 2 message whose
   * packet id is already held (received, not yet released by PUBREL) is a
   * resend: it is acknowledged again but not delivered twice
   * [MQTT-4.3.3-2]. The returned object and its `ack` are reused by the
   * next call: read them at once.
   *
   * @example
   * ```ts
   * import { ClientState } from "@kite/mqtt/client";
   * const state = new ClientState();
   * const p = {
   *   type: "publish", topic: "t", payload: new Uint8Array(), qos: 2,
   *   retain: false, dup: false, packetId: 7,
   * } as const;
   * state.receivePublish(p).deliver; // true, ack: PUBREC 7
   * state.receivePublish({ ...p, dup: true }).deliver; // false, ack: PUBREC 7
   * state.handleAck({ type: "pubrel", packetId: 7 }); // PUBCOMP 7
   * ```
   */
  receivePublish(
    packet: PublishPacket,
  ): { deliver: boolean; ack: AckPacket | undefined } {
    const r = this.#receipt;
    switch (packet.qos) {
      case 0:
        r.deliver = true;
        r.ack = undefined;
        break;
      case 1:
        r.deliver = true;
        if (this.#manual) r.ack = undefined;
        else {
          r.ack = this.#puback;
          r.ack.packetId = packet.packetId!;
        }
        break;
      default: {
        const id = packet.packetId!;
        r.deliver = this.receiveQos2(id);
        if (this.#manual && (r.deliver || this.#unacked?.has(id) === true)) {
          // Acknowledged by ackReceived() (a resend of one not yet
          // acknowledged waits for that too).
          if (r.deliver) (this.#unacked ??= new Set()).add(id);
          r.ack = undefined;
        } else {
          r.ack = this.#pubrec;
          r.ack.packetId = id;
        }
      }
    }
    return r;
  }

  /**
   * With `manualAcks`: the application acknowledged a QoS 2 message with
   * `packetId`; true when its PUBREC is due now (the id was delivered and
   * not yet acknowledged, and the session still holds it). A failure code
   * (>= 0x80) ends the exchange: the id is forgotten.
   */
  ackQos2(packetId: number, reasonCode: number): boolean {
    if (this.#unacked?.delete(packetId) !== true) return false;
    if (reasonCode >= 0x80) this.incomingQos2.delete(packetId);
    return true;
  }

  /**
   * Records an incoming QoS 2 PUBLISH; true when it is new and must be
   * delivered to the user, false for a duplicate of one not yet released.
   * (`receivePublish()` calls it.)
   */
  receiveQos2(packetId: number): boolean {
    if (this.incomingQos2.has(packetId)) return false;
    this.incomingQos2.add(packetId);
    return true;
  }

  /**
   * After a CONNACK on a new connection: returns what to send again, in the
   * original order. With a session present, unacknowledged PUBLISHes are
   * resent with DUP set and PUBRELs are resent [MQTT-4.4.0-1]. Without one,
   * PUBLISHes are sent again as new (no DUP), QoS 2 messages whose PUBREC
   * was already received are complete (the broker had them), and the
   * incoming QoS 2 state is forgotten. In-flight SUBSCRIBE/UNSUBSCRIBE are
   * sent again either way.
   */
  onConnack(sessionPresent: boolean, receiveMaximum: number): Resend[] {
    this.receiveMaximum = receiveMaximum;
    if (!sessionPresent) {
      this.incomingQos2.clear();
      this.#unacked?.clear();
    }
    const out: Resend[] = [];
    for (const [id, e] of this.#inflight) {
      if (e.kind !== "publish") {
        out.push({ entry: e, packet: e.packet });
      } else if (e.stage === 1) {
        e.packet.dup = sessionPresent;
        out.push({ entry: e, packet: e.packet });
      } else if (sessionPresent) {
        out.push({ entry: e, packet: { type: "pubrel", packetId: id } });
      } else {
        this.#complete(id);
        e.resolve({ reasonCode: 0 });
        e.tracker?.done(undefined);
      }
    }
    return out;
  }

  /** Removes and returns every queued and in-flight entry (on close). */
  drain(): Entry[] {
    const out: Entry[] = [];
    for (const e of this.#inflight.values()) out.push(e);
    for (const e of this.#queue) out.push(e);
    this.#inflight.clear();
    this.#queue.clear();
    this.#queuedControl = 0;
    this.#publishesInFlight = 0;
    this.incomingQos2.clear();
    this.#unacked?.clear();
    return out;
  }

  /**
   * Removes queued QoS 0 publishes (a client that does not queue QoS 0 while
   * offline drops them when the connection is lost) and returns them.
   */
  dropQueuedQos0(): PublishEntry[] {
    return this.#queue.retain(isNotQos0) as PublishEntry[];
  }

  /**
   * Removes an entry that will not be sent after all (e.g. over the
   * broker's Maximum Packet Size), freeing its packet id.
   */
  forget(entry: Entry): void {
    const id = entry.packet.packetId;
    if (
      entry.stage !== 0 && id !== undefined && this.#inflight.get(id) === entry
    ) {
      this.#inflight.delete(id);
      if (entry.kind === "publish") this.#publishesInFlight--;
    }
  }

  #complete(id: number): void {
    if (this.#inflight.delete(id)) this.#publishesInFlight--;
  }
}

function isPublish(e: Entry): boolean {
  return e.kind === "publish";
}

function isNotQos0(e: Entry): boolean {
  return e.kind !== "publish" || e.packet.qos !== 0;
}

function ackResult(packet: AckPacket): PublishResult {
  const r: PublishResult = { reasonCode: packet.reasonCode ?? 0 };
  if (packet.properties) r.properties = packet.properties;
  return r;
}

function settlePublish(e: PublishEntry, packet: AckPacket): void {
  const code = packet.reasonCode ?? 0;
  if (code < 0x80) {
    e.resolve(ackResult(packet));
    e.tracker?.done(undefined);
    return;
  }
  const why = packet.properties?.reasonString;
  const error = new MqttError(
    code,
    `the broker refused the publish to "${e.packet.topic}": ` +
      reasonCodeName(code) + (why ? ` (${why})` : ""),
  );
  e.reject(error);
  e.tracker?.done(error);
}

/**
 * Outgoing topic aliases for one connection (v5). Manual aliases (the user
 * names the alias) and automatic ones (the client picks) share one table
 * bounded by the broker's Topic Alias Maximum; the automatic mode reuses the
 * least recently used alias when the table is full.
 *
 * @example
 * ```ts
 * import { TopicAliasSender } from "@kite/mqtt/client";
 * const s = new TopicAliasSender(true);
 * s.reset(10);
 * s.resolve("a/b", 0); // { topic: "a/b", alias: 1 }: sets the alias
 * s.resolve("a/b", 0); // { topic: "", alias: 1 }: uses it
 * ```
 */
export class TopicAliasSender {
  /** Assign aliases automatically to every topic. */
  readonly auto: boolean;
  /** The broker's Topic Alias Maximum for this connection (0 = none). */
  max = 0;
  #byAlias = new Map<number, string>();
  #byTopic = new Map<string, number>();

  /** Creates a table; `auto` turns on automatic aliases. */
  constructor(auto: boolean) {
    this.auto = auto;
  }

  /** Forgets every alias (new connection) and sets the broker's maximum. */
  reset(max: number): void {
    this.max = max;
    this.#byAlias.clear();
    this.#byTopic.clear();
  }

  /** The topic a manual alias stands for on this connection, if any. */
  topicOf(alias: number): string | undefined {
    return this.#byAlias.get(alias);
  }

  /**
   * The wire form of `topic`: alias 0 means send the topic without alias;
   * an empty topic means the alias is already known to the broker.
   * `requested` is the user's manual alias (0 for none); it must be within
   * 1..max (throws MqttError 0x94 otherwise).
   */
  resolve(topic: string, requested: number): { topic: string; alias: number } {
    if (requested !== 0) {
      if (requested < 1 || requested > this.max) {
        throw new MqttError(
          ReasonCode.TopicAliasInvalid,
          `topic alias ${requested} is outside 1..${this.max} ` +
            `(the broker's Topic Alias Maximum)`,
        );
      }
      return this.#use(topic, requested);
    }
    if (!this.auto || this.max === 0) return { topic, alias: 0 };
    const known = this.#byTopic.get(topic);
    if (known !== undefined) {
      // Most recently used goes last.
      this.#byTopic.delete(topic);
      this.#byTopic.set(topic, known);
      return { topic: "", alias: known };
    }
    let alias = this.#byAlias.size + 1;
    if (alias > this.max) {
      const oldest = this.#byTopic.keys().next().value as string;
      alias = this.#byTopic.get(oldest)!;
    }
    return this.#use(topic, alias);
  }

  #use(topic: string, alias: number): { topic: string; alias: number } {
    const current = this.#byAlias.get(alias);
    if (current === topic) {
      this.#byTopic.delete(topic);
      this.#byTopic.set(topic, alias);
      return { topic: "", alias };
    }
    if (current !== undefined) this.#byTopic.delete(current);
    const prev = this.#byTopic.get(topic);
    if (prev !== undefined) this.#byAlias.delete(prev);
    this.#byAlias.set(alias, topic);
    this.#byTopic.set(topic, alias);
    return { topic, alias };
  }
}
