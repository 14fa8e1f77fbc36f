/**
 * `MemoryStore`: the `Store` used when persistence is off, and by tests. It
 * keeps plain `Map`s; `commit()` resolves at once and `load()` returns deep
 * copies, so a caller can never change the stored state through them.
 *
 * @module
 */

import type {
  LoadedSession,
  LoadedState,
  OutgoingRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "./store.ts";

interface MemorySession {
  record: SessionRecord | undefined;
  outgoing: Map<number, OutgoingRecord>;
  incomingQos2: Set<number>;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * A `Store` held in memory: nothing survives the process.
 *
 * Records passed to `put*` are kept by reference (no copy on the hot path);
 * treat them as immutable once handed over, as with every `Store`.
 *
 * @example
 * ```ts
 * import { MemoryStore } from "@kite/mqtt/broker";
 * const store = new MemoryStore();
 * store.putRetained("a/b", {
 *   topic: "a/b",
 *   payload: new Uint8Array([1]),
 *   qos: 1,
 *   retain: true,
 * });
 * await store.commit();
 * const { retained } = await store.load();
 * console.log(retained.length); // 1
 * await store.close();
 * ```
 */
export class MemoryStore implements Store {
  /** Nothing here outlives the process. */
  readonly durable: boolean = false;
  #retained = new Map<string, StoredMessage>();
  #sessions = new Map<string, MemorySession>();
  #keepOutgoing: boolean;

  /**
   * `keepOutgoing: false` drops sessions' outgoing messages instead of
   * keeping them for `load()`: what a broker uses when persistence is off,
   * since its live sessions hold those messages themselves and nothing
   * loads this store again (a persistent session's QoS 1/2 messages are
   * then not kept twice).
   */
  constructor(options: { keepOutgoing?: boolean } = {}) {
    this.#keepOutgoing = options.keepOutgoing ?? true;
  }

  #session(clientId: string): MemorySession {
    let s = this.#sessions.get(clientId);
    if (s === undefined) {
      s = { record: undefined, outgoing: new Map(), incomingQos2: new Set() };
      this.#sessions.set(clientId, s);
    }
    return s;
  }

  /** Sets (or, with `undefined`, clears) the retained message of a topic. */
  putRetained(topic: string, message: StoredMessage | undefined): void {
    if (message === undefined) this.#retained.delete(topic);
    else this.#retained.set(topic, message);
  }

  /** Creates or replaces a session's metadata and subscriptions. */
  putSession(record: SessionRecord): void {
    this.#session(record.clientId).record = record;
  }

  /** Removes a session with its outgoing messages and QoS 2 ids. */
  deleteSession(clientId: string): void {
    this.#sessions.delete(clientId);
  }

  /** Creates or replaces one outgoing message of a session. */
  putOutgoing(clientId: string, record: OutgoingRecord): void {
    if (!this.#keepOutgoing) return;
    this.#session(clientId).outgoing.set(record.seq, record);
  }

  /** Removes one outgoing message of a session. */
  deleteOutgoing(clientId: string, seq: number): void {
    if (!this.#keepOutgoing) return;
    this.#sessions.get(clientId)?.outgoing.delete(seq);
  }

  /** Records a QoS 2 packet id received from a client (PUBREC sent). */
  putIncomingQos2(clientId: string, packetId: number): void {
    this.#session(clientId).incomingQos2.add(packetId);
  }

  /** Forgets a QoS 2 packet id (PUBREL received). */
  deleteIncomingQos2(clientId: string, packetId: number): void {
    this.#sessions.get(clientId)?.incomingQos2.delete(packetId);
  }

  /** Resolves at once: memory is as durable as it gets. */
  commit(): Promise<void> {
    return RESOLVED;
  }

  /**
   * Returns deep copies of everything held. Outgoing messages and QoS 2 ids
   * of a client without a session record are not returned (as in `KvStore`).
   */
  load(): Promise<LoadedState> {
    const retained = [...this.#retained.values()];
    const sessions: LoadedSession[] = [];
    for (const s of this.#sessions.values()) {
      if (s.record === undefined) continue;
      sessions.push({
        record: s.record,
        outgoing: [...s.outgoing.values()].sort((a, b) => a.seq - b.seq),
        incomingQos2: [...s.incomingQos2].sort((a, b) => a - b),
      });
    }
    return Promise.resolve(structuredClone({ retained, sessions }));
  }

  /** Nothing to release. */
  close(): Promise<void> {
    return RESOLVED;
  }
}
