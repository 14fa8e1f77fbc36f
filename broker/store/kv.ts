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
 * its SHA-256 digest (a `Uint8Array` key part, so it can never collide with a
 * string part); the real value is always inside the record and is checked
 * against the key on load. A record whose serialized size could exceed Deno
 * KV's 64 KiB value limit is encoded to bytes and split into 64 KiB chunks
 * under a fresh generation id; its key then holds a small header naming the
 * generation. Chunks are written before (or with) the header, so a crash never
 * leaves a header without its chunks; chunks without a header are removed by
 * the next `load()`.
 *
 * Group commit: `put*`/`delete*` only record the mutation in a map keyed by
 * the record (a later mutation of the same record replaces the earlier one;
 * a put followed by a delete of a record that was never written costs
 * nothing). The first mutation after a quiet period schedules a flush as a
 * microtask, so it runs at the end of the current event-loop task with every
 * mutation that task made (a `setTimeout(0)` would cost about 2 ms here);
 * while a flush is in flight new mutations accumulate for the next one, which
 * starts as soon as it completes. Under load, batches grow by themselves.
 *
 * Lingering: when QoS 0/1 deliveries are acknowledged (deleted) right after
 * they are stored, as with an online persistent subscriber, the store waits
 * before a flush, one timer tick at a time, for at most 20 ms or twice the
 * recent write time (up to 100 ms), and flushes at once when the last
 * waiting record is deleted. The put and the delete then cancel out and the
 * commits that gate the publishers' acks write nothing. It starts lingering
 * when, since the previous flush, at least 16 records and half of the new
 * ones were deleted while pending or just after being written, and stays
 * while acks keep cancelling puts; a lingering window that did not pay turns
 * it off for 2, 4, 8, ... flushes.
 *
 * A flush writes its mutations in `kv.atomic()` operations kept within Deno
 * KV's limits (1000 mutations, 80 KiB of keys, 800 KiB in total per
 * operation), one after another.
 *
 * Only one process may use a directory at a time: `open()` takes an exclusive
 * `flock` on a lock file holding the pid and refuses (with `StoreLockedError`)
 * while another process (or another `KvStore` of this one) holds it. Deno KV
 * alone would let two processes share the file.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MqttError } from "../../codec/errors.ts";
import { ReasonCode } from "../../codec/reason_code.ts";
import { sha256 } from "./_sha256.ts";
import type {
  LoadedSession,
  LoadedState,
  OutgoingRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "./store.ts";

const logger = getLogger(["kite", "store"]);

/** Deno KV limits, measured with Deno 2.9 (see the tests). */
const MAX_MUTATIONS = 1000;
const MAX_KEY_BYTES_PER_OP = 81920 - 1024;
const MAX_TOTAL_BYTES_PER_OP = 819200 - 8192;
const MAX_VALUE_BYTES = 65536;
/** Records estimated above this are chunked (the estimate is an upper bound). */
const CHUNK_THRESHOLD = 64000;
/**
 * A lingering flush waits for acks at most this long, or twice as long as
 * recent writes took (waiting as long as a write would take costs nothing),
 * but never more than `LINGER_CAP_MS`.
 */
const LINGER_MAX_MS = 20;
const LINGER_CAP_MS = 100;
/** Acks per flush window that turn lingering on. */
const LINGER_MIN_ACKS = 16;
/** Key parts (topic, client id) longer than this in UTF-8 are hashed. */
const MAX_PLAIN_PART_BYTES = 256;

/** The name of the Deno KV file inside the store directory. */
export const KV_FILE_NAME = "kite.kv";
/** The name of the lock file inside the store directory. */
export const LOCK_FILE_NAME = "kite.lock";

/**
 * Thrown by `KvStore.open()` when another live process (or this one) holds
 * the store directory.
 *
 * @example
 * ```ts ignore
 * import { KvStore, StoreLockedError } from "@kite/mqtt/broker";
 * try {
 *   await KvStore.open("./mqtt_data");
 * } catch (e) {
 *   if (e instanceof StoreLockedError) console.error(e.path, e.pid);
 * }
 * ```
 */
export class StoreLockedError extends MqttError {
  /** The store directory. */
  readonly path: string;
  /** The pid of the process holding it. */
  readonly pid: number;

  /** Creates the error for a directory held by `pid`. */
  constructor(path: string, pid: number) {
    super(
      ReasonCode.ServerUnavailable,
      `the store directory ${path} is in use by process ${pid}` +
        (pid === Deno.pid ? " (this process)" : "") +
        `; stop that broker, or remove ${path}/${LOCK_FILE_NAME} if it is gone`,
    );
    this.name = "StoreLockedError";
    this.path = path;
    this.pid = pid;
  }
}

/** The header kept under a record's key when the record is chunked. */
interface ChunkHeader {
  kiteChunks: number;
  generation: string;
  bytes: number;
}

type ItemKind = "out" | "q2";

/**
 * One pending write. A session's outgoing message or QoS 2 id (an "item")
 * is pending in its client's map by number, and gets its KV key and slot
 * string only if it reaches a flush: most are cancelled by their ack first.
 */
interface Mutation {
  /** Built on first need for items (`keyOf`). */
  key: Deno.KvKey | undefined;
  /** `undefined` deletes. */
  value: unknown;
  /** The record was not in the store when this batch began. */
  fresh: boolean;
  /** A fresh put that an ack may cancel (counted for lingering). */
  ackable: boolean;
  /** Identity of the record, for the chunk index (`slotOf` for items). */
  slot: string | undefined;
  /** For items: the client, the kind and the number. */
  client: ClientIndex | undefined;
  kind: ItemKind | undefined;
  n: number;
}

/** A pending write of an item (`value` undefined: a delete). */
function itemMutation(
  client: ClientIndex,
  kind: ItemKind,
  n: number,
  value: unknown,
  fresh: boolean,
  ackable: boolean,
): Mutation {
  return {
    key: undefined,
    value,
    fresh,
    ackable,
    slot: undefined,
    client,
    kind,
    n,
  };
}

/** The client's pending writes of `kind`, if any. */
function pendingOf(
  c: ClientIndex,
  kind: ItemKind,
): Map<number, Mutation> | undefined {
  return kind === "out" ? c.pendOut : c.pendQ2;
}

function keyOf(m: Mutation): Deno.KvKey {
  return m.key ??= ["kite", m.kind!, m.client!.part, m.n];
}

function slotOf(m: Mutation): string {
  return m.slot ??= m.kind! + m.n + "|" + m.client!.id;
}

interface ClientIndex {
  id: string;
  part: string | Uint8Array;
  /** Outgoing seqs written or being written. */
  out: Set<number>;
  /** Incoming QoS 2 ids written or being written. */
  q2: Set<number>;
  /** Pending item writes, by number. */
  pendOut: Map<number, Mutation> | undefined;
  pendQ2: Map<number, Mutation> | undefined;
  /** Ackable outgoing records first written by the last flush. */
  lastOut: Set<number> | undefined;
  /** The session was deleted; the index stays while writes are pending. */
  gone: boolean;
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
  #lock: Deno.FsFile;
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
  /** Wait a little before flushing: acks are likely to cancel puts. */
  #linger = false;
  /** New outgoing records put since the last flush began. */
  #windowPuts = 0;
  /** Deletes since then that cancelled a pending put. */
  #windowCancels = 0;
  /** Deletes since then of records first written by the last flush. */
  #windowLate = 0;
  /** Flushes to go before lingering may be tried again. */
  #lingerCooldown = 0;
  /** The next cooldown (doubles after each window that did not pay). */
  #lingerBackoff = 2;
  /** Pending puts of outgoing records not yet on disk (acks may cancel them). */
  #freshPending = 0;
  #lingerStart = 0;
  /** Moving average of how long a flush that wrote something took, in ms. */
  #writeMs = 0;
  #closing = false;
  /** Clients whose `lastOut` is set. */
  #lastClients: ClientIndex[] = [];
  #clients = new Map<string, ClientIndex>();
  /** Chunked records by slot: generation and chunk count. */
  #chunks = new Map<string, { generation: string; count: number }>();
  #atomicCommits = 0;

  private constructor(path: string, kv: Deno.Kv, lock: Deno.FsFile) {
    this.path = path;
    this.#kv = kv;
    this.#lock = lock;
  }

  /**
   * Opens (creating it if needed) the store in directory `path`. Throws
   * `StoreLockedError` when another live process holds the directory.
   */
  static async open(path: string): Promise<KvStore> {
    await Deno.mkdir(path, { recursive: true });
    const lock = await acquireLock(path, `${path}/${LOCK_FILE_NAME}`);
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
    if (this.#linger) {
      this.#lingerStart = performance.now();
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
      this.#windowPuts++;
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
      if (isAck) this.#windowCancels++;
      if (--this.#freshPending === 0 && this.#timer !== undefined) {
        // The last lingering record was acknowledged: flush now.
        clearTimeout(this.#timer);
        this.#timer = undefined;
        queueMicrotask(this.#flush);
      }
      return;
    }
    if (isAck && c.lastOut?.has(n) === true) this.#windowLate++;
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
      this.#linger && this.#freshPending > 0 && !this.#closing &&
      performance.now() - this.#lingerStart <
        Math.min(LINGER_CAP_MS, Math.max(LINGER_MAX_MS, 2 * this.#writeMs))
    ) {
      // Records wait for their acks: give them another timer tick.
      this.#scheduled = true;
      this.#timer = setTimeout(this.#flush, 0);
      return;
    }
    this.#decideLinger();
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
      const ops = this.#plan(batch);
      for (const op of ops) {
        const result = await op.commit();
        this.#atomicCommits++;
        if (!result.ok) throw new Error("kv.atomic() without checks failed");
      }
      this.#writeMs = 0.7 * this.#writeMs +
        0.3 * (performance.now() - started);
      done.resolve();
    } catch (e) {
      logger.error("Writing {count} mutations to {path} failed: {error}", {
        count: size,
        path: this.path,
        error: e,
      });
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

  /**
   * Whether the next flush lingers: when most new outgoing records of this
   * window were acknowledged right after they were stored (an online
   * subscriber), waiting a few ms lets the acks cancel the puts, so nothing
   * is written at all. A lingering window in which acks cancelled too little
   * turns it off for a while (acks that cannot come before the commit).
   */
  #decideLinger(): void {
    const puts = this.#windowPuts;
    const cancels = this.#windowCancels;
    const late = this.#windowLate;
    this.#windowPuts = this.#windowCancels = this.#windowLate = 0;
    const enough = (n: number) => n >= LINGER_MIN_ACKS && n * 2 >= puts;
    if (this.#linger) {
      this.#linger = enough(cancels);
      if (this.#linger) this.#lingerBackoff = 2;
      else {
        // It did not pay: try again later, later each time in a row.
        this.#lingerCooldown = this.#lingerBackoff;
        this.#lingerBackoff = Math.min(this.#lingerBackoff * 2, 256);
      }
    } else if (this.#lingerCooldown > 0) {
      this.#lingerCooldown--;
    } else {
      this.#linger = enough(cancels + late);
    }
  }

  /** Turns a batch into atomic operations within Deno KV's limits. */
  #plan(batch: Iterable<Mutation>): Deno.AtomicOperation[] {
    const ops: Deno.AtomicOperation[] = [];
    let op = this.#kv.atomic();
    let count = 0;
    let keyBytes = 0;
    let totalBytes = 0;
    const add = (key: Deno.KvKey, value: unknown, valueBytes: number) => {
      const kb = keySize(key);
      if (
        count + 1 > MAX_MUTATIONS || keyBytes + kb > MAX_KEY_BYTES_PER_OP ||
        totalBytes + kb + valueBytes > MAX_TOTAL_BYTES_PER_OP
      ) {
        ops.push(op);
        op = this.#kv.atomic();
        count = keyBytes = totalBytes = 0;
      }
      count++;
      keyBytes += kb;
      totalBytes += kb + valueBytes;
      if (value === undefined) op.delete(key);
      else op.set(key, value);
    };
    const cache = new Map<object, [unknown, number]>();
    const anyChunks = this.#chunks.size > 0;
    for (const m of batch) {
      const old = anyChunks ? this.#chunks.get(slotOf(m)) : undefined;
      let chunked = false;
      if (m.value !== undefined) {
        const [value, size] = prepare(m.value, cache);
        if (size <= CHUNK_THRESHOLD) {
          add(keyOf(m), value, size);
        } else {
          const bytes = serialize(value);
          const generation = crypto.randomUUID();
          const count = Math.ceil(bytes.byteLength / MAX_VALUE_BYTES);
          for (let i = 0; i < count; i++) {
            const part = bytes.subarray(
              i * MAX_VALUE_BYTES,
              (i + 1) * MAX_VALUE_BYTES,
            );
            add(["kite", "chunk", generation, i], part, part.byteLength);
          }
          const header: ChunkHeader = {
            kiteChunks: count,
            generation,
            bytes: bytes.byteLength,
          };
          add(keyOf(m), header, 128);
          this.#chunks.set(slotOf(m), { generation, count });
          chunked = true;
        }
      } else {
        add(keyOf(m), undefined, 0);
      }
      if (old !== undefined) {
        for (let i = 0; i < old.count; i++) {
          add(["kite", "chunk", old.generation, i], undefined, 0);
        }
        if (!chunked) this.#chunks.delete(slotOf(m));
      }
    }
    if (count > 0) ops.push(op);
    return ops;
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
    const kv = this.#kv;
    // Chunks, by generation.
    const chunks = new Map<string, Map<number, Uint8Array>>();
    for await (const e of kv.list({ prefix: ["kite", "chunk"] })) {
      const [, , generation, index] = e.key;
      if (
        typeof generation !== "string" || typeof index !== "number" ||
        !(e.value instanceof Uint8Array)
      ) {
        skip(e.key, "not a chunk");
        continue;
      }
      let g = chunks.get(generation);
      if (g === undefined) chunks.set(generation, g = new Map());
      g.set(index, e.value);
    }
    const used = new Set<string>();
    /** Resolves a chunk header into the record it stands for. */
    const read = (value: unknown): unknown => {
      if (!isChunkHeader(value)) return value;
      const g = chunks.get(value.generation);
      used.add(value.generation);
      const bytes = new Uint8Array(value.bytes);
      let offset = 0;
      for (let i = 0; i < value.kiteChunks; i++) {
        const c = g?.get(i);
        if (c === undefined || offset + c.byteLength > bytes.byteLength) {
          throw new Error(`chunk ${i} of ${value.kiteChunks} missing or long`);
        }
        bytes.set(c, offset);
        offset += c.byteLength;
      }
      if (offset !== value.bytes) throw new Error("chunks too short");
      return deserialize(bytes);
    };
    const remember = (slot: string, value: unknown) => {
      if (isChunkHeader(value)) {
        this.#chunks.set(slot, {
          generation: value.generation,
          count: value.kiteChunks,
        });
      }
    };

    const retained: StoredMessage[] = [];
    for await (const e of kv.list({ prefix: ["kite", "retained"] })) {
      try {
        const part = e.key[2];
        const v = read(e.value);
        if (!isStoredMessage(v)) throw new Error("not a retained message");
        if (!samePart(part, keyPart(v.topic))) {
          throw new Error(`key does not match topic ${v.topic}`);
        }
        remember("r" + v.topic, e.value);
        retained.push(v);
      } catch (err) {
        skip(e.key, err);
      }
    }

    const sessions = new Map<string, LoadedSession>();
    /** Parts of session keys whose record is unreadable: kept, not orphans. */
    const unreadable = new Set<string>();
    for await (const e of kv.list({ prefix: ["kite", "session"] })) {
      try {
        const part = e.key[2];
        const v = read(e.value);
        if (!isSessionRecord(v)) throw new Error("not a session record");
        if (!samePart(part, keyPart(v.clientId))) {
          throw new Error(`key does not match client id ${v.clientId}`);
        }
        remember("s" + v.clientId, e.value);
        sessions.set(partId(part as Deno.KvKeyPart), {
          record: v,
          outgoing: [],
          incomingQos2: [],
        });
        this.#client(v.clientId);
      } catch (err) {
        skip(e.key, err);
        const part = e.key[2];
        if (part !== undefined) unreadable.add(partId(part));
      }
    }
    /** Whether a record belongs to an unreadable session (then kept). */
    const keep = (part: Deno.KvKeyPart | undefined, value: unknown) => {
      if (part === undefined || !unreadable.has(partId(part))) return false;
      if (isChunkHeader(value)) used.add(value.generation);
      return true;
    };

    const orphans: Deno.KvKey[] = [];
    for await (const e of kv.list({ prefix: ["kite", "out"] })) {
      try {
        const [, , part, seq] = e.key;
        const s = part === undefined ? undefined : sessions.get(partId(part));
        if (s === undefined) {
          if (!keep(part, e.value)) orphans.push(e.key);
          continue;
        }
        const cid = s.record.clientId;
        const v = read(e.value);
        if (!isOutgoingRecord(v) || v.seq !== seq) {
          throw new Error("not an outgoing record");
        }
        remember("out" + v.seq + "|" + cid, e.value);
        s.outgoing.push(v);
        this.#client(cid).out.add(v.seq);
      } catch (err) {
        skip(e.key, err);
      }
    }
    for await (const e of kv.list({ prefix: ["kite", "q2"] })) {
      const [, , part, id] = e.key;
      const s = part === undefined ? undefined : sessions.get(partId(part));
      if (s === undefined) {
        if (!keep(part, e.value)) orphans.push(e.key);
        continue;
      }
      if (typeof id !== "number" || !Number.isInteger(id) || id < 1) {
        skip(e.key, "not a packet id");
        continue;
      }
      s.incomingQos2.push(id);
      this.#client(s.record.clientId).q2.add(id);
    }

    for (const g of chunks.keys()) {
      if (used.has(g)) continue;
      const count = chunks.get(g)?.size ?? 0;
      for (let i = 0; i < count; i++) orphans.push(["kite", "chunk", g, i]);
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

    const list = [...sessions.values()];
    for (const s of list) {
      s.outgoing.sort((a, b) => a.seq - b.seq);
      s.incomingQos2.sort((a, b) => a - b);
    }
    return { retained, sessions: list };
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

// ------------------------------------------------------------------ helpers

function skip(key: Deno.KvKey, reason: unknown): void {
  logger.warn("Skipping unreadable record {key}: {reason}", {
    key,
    reason: reason instanceof Error ? reason.message : String(reason),
  });
}

/**
 * Takes an exclusive advisory lock (`flock`) on `<path>/kite.lock` and writes
 * the pid into it. The kernel drops the lock when the process dies, so a
 * crashed broker never leaves a stale lock. The file is never removed: a
 * removed-and-recreated lock file could be held by two processes at once.
 */
async function acquireLock(
  path: string,
  lockPath: string,
): Promise<Deno.FsFile> {
  const file = await Deno.open(lockPath, {
    read: true,
    write: true,
    create: true,
  });
  try {
    if (!await file.tryLock(true)) {
      let text = "";
      try {
        text = await Deno.readTextFile(lockPath);
      } catch {
        // Report what we can.
      }
      throw new StoreLockedError(path, Number.parseInt(text, 10) || 0);
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    return file;
  } catch (e) {
    file.close();
    throw e;
  }
}

const encoder = new TextEncoder();

/** The key part for a topic or client id: itself, or its SHA-256 if long. */
function keyPart(s: string): string | Uint8Array {
  if (s.length <= MAX_PLAIN_PART_BYTES / 3) return s;
  const bytes = encoder.encode(s);
  return bytes.byteLength <= MAX_PLAIN_PART_BYTES ? s : sha256(bytes);
}

function samePart(a: Deno.KvKeyPart | undefined, b: string | Uint8Array) {
  return a !== undefined && partId(a) === partId(b);
}

/** A string identity of a key part, for maps. */
function partId(part: Deno.KvKeyPart): string {
  if (typeof part === "string") return "s" + part;
  if (part instanceof Uint8Array) {
    let hex = "h";
    for (const b of part) hex += b.toString(16).padStart(2, "0");
    return hex;
  }
  return "?" + String(part);
}

/** An upper bound of the encoded size of a key. */
function keySize(key: Deno.KvKey): number {
  let n = 0;
  for (const p of key) {
    if (typeof p === "string") {
      n += 2;
      for (let i = 0; i < p.length; i++) {
        const c = p.charCodeAt(i);
        n += c === 0 ? 2 : c < 0x80 ? 1 : c < 0x800 ? 2 : 3;
      }
    } else if (p instanceof Uint8Array) {
      n += 2 + p.byteLength;
      for (const b of p) if (b === 0) n++;
    } else {
      n += 10;
    }
  }
  return n;
}

/**
 * Walks a record once: returns it with every `Uint8Array` that is a view into
 * a larger buffer copied (V8 serializes a view's whole buffer), and an upper
 * bound of its serialized size.
 */
function prepare(
  value: unknown,
  cache: Map<object, [unknown, number]>,
): [unknown, number] {
  let size = 8;
  const walk = (v: unknown): unknown => {
    switch (typeof v) {
      case "string":
        size += 2 * v.length + 6;
        return v;
      case "object": {
        if (v === null) {
          size += 1;
          return v;
        }
        // A message shared by many records (fan-out) is walked once.
        const hit = cache.get(v);
        if (hit !== undefined) {
          size += hit[1];
          return hit[0];
        }
        const start = size;
        const w = walkObject(v);
        cache.set(v, [w, size - start]);
        return w;
      }
      default:
        size += 10;
        return v;
    }
  };
  const walkObject = (v: object): unknown => {
    if (v instanceof Uint8Array) {
      size += v.byteLength + 32;
      return v.byteOffset === 0 && v.byteLength === v.buffer.byteLength
        ? v
        : v.slice();
    }
    size += 12;
    if (Array.isArray(v)) {
      let out: unknown[] | undefined;
      for (let i = 0; i < v.length; i++) {
        const x: unknown = v[i];
        const w = walk(x);
        if (w !== x) (out ??= v.slice())[i] = w;
      }
      return out ?? v;
    }
    const o = v as Record<string, unknown>;
    let out: Record<string, unknown> | undefined;
    for (const k in o) {
      size += 2 * k.length + 6;
      const x = o[k];
      const w = walk(x);
      if (w !== x) (out ??= { ...o })[k] = w;
    }
    return out ?? v;
  };
  return [walk(value), size];
}

const BLOB = "\u0000b";

/** Encodes a record (JSON plus binary blobs) into bytes, for chunking. */
function serialize(value: unknown): Uint8Array {
  const blobs: Uint8Array[] = [];
  const json = encoder.encode(JSON.stringify(value, (_k, v: unknown) => {
    if (v instanceof Uint8Array) {
      blobs.push(v);
      return { [BLOB]: blobs.length - 1 };
    }
    return v;
  }));
  let size = 4 + json.byteLength;
  for (const b of blobs) size += 4 + b.byteLength;
  const out = new Uint8Array(size);
  const view = new DataView(out.buffer);
  view.setUint32(0, json.byteLength);
  out.set(json, 4);
  let offset = 4 + json.byteLength;
  for (const b of blobs) {
    view.setUint32(offset, b.byteLength);
    out.set(b, offset + 4);
    offset += 4 + b.byteLength;
  }
  return out;
}

/** Decodes what `serialize` wrote. Throws on malformed input. */
function deserialize(bytes: Uint8Array): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLength = view.getUint32(0);
  const json = new TextDecoder().decode(bytes.subarray(4, 4 + jsonLength));
  const blobs: Uint8Array[] = [];
  let offset = 4 + jsonLength;
  while (offset < bytes.byteLength) {
    const n = view.getUint32(offset);
    if (offset + 4 + n > bytes.byteLength) throw new Error("truncated blob");
    blobs.push(bytes.slice(offset + 4, offset + 4 + n));
    offset += 4 + n;
  }
  return JSON.parse(json, (_k, v: unknown) => {
    if (typeof v === "object" && v !== null && BLOB in v) {
      const b = blobs[(v as Record<string, number>)[BLOB] as number];
      if (b === undefined) throw new Error("missing blob");
      return b;
    }
    return v;
  });
}

// ------------------------------------------------------------ shape checks

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function isQos(v: unknown): boolean {
  return v === 0 || v === 1 || v === 2;
}

function isChunkHeader(v: unknown): v is ChunkHeader {
  return isObject(v) && typeof v.kiteChunks === "number" &&
    typeof v.generation === "string" && typeof v.bytes === "number";
}

function isStoredMessage(v: unknown): v is StoredMessage {
  return isObject(v) && typeof v.topic === "string" &&
    v.payload instanceof Uint8Array && isQos(v.qos) &&
    typeof v.retain === "boolean" &&
    (v.properties === undefined || isObject(v.properties)) &&
    (v.expiresAt === undefined || typeof v.expiresAt === "number");
}

function isSessionRecord(v: unknown): v is SessionRecord {
  return isObject(v) && typeof v.clientId === "string" &&
    (v.protocolVersion === 3 || v.protocolVersion === 4 ||
      v.protocolVersion === 5) &&
    typeof v.expiryInterval === "number" &&
    Array.isArray(v.subscriptions) &&
    v.subscriptions.every((s) =>
      isObject(s) && typeof s.filter === "string" && isQos(s.qos)
    ) &&
    (v.will === undefined || isStoredMessage(v.will));
}

function isOutgoingRecord(v: unknown): v is OutgoingRecord {
  return isObject(v) && typeof v.seq === "number" &&
    (v.state === "queued" || v.state === "sent" || v.state === "pubrec") &&
    isQos(v.qos) && isStoredMessage(v.message);
}
