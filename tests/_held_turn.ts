/**
 * Test helpers for a connection's read slice (connection/_io_turn.ts):
 * `HeldTurn`, an `IoTurn` stand-in where the test decides when the runtime
 * "polled", and `FLOOD_PUBLISH`, a 1 KB QoS 0 PUBLISH (64 of them fill a
 * slice).
 *
 * @module
 */

import type { AfterPoll } from "../broker/connection/_io_turn.ts";
import { encode } from "../codec/encode.ts";

/** An `IoTurn` stand-in: `release()` runs what waits for the poll. */
export class HeldTurn {
  waiting: AfterPoll[] = [];
  #asked = Promise.withResolvers<void>();
  /** Resolves when a connection paused. */
  get asked(): Promise<void> {
    return this.#asked.promise;
  }
  after(cb: AfterPoll): void {
    this.waiting.push(cb);
    this.#asked.resolve();
  }
  release(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const cb of w) cb(undefined);
  }
  close(): void {}
}

/** A 3.1.1 QoS 0 PUBLISH to `flood` with a 1 KB payload. */
export const FLOOD_PUBLISH: Uint8Array = encode({
  type: "publish",
  topic: "flood",
  payload: new Uint8Array(1024),
  qos: 0,
  retain: false,
  dup: false,
}, { version: 4 });
