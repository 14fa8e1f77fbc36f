/**
 * `Subscriptions`: what a client is subscribed to (private), so that it can
 * subscribe again, with the same options, when a CONNACK says the session
 * is gone.
 *
 * @module
 */

import type {
  Properties,
  SubscribePacket,
  Subscription,
} from "../codec/packet.ts";

/**
 * The granted subscriptions of one client, by filter.
 *
 * @example
 * ```ts ignore
 * const subs = new Subscriptions();
 * subs.set({ filter: "a/#", qos: 1 }, undefined);
 * subs.resubscribePackets(); // one SUBSCRIBE for a/# (packet id 0)
 * ```
 */
export class Subscriptions {
  #byFilter = new Map<
    string,
    { sub: Subscription; properties: Properties | undefined }
  >();

  /** How many filters. */
  get size(): number {
    return this.#byFilter.size;
  }

  /** Records `sub` as granted, with the SUBSCRIBE's properties. */
  set(sub: Subscription, properties: Properties | undefined): void {
    this.#byFilter.set(sub.filter, { sub, properties });
  }

  /** Forgets `filter` (unsubscribed). */
  delete(filter: string): void {
    this.#byFilter.delete(filter);
  }

  /**
   * SUBSCRIBE packets (packet id 0, to be assigned) for every subscription:
   * one per Subscription Identifier, as that is per packet.
   */
  resubscribePackets(): SubscribePacket[] {
    const groups = new Map<number | undefined, SubscribePacket>();
    for (const { sub, properties } of this.#byFilter.values()) {
      const id = properties?.subscriptionIdentifiers?.[0];
      let p = groups.get(id);
      if (!p) {
        p = { type: "subscribe", packetId: 0, subscriptions: [] };
        if (properties) p.properties = properties;
        groups.set(id, p);
      }
      p.subscriptions.push(sub);
    }
    return [...groups.values()];
  }
}
