/**
 * `KvStore`: the `Store` kept in Deno KV, with group commit.
 *
 * Layout (all keys start with `"kite"`):
 * - `["kite", "retained", topic]`: a `StoredMessage`
 * - `["kite", "session", clientId]`: a `SessionRecord`
 * - `["kite", "out", clientId, seq]`: an `OutgoingRecord`
 * - `["kite", "q2", clientId, packetId]`: `true` (QoS 2 id awaiting PUBREL)
 * - `["kite", "chunk", generation, index]`: raw bytes of a large record
 *
 * A topic or client id longer than 256 UTF-8 bytes is replaced in the key by
 * its SHA-256 digest (`_kv_keys.ts`); the real value is always inside the
 * record and is checked against the key on load. A record that could exceed
 * Deno KV's 64 KiB value limit is split into chunks (`_kv_batch.ts`); chunks
 * without a header are removed by the next `load()` (`_kv_load.ts`).
 *
 * Group commit: `put*`/`delete*` only record the mutation in a map keyed by
 * the record (a later mutation of the same record replaces the earlier one;
 * a put followed by a delete of a record that was never written costs
 * nothing). The first mutation after a quiet period schedules a flush as a
 * microtask, so it runs at the end of the current event-loop task with every
 * mutation that task made (a `setTimeout(0)` would cost about 2 ms here);
 * while a flush is in flight new mutations accumulate for the next one, which
 * starts as soon as it completes. Under load, batches grow by themselves.
 * When acks are likely to cancel puts, a flush waits a few ms for them
 * (`_kv_linger.ts`). A flush writes its mutations in `kv.atomic()`
 * operations kept within Deno KV's limits, one after another.
 *
 * Only one process may use a directory at a time: `open()` takes an
 * exclusive `flock` on the directory itself (`_kv_lock.ts`), which the kernel
 * drops when the process ends, and refuses with `StoreLockedError` while
 * another process (or another `KvStore` of this one) holds it. The holder's
 * pid is noted in `kite.lock`, for the message.
 *
 * @module
 */

import { MqttError } from "../../codec/errors.ts";
import { ReasonCode } from "../../codec/reason_code.ts";
import {
  type ChunkIndex,
  type ClientIndex,
  type ItemKind,
  itemMutation,
  type Mutation,
  pendingOf,
  planBatch,
} from "./_kv_batch.ts";
import { keyPart } from "./_kv_keys.ts";
import { LingerPolicy } from "./_kv_linger.ts";
import { logger, readAll } from "./_kv_load.ts";
import { type DirectoryLock, lockDirectory } from "./_kv_lock.ts";
import type {
  LoadedState,
  OutgoingRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "./store.ts";
import { plural } from "../_plural.ts";

export { LOCK_FILE_NAME, StoreLockedError } from "./_kv_lock.ts";

/** The name of the Deno KV file inside the store directory. */
export const KV_FILE_NAME = "kite.kv";

/**
 * Thrown by `KvStore.open()` (so by a `Broker` with `enablePersistence`)
 * when the program runs without Deno KV: `Deno.openKv` exists only with
 * `--unstable-kv`, or `"unstable": ["kv"]` in the deno.json of the program
 * that uses Kite as a library (Kite's own deno.json does not count there).
 *
 * @example
 * ```ts ignore
 * import { KvStore, KvUnavailableError } from "@kite/mqtt/broker";
 * try {
 *   await KvStore.open("./mqtt_data");
 * } catch (e) {
 *   if (e instanceof KvUnavailableError) console.error(e.message);
 * }
 * ```
 */
export class KvUnavailableError extends MqttError {
  /** Creates the error. */
  constructor() {
    super(
      ReasonCode.ServerUnavailable,
      "persistence needs Deno KV, and Deno.openKv is not available: run " +
        'with --unstable-kv or add "unstable": ["kv"] to your deno.json ' +
        "(or turn persistence off: enablePersistence false)",
    );
    this.name = "KvUnavailableError";
  }
}

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (e: unknown) => void;
}

function deferred(): Deferred {
  const d = Promise.withResolvers<void>();
  // Nobody may be waiting: never let a failed batch become unhandled.
  d.promise.catch(() => {});
  return d;
}

const RESOLVED: Promise<void> = Promise.resolve();

/**
 * A `Store` in Deno KV. Open it with `KvStore.open(directory)`.
 *
 * Records passed to `put*` are read when the batch is flushed (at the end of
 * the event-loop turn, or a few ms later while lingering), not copied on the
 * call: treat them as immutable once handed over.
 *
 * @example
 * ```ts
 * import { KvStore } from "@kite/mqtt/broker";
 * const dir = await Deno.makeTempDir();
 * const store = await KvStore.open(dir);
 * store.putRetained("a/b", {
 *   topic: "a/b",
 *   payload: new TextEncoder().encode("hello"),
 *   qos: 1,
 *   retain: true,
 * });
 * await store.commit(); // durable now
 * await store.close();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class KvStore implements Store {
  /** The store directory. */
  readonly path: string;
  #kv: Deno.Kv;
  #lock: DirectoryLock;
  #closed = false;
  /** Pending session, retained and clean-up writes, by slot. */
  #pending = new Map<string, Mutation>();
  /** Clients with pending item writes, and how many there are in all. */
  #dirty = new Set<ClientIndex>();
  #pendingItems = 0;
  #pendingDone: Deferred | undefined;
  #inflight: Deferred | undefined;
  #scheduled = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #linger = new LingerPolicy();
  /** Pending puts of outgoing records not yet on disk (acks may cancel them). */
  #freshPending = 0;
  #closing = false;
  /** Clients whose `lastOut` is set. */
  #lastClients: ClientIndex[] = [];
  #clients = new Map<string, ClientIndex>();
  /** Chunked records by slot. */
  #chunks: ChunkIndex = new Map();
  #atomicCommits = 0;

  private constructor(path: string, kv: Deno.Kv, lock: DirectoryLock) {
    this.path = path;
    this.#kv = kv;
    this.#lock = lock;
  }

  /**
   * Opens (creating it if needed) the store in directory `path`. Throws
   * `StoreLockedError` when another live process (or another `KvStore` of
   * this one) holds the directory; it is free once that process ends;
   * `KvUnavailableError` when the program runs without Deno KV.
   */
  static async open(path: string): Promise<KvStore> {
    if (typeof Deno.openKv !== "function") throw new KvUnavailableError();
    await Deno.mkdir(path, { recursive: true });
    const lock = await lockDirectory(path);
    try {
      const kv = await Deno.openKv(`${path}/${KV_FILE_NAME}`);
      return new KvStore(path, kv, lock);
    } catch (e) {
      lock.close();
      throw e;
    }
  }

  /** Number of `kv.atomic()` operations committed so far (tests, benches). */
  get atomicCommits(): number {
    return this.#atomicCommits;
  }

  // ---------------------------------------------------------------- writes

  #client(clientId: string): ClientIndex {
    let c = this.#clients.get(clientId);
    if (c === undefined) {
      c = {
        id: clientId,
        part: keyPart(clientId),
        out: new Set(),
        q2: new Set(),
        pendOut: undefined,
        pendQ2: undefined,
        lastOut: undefined,
        gone: false,
      };
      this.#clients.set(clientId, c);
    } else c.gone = false;
    return c;
  }

  #checkOpen(): void {
    if (this.#closed) {
      throw new MqttError(
        ReasonCode.ImplementationSpecificError,
        `the store ${this.path} is closed`,
      );
    }
  }

  /** Pending writes, items included. */
  get #pendingCount(): number {
    return this.#pending.size + this.#pendingItems;
  }

  #enqueue(
    slot: string,
    key: Deno.KvKey,
    value: unknown,
    fresh: boolean,
    ackable = false,
  ) {
    this.#checkOpen();
    this.#pending.set(slot, {
      key,
      value,
      fresh,
      ackable,
      slot,
      client: undefined,
      kind: undefined,
      n: 0,
    });
    this.#schedule();
  }

  #schedule(): void {
    if (this.#scheduled || this.#inflight !== undefined) return;
    this.#scheduled = true;
    if (this.#linger.on) {
      this.#linger.start = performance.now();
      this.#timer = setTimeout(this.#flush, 0);
    } else queueMicrotask(this.#flush);
  }

  #cancelTimer(): void {
    if (this.#timer === undefined) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#scheduled = false;
  }

  /** Sets (or, with `undefined`, clears) the retained message of a topic. */
  putRetained(topic: string, message: StoredMessage | undefined): void {
    this.#enqueue(
      "r" + topic,
      ["kite", "retained", keyPart(topic)],
      message,
      false,
    );
  }

  /** Creates or replaces a session's metadata and subscriptions. */
  putSession(record: SessionRecord): void {
    const c = this.#client(record.clientId);
    this.#enqueue(
      "s" + record.clientId,
      ["kite", "session", c.part],
      record,
      false,
    );
  }

  /** Removes a session with its outgoing messages and QoS 2 ids. */
  deleteSession(clientId: string): void {
    const c = this.#client(clientId);
    // Not acks: they say nothing about lingering.
    for (const seq of [...c.out]) this.#deleteItem("out", clientId, seq, false);
    for (const id of [...c.q2]) this.#deleteItem("q2", clientId, id, false);
    this.#enqueue(
      "s" + clientId,
      ["kite", "session", c.part],
      undefined,
      false,
    );
    // Kept while its item writes are pending, so that a new session of the
    // same client finds them (a put then replaces a pending delete).
    if (c.pendOut === undefined && c.pendQ2 === undefined) {
      this.#clients.delete(clientId);
    } else c.gone = true;
  }

  /** The client's pending item map of `kind`, created if asked. */
  #pendOf(c: ClientIndex, kind: ItemKind): Map<number, Mutation> {
    if (kind === "out") return c.pendOut ??= new Map();
    return c.pendQ2 ??= new Map();
  }

  #setItem(c: ClientIndex, kind: ItemKind, m: Mutation): void {
    this.#checkOpen();
    const pend = this.#pendOf(c, kind);
    const size = pend.size;
    pend.set(m.n, m);
    if (pend.size > size) {
      this.#pendingItems++;
      this.#dirty.add(c);
    }
    this.#schedule();
  }

  #putItem(
    kind: ItemKind,
    clientId: string,
    n: number,
    value: unknown,
    ackable: boolean,
  ): void {
    const c = this.#client(clientId);
    const set = c[kind];
    const prev = pendingOf(c, kind)?.get(n);
    const fresh = prev !== undefined ? prev.fresh : !set.has(n);
    if (prev !== undefined) ackable = prev.ackable;
    else if (fresh && ackable) {
      this.#linger.puts++;
      this.#freshPending++;
    } else ackable = false;
    set.add(n);
    this.#setItem(c, kind, itemMutation(c, kind, n, value, fresh, ackable));
  }

  #deleteItem(
    kind: ItemKind,
    clientId: string,
    n: number,
    isAck = true,
  ): void {
    const c = this.#client(clientId);
    c[kind].delete(n);
    const pend = pendingOf(c, kind);
    const prev = pend?.get(n);
    if (prev !== undefined && prev.fresh) {
      // Written and removed in the same batch: nothing reaches the disk.
      pend!.delete(n);
      this.#pendingItems--;
      if (!prev.ackable) return;
      if (isAck) this.#linger.cancels++;
      if (--this.#freshPending === 0 && this.#timer !== undefined) {
        // The last lingering record was acknowledged: flush now.
        clearTimeout(this.#timer);
        this.#timer = undefined;
        queueMicrotask(this.#flush);
      }
      return;
    }
    if (isAck && c.lastOut?.has(n) === true) this.#linger.late++;
    this.#setItem(c, kind, itemMutation(c, kind, n, undefined, false, false));
  }

  /** Creates or replaces one outgoing message of a session. */
  putOutgoing(clientId: string, record: OutgoingRecord): void {
    // A QoS 2 delivery is not counted: a broker may hold its PUBLISH back
    // until the packet id is durable, so its ack cannot come earlier.
    this.#putItem("out", clientId, record.seq, record, record.qos < 2);
  }

  /** Removes one outgoing message of a session. */
  deleteOutgoing(clientId: string, seq: number): void {
    this.#deleteItem("out", clientId, seq);
  }

  /** Records a QoS 2 packet id received from a client (PUBREC sent). */
  putIncomingQos2(clientId: string, packetId: number): void {
    // Not counted either: PUBREL can only follow the PUBREC after the commit.
    this.#putItem("q2", clientId, packetId, true, false);
  }

  /** Forgets a QoS 2 packet id (PUBREL received). */
  deleteIncomingQos2(clientId: string, packetId: number): void {
    this.#deleteItem("q2", clientId, packetId);
  }

  /** Resolves when every mutation enqueued before this call is durable. */
  commit(): Promise<void> {
    if (this.#pendingCount > 0) {
      this.#pendingDone ??= deferred();
      return this.#pendingDone.promise;
    }
    return this.#inflight?.promise ?? RESOLVED;
  }

  #flush = async (): Promise<void> => {
    this.#scheduled = false;
    this.#timer = undefined;
    if (this.#inflight !== undefined) return;
    if (
      this.#linger.on && this.#freshPending > 0 && !this.#closing &&
      this.#linger.mayWait(performance.now())
    ) {
      // Records wait for their acks: give them another timer tick.
      this.#scheduled = true;
      this.#timer = setTimeout(this.#flush, 0);
      return;
    }
    this.#linger.decide();
    if (this.#pendingCount === 0) {
      // Everything enqueued cancelled out (put + delete of a new record):
      // whoever waits for it is served.
      const waiting = this.#pendingDone;
      this.#pendingDone = undefined;
      waiting?.resolve();
      return;
    }
    const batch = this.#takeBatch();
    const size = batch.length;
    const done = this.#pendingDone ?? deferred();
    this.#pendingDone = undefined;
    this.#inflight = done;
    const started = performance.now();
    try {
      const ops = planBatch(this.#kv, batch, this.#chunks);
      for (const op of ops) {
        const result = await op.commit();
        this.#atomicCommits++;
        if (!result.ok) throw new Error("kv.atomic() without checks failed");
      }
      this.#linger.wrote(performance.now() - started);
      done.resolve();
    } catch (e) {
      logger.error(
        `Writing {count} ${plural(size, "mutation")} to {path} failed: {error}`,
        { count: size, path: this.path, error: e },
      );
      done.reject(
        new MqttError(
          ReasonCode.ImplementationSpecificError,
          `writing to the store ${this.path} failed`,
          { cause: e },
        ),
      );
    } finally {
      this.#inflight = undefined;
    }
    if (this.#pendingCount > 0 || this.#pendingDone !== undefined) {
      this.#schedule();
    }
  };

  /**
   * Takes every pending write for one flush: session, retained and clean-up
   * records first, then items (a crash between two atomic operations of a
   * large batch leaves items without a session at worst, which `load()`
   * removes). Notes the ackable records it writes (`lastOut`).
   */
  #takeBatch(): Mutation[] {
    const batch = [...this.#pending.values()];
    this.#pending = new Map();
    this.#freshPending = 0;
    this.#pendingItems = 0;
    for (const c of this.#lastClients) c.lastOut = undefined;
    this.#lastClients = [];
    for (const c of this.#dirty) {
      for (const pend of [c.pendOut, c.pendQ2]) {
        if (pend === undefined) continue;
        for (const m of pend.values()) {
          batch.push(m);
          if (m.ackable && m.value !== undefined) {
            if (c.lastOut === undefined) {
              c.lastOut = new Set();
              this.#lastClients.push(c);
            }
            c.lastOut.add(m.n);
          }
        }
      }
      c.pendOut = c.pendQ2 = undefined;
      if (c.gone && c.out.size === 0 && c.q2.size === 0) {
        if (this.#clients.get(c.id) === c) this.#clients.delete(c.id);
      }
    }
    this.#dirty.clear();
    return batch;
  }

  // ----------------------------------------------------------------- reads

  /**
   * Reads everything back. A record that is unreadable (wrong shape, missing
   * chunk, key not matching its content) is logged with its key and skipped;
   * it stays in the file, and so do the outgoing messages and QoS 2 ids of
   * an unreadable session. Chunks no record refers to, and outgoing messages
   * or QoS 2 ids of clients without any session record, are removed.
   */
  async load(): Promise<LoadedState> {
    await this.commit();
    const { state, orphans } = await readAll(this.#kv, this.#chunks);
    for (const s of state.sessions) {
      const c = this.#client(s.record.clientId);
      for (const o of s.outgoing) c.out.add(o.seq);
      for (const id of s.incomingQos2) c.q2.add(id);
    }
    if (orphans.length > 0) {
      logger.debug("Removing {count} orphaned records from {path}", {
        count: orphans.length,
        path: this.path,
      });
      for (let i = 0; i < orphans.length; i++) {
        const key = orphans[i] as Deno.KvKey;
        this.#enqueue("x" + i + JSON.stringify(key), key, undefined, false);
      }
      await this.commit();
    }
    return state;
  }

  /** Commits what is pending, closes the KV handle and releases the lock. */
  async close(): Promise<void> {
    if (this.#closed) return;
    let error: unknown;
    this.#closing = true;
    while (
      this.#pendingCount > 0 || this.#inflight !== undefined ||
      this.#pendingDone !== undefined
    ) {
      this.#cancelTimer();
      const p = this.commit();
      if (this.#inflight === undefined) void this.#flush();
      try {
        await p;
      } catch (e) {
        error ??= e;
      }
    }
    this.#cancelTimer();
    this.#closed = true;
    this.#kv.close();
    this.#lock.close(); // releases the lock
    if (error !== undefined) throw error;
  }
}
