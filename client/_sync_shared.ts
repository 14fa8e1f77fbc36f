/**
 * Private: what the blocking client (`sync_client.ts`) and its worker
 * (`_sync_worker.ts`) share: the layout of the control words, the record
 * format of values crossing the boundary, a single-producer single-consumer
 * byte ring over a SharedArrayBuffer, and errors as plain data.
 *
 * @module
 */

import {
  MalformedPacketError,
  MqttError,
  NotAuthorizedError,
  PacketTooLargeError,
  ProtocolError,
  QuotaExceededError,
} from "../codec/errors.ts";
import { ClientOfflineError, TimeoutError } from "./client.ts";
import type { ClientEvents } from "./client.ts";

// Int32 words of the control buffer.
/** Incremented (and notified) by the worker on every reply or message. */
export const SIGNAL = 0;
/** The id of the call whose reply is in the reply buffer. */
export const REPLY_ID = 1;
/** Length in bytes of that reply. */
export const REPLY_LEN = 2;
/** Ring: read position (written by the calling thread). */
export const RING_HEAD = 3;
/** Ring: write position (written by the worker). */
export const RING_TAIL = 4;
/** Ring: bytes in use (added by the worker, subtracted by the reader). */
export const RING_USED = 5;
/** Incremented (and notified) by the reader after each record it took. */
export const READS = 6;
/** 1 while the async client is connected. */
export const CONNECTED = 7;
/** 1 while a "wake" message to the calling thread is on its way. */
export const WAKE_PENDING = 8;
/** Messages dropped because they can never fit in the ring. */
export const DROPPED = 9;
/** Records in the ring. */
export const RING_COUNT = 10;
/** Size of the control buffer, in Int32 words. */
export const CTRL_WORDS = 16;

/** The client events the worker forwards to the calling thread. */
export const CLIENT_EVENT_NAMES = [
  "connect",
  "disconnect",
  "reconnect",
  "offline",
  "close",
  "error",
] as const satisfies readonly (keyof ClientEvents)[];

const enc = new TextEncoder();
const dec = new TextDecoder();
const BIN = "\u0000kite.bin";

/**
 * Serializes a JSON-like value whose leaves may be `Uint8Array`s:
 * `[u32 json length][json][bytes of every Uint8Array]`, each array replaced
 * in the JSON by its `[offset, length]` in the binary part.
 */
export function pack(value: unknown): Uint8Array {
  const bins: Uint8Array[] = [];
  let binLen = 0;
  const json = JSON.stringify(value, (_k, v) => {
    if (v instanceof Uint8Array) {
      const ref = { [BIN]: [binLen, v.length] };
      bins.push(v);
      binLen += v.length;
      return ref;
    }
    return v;
  }) ?? "null";
  const head = enc.encode(json);
  const out = new Uint8Array(4 + head.length + binLen);
  new DataView(out.buffer).setUint32(0, head.length);
  out.set(head, 4);
  let off = 4 + head.length;
  for (const b of bins) {
    out.set(b, off);
    off += b.length;
  }
  return out;
}

/** The inverse of `pack()`; byte arrays are copies (own buffers). */
export function unpack(bytes: Uint8Array): unknown {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const jsonLen = dv.getUint32(0);
  const base = 4 + jsonLen;
  const json = dec.decode(bytes.subarray(4, base));
  return JSON.parse(json, (_k, v) => {
    if (v !== null && typeof v === "object" && BIN in v) {
      const [off, len] = v[BIN] as [number, number];
      return bytes.slice(base + off, base + off + len);
    }
    return v;
  });
}

/** One end of the message ring: the shared control words and ring bytes. */
abstract class RingEnd {
  protected readonly ctrl: Int32Array;
  protected readonly ring: Uint8Array;
  /** Scratch for a record's u32 length. */
  protected readonly len = new Uint8Array(4);

  /** Wraps the shared control words and ring bytes. */
  constructor(ctrl: Int32Array, ring: Uint8Array) {
    this.ctrl = ctrl;
    this.ring = ring;
  }
}

/**
 * The producer side of the message ring (the worker). Records are
 * `[u32 length][bytes]`, wrapping around the end of the buffer.
 */
export class RingWriter extends RingEnd {
  /** The ring's capacity in bytes. */
  get capacity(): number {
    return this.ring.length;
  }

  /** Appends a record; false when it does not fit now. */
  tryWrite(record: Uint8Array): boolean {
    const need = 4 + record.length;
    const cap = this.ring.length;
    if (cap - Atomics.load(this.ctrl, RING_USED) < need) return false;
    let tail = Atomics.load(this.ctrl, RING_TAIL);
    new DataView(this.len.buffer).setUint32(0, record.length);
    tail = copyIn(this.ring, tail, this.len);
    tail = copyIn(this.ring, tail, record);
    Atomics.store(this.ctrl, RING_TAIL, tail);
    Atomics.add(this.ctrl, RING_COUNT, 1);
    Atomics.add(this.ctrl, RING_USED, need); // publishes the bytes above
    Atomics.add(this.ctrl, SIGNAL, 1);
    Atomics.notify(this.ctrl, SIGNAL);
    return true;
  }
}

/** The consumer side of the message ring (the calling thread). */
export class RingReader extends RingEnd {
  /** Takes the next record (a copy), or undefined when the ring is empty. */
  read(): Uint8Array | undefined {
    if (Atomics.load(this.ctrl, RING_USED) === 0) return undefined;
    let head = Atomics.load(this.ctrl, RING_HEAD);
    head = copyOut(this.ring, head, this.len);
    const n = new DataView(this.len.buffer).getUint32(0);
    const out = new Uint8Array(n);
    head = copyOut(this.ring, head, out);
    Atomics.store(this.ctrl, RING_HEAD, head);
    Atomics.sub(this.ctrl, RING_COUNT, 1);
    Atomics.sub(this.ctrl, RING_USED, 4 + n);
    Atomics.add(this.ctrl, READS, 1);
    Atomics.notify(this.ctrl, READS);
    return out;
  }
}

function copyIn(ring: Uint8Array, pos: number, src: Uint8Array): number {
  const first = Math.min(src.length, ring.length - pos);
  ring.set(src.subarray(0, first), pos);
  if (first < src.length) ring.set(src.subarray(first), 0);
  return (pos + src.length) % ring.length;
}

function copyOut(ring: Uint8Array, pos: number, dst: Uint8Array): number {
  const first = Math.min(dst.length, ring.length - pos);
  dst.set(ring.subarray(pos, pos + first));
  if (first < dst.length) dst.set(ring.subarray(0, dst.length - first), first);
  return (pos + dst.length) % ring.length;
}

/** An error as plain data. */
export interface ErrorData {
  name: string;
  message: string;
  reasonCode?: number;
  cause?: ErrorData;
}

/** Turns any thrown value into `ErrorData`. */
export function errorToData(e: unknown): ErrorData {
  if (!(e instanceof Error)) return { name: "Error", message: String(e) };
  const d: ErrorData = { name: e.name, message: e.message };
  if (e instanceof MqttError) d.reasonCode = e.reasonCode;
  if (e.cause instanceof Error) d.cause = errorToData(e.cause);
  return d;
}

const MQTT_ERRORS: Record<string, (m: string, o?: ErrorOptions) => MqttError> =
  {
    MalformedPacketError: (m, o) => new MalformedPacketError(m, o),
    ProtocolError: (m, o) => new ProtocolError(m, o),
    PacketTooLargeError: (m, o) => new PacketTooLargeError(m, o),
    NotAuthorizedError: (m, o) => new NotAuthorizedError(m, o),
    QuotaExceededError: (m, o) => new QuotaExceededError(m, o),
    ClientOfflineError: (m, o) => new ClientOfflineError(m, o),
    TimeoutError: (m) => new TimeoutError(m),
  };

const ERRORS: Record<string, new (m: string, o?: ErrorOptions) => Error> = {
  TypeError,
  RangeError,
  SyntaxError,
};

/** Rebuilds the error of `errorToData()`: same class, message, reason code. */
export function dataToError(d: ErrorData): Error {
  const o = d.cause ? { cause: dataToError(d.cause) } : undefined;
  const make = MQTT_ERRORS[d.name];
  if (make) return make(d.message, o);
  if (d.reasonCode !== undefined) {
    const e = new MqttError(d.reasonCode, d.message, o);
    if (d.name !== "MqttError") e.name = d.name;
    return e;
  }
  const C = ERRORS[d.name];
  if (C) return new C(d.message, o);
  const e = new Error(d.message, o);
  e.name = d.name;
  return e;
}
