/**
 * `JetStreamStore`: the `Store` of a cluster, in NATS JetStream, shared by
 * every node (a session one node stored can be resumed on another).
 *
 * Layout (`{name}` is the cluster name, `{c}` a client id as a token):
 * - stream `{name}_state`, one message per subject (the latest kept):
 *   `_kite.{name}.s.{c}.r` the `SessionRecord`, `.o.{seq}` an
 *   `OutgoingRecord`, `.q.{packetId}` a QoS 2 id awaiting PUBREL;
 * - KV bucket `{name}_retained`: one key per topic, the `StoredMessage`.
 *
 * Group commit, as `KvStore`: mutations are kept by record until the end
 * of the event-loop turn (a later one replaces an earlier one; a put and a
 * delete of a record never written cost nothing), then written as
 * pipelined JetStream publishes; the next batch starts when the last one
 * is acknowledged. A deleted record is removed from the stream by its
 * sequence (known from the put's acknowledgement, or found by subject);
 * `deleteSession` purges the client's subjects before anything later of
 * that client is written. `commit()` resolves once everything enqueued
 * before it is stored, and what `settleHooks` wait for too (a node's
 * messages to other nodes); what `beforeCommit` returns as it starts runs
 * once the commit's own mutations are stored (a node's inbox
 * acknowledgements, which must follow what the deliveries stored). A batch that fails (NATS unreachable) is
 * written again once it is back: acknowledgements that wait for it wait.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV } from "@nats-io/kv";
import { StorageType } from "@nats-io/jetstream";
import type {
  LoadedSession,
  LoadedState,
  OutgoingRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "../store/store.ts";
import {
  deserialize,
  isOutgoingRecord,
  isSessionRecord,
  isStoredMessage,
  serialize,
} from "../store/_kv_records.ts";
import { LingerPolicy } from "../store/_kv_linger.ts";
import { keyToken } from "./_keys.ts";
import { type ClusterNames, type NatsHandles, readAll } from "./nats.ts";

const log = getLogger(["kite", "cluster", "store"]);

type Mutation =
  | {
    kind: "put";
    value: unknown;
    /** Not stored before: a delete before the flush cancels it. */
    fresh?: boolean;
    /** An outgoing QoS 0/1 record its ack may delete soon (lingering). */
    ackable?: boolean;
  }
  | { kind: "del" };

interface RetainedMutation {
  message: StoredMessage | undefined;
}

/** Creates (or opens) the state stream and the retained bucket. */
export async function openStateStorage(
  h: NatsHandles,
  names: ClusterNames,
): Promise<KV> {
  try {
    await h.jsm.streams.info(names.stateStream);
  } catch {
    await h.jsm.streams.add({
      name: names.stateStream,
      subjects: [`${names.internal}.s.>`],
      storage: StorageType.File,
      max_msgs_per_subject: 1,
      num_replicas: h.replicas,
    });
  }
  return await h.kvm.create(names.retainedBucket, {
    history: 1,
    replicas: h.replicas,
  });
}

/** The `Store` on JetStream (see the module doc). */
export class JetStreamStore implements Store {
  readonly #h: NatsHandles;
  readonly #names: ClusterNames;
  readonly #retained: KV;
  /** Pending mutations by subject. */
  #pending = new Map<string, Mutation>();
  #pendingRetained = new Map<string, RetainedMutation>();
  /** Clients whose subjects are purged before the pending mutations. */
  #purges = new Set<string>();
  /** Stream sequence of the stored message of each subject written or read. */
  readonly #stored = new Map<string, number>();
  /** The same for outgoing records, by client prefix (for purges). */
  readonly #outSeqs = new Map<string, Map<string, number>>();
  /** Subjects whose put is being written. */
  readonly #inFlight = new Set<string>();
  /** Subjects the last batch wrote (a delete of one is a "late" ack). */
  #lastWritten = new Set<string>();
  /** Lingering before a flush, as `KvStore` (see store/_kv_linger.ts). */
  readonly #linger = new LingerPolicy();
  /** Fresh ackable puts pending. */
  #freshPending = 0;
  /** Wakes a lingering flush early (the last fresh put was acknowledged). */
  #wake: (() => void) | undefined;
  #flushing = false;
  /** A batch that failed, to be written again. */
  #retrying: { purges: Set<string>; batch: Map<string, Mutation> } | undefined;
  #scheduled = false;
  #closed = false;
  /** Batches taken, and written, so far. */
  #taken = 0;
  #done = 0;
  #waiters: { gen: number; resolve: () => void }[] = [];
  /** Waited for by every commit (a node's messages to other nodes). */
  readonly settleHooks: (() => Promise<unknown>)[] = [];
  /**
   * Called as a commit starts; what it returns is awaited once the
   * mutations enqueued so far are stored, before the commit resolves.
   */
  beforeCommit: () => (() => Promise<void>) | undefined = () => undefined;
  /** Resolves while NATS is reachable (a failed batch waits for it). */
  waitUp: () => Promise<void> = () => Promise.resolve();
  /**
   * `load()` returns nothing (a cluster node: it follows the retained
   * bucket itself and adopts sessions one by one, not every node's).
   */
  startEmpty = false;
  /** The highest revision of the retained bucket this store wrote. */
  retainedRevision = 0;

  /** A store on the cluster `names` over the connections `h`. */
  constructor(h: NatsHandles, names: ClusterNames, retained: KV) {
    this.#h = h;
    this.#names = names;
    this.#retained = retained;
  }

  /** Opens the stream and bucket of cluster `names` and returns the store. */
  static async open(
    h: NatsHandles,
    names: ClusterNames,
  ): Promise<JetStreamStore> {
    return new JetStreamStore(h, names, await openStateStorage(h, names));
  }

  #subject(clientId: string, rest: string): string {
    return `${this.#names.state(keyToken(clientId))}.${rest}`;
  }

  #mutate(subject: string, m: Mutation): void {
    const prev = this.#pending.get(subject);
    if (m.kind === "del") {
      if (
        prev?.kind === "put" && !this.#stored.has(subject) &&
        !this.#inFlight.has(subject)
      ) {
        // Never written: nothing to write.
        this.#pending.delete(subject);
        if (prev.ackable) {
          this.#linger.cancels++;
          if (--this.#freshPending === 0) this.#wake?.();
        }
        return;
      }
      if (this.#lastWritten.has(subject)) this.#linger.late++;
    } else if (m.ackable) {
      if (prev?.kind === "put") {
        m.fresh = prev.fresh === true;
        m.ackable = prev.ackable === true;
      } else if (!this.#stored.has(subject) && !this.#inFlight.has(subject)) {
        m.fresh = true;
        this.#linger.puts++;
        this.#freshPending++;
      } else m.ackable = false;
    }
    this.#pending.set(subject, m);
    this.#schedule();
  }

  get #hasPending(): boolean {
    return this.#pending.size > 0 || this.#pendingRetained.size > 0 ||
      this.#purges.size > 0;
  }

  #schedule(): void {
    if (this.#scheduled || this.#flushing) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#startFlush();
    });
  }

  #startFlush(): void {
    if (this.#flushing || !this.#hasPending) return;
    this.#flushing = true;
    this.#flushLoop().finally(() => {
      this.#flushing = false;
      // Closed with waiters left: release them (nothing more is written).
      if (this.#closed) this.#release(Infinity);
    });
  }

  /** Waits while acks may still cancel fresh puts (lingering). */
  async #lingerWait(): Promise<void> {
    if (!this.#linger.on) return;
    this.#linger.start = performance.now();
    while (
      this.#freshPending > 0 && !this.#closed &&
      this.#linger.mayWait(performance.now())
    ) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#wake = resolve;
      const timer = setTimeout(resolve, 1);
      await promise;
      clearTimeout(timer);
      this.#wake = undefined;
    }
  }

  async #flushLoop(): Promise<void> {
    while (!this.#closed && this.#hasPending) {
      await this.#lingerWait();
      this.#linger.decide();
      this.#freshPending = 0;
      if (!this.#hasPending) {
        // Everything cancelled out: whoever waits is served.
        this.#release(++this.#taken);
        break;
      }
      const purges = this.#purges;
      const batch = this.#pending;
      const retained = this.#pendingRetained;
      this.#purges = new Set();
      this.#pending = new Map();
      this.#pendingRetained = new Map();
      const gen = ++this.#taken;
      const started = performance.now();
      this.#lastWritten = new Set(batch.keys());
      for (;;) {
        try {
          await this.#write(purges, batch, retained);
          this.#linger.wrote(performance.now() - started);
          break;
        } catch (e) {
          if (this.#closed) return;
          log.warn("store batch failed ({error}); retrying", {
            error: (e as Error).message,
          });
          this.#retrying = { purges, batch };
          await this.waitUp();
          await new Promise((r) => setTimeout(r, 200));
        }
      }
      this.#retrying = undefined;
      this.#release(gen);
    }
    if (!this.#closed && !this.#hasPending && this.#waiters.length > 0) {
      // What they waited for cancelled out meanwhile.
      this.#release(++this.#taken);
    }
  }

  #release(gen: number): void {
    this.#done = Math.max(this.#done, gen);
    const ready = this.#waiters.filter((w) => w.gen <= this.#done);
    this.#waiters = this.#waiters.filter((w) => w.gen > this.#done);
    for (const w of ready) w.resolve();
  }

  async #write(
    purges: Set<string>,
    batch: Map<string, Mutation>,
    retained: Map<string, RetainedMutation>,
  ): Promise<void> {
    const jsm = this.#h.jsm;
    const stream = this.#names.stateStream;
    await Promise.all([...purges].map(async (prefix) => {
      await jsm.streams.purge(stream, { filter: `${prefix}.>` });
      for (const s of this.#stored.keys()) {
        if (s.startsWith(prefix + ".")) this.#stored.delete(s);
      }
      this.#outSeqs.delete(prefix);
    }));
    const work: Promise<unknown>[] = [];
    /** Deleted outgoing records by client prefix: removed together. */
    const outDeletes = new Map<string, string[]>();
    for (const [subject, m] of batch) {
      if (m.kind === "put") {
        this.#inFlight.add(subject);
        const data = serialize(m.value);
        work.push(
          this.#h.js.publish(subject, data).then((ack) => {
            this.#noteStored(subject, ack.seq);
          }).finally(() => this.#inFlight.delete(subject)),
        );
        continue;
      }
      const o = subject.lastIndexOf(".o.");
      if (o > 0 && this.#stored.has(subject)) {
        const prefix = subject.slice(0, o);
        const list = outDeletes.get(prefix);
        if (list === undefined) outDeletes.set(prefix, [subject]);
        else list.push(subject);
      } else work.push(this.#remove(subject));
    }
    for (const [prefix, subjects] of outDeletes) {
      work.push(this.#removeOutgoing(prefix, subjects));
    }
    for (const [topic, r] of retained) {
      // A cleared topic is an empty value (its revision tells the other
      // nodes when they have seen it).
      const value = r.message === undefined
        ? new Uint8Array(0)
        : serialize(r.message);
      work.push(
        this.#retained.put(keyToken(topic), value).then((rev) => {
          if (rev > this.retainedRevision) this.retainedRevision = rev;
        }),
      );
    }
    const results = await Promise.allSettled(work);
    const failed = results.find((r) => r.status === "rejected");
    if (failed !== undefined) {
      // Written again as a whole (puts replace, deletes are idempotent).
      for (const [s, m] of batch) {
        if (!this.#pending.has(s)) this.#pending.set(s, m);
      }
      for (const [t, r] of retained) {
        if (!this.#pendingRetained.has(t)) this.#pendingRetained.set(t, r);
      }
      throw (failed as PromiseRejectedResult).reason;
    }
  }

  #noteStored(subject: string, seq: number): void {
    this.#stored.set(subject, seq);
    const o = subject.lastIndexOf(".o.");
    if (o < 0) return;
    const prefix = subject.slice(0, o);
    let seqs = this.#outSeqs.get(prefix);
    if (seqs === undefined) {
      seqs = new Map();
      this.#outSeqs.set(prefix, seqs);
    }
    seqs.set(subject, seq);
  }

  /**
   * Removes outgoing records of one client: those below the oldest record
   * it keeps in one purge (acknowledged in order, the usual case), the rest
   * one by one.
   */
  async #removeOutgoing(prefix: string, subjects: string[]): Promise<void> {
    const seqs = this.#outSeqs.get(prefix) ?? new Map<string, number>();
    const doomed = new Set(subjects);
    let minLive = Infinity;
    let maxDoomed = 0;
    for (const [s, q] of seqs) {
      if (doomed.has(s)) {
        if (q > maxDoomed) maxDoomed = q;
      } else if (q < minLive) minLive = q;
    }
    const above: string[] = [];
    let below = 0;
    for (const s of subjects) {
      const q = seqs.get(s) ?? this.#stored.get(s);
      if (q !== undefined && q < minLive) below++;
      else above.push(s);
    }
    const ops: Promise<unknown>[] = above.map((s) => this.#remove(s));
    for (const s of subjects) {
      seqs.delete(s);
      if (!above.includes(s)) this.#stored.delete(s);
    }
    if (seqs.size === 0) this.#outSeqs.delete(prefix);
    if (below > 0) {
      ops.push(this.#h.jsm.streams.purge(this.#names.stateStream, {
        filter: `${prefix}.o.>`,
        seq: minLive === Infinity ? maxDoomed + 1 : minLive,
      }));
    }
    await Promise.all(ops);
  }

  async #remove(subject: string): Promise<void> {
    const seq = this.#stored.get(subject);
    this.#stored.delete(subject);
    if (seq !== undefined) {
      try {
        await this.#h.jsm.streams.deleteMessage(
          this.#names.stateStream,
          seq,
          false,
        );
        return;
      } catch {
        // Replaced or gone already: purge by subject below.
      }
    }
    await this.#h.jsm.streams.purge(this.#names.stateStream, {
      filter: subject,
    });
  }

  /** Sets (or, with `undefined`, clears) the retained message of a topic. */
  putRetained(topic: string, message: StoredMessage | undefined): void {
    this.#pendingRetained.set(topic, { message });
    this.#schedule();
  }

  /** Creates or replaces a session's metadata and subscriptions. */
  putSession(record: SessionRecord): void {
    this.#mutate(this.#subject(record.clientId, "r"), {
      kind: "put",
      value: record,
    });
  }

  /** Removes a session with its outgoing messages and QoS 2 ids. */
  deleteSession(clientId: string): void {
    const prefix = this.#names.state(keyToken(clientId));
    for (const s of [...this.#pending.keys()]) {
      if (s.startsWith(prefix + ".")) this.#pending.delete(s);
    }
    this.#purges.add(prefix);
    this.#schedule();
  }

  /** Creates or replaces one outgoing message of a session. */
  putOutgoing(clientId: string, record: OutgoingRecord): void {
    // A QoS 2 delivery waits for its commit before it is sent: its ack
    // cannot cancel the put.
    this.#mutate(this.#subject(clientId, `o.${record.seq}`), {
      kind: "put",
      value: record,
      ackable: record.qos < 2,
    });
  }

  /** Removes one outgoing message of a session. */
  deleteOutgoing(clientId: string, seq: number): void {
    this.#mutate(this.#subject(clientId, `o.${seq}`), { kind: "del" });
  }

  /** Records a QoS 2 packet id received from a client (PUBREC sent). */
  putIncomingQos2(clientId: string, packetId: number): void {
    this.#mutate(this.#subject(clientId, `q.${packetId}`), {
      kind: "put",
      value: packetId,
    });
  }

  /** Forgets a QoS 2 packet id (PUBREL received). */
  deleteIncomingQos2(clientId: string, packetId: number): void {
    this.#mutate(this.#subject(clientId, `q.${packetId}`), { kind: "del" });
  }

  /**
   * Drops what is pending for `clientId` without writing it, also in a
   * batch that failed and waits to be written again: another node owns
   * the session now (this node lost it while cut off from NATS).
   */
  forget(clientId: string): void {
    const base = this.#names.state(keyToken(clientId));
    const prefix = base + ".";
    for (const s of [...this.#pending.keys()]) {
      if (s.startsWith(prefix)) this.#pending.delete(s);
    }
    this.#purges.delete(base);
    const w = this.#retrying;
    if (w === undefined) return;
    w.purges.delete(base);
    for (const s of [...w.batch.keys()]) {
      if (s.startsWith(prefix)) w.batch.delete(s);
    }
  }

  /** Resolves when every mutation enqueued before this call is durable. */
  async commit(): Promise<void> {
    const after = this.beforeCommit();
    const target = this.#hasPending ? this.#taken + 1 : this.#taken;
    if (this.#done < target && !this.#closed) {
      const { promise, resolve } = Promise.withResolvers<void>();
      this.#waiters.push({ gen: target, resolve });
      this.#startFlush();
      await promise;
    }
    if (after !== undefined) await after();
    for (const hook of this.settleHooks) await hook();
  }

  /** Reads everything back: every retained message and stored session. */
  async load(): Promise<LoadedState> {
    if (this.startEmpty) return { retained: [], sessions: [] };
    const [retained, sessions] = await Promise.all([
      this.loadRetained(),
      this.#loadSessions(`${this.#names.internal}.s.>`),
    ]);
    return { retained, sessions: [...sessions.values()] };
  }

  /** One client's stored session, or undefined. */
  async loadSession(clientId: string): Promise<LoadedSession | undefined> {
    const prefix = this.#names.state(keyToken(clientId));
    const sessions = await this.#loadSessions(`${prefix}.>`);
    return sessions.get(prefix);
  }

  /** Every retained message. */
  async loadRetained(): Promise<StoredMessage[]> {
    const out: StoredMessage[] = [];
    const stream = `KV_${this.#names.retainedBucket}`;
    const msgs = await readAll(
      this.#h.js,
      stream,
      `$KV.${this.#names.retainedBucket}.>`,
    );
    for (const m of msgs) {
      if (m.headers?.get("KV-Operation") || m.data.length === 0) continue;
      const v = decode(m.data);
      if (isStoredMessage(v)) out.push(v);
    }
    return out;
  }

  async #loadSessions(filter: string): Promise<Map<string, LoadedSession>> {
    const msgs = await readAll(this.#h.js, this.#names.stateStream, filter);
    const byPrefix = new Map<string, {
      record?: SessionRecord;
      outgoing: OutgoingRecord[];
      q2: number[];
    }>();
    const base = this.#names.internal.length + 3; // "_kite.{name}.s."
    for (const m of msgs) {
      const rest = m.subject.slice(base); // {c}.r | {c}.o.{seq} | {c}.q.{id}
      const dot = rest.indexOf(".");
      if (dot < 0) continue;
      const prefix = m.subject.slice(0, base + dot);
      const kind = rest.slice(dot + 1);
      let s = byPrefix.get(prefix);
      if (s === undefined) {
        s = { outgoing: [], q2: [] };
        byPrefix.set(prefix, s);
      }
      this.#noteStored(m.subject, m.seq);
      const v = decode(m.data);
      if (kind === "r") {
        if (isSessionRecord(v)) s.record = v;
      } else if (kind.startsWith("o.")) {
        if (isOutgoingRecord(v)) s.outgoing.push(v);
      } else if (kind.startsWith("q.")) {
        if (typeof v === "number") s.q2.push(v);
      }
    }
    const out = new Map<string, LoadedSession>();
    for (const [prefix, s] of byPrefix) {
      if (s.record === undefined) continue;
      out.set(prefix, {
        record: s.record,
        outgoing: s.outgoing.sort((a, b) => a.seq - b.seq),
        incomingQos2: s.q2.sort((a, b) => a - b),
      });
    }
    return out;
  }

  /** Commits what is pending; the connections stay open (the node's). */
  async close(): Promise<void> {
    await this.commit();
    this.#closed = true;
    this.#release(Infinity);
  }
}

function decode(data: Uint8Array): unknown {
  try {
    // NATS hands Node Buffers (whose slice() is a view): plain bytes.
    return deserialize(plain(data));
  } catch {
    return undefined;
  }
}

/** `data` as a plain `Uint8Array` (a view of the same bytes). */
export function plain(data: Uint8Array): Uint8Array {
  return data.constructor === Uint8Array
    ? data
    : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
