/**
 * A bridge's topic rules, compiled (private to the bridge): the local and
 * remote filters of each rule, which rules apply to a topic each way, and
 * the topic on the other side (Mosquitto's prefix remapping). No I/O.
 *
 * @module
 */

import type { QoS } from "../../codec/packet.ts";
import { TopicMatcher } from "../../codec/topic.ts";
import type { StoredMessage } from "../store/store.ts";
import type { BridgeDirection, BridgeTopic } from "./types.ts";

/** One topic rule, with its filters on both sides. */
export interface BridgeRule {
  /** Position in the configuration: the first matching rule wins. */
  readonly index: number;
  readonly direction: BridgeDirection;
  readonly qos: QoS;
  readonly localPrefix: string;
  readonly remotePrefix: string;
  /** `localPrefix + pattern`: what the bridge subscribes to here. */
  readonly localFilter: string;
  /** `remotePrefix + pattern`: what it subscribes to on the remote. */
  readonly remoteFilter: string;
}

/** Compiles the rules of a bridge (already validated). */
export function compileRules(topics: readonly BridgeTopic[]): BridgeRule[] {
  return topics.map((t, index) => {
    const localPrefix = t.localPrefix ?? "";
    const remotePrefix = t.remotePrefix ?? "";
    return {
      index,
      direction: t.direction ?? "out",
      qos: t.qos ?? 0,
      localPrefix,
      remotePrefix,
      localFilter: localPrefix + t.pattern,
      remoteFilter: remotePrefix + t.pattern,
    };
  });
}

/**
 * Distinct filters with the highest QoS of their rules: one subscription
 * each (here for `out`, on the remote for `in`).
 */
export function subscriptionsOf(
  rules: readonly BridgeRule[],
  side: "local" | "remote",
): Map<string, QoS> {
  const out = new Map<string, QoS>();
  const want: BridgeDirection = side === "local" ? "in" : "out";
  for (const r of rules) {
    if (r.direction === want) continue;
    const f = side === "local" ? r.localFilter : r.remoteFilter;
    const q = out.get(f);
    if (q === undefined || r.qos > q) out.set(f, r.qos);
  }
  return out;
}

/**
 * Which rules apply to a topic, one way: a matcher over one side's filters
 * of the rules that carry messages that way. `match()` reuses its result
 * array (no allocation per message).
 */
export class RuleMatcher {
  #matcher = new TopicMatcher<BridgeRule>();
  #hits: BridgeRule[] = [];
  #outgoing: boolean;
  #onMatch = (r: BridgeRule): void => {
    this.#hits.push(r);
  };

  /** `outgoing`: local filters of out/both rules; else remote filters of in/both. */
  constructor(rules: readonly BridgeRule[], outgoing: boolean) {
    this.#outgoing = outgoing;
    for (const r of rules) {
      if (r.direction === (outgoing ? "in" : "out")) continue;
      const filter = outgoing ? r.localFilter : r.remoteFilter;
      this.#matcher.set(filter, String(r.index), r);
    }
  }

  /**
   * The rules whose filter matches `topic` and whose prefix the topic
   * starts with (a `pre/#` filter also matches `pre`, which has nothing to
   * strip), in configuration order. The array is reused by the next call.
   */
  match(topic: string): readonly BridgeRule[] {
    const outgoing = this.#outgoing;
    const hits = this.#hits;
    hits.length = 0;
    this.#matcher.match(topic, this.#onMatch);
    let n = 0;
    for (let i = 0; i < hits.length; i++) {
      const r = hits[i]!;
      if (topic.startsWith(outgoing ? r.localPrefix : r.remotePrefix)) {
        hits[n++] = r;
      }
    }
    hits.length = n;
    if (n > 1) hits.sort(byIndex);
    return hits;
  }
}

function byIndex(a: BridgeRule, b: BridgeRule): number {
  return a.index - b.index;
}

/**
 * The retained messages to send the remote on each connection (as Mosquitto
 * does): those under `out` rules, not expired, each once per remote topic
 * at the lower of its QoS and the rule's, passed to `each`. Not those under
 * `both` rules: there they may have come from the remote, and an old copy
 * would overwrite a newer value there.
 */
export function retainedOut(
  rules: readonly BridgeRule[],
  outgoing: RuleMatcher,
  retained: {
    match(filter: string, cb: (message: StoredMessage) => void): void;
  },
  each: (message: StoredMessage, remoteTopic: string, qos: QoS) => void,
): void {
  const found = new Map<string, StoredMessage>();
  const now = Date.now();
  for (const r of rules) {
    if (r.direction !== "out") continue;
    retained.match(r.localFilter, (m) => {
      if (m.expiresAt === undefined || m.expiresAt > now) {
        found.set(m.topic, m);
      }
    });
  }
  for (const m of found.values()) {
    const sent = new Set<string>();
    for (const r of outgoing.match(m.topic)) {
      if (r.direction !== "out") continue;
      const t = toRemote(r, m.topic);
      if (sent.has(t)) continue;
      sent.add(t);
      each(m, t, r.qos < m.qos ? r.qos : m.qos);
    }
  }
}

/** The remote topic of local `topic` under rule `r` (out). */
export function toRemote(r: BridgeRule, topic: string): string {
  return r.localPrefix === r.remotePrefix
    ? topic
    : r.remotePrefix + topic.slice(r.localPrefix.length);
}

/** The local topic of remote `topic` under rule `r` (in). */
export function toLocal(r: BridgeRule, topic: string): string {
  return r.localPrefix === r.remotePrefix
    ? topic
    : r.localPrefix + topic.slice(r.remotePrefix.length);
}
