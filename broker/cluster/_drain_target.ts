/**
 * Where a dead node's inbox goes (private, reaper.ts): the sessions the
 * draining node adopted from it. A plain message goes to the adopted
 * sessions whose plain subscriptions match; a message for a shared group
 * (the sender picked the dead node) to one adopted member of that group,
 * else to the group's members elsewhere (`ClusterDispatcher.routeToGroup`).
 *
 * A QoS 2 message the dead node had delivered but not acknowledged comes
 * again: its `origin` is in the outgoing messages the session stored, and
 * it is not taken twice (by that session, nor by another member of its
 * group); neither is one this drain already delivered.
 *
 * @module
 */

import type { QoS } from "../../codec/packet.ts";
import { sharedOf } from "../core.ts";
import type { Subscriber } from "../dispatcher.ts";
import { Router } from "../router.ts";
import type { Session } from "../session.ts";
import type { LoadedSession, StoredMessage } from "../store/store.ts";
import { type ClusterDispatcher, queueName } from "./dispatcher.ts";
import { markOrigin, type WireMeta } from "./_wire.ts";

/** The origins of the QoS 2 messages a stored session holds. */
export function originsOf(ls: LoadedSession): Set<string> {
  const out = new Set<string>();
  for (const r of ls.outgoing) {
    if (r.message.origin !== undefined) out.add(r.message.origin);
  }
  return out;
}

/** The adopted sessions as the drain's recipients (see the module doc). */
export class DrainTarget {
  readonly #plain: Router;
  readonly #groups = new Map<string, Router>();
  /** Origins any adopted session holds. */
  readonly #held = new Set<string>();
  readonly #dispatcher: ClusterDispatcher;

  /**
   * The sessions `adopted`, holding the origins in `held`; `dispatcher`
   * takes group messages none of them is a member for.
   */
  constructor(
    maxQos: QoS,
    adopted: Session[],
    held: Map<Session, Set<string>>,
    dispatcher: ClusterDispatcher,
  ) {
    this.#plain = new Router(maxQos);
    this.#dispatcher = dispatcher;
    for (const s of adopted) {
      const own = held.get(s) ?? new Set<string>();
      for (const o of own) this.#held.add(o);
      const once = onceEach(s, own);
      for (const sub of s.subscriptions.values()) {
        const shared = sharedOf(sub.filter);
        if (shared === undefined) {
          if (!sub.filter.startsWith("$share/")) {
            this.#plain.subscribe(once, sub);
          }
          continue;
        }
        const queue = queueName(shared.group, shared.filter);
        let r = this.#groups.get(queue);
        if (r === undefined) {
          r = new Router(maxQos);
          this.#groups.set(queue, r);
        }
        r.subscribe(once, sub, shared);
      }
    }
  }

  /**
   * Delivers one message of the inbox (`meta` as decoded with it); returns
   * the deliveries made.
   */
  take(message: StoredMessage, meta: WireMeta): number {
    markOrigin(message, meta);
    const queue = meta.group;
    if (queue === undefined) {
      return this.#plain.publish(message, meta.publisherId);
    }
    const origin = message.origin;
    if (origin !== undefined) {
      if (this.#held.has(origin)) return 0;
      this.#held.add(origin);
    }
    const n = this.#groups.get(queue)?.publish(message, meta.publisherId) ?? 0;
    if (n > 0) return n;
    return this.#dispatcher.routeToGroup(queue, message, meta.publisherId);
  }
}

/**
 * Session `s` as the drain's subscriber: a message whose origin it holds
 * (delivered before the crash, or already by this drain) is not taken
 * again.
 */
function onceEach(s: Session, held: Set<string>): Subscriber {
  return {
    clientId: s.clientId,
    protocolVersion: s.protocolVersion,
    get online() {
      return s.online;
    },
    get bridge() {
      return s.bridge;
    },
    hasRoom: () => s.hasRoom(),
    writable: () => s.writable(),
    mayRead: (topic) => s.mayRead(topic),
    deliver(message, qos, retain, subIds, cache, group) {
      const origin = message.origin;
      if (origin !== undefined) {
        if (held.has(origin)) return;
        held.add(origin);
      }
      s.deliver(message, qos, retain, subIds, cache, group);
    },
  };
}
