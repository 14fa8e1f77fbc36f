/**
 * `PacketIdAllocator`: packet identifiers for QoS 1/2 PUBLISH, SUBSCRIBE and
 * UNSUBSCRIBE, shared by the broker's sessions and the client (private to
 * the package).
 *
 * Ids are handed out in rising order from 1 to 65535 and wrap, skipping the
 * ids still in use, so an id is not reused while the peer may still hold it
 * [MQTT-2.2.1-3]; a freshly freed id is also not reused at once.
 *
 * @module
 */

/** The largest packet identifier. */
export const MAX_PACKET_ID = 0xffff;

/**
 * Hands out packet identifiers.
 *
 * @example
 * ```ts ignore
 * const ids = new PacketIdAllocator();
 * const inUse = new Map<number, unknown>();
 * const id = ids.next(inUse); // 1
 * inUse.set(id, "in flight");
 * ids.next(inUse); // 2
 * ```
 */
export class PacketIdAllocator {
  #next = 1;

  /**
   * The next id not in `inUse`. Throws when all 65,535 are in use (callers
   * bound what is in flight below that).
   */
  next(inUse: { has(id: number): boolean } | undefined): number {
    let id = this.#next;
    for (let i = 0; i < MAX_PACKET_ID; i++) {
      const after = id === MAX_PACKET_ID ? 1 : id + 1;
      if (inUse?.has(id) !== true) {
        this.#next = after;
        return id;
      }
      id = after;
    }
    throw new RangeError("every packet identifier is in use");
  }

  /** Notes an id restored as in use (from a store): the next starts after it. */
  restored(id: number): void {
    if (id >= this.#next) this.#next = id === MAX_PACKET_ID ? 1 : id + 1;
  }
}
