/**
 * A bridge's QoS 1/2 messages for the remote broker (private to the
 * bridge), from the local delivery until the remote acknowledges them.
 *
 * - Bounded: at most `maxQueued` messages and `maxQueuedBytes` bytes
 *   (payload plus topic; 0: no byte bound) wait to be sent (those in flight
 *   are bounded by the remote's Receive Maximum). A new message past either
 *   is refused: the bridge drops it (logged once per episode, counted); the
 *   ones held are kept.
 * - Durable when the broker's store is (`BridgeHost.bridgeStore`): each
 *   message is an `OutgoingRecord` of the session that the bridge's
 *   reserved id names, written through the store's group commit as a
 *   session's queued messages are, and deleted when the remote acknowledges
 *   it; a restart, or a crash, loses none (`restore()`). A QoS 2 message's
 *   packet id is stored before its PUBLISH is written, and its PUBREC state
 *   before its PUBREL (the client's `PublishTracker` holds those writes
 *   until the commit): after a restart it is resumed with the same id, so
 *   the remote does not get it twice (v5 [MQTT-4.3.3-6] [MQTT-4.3.3-10]). A QoS 1 message is
 *   stored without its id and sent again as new after a restart (QoS 1
 *   allows a duplicate [MQTT-4.3.2]).
 * - Without a durable store nothing is written: the messages live as long
 *   as the process.
 *
 * @module
 */

import type { Properties, QoS } from "../../codec/packet.ts";
import { Fifo } from "../../codec/_fifo.ts";
import type { PublishTracker } from "../../client/options.ts";
import type { CommitWaiter } from "../commit_gate.ts";
import type {
  LoadedSession,
  OutgoingRecord,
  OutgoingState,
  Store,
  StoredMessage,
} from "../store/store.ts";

/** What the queues wait on: the broker's `CommitGate`. */
export interface CommitGateLike {
  /** Whether mutations wait for a commit. */
  readonly dirty: boolean;
  /** The generation of the next commit. */
  readonly generation: number;
  /** Tells `waiter` (once) when the next commit is done. */
  wait(waiter: CommitWaiter): void;
}

/** What the queue tells its bridge. */
export interface OutgoingEvents {
  /**
   * The exchange of `o` ended: the remote acknowledged it (`error`
   * undefined), refused it, or cannot take it. It is no longer held.
   */
  settled(o: Outgoing, error: Error | undefined): void;
}

/** The settings of an `OutgoingQueue`. */
export interface OutgoingOptions {
  /** The bridge's reserved id: the stored session's. */
  id: string;
  /** Where to keep the messages; undefined: in memory only. */
  store: Store | undefined;
  /** The broker's commit gate. */
  gate: CommitGateLike;
  /** Most messages held. */
  maxQueued: number;
  /** Most bytes held; 0: no bound. */
  maxQueuedBytes: number;
  /** Told when a message is settled. */
  events: OutgoingEvents;
}

/**
 * The v5 properties to send `message` with over a `version` connection:
 * its Message Expiry Interval reduced by the time it waited [MQTT-3.3.2-6]
 * (at least 1 s when `resumed`: the remote may hold it already). Null: it
 * expired. None over 3.1.1.
 */
export function sendProperties(
  message: StoredMessage,
  version: 4 | 5,
  resumed: boolean,
): Properties | undefined | null {
  if (version !== 5) return undefined;
  const props = message.properties;
  const at = message.expiresAt;
  if (at === undefined) return props;
  const left = Math.ceil((at - Date.now()) / 1000);
  if (left <= 0 && !resumed) return null;
  return { ...props, messageExpiryInterval: left > 0 ? left : 1 };
}

/** The bound's measure of a message: payload bytes plus topic length. */
function sizeOf(m: StoredMessage): number {
  return m.payload.byteLength + m.topic.length;
}

/**
 * One QoS 1/2 message for the remote; the client's tracker of its publish.
 *
 * @example
 * ```ts ignore
 * const o = queue.add(message, 1)!;
 * client.publish(o.message.topic, o.message.payload, { qos: 1, tracker: o });
 * ```
 */
export class Outgoing implements PublishTracker {
  /** Its place in the bridge's order (the stored record's key). */
  readonly seq: number;
  /** As it goes to the remote: the remote topic, the retain flag to send. */
  readonly message: StoredMessage;
  /** The QoS it crosses with. */
  readonly qos: 1 | 2;
  /** Payload bytes plus topic length. */
  readonly size: number;
  /** "queued" until the client sends it. */
  state: OutgoingState = "queued";
  /** Its packet id once sent. */
  packetId = 0;
  readonly #queue: OutgoingQueue;

  /** A message of `queue` (see `OutgoingQueue.add`). */
  constructor(
    queue: OutgoingQueue,
    seq: number,
    message: StoredMessage,
    qos: 1 | 2,
  ) {
    this.#queue = queue;
    this.seq = seq;
    this.message = message;
    this.qos = qos;
    this.size = sizeOf(message);
  }

  /** PublishTracker: its PUBLISH got `packetId`. */
  sent(packetId: number): Promise<void> | undefined {
    return this.#queue.onSent(this, packetId);
  }

  /** PublishTracker: its PUBREC came. */
  received(): Promise<void> | undefined {
    return this.#queue.onReceived(this);
  }

  /** PublishTracker: its exchange ended. */
  done(error: Error | undefined): void {
    this.#queue.onDone(this, error);
  }
}

interface Hold {
  gen: number;
  done: PromiseWithResolvers<void>;
}

/**
 * The messages a bridge holds for its remote (see the module doc).
 *
 * @example
 * ```ts ignore
 * const q = new OutgoingQueue({ id, store, gate, maxQueued: 100, maxQueuedBytes: 0, events });
 * const resume = q.restore(core.takeBridgeState(id)); // in flight before
 * const o = q.add(message, 1); // undefined: full
 * ```
 */
export class OutgoingQueue implements CommitWaiter {
  /** Not yet handed to the client (the remote is down), in order. */
  readonly waiting: Fifo<Outgoing> = new Fifo();
  readonly #id: string;
  readonly #store: Store | undefined;
  readonly #gate: CommitGateLike;
  readonly #max: number;
  readonly #maxBytes: number;
  readonly #events: OutgoingEvents;
  /** Held and not yet sent (the bound applies to these). */
  #count = 0;
  #bytes = 0;
  /** Sent and not yet acknowledged. */
  #inFlight = 0;
  #nextSeq = 1;
  /** QoS 2 writes waiting for a commit, by generation (oldest first). */
  #holds: Hold[] = [];

  /** An empty queue (see `restore` for what a restart left). */
  constructor(o: OutgoingOptions) {
    this.#id = o.id;
    this.#store = o.store;
    this.#gate = o.gate;
    this.#max = o.maxQueued;
    this.#maxBytes = o.maxQueuedBytes;
    this.#events = o.events;
  }

  /** Messages held: waiting, queued in the client, in flight. */
  get count(): number {
    return this.#count + this.#inFlight;
  }

  /** The bytes (payload plus topic) of those not yet sent. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Whether the messages are kept in a durable store. */
  get durable(): boolean {
    return this.#store !== undefined;
  }

  /** Whether one more message of `size` bytes may be held. */
  fits(size: number): boolean {
    return this.#count < this.#max &&
      (this.#maxBytes === 0 || this.#bytes + size <= this.#maxBytes);
  }

  /**
   * Holds a new message (stored, when durable); undefined when it does not
   * fit. Its payload must be owned (see `ownPayload`).
   */
  add(message: StoredMessage, qos: 1 | 2): Outgoing | undefined {
    if (!this.fits(sizeOf(message))) return undefined;
    const o = new Outgoing(this, this.#nextSeq++, message, qos);
    this.#count++;
    this.#bytes += o.size;
    this.#put(o);
    return o;
  }

  /**
   * Takes back what a restart left (`state`, from the store): QoS 2
   * messages that were in flight are returned, to be resumed with their
   * packet ids; the others wait, in order.
   */
  restore(state: LoadedSession | undefined): Outgoing[] {
    if (state === undefined) return [];
    const resume: Outgoing[] = [];
    for (const r of state.outgoing) {
      const o = new Outgoing(this, r.seq, r.message, r.qos === 2 ? 2 : 1);
      if (r.seq >= this.#nextSeq) this.#nextSeq = r.seq + 1;
      if (o.qos === 2 && r.state !== "queued" && r.packetId !== undefined) {
        o.state = r.state;
        o.packetId = r.packetId;
        this.#inFlight++;
        resume.push(o);
      } else {
        this.#count++;
        this.#bytes += o.size;
        this.waiting.push(o);
      }
    }
    return resume;
  }

  /** Forgets `o` without sending it (it expired while it waited). */
  drop(o: Outgoing): void {
    this.#forget(o);
  }

  /** `o` got `packetId`: stored first for QoS 2 (its PUBLISH waits). */
  onSent(o: Outgoing, packetId: number): Promise<void> | undefined {
    o.packetId = packetId;
    o.state = "sent";
    this.#count--;
    this.#bytes -= o.size;
    this.#inFlight++;
    if (o.qos === 1 || this.#store === undefined) return undefined;
    this.#put(o);
    return this.#afterCommit();
  }

  /** `o`'s PUBREC came: stored first (its PUBREL waits). */
  onReceived(o: Outgoing): Promise<void> | undefined {
    o.state = "pubrec";
    if (this.#store === undefined) return undefined;
    this.#put(o);
    return this.#afterCommit();
  }

  /** `o`'s exchange ended: forgotten, and the bridge told. */
  onDone(o: Outgoing, error: Error | undefined): void {
    this.#forget(o);
    this.#events.settled(o, error);
  }

  #forget(o: Outgoing): void {
    if (o.state === "queued") {
      this.#count--;
      this.#bytes -= o.size;
    } else this.#inFlight--;
    this.#store?.deleteOutgoing(this.#id, o.seq);
  }

  #put(o: Outgoing): void {
    const store = this.#store;
    if (store === undefined) return;
    const r: OutgoingRecord = {
      seq: o.seq,
      state: o.state,
      qos: o.qos as QoS,
      message: o.message,
    };
    if (o.state !== "queued") r.packetId = o.packetId;
    store.putOutgoing(this.#id, r);
  }

  /** A promise settled when what is pending now is committed. */
  #afterCommit(): Promise<void> {
    const gen = this.#gate.generation;
    const last = this.#holds.at(-1);
    if (last !== undefined && last.gen === gen) return last.done.promise;
    const hold: Hold = { gen, done: Promise.withResolvers<void>() };
    this.#holds.push(hold);
    this.#gate.wait(this);
    return hold.done.promise;
  }

  /** CommitWaiter: the commit of `gen` is done. */
  committed(gen: number): void {
    const holds = this.#holds;
    let n = 0;
    while (n < holds.length && holds[n]!.gen <= gen) holds[n++]!.done.resolve();
    if (n > 0) holds.splice(0, n);
  }

  /**
   * CommitWaiter: the commit failed (logged by the gate): the held writes
   * go out anyway (the messages are still delivered; only a crash now
   * could repeat a QoS 2 one).
   */
  commitFailed(): void {
    for (const h of this.#holds.splice(0)) h.done.resolve();
  }
}
