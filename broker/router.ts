/**
 * The router: which sessions get a published message, at which QoS.
 *
 * Overlapping subscriptions of one session are combined into a single
 * delivery (rule chosen for 3.1.1 and 5.0 alike): the highest granted QoS of
 * the matching subscriptions, retain-as-published if any of them asks for
 * it, and (v5) every matching subscription identifier in that one PUBLISH.
 * A subscription with No Local does not match its own session's messages.
 *
 * Shared subscriptions (`$share/{group}/{filter}`, for v5 and 3.1.1 clients
 * alike) are separate: each matching group delivers the message to exactly
 * one member, round-robin among the members that are online and have room
 * (for QoS 1/2: a free slot in their receive window and nothing queued; for
 * QoS 0: an output buffer under its bound). When no member has room, the
 * next online member gets it (queued in its session); when none is online,
 * the next member's session queues it (as Mosquitto does).
 *
 * When a member's connection ends, the QoS 1/2 messages routed to it
 * through the group that it has not started to receive (queued) and the QoS 1
 * ones it has not acknowledged (in flight) are handed to another online
 * member of the group as new deliveries (like EMQX's redispatch; MQTT 5.0
 * 4.8.2 allows it for QoS 1). A QoS 2 message in flight stays with that
 * client: its delivery must be completed to it when it reconnects, and
 * never to another client, even if its session ends [MQTT-4.8.2-4]
 * [MQTT-4.8.2-5]. When no other member is online, everything stays with the
 * leaving member's session (lost with it if it does not persist).
 *
 * @module
 */

import type { QoS } from "../codec/packet.ts";
import { TopicMatcher } from "../codec/topic.ts";
import { FanoutCache, type OutgoingMessage, type Session } from "./session.ts";
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
      const e = pickMember(g, publisherId, mq > 0, undefined);
      if (e !== undefined) {
        deliverToMember(e, message, mq, message.retain, cache, g);
      }
    }
    shared.length = 0;
    return n;
  }

  /**
   * Hands the shared-subscription messages a leaving member had not
   * received for sure (`Session.takeShared()`) to other online members of
   * their groups; returns those no other member could take, for the caller
   * to give back. `maxQos` caps the QoS as in `publish`.
   */
  redispatch(
    from: Session,
    messages: OutgoingMessage[],
    maxQos: QoS,
  ): OutgoingMessage[] {
    const left: OutgoingMessage[] = [];
    for (const m of messages) {
      const g = m.group as SharedGroup | undefined;
      if (g === undefined || !this.#groupLive(g)) {
        left.push(m);
        continue;
      }
      const e = pickMember(g, undefined, true, from);
      if (e === undefined || e.session.link === undefined) {
        left.push(m);
        continue;
      }
      const msg = m.message;
      const cap = msg.qos < maxQos ? msg.qos : maxQos;
      deliverToMember(e, msg, cap, m.retain, undefined, g);
    }
    return left;
  }

  /** Whether `group` has an online member other than `from`. */
  canTake(group: object, from: Session): boolean {
    const g = group as SharedGroup;
    if (!this.#groupLive(g)) return false;
    for (const e of g.members) {
      if (e.session !== from && e.session.link !== undefined) return true;
    }
    return false;
  }

  #groupLive(g: SharedGroup): boolean {
    return this.#groups.get(g.name + "\0" + g.filter) === g;
  }
}

/**
 * The next member of `g` round-robin: the first online one with room (for
 * QoS > 0 a free receive-window slot), else the first online one, else (not
 * when `exclude` is given) the first one at all.
 */
/**
 * Delivers to the member `e` of shared group `g` at the lower of its granted
 * QoS and `cap`, with its subscription identifier; the retain flag is kept
 * only for a v5 Retain As Published subscription.
 */
function deliverToMember(
  e: Entry,
  message: StoredMessage,
  cap: QoS,
  retain: boolean,
  cache: FanoutCache | undefined,
  g: SharedGroup,
): void {
  e.session.deliver(
    message,
    e.sub.qos < cap ? e.sub.qos : cap,
    retain && e.sub.retainAsPublished === true &&
      e.session.protocolVersion === 5,
    e.sub.subscriptionIdentifier !== undefined
      ? [e.sub.subscriptionIdentifier]
      : undefined,
    cache,
    g,
  );
}

function pickMember(
  g: SharedGroup,
  publisherId: string | undefined,
  reliable: boolean,
  exclude: Session | undefined,
): Entry | undefined {
  const n = g.members.length;
  let online: Entry | undefined;
  let onlineAt = 0;
  let any: Entry | undefined;
  for (let k = 0; k < n; k++) {
    const i = (g.next + k) % n;
    const e = g.members[i]!;
    const s = e.session;
    if (s === exclude) continue;
    if (e.sub.noLocal === true && s.clientId === publisherId) continue;
    const link = s.link;
    if (link !== undefined) {
      if (reliable ? s.hasRoom() : link.writable()) {
        g.next = (i + 1) % n;
        return e;
      }
      if (online === undefined) {
        online = e;
        onlineAt = i;
      }
    }
    any ??= e;
  }
  if (online !== undefined) {
    g.next = (onlineAt + 1) % n;
    return online;
  }
  if (exclude !== undefined) return undefined;
  if (any !== undefined) g.next = (g.next + 1) % n;
  return any;
}
