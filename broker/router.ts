/**
 * The router: which sessions get a published message, at which QoS.
 *
 * Overlapping subscriptions of one session are combined into a single
 * delivery (rule chosen for 3.1.1 and 5.0 alike): the highest granted QoS of
 * the matching subscriptions, retain-as-published if any of them asks for
 * it, and (v5) every matching subscription identifier in that one PUBLISH.
 * A subscription with No Local does not match its own session's messages.
 *
 * Shared subscriptions (`$share/{group}/{filter}`) are separate: each
 * matching group delivers the message to exactly one member, round-robin,
 * preferring members that are online.
 *
 * @module
 */

import type { QoS } from "../codec/packet.ts";
import { TopicMatcher } from "../codec/topic.ts";
import { FanoutCache, type Session } from "./session.ts";
import type { StoredMessage, StoredSubscription } from "./store/store.ts";

interface Entry {
  session: Session;
  sub: StoredSubscription;
}

interface SharedGroup {
  name: string;
  filter: string;
  members: Entry[];
  next: number;
}

/**
 * Routes messages to sessions.
 *
 * @example
 * ```ts ignore
 * const router = new Router();
 * router.subscribe(session, { filter: "a/+", qos: 1 });
 * router.publish(message, "publisher-id"); // deliveries made
 * ```
 */
export class Router {
  #subs = new TopicMatcher<Entry>();
  #shared = new TopicMatcher<SharedGroup>();
  #groups = new Map<string, SharedGroup>();
  #gen = 0;
  #hits: Session[] = [];
  #sharedHits: SharedGroup[] = [];
  #publisherId: string | undefined;

  // Matcher callbacks allocated once (no closure per message).
  #onMatch = (e: Entry): void => {
    const s = e.session;
    const sub = e.sub;
    if (sub.noLocal === true && s.clientId === this.#publisherId) return;
    if (s.matchGen !== this.#gen) {
      s.matchGen = this.#gen;
      s.matchQos = sub.qos;
      s.matchRap = sub.retainAsPublished === true;
      s.matchSubIds = sub.subscriptionIdentifier !== undefined
        ? [sub.subscriptionIdentifier]
        : undefined;
      this.#hits.push(s);
      return;
    }
    if (sub.qos > s.matchQos) s.matchQos = sub.qos;
    if (sub.retainAsPublished === true) s.matchRap = true;
    if (sub.subscriptionIdentifier !== undefined) {
      (s.matchSubIds ??= []).push(sub.subscriptionIdentifier);
    }
  };
  #onShared = (g: SharedGroup): void => {
    this.#sharedHits.push(g);
  };

  /** The number of subscriptions (shared ones included). */
  get size(): number {
    let n = this.#subs.size;
    for (const g of this.#groups.values()) n += g.members.length;
    return n;
  }

  /**
   * Adds or replaces a subscription. `shared` is the parsed `$share` filter
   * when `sub.filter` is one.
   */
  subscribe(
    session: Session,
    sub: StoredSubscription,
    shared?: { group: string; filter: string },
  ): void {
    if (shared === undefined) {
      this.#subs.set(sub.filter, session.clientId, { session, sub });
      return;
    }
    const gkey = shared.group + "\0" + shared.filter;
    let g = this.#groups.get(gkey);
    if (g === undefined) {
      g = { name: shared.group, filter: shared.filter, members: [], next: 0 };
      this.#groups.set(gkey, g);
      this.#shared.set(shared.filter, shared.group, g);
    }
    const i = g.members.findIndex((e) =>
      e.session.clientId === session.clientId
    );
    if (i >= 0) g.members[i] = { session, sub };
    else g.members.push({ session, sub });
  }

  /** Removes a subscription; true when it existed. */
  unsubscribe(
    session: Session,
    filter: string,
    shared?: { group: string; filter: string },
  ): boolean {
    if (shared === undefined) {
      return this.#subs.delete(filter, session.clientId);
    }
    const gkey = shared.group + "\0" + shared.filter;
    const g = this.#groups.get(gkey);
    if (g === undefined) return false;
    const i = g.members.findIndex((e) =>
      e.session.clientId === session.clientId
    );
    if (i < 0) return false;
    g.members.splice(i, 1);
    if (g.members.length === 0) {
      this.#groups.delete(gkey);
      this.#shared.delete(shared.filter, shared.group);
    }
    return true;
  }

  /**
   * Delivers `message` to every matching session; returns the number of
   * sessions it went to. `publisherId` is for No Local.
   */
  publish(
    message: StoredMessage,
    publisherId: string | undefined,
    maxQos: QoS,
  ): number {
    ++this.#gen;
    this.#publisherId = publisherId;
    const hits = this.#hits;
    hits.length = 0;
    this.#subs.match(message.topic, this.#onMatch);
    const shared = this.#sharedHits;
    shared.length = 0;
    if (this.#groups.size > 0) {
      this.#shared.match(message.topic, this.#onShared);
    }
    const n = hits.length + shared.length;
    if (n === 0) return 0;
    const cache = new FanoutCache(message, Date.now());
    const mq = message.qos < maxQos ? message.qos : maxQos;
    for (let i = 0; i < hits.length; i++) {
      const s = hits[i]!;
      const qos = s.matchQos < mq ? s.matchQos : mq;
      const retain = message.retain && s.matchRap &&
        s.protocolVersion === 5;
      s.deliver(message, qos, retain, s.matchSubIds, cache);
    }
    hits.length = 0;
    for (let i = 0; i < shared.length; i++) {
      const g = shared[i]!;
      const e = pickMember(g, publisherId);
      if (e === undefined) continue;
      const qos = e.sub.qos < mq ? e.sub.qos : mq;
      const retain = message.retain && e.sub.retainAsPublished === true &&
        e.session.protocolVersion === 5;
      e.session.deliver(
        message,
        qos,
        retain,
        e.sub.subscriptionIdentifier !== undefined
          ? [e.sub.subscriptionIdentifier]
          : undefined,
        cache,
      );
    }
    shared.length = 0;
    return n;
  }
}

function pickMember(
  g: SharedGroup,
  publisherId: string | undefined,
): Entry | undefined {
  const n = g.members.length;
  let fallback: Entry | undefined;
  for (let k = 0; k < n; k++) {
    const i = (g.next + k) % n;
    const e = g.members[i]!;
    if (e.sub.noLocal === true && e.session.clientId === publisherId) continue;
    if (e.session.link !== undefined && e.session.link.writable()) {
      g.next = (i + 1) % n;
      return e;
    }
    fallback ??= e;
  }
  if (fallback !== undefined) g.next = (g.next + 1) % n;
  return fallback;
}
