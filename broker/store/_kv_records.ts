/**
 * Records of `KvStore` as values: preparing a record for Deno KV (copying
 * views of larger buffers, bounding its serialized size), encoding a record
 * too large for one 64 KiB value into bytes to be split into chunks and back,
 * and checking the shape of what is read.
 *
 * A chunked record's key holds a `ChunkHeader` naming its generation; the
 * chunks live under `["kite", "chunk", generation, index]`.
 *
 * @module
 */

import type { OutgoingRecord, SessionRecord, StoredMessage } from "./store.ts";

/** The header kept under a record's key when the record is chunked. */
export interface ChunkHeader {
  /** How many chunks. */
  kiteChunks: number;
  /** The generation id the chunks are keyed by. */
  generation: string;
  /** The length of the serialized record. */
  bytes: number;
}

/**
 * Walks a record once: returns it with every `Uint8Array` that is a view into
 * a larger buffer copied (V8 serializes a view's whole buffer), and an upper
 * bound of its serialized size. `cache` holds the objects already walked in
 * this batch: a message shared by many records (fan-out) is walked once.
 */
export function prepare(
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
const encoder = new TextEncoder();

/** Encodes a record (JSON plus binary blobs) into bytes, for chunking. */
export function serialize(value: unknown): Uint8Array {
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
export function deserialize(bytes: Uint8Array): unknown {
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

/**
 * The record a chunk header stands for, from the chunks of its generation
 * (by index). Throws when a chunk is missing or the chunks do not add up.
 */
export function unchunk(
  header: ChunkHeader,
  chunks: ReadonlyMap<number, Uint8Array> | undefined,
): unknown {
  const bytes = new Uint8Array(header.bytes);
  let offset = 0;
  for (let i = 0; i < header.kiteChunks; i++) {
    const c = chunks?.get(i);
    if (c === undefined || offset + c.byteLength > bytes.byteLength) {
      throw new Error(`chunk ${i} of ${header.kiteChunks} missing or long`);
    }
    bytes.set(c, offset);
    offset += c.byteLength;
  }
  if (offset !== header.bytes) throw new Error("chunks too short");
  return deserialize(bytes);
}

// ------------------------------------------------------------ shape checks

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null;
}

function isQos(v: unknown): boolean {
  return v === 0 || v === 1 || v === 2;
}

/** Whether a value read is a chunk header. */
export function isChunkHeader(v: unknown): v is ChunkHeader {
  return isObject(v) && typeof v.kiteChunks === "number" &&
    typeof v.generation === "string" && typeof v.bytes === "number";
}

/** Whether a value read has the shape of a `StoredMessage`. */
export function isStoredMessage(v: unknown): v is StoredMessage {
  return isObject(v) && typeof v.topic === "string" &&
    v.payload instanceof Uint8Array && isQos(v.qos) &&
    typeof v.retain === "boolean" &&
    (v.properties === undefined || isObject(v.properties)) &&
    (v.expiresAt === undefined || typeof v.expiresAt === "number");
}

/** Whether a value read has the shape of a `SessionRecord`. */
export function isSessionRecord(v: unknown): v is SessionRecord {
  return isObject(v) && typeof v.clientId === "string" &&
    (v.protocolVersion === 3 || v.protocolVersion === 4 ||
      v.protocolVersion === 5) &&
    typeof v.expiryInterval === "number" &&
    Array.isArray(v.subscriptions) &&
    v.subscriptions.every((s) =>
      isObject(s) && typeof s.filter === "string" && isQos(s.qos)
    ) &&
    (v.will === undefined || isStoredMessage(v.will)) &&
    (v.owner === undefined ||
      (isObject(v.owner) &&
        (v.owner.username === undefined ||
          typeof v.owner.username === "string"))) &&
    (v.bridge === undefined || typeof v.bridge === "boolean");
}

/** Whether a value read has the shape of an `OutgoingRecord`. */
export function isOutgoingRecord(v: unknown): v is OutgoingRecord {
  return isObject(v) && typeof v.seq === "number" &&
    (v.state === "queued" || v.state === "sent" || v.state === "pubrec") &&
    isQos(v.qos) && isStoredMessage(v.message);
}
