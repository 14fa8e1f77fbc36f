/**
 * A session's QoS 1/2 messages in flight, by packet id (private).
 *
 * Most sessions have at most one message in flight at a time (a subscriber
 * that acknowledges as fast as it reads), so one is kept in two fields and
 * a `Map` is made only for a second one, or when someone asks for the map.
 * A `Map` made and emptied per message was 11% of what a fleet of QoS 1
 * devices allocated (bench/README.md, "Connects and the fleet by
 * independent C probes"). The map is dropped again once it empties: V8
 * rehashes a small `Map` every few deletes, into the old generation once
 * the map lives there (bench/README.md, "the session's in-flight map").
 *
 * Iteration (through `map`) is in the order the messages were put.
 *
 * @module
 */

import type { OutgoingMessage } from "./delivery.ts";

/** Messages in flight by packet id: one in fields, more in a `Map`. */
export class Inflight {
  // 0: none in the fields. Never one in the fields and a map at once.
  #oneId = 0;
  #one: OutgoingMessage | undefined;
  #map: Map<number, OutgoingMessage> | undefined;

  /** How many messages are in flight. */
  get size(): number {
    return this.#oneId !== 0 ? 1 : this.#map?.size ?? 0;
  }

  /** Whether `id` is in flight (what the packet id allocator asks). */
  has(id: number): boolean {
    return this.#oneId !== 0 ? this.#oneId === id : this.#map?.has(id) === true;
  }

  /** The message in flight under `id`, if any. */
  get(id: number): OutgoingMessage | undefined {
    if (this.#oneId !== 0) return this.#oneId === id ? this.#one : undefined;
    return this.#map?.get(id);
  }

  /** Puts `m` in flight under `id` (after the others). */
  put(id: number, m: OutgoingMessage): void {
    if (this.#oneId === 0 && this.#map === undefined) {
      this.#oneId = id;
      this.#one = m;
    } else this.map.set(id, m);
  }

  /** Removes `id`; false when it was not in flight. */
  delete(id: number): boolean {
    if (this.#oneId !== 0) {
      if (this.#oneId !== id) return false;
      this.#oneId = 0;
      this.#one = undefined;
      return true;
    }
    const map = this.#map;
    if (map === undefined || !map.delete(id)) return false;
    if (map.size === 0) this.#map = undefined;
    return true;
  }

  /**
   * Every message in flight as a live `Map` (made now if needed; changes to
   * it are the in-flight set's).
   */
  get map(): Map<number, OutgoingMessage> {
    let map = this.#map;
    if (map === undefined) {
      map = this.#map = new Map();
      if (this.#oneId !== 0) {
        map.set(this.#oneId, this.#one!);
        this.#oneId = 0;
        this.#one = undefined;
      }
    }
    return map;
  }

  /** Calls `f` on each message in flight, in order. */
  forEach(f: (m: OutgoingMessage) => void): void {
    if (this.#oneId !== 0) f(this.#one!);
    else if (this.#map !== undefined) {
      for (const m of this.#map.values()) {
        f(m);
      }
    }
  }

  /** Removes every message. */
  clear(): void {
    this.#oneId = 0;
    this.#one = undefined;
    this.#map = undefined;
  }
}
