/**
 * `TopicAliasReceiver`: the Topic Aliases a peer set on one connection (v5),
 * shared by the broker (aliases from a client) and the client (aliases from
 * the broker). Private to the package; the client re-exports it.
 *
 * @module
 */

import { MqttError } from "./errors.ts";
import { ReasonCode } from "./reason_code.ts";

/**
 * Incoming topic aliases for one connection (v5): records the topic of a
 * PUBLISH that sets an alias and resolves a PUBLISH that uses one.
 *
 * @example
 * ```ts
 * import { TopicAliasReceiver } from "@kite/mqtt/client";
 * const r = new TopicAliasReceiver(10);
 * r.resolve("a/b", 3); // "a/b": sets alias 3
 * r.resolve("", 3); // "a/b": uses it
 * ```
 */
export class TopicAliasReceiver {
  /** The Topic Alias Maximum this side announced. */
  readonly max: number;
  #map: Map<number, string> | undefined;

  /** Creates an empty table for aliases 1..max. */
  constructor(max: number) {
    this.max = max;
  }

  /** Forgets every alias (new connection) [MQTT-3.3.2-7]. */
  reset(): void {
    this.#map?.clear();
  }

  /**
   * The topic of a PUBLISH with `topic` and Topic Alias `alias` (0: none;
   * a receiver that must refuse an alias of 0 [MQTT-3.3.2-8] checks that
   * first). Throws MqttError 0x94 for an alias above max [MQTT-3.3.2-10],
   * and `unknownCode` (default 0x94) for an empty topic with an alias
   * never set.
   */
  resolve(
    topic: string,
    alias: number,
    unknownCode: number = ReasonCode.TopicAliasInvalid,
  ): string {
    if (alias === 0) return topic;
    if (alias > this.max) {
      throw new MqttError(
        ReasonCode.TopicAliasInvalid,
        `topic alias ${alias} is outside 1..${this.max}`,
      );
    }
    if (topic !== "") {
      (this.#map ??= new Map()).set(alias, topic);
      return topic;
    }
    const t = this.#map?.get(alias);
    if (t === undefined) {
      throw new MqttError(
        unknownCode,
        `topic alias ${alias} used before it was set`,
      );
    }
    return t;
  }
}
