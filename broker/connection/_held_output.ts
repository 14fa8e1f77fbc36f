/**
 * `HeldOutput`: what a connection may not write before the store has
 * committed the state behind it (private to the connection; see
 * `CommitGate`). Each entry carries the commit generation it waits for;
 * output queued behind held output is held too (tagged with the current
 * generation), so the connection's order is kept.
 *
 * @module
 */

import type { PublishTemplate } from "../../codec/_publish_template.ts";
import type { Packet } from "../../codec/packet.ts";

/** One held packet (or shared PUBLISH encoding with its id and DUP). */
export interface Held {
  gen: number;
  packet: Packet | undefined;
  enc: PublishTemplate | undefined;
  packetId: number;
  dup: boolean;
}

/** Held output of one connection, oldest first. */
export class HeldOutput {
  #items: Held[] = [];
  #waitingFor = 0;

  /**
   * Holds one entry until the commit of `gen`; true when the connection
   * must ask the gate to tell it about that commit (once per generation).
   */
  hold(
    gen: number,
    packet: Packet | undefined,
    enc: PublishTemplate | undefined,
    packetId: number,
    dup: boolean,
  ): boolean {
    this.#items.push({ gen, packet, enc, packetId, dup });
    if (this.#waitingFor === gen) return false;
    this.#waitingFor = gen;
    return true;
  }

  /** Removes and returns the entries the commit of `gen` releases. */
  release(gen: number): Held[] {
    const items = this.#items;
    let i = 0;
    while (i < items.length && items[i]!.gen <= gen) i++;
    if (i === items.length) {
      this.#items = [];
      this.#waitingFor = 0;
      return items;
    }
    return items.splice(0, i);
  }

  /** Whether nothing is held. */
  get empty(): boolean {
    return this.#items.length === 0;
  }
}
