/**
 * The pending writes of `KvStore` and how a flush turns them into
 * `kv.atomic()` operations within Deno KV's limits (1000 mutations, 80 KiB
 * of keys, 800 KiB in total per operation, 64 KiB per value).
 *
 * A record whose serialized size could exceed the value limit is encoded to
 * bytes and split into 64 KiB chunks under a fresh generation id; its key
 * then holds a small header naming the generation. Chunks are added before
 * the header (in the same or an earlier operation), so a crash never leaves a
 * header without its chunks; the old chunks of a replaced or deleted record
 * are removed after it.
 *
 * @module
 */

import { keySize } from "./_kv_keys.ts";
import { type ChunkHeader, prepare, serialize } from "./_kv_records.ts";

/** Deno KV limits, measured with Deno 2.9 (see the tests). */
const MAX_MUTATIONS = 1000;
const MAX_KEY_BYTES_PER_OP = 81920 - 1024;
const MAX_TOTAL_BYTES_PER_OP = 819200 - 8192;
const MAX_VALUE_BYTES = 65536;
/** Records estimated above this are chunked (the estimate is an upper bound). */
const CHUNK_THRESHOLD = 64000;

/** The kind of a session's item: an outgoing message or a QoS 2 id. */
export type ItemKind = "out" | "q2";

/**
 * One pending write. A session's outgoing message or QoS 2 id (an "item")
 * is pending in its client's map by number, and gets its KV key and slot
 * string only if it reaches a flush: most are cancelled by their ack first.
 */
export interface Mutation {
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

/** What the store knows of one client's items. */
export interface ClientIndex {
  id: string;
  /** The client id as a key part (`keyPart`). */
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

/** Chunked records by slot: generation and chunk count. */
export type ChunkIndex = Map<string, { generation: string; count: number }>;

/** A pending write of an item (`value` undefined: a delete). */
export function itemMutation(
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
export function pendingOf(
  c: ClientIndex,
  kind: ItemKind,
): Map<number, Mutation> | undefined {
  return kind === "out" ? c.pendOut : c.pendQ2;
}

/** The KV key of a mutation (built once for items). */
export function keyOf(m: Mutation): Deno.KvKey {
  return m.key ??= ["kite", m.kind!, m.client!.part, m.n];
}

/** The slot (record identity) of a mutation (built once for items). */
export function slotOf(m: Mutation): string {
  return m.slot ??= m.kind! + m.n + "|" + m.client!.id;
}

/**
 * Turns a batch into atomic operations of `kv` within Deno KV's limits,
 * chunking large records. Updates `chunks` to what the operations write.
 */
export function planBatch(
  kv: Deno.Kv,
  batch: Iterable<Mutation>,
  chunks: ChunkIndex,
): Deno.AtomicOperation[] {
  const ops: Deno.AtomicOperation[] = [];
  let op = kv.atomic();
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
      op = kv.atomic();
      count = keyBytes = totalBytes = 0;
    }
    count++;
    keyBytes += kb;
    totalBytes += kb + valueBytes;
    if (value === undefined) op.delete(key);
    else op.set(key, value);
  };
  const cache = new Map<object, [unknown, number]>();
  const anyChunks = chunks.size > 0;
  for (const m of batch) {
    const old = anyChunks ? chunks.get(slotOf(m)) : undefined;
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
        chunks.set(slotOf(m), { generation, count });
        chunked = true;
      }
    } else {
      add(keyOf(m), undefined, 0);
    }
    if (old !== undefined) {
      for (let i = 0; i < old.count; i++) {
        add(["kite", "chunk", old.generation, i], undefined, 0);
      }
      if (!chunked) chunks.delete(slotOf(m));
    }
  }
  if (count > 0) ops.push(op);
  return ops;
}
