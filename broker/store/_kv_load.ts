/**
 * Reading `KvStore`'s Deno KV file back at start-up: every retained message
 * and session with its outgoing messages and QoS 2 ids, chunked records
 * reassembled. A record that is unreadable (wrong shape, missing chunk, key
 * not matching its content) is logged with its key and skipped; it stays in
 * the file, and so do the outgoing messages and QoS 2 ids of an unreadable
 * session. Chunks no record refers to, and outgoing messages or QoS 2 ids of
 * clients without any session record, are reported as orphans to remove.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { ChunkIndex } from "./_kv_batch.ts";
import { keyPart, partId, samePart } from "./_kv_keys.ts";
import {
  isChunkHeader,
  isOutgoingRecord,
  isSessionRecord,
  isStoredMessage,
  unchunk,
} from "./_kv_records.ts";
import type {
  LoadedSession,
  LoadedState,
  SessionRecord,
  StoredMessage,
} from "./store.ts";

/** The store's logger (`KvStore` logs under the same category). */
export const logger = getLogger(["kite", "store"]);

/** What `readAll` found. */
export interface ReadResult {
  /** The state, sessions' outgoing messages and QoS 2 ids sorted. */
  state: LoadedState;
  /** Keys of records to remove: nothing refers to them. */
  orphans: Deno.KvKey[];
}

/** A record kept under a key part made of one of its fields. */
interface Keyed<T> {
  is: (v: unknown) => v is T;
  /** What it is, and the name of the field, for messages. */
  what: string;
  field: string;
  /** The field whose `keyPart` is the key's third part. */
  name: (v: T) => string;
  /** The slot prefix of the record (see `KvStore`). */
  slot: string;
}

const RETAINED: Keyed<StoredMessage> = {
  is: isStoredMessage,
  what: "retained message",
  field: "topic",
  name: (m) => m.topic,
  slot: "r",
};

const SESSION: Keyed<SessionRecord> = {
  is: isSessionRecord,
  what: "session record",
  field: "client id",
  name: (s) => s.clientId,
  slot: "s",
};

function skip(key: Deno.KvKey, reason: unknown): void {
  logger.warn("Skipping unreadable record {key}: {reason}", {
    key,
    reason: reason instanceof Error ? reason.message : String(reason),
  });
}

/**
 * Reads every record of the store in `kv`, and fills `chunkIndex` with the
 * chunked records found (by slot).
 */
export async function readAll(
  kv: Deno.Kv,
  chunkIndex: ChunkIndex,
): Promise<ReadResult> {
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
    used.add(value.generation);
    return unchunk(value, chunks.get(value.generation));
  };
  const remember = (slot: string, value: unknown) => {
    if (isChunkHeader(value)) {
      chunkIndex.set(slot, {
        generation: value.generation,
        count: value.kiteChunks,
      });
    }
  };
  /**
   * Reads a retained message or session record as `kind` describes it, or
   * logs why it cannot and returns `undefined`.
   */
  const readKeyed = <T>(e: Deno.KvEntry<unknown>, kind: Keyed<T>) => {
    try {
      const v = read(e.value);
      if (!kind.is(v)) throw new Error(`not a ${kind.what}`);
      const name = kind.name(v);
      if (!samePart(e.key[2], keyPart(name))) {
        throw new Error(`key does not match ${kind.field} ${name}`);
      }
      remember(kind.slot + name, e.value);
      return v;
    } catch (err) {
      skip(e.key, err);
      return undefined;
    }
  };

  const retained: StoredMessage[] = [];
  for await (const e of kv.list({ prefix: ["kite", "retained"] })) {
    const v = readKeyed(e, RETAINED);
    if (v !== undefined) retained.push(v);
  }

  const sessions = new Map<string, LoadedSession>();
  /** Parts of session keys whose record is unreadable: kept, not orphans. */
  const unreadable = new Set<string>();
  for await (const e of kv.list({ prefix: ["kite", "session"] })) {
    const part = e.key[2];
    const v = readKeyed(e, SESSION);
    if (v !== undefined) {
      sessions.set(partId(part as Deno.KvKeyPart), {
        record: v,
        outgoing: [],
        incomingQos2: [],
      });
    } else if (part !== undefined) unreadable.add(partId(part));
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
      const v = read(e.value);
      if (!isOutgoingRecord(v) || v.seq !== seq) {
        throw new Error("not an outgoing record");
      }
      remember("out" + v.seq + "|" + s.record.clientId, e.value);
      s.outgoing.push(v);
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
  }

  for (const g of chunks.keys()) {
    if (used.has(g)) continue;
    const count = chunks.get(g)?.size ?? 0;
    for (let i = 0; i < count; i++) orphans.push(["kite", "chunk", g, i]);
  }

  const list = [...sessions.values()];
  for (const s of list) {
    s.outgoing.sort((a, b) => a.seq - b.seq);
    s.incomingQos2.sort((a, b) => a - b);
  }
  return { state: { retained, sessions: list }, orphans };
}
