/**
 * Inbox packs (private): the QoS 1/2 messages one node sends another
 * node's JetStream inbox in one turn of the event loop go in one JetStream
 * message (one publish and one acknowledgement, not one per message). A
 * pack is `[header length u32][payload length u32][header][payload]`
 * repeated, each header the block of `_wire.ts`; it carries the
 * `Kite-Pack: 1` header.
 *
 * @module
 */

/** Largest pack (NATS's default max payload is 1 MiB). */
export const MAX_PACK = 512 * 1024;

/** The header of a pack message. */
export const PACK_HEADER = "Kite-Pack";

/** Collects messages for one inbox. */
export class InboxPacker {
  #buf = new Uint8Array(16 * 1024);
  #view = new DataView(this.#buf.buffer);
  #used = 0;
  /** Messages in the pack. */
  count = 0;

  /** Bytes so far. */
  get size(): number {
    return this.#used;
  }

  /** Appends one message (copied). */
  add(header: Uint8Array, payload: Uint8Array): void {
    const need = this.#used + 8 + header.length + payload.length;
    if (need > this.#buf.length) {
      let n = this.#buf.length * 2;
      while (n < need) n *= 2;
      const bigger = new Uint8Array(n);
      bigger.set(this.#buf.subarray(0, this.#used));
      this.#buf = bigger;
      this.#view = new DataView(bigger.buffer);
    }
    this.#view.setUint32(this.#used, header.length);
    this.#view.setUint32(this.#used + 4, payload.length);
    this.#buf.set(header, this.#used + 8);
    this.#buf.set(payload, this.#used + 8 + header.length);
    this.#used = need;
    this.count++;
  }

  /** The pack's bytes (the packer is empty again). */
  take(): Uint8Array {
    const out = this.#buf.slice(0, this.#used);
    this.#used = 0;
    this.count = 0;
    return out;
  }
}

/**
 * Calls `each(header, payload)` for every message of a pack; false when
 * the pack is malformed (what came before was delivered).
 */
export function unpack(
  data: Uint8Array,
  each: (header: Uint8Array, payload: Uint8Array) => void,
): boolean {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let at = 0;
  while (at < data.length) {
    if (at + 8 > data.length) return false;
    const h = view.getUint32(at);
    const p = view.getUint32(at + 4);
    const end = at + 8 + h + p;
    if (end > data.length) return false;
    each(
      data.subarray(at + 8, at + 8 + h),
      data.subarray(at + 8 + h, end),
    );
    at = end;
  }
  return true;
}
