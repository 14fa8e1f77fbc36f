/**
 * The router: the local `Dispatcher` (dispatcher.ts), which subscribers get
 * a published message, at which QoS.
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
 * the next member's session queues it (as Mosquitto does). Members that may
 * not read the topic (`Subscriber.mayRead`) are skipped; each delivery is
 * authorized again by the subscriber itself.
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
import type {
  Dispatcher,
  SharedFilter,
  SharedMember,
  Subscriber,
} from "./dispatcher.ts";
import { FanoutCache, type OutgoingMessage } from "./delivery.ts";
import type { StoredMessage, StoredSubscription } from "./store/store.ts";
import { AS_DOUBLE } from "../codec/_double.ts";

/**
 * One subscriber as the router knows it: its match scratch for the
 * de-duplication of overlapping subscriptions, and how many of its
 * subscriptions point here.
 */
interface Target {
  subscriber: Subscriber;
  refs: number;
  /** Publish generation of the last match. */
  gen: number;
  /** Highest QoS among the matching subscriptions. */
  qos: QoS;
  /** Retain As Published among the matching subscriptions. */
  rap: boolean;
  /** Subscription identifiers of the matching subscriptions. */
  subIds: number[] | undefined;
}

interface Entry {
  target: Target;
  sub: StoredSubscription;
}

interface SharedGroup {
  name: string;
  filter: string;
  members: Entry[];
  next: number;
}

/**
 * Routes messages to the subscribers of this broker.
 *
 * @example
 * ```ts ignore
 * const router = new Router(2);
 * router.subscribe(session, { filter: "a/+", qos: 1 });
 * router.publish(message, "publisher-id"); // deliveries made
 * ```
 */
export class Router implements Dispatcher {
  #subs = new TopicMatcher<Entry>();
  #shared = new TopicMatcher<SharedGroup>();
  #groups = new Map<string, SharedGroup>();
  #targets = new Map<string, Target>();
  #maxQos: QoS;
  #gen = AS_DOUBLE; // one per message: past 2^30 in time (_double.ts)
  // Reused for every message, filled up to a count: `length = 0` would
  // drop the backing store and the next message would allocate one again.
  #hits: (Target | undefined)[] = [];
  #hitCount = 0;
  #sharedHits: (SharedGroup | undefined)[] = [];
  #sharedCount = 0;
  #publisherId: string | undefined;

  /** A router capping every delivery at `maxQos`. */
  constructor(maxQos: QoS = 2) {
    this.#maxQos = maxQos;
  }

  // Matcher callbacks allocated once (no closure per message).
  #onMatch = (e: Entry): void => {
    const t = e.target;
    const sub = e.sub;
    if (sub.noLocal === true && t.subscriber.clientId === this.#publisherId) {
      return;
    }
    if (t.gen !== this.#gen) {
      t.gen = this.#gen;
      t.qos = sub.qos;
      t.rap = sub.retainAsPublished === true;
      t.subIds = sub.subscriptionIdentifier !== undefined
        ? [sub.subscriptionIdentifier]
        : undefined;
      this.#hits[this.#hitCount++] = t;
      return;
    }
    if (sub.qos > t.qos) t.qos = sub.qos;
    if (sub.retainAsPublished === true) t.rap = true;
    if (sub.subscriptionIdentifier !== undefined) {
      (t.subIds ??= []).push(sub.subscriptionIdentifier);
    }
  };
  #onShared = (g: SharedGroup): void => {
    this.#sharedHits[this.#sharedCount++] = g;
  };

  /** The number of subscriptions (shared ones included). */
  get size(): number {
    return this.#subs.size + this.sharedSize;
  }

  /** The number of shared subscriptions (members of `$share` groups). */
  get sharedSize(): number {
    let n = 0;
    for (const g of this.#groups.values()) n += g.members.length;
    return n;
  }

  #target(subscriber: Subscriber): Target {
    const id = subscriber.clientId;
    let t = this.#targets.get(id);
    if (t === undefined || t.subscriber !== subscriber) {
      // A new subscriber object for a client id (its session was replaced)
      // gets a target of its own; the old one lives on with its entries.
      t = {
        subscriber,
        refs: 0,
        gen: AS_DOUBLE,
        qos: 0,
        rap: false,
        subIds: undefined,
      };
      this.#targets.set(id, t);
    }
    t.refs++;
    return t;
  }

  #release(t: Target): void {
    if (--t.refs === 0 && this.#targets.get(t.subscriber.clientId) === t) {
      this.#targets.delete(t.subscriber.clientId);
    }
  }

  /**
   * Adds or replaces a subscription. `shared` is the parsed `$share` filter
   * when `sub.filter` is one.
   */
  subscribe(
    subscriber: Subscriber,
    sub: StoredSubscription,
    shared?: SharedFilter,
  ): void {
    const id = subscriber.clientId;
    if (shared === undefined) {
      const old = this.#subs.get(sub.filter, id);
      if (old !== undefined && old.target.subscriber === subscriber) {
        old.sub = sub;
        return;
      }
      if (old !== undefined) this.#release(old.target);
      this.#subs.set(sub.filter, id, { target: this.#target(subscriber), sub });
      return;
    }
    const gkey = shared.group + "\0" + shared.filter;
    let g = this.#groups.get(gkey);
    if (g === undefined) {
      g = { name: shared.group, filter: shared.filter, members: [], next: 0 };
      this.#groups.set(gkey, g);
      this.#shared.set(shared.filter, shared.group, g);
    }
    const i = g.members.findIndex((e) => e.target.subscriber.clientId === id);
    if (i >= 0) {
      const old = g.members[i]!;
      if (old.target.subscriber === subscriber) {
        old.sub = sub;
        return;
      }
      this.#release(old.target);
      g.members[i] = { target: this.#target(subscriber), sub };
    } else g.members.push({ target: this.#target(subscriber), sub });
  }

  /** Removes a subscription; true when it existed. */
  unsubscribe(
    subscriber: Subscriber,
    filter: string,
    shared?: SharedFilter,
  ): boolean {
    const id = subscriber.clientId;
    if (shared === undefined) {
      const old = this.#subs.get(filter, id);
      if (old === undefined) return false;
      this.#subs.delete(filter, id);
      this.#release(old.target);
      return true;
    }
    const gkey = shared.group + "\0" + shared.filter;
    const g = this.#groups.get(gkey);
    if (g === undefined) return false;
    const i = g.members.findIndex((e) => e.target.subscriber.clientId === id);
    if (i < 0) return false;
    this.#release(g.members[i]!.target);
    g.members.splice(i, 1);
    if (g.members.length === 0) {
      this.#groups.delete(gkey);
      this.#shared.delete(shared.filter, shared.group);
    }
    return true;
  }

  /** Whether some filter, shared ones included, may start with `level`. */
  hasFirstLevel(level: string): boolean {
    return this.#subs.hasFirstLevel(level) ||
      (this.#groups.size > 0 && this.#shared.hasFirstLevel(level));
  }

  /**
   * Delivers `message` to every matching subscriber; returns the number of
   * subscribers it went to. `publisherId` is for No Local.
   */
  publish(message: StoredMessage, publisherId: string | undefined): number {
    ++this.#gen;
    this.#publisherId = publisherId;
    const hits = this.#hits;
    this.#hitCount = 0;
    this.#subs.match(message.topic, this.#onMatch);
    const shared = this.#sharedHits;
    this.#sharedCount = 0;
    if (this.#groups.size > 0) {
      this.#shared.match(message.topic, this.#onShared);
    }
    const hitCount = this.#hitCount;
    const sharedCount = this.#sharedCount;
    if (hitCount + sharedCount === 0) return 0;
    let n = hitCount;
    // One receiver: nothing to share (its session encodes the one form).
    const cache = hitCount + sharedCount > 1
      ? new FanoutCache(message, Date.now())
      : undefined;
    const maxQos = this.#maxQos;
    const mq = message.qos < maxQos ? message.qos : maxQos;
    for (let i = 0; i < hitCount; i++) {
      const t = hits[i]!;
      hits[i] = undefined; // no session kept alive by a stale slot
      const s = t.subscriber;
      const qos = t.qos < mq ? t.qos : mq;
      const retain = message.retain && t.rap &&
        (s.protocolVersion === 5 || s.bridge === true);
      s.deliver(message, qos, retain, t.subIds, cache);
    }
    for (let i = 0; i < sharedCount; i++) {
      const g = shared[i]!;
      shared[i] = undefined;
      const e = pickMember(g, publisherId, mq > 0, undefined, message.topic);
      if (e !== undefined) {
        deliverToMember(e, message, mq, message.retain, cache, g);
        n++;
      }
    }
    return n;
  }

  /**
   * A shared-subscription member left: what it had not acknowledged goes to
   * another online member of the group; the rest stays with the member
   * (resent with DUP when it comes back).
   */
  memberLeft(member: SharedMember): void {
    if (member.inflightCount === 0 && member.queued === 0) return;
    const taken = member.takeShared((g) => this.#canTake(g, member));
    if (taken.length === 0) return;
    const left = this.#redispatch(member, taken);
    if (left.length === 0 || member.expiryInterval === 0) return;
    for (const m of left) {
      member.deliver(m.message, m.qos, m.retain, m.subIds, undefined, m.group);
    }
  }

  /**
   * Hands the shared-subscription messages a leaving member had not
   * received for sure to other online members of their groups; returns
   * those no other member could take.
   */
  #redispatch(
    from: Subscriber,
    messages: OutgoingMessage[],
  ): OutgoingMessage[] {
    const left: OutgoingMessage[] = [];
    const maxQos = this.#maxQos;
    for (const m of messages) {
      const g = m.group as SharedGroup | undefined;
      if (g === undefined || !this.#groupLive(g)) {
        left.push(m);
        continue;
      }
      const e = pickMember(g, undefined, true, from, m.message.topic);
      if (e === undefined || !e.target.subscriber.online) {
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
  #canTake(group: object, from: Subscriber): boolean {
    const g = group as SharedGroup;
    if (!this.#groupLive(g)) return false;
    for (const e of g.members) {
      const s = e.target.subscriber;
      if (s !== from && s.online) return true;
    }
    return false;
  }

  #groupLive(g: SharedGroup): boolean {
    return this.#groups.get(g.name + "\0" + g.filter) === g;
  }
}

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
  const s = e.target.subscriber;
  s.deliver(
    message,
    e.sub.qos < cap ? e.sub.qos : cap,
    retain && e.sub.retainAsPublished === true &&
      (s.protocolVersion === 5 || s.bridge === true),
    e.sub.subscriptionIdentifier !== undefined
      ? [e.sub.subscriptionIdentifier]
      : undefined,
    cache,
    g,
  );
}

/**
 * The next member of `g` round-robin that may read `topic`: the first online
 * one with room (for QoS > 0 a free receive-window slot), else the first
 * online one, else (not when `exclude` is given) the first one at all.
 */
function pickMember(
  g: SharedGroup,
  publisherId: string | undefined,
  reliable: boolean,
  exclude: Subscriber | undefined,
  topic: string,
): Entry | undefined {
  const n = g.members.length;
  let online: Entry | undefined;
  let onlineAt = 0;
  let any: Entry | undefined;
  for (let k = 0; k < n; k++) {
    const i = (g.next + k) % n;
    const e = g.members[i]!;
    const s = e.target.subscriber;
    if (s === exclude) continue;
    if (e.sub.noLocal === true && s.clientId === publisherId) continue;
    if (s.mayRead !== undefined && !s.mayRead(topic)) continue;
    if (s.online) {
      if (reliable ? s.hasRoom() : s.writable()) {
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
