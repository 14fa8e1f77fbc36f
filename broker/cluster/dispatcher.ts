/**
 * `ClusterDispatcher`: the `Dispatcher` of a cluster node. It wraps local
 * `Router`s, so a message for subscribers of this node is delivered here at
 * once, exactly as on a single node, and goes to the other nodes only when
 * they have matching subscriptions (the route table: `RemoteRoutes`).
 *
 * - Plain subscriptions live in one local `Router`. Each distinct filter is
 *   announced once (reference counted) through the `ClusterLink`, which
 *   subscribes to its NATS subjects and puts it in the route table; a
 *   filter held by a persistent session at QoS 1 or 2 is announced as
 *   durable (its QoS 1/2 messages come through the node's JetStream inbox).
 * - Each shared group (`$share/{group}/{filter}`) lives in a `Router` of its
 *   own and is a NATS queue group named after group and filter. A message
 *   goes to exactly one member in the whole cluster: delivered here when no
 *   other node has the group, else through NATS, whose queue group picks a
 *   node (this one included), whose `Router` picks a member. A group with
 *   a persistent member at QoS 1/2 on some node is announced durable: a QoS
 *   1/2 message for it goes to a node this one picks (round robin among
 *   the nodes holding the group, this one included) through that node's
 *   JetStream inbox, so it outlives that node as a plain durable message
 *   does.
 * - A message from another node is delivered to the plain subscriptions
 *   (`deliverRemote`) or to one group (`deliverToGroup`), never both.
 * - `$SYS/...` topics stay on their node: each node publishes its own.
 *
 * @module
 */

import type { QoS } from "../../codec/packet.ts";
import { TopicMatcher } from "../../codec/topic.ts";
import type {
  Dispatcher,
  SharedFilter,
  SharedMember,
  Subscriber,
} from "../dispatcher.ts";
import { Router } from "../router.ts";
import type { StoredMessage, StoredSubscription } from "../store/store.ts";
import { hash64 } from "./_keys.ts";

/** A subscription of another node, as the route table has it. */
export interface RemoteRoute {
  /** The node holding it. */
  readonly node: string;
  /** Its queue group name, for a shared subscription. */
  readonly queue: string | undefined;
  /** Whether a persistent session holds it at QoS 1 or 2. */
  readonly durable: boolean;
}

/** The other nodes' subscriptions (the route table, eventually consistent). */
export interface RemoteRoutes {
  /** Routes known (0: nothing to look up). */
  readonly size: number;
  /** Calls `cb` for every route whose filter matches `topic`. */
  match(topic: string, cb: (route: RemoteRoute) => void): void;
  /** Whether another node has members of the queue group `queue`. */
  hasQueue(queue: string): boolean;
}

/** What the dispatcher asks of the NATS side. */
export interface ClusterLink {
  /**
   * This node's interest in a plain filter changed: `present` (some
   * subscription holds it), and `durable` (a persistent session at QoS
   * 1/2 does).
   */
  route(filter: string, present: boolean, durable: boolean): void;
  /**
   * This node's shared group `queue` appeared, changed (`durable`: a
   * persistent session at QoS 1/2 is a member) or went away.
   */
  group(
    queue: string,
    filter: string,
    present: boolean,
    durable: boolean,
  ): void;
  /**
   * Sends `message` to the other nodes: on its subject when `core` (plain
   * routes and queue groups), to the JetStream inbox of each node in
   * `durable` (QoS 1/2 for persistent sessions), and to the inbox of a node
   * picked for a durable group (`groups`: inbox, queue, inbox, queue...).
   * `handled`: queue groups this node delivered itself or sent to a picked
   * node (their NATS copies are dropped).
   */
  send(
    message: StoredMessage,
    publisherId: string | undefined,
    durable: readonly string[] | undefined,
    handled: readonly string[] | undefined,
    groups: readonly string[] | undefined,
    core: boolean,
  ): void;
  /** Hands a shared message a leaving member had to `queue` on another node. */
  sendToGroup(queue: string, message: StoredMessage): void;
}

/** One shared subscription group (share name and filter) of this node. */
interface LocalGroup {
  readonly key: string;
  /** The NATS queue group name. */
  readonly queue: string;
  readonly filter: string;
  readonly router: Router;
  /** Members that make it durable (persistent sessions at QoS 1/2). */
  readonly durable: Set<string>;
}

/** Where a QoS 1/2 message of one queue group may go (one publish). */
interface GroupPick {
  readonly queue: string;
  /** This node's group, when it has one. */
  local: LocalGroup | undefined;
  /** Inboxes of the other nodes holding it (this publish's routes). */
  readonly nodes: string[];
  /** Whether some holder is durable. */
  durable: boolean;
  /** Round-robin position among the holders. */
  next: number;
  /** Filled for the current publish. */
  touched: boolean;
}

/** The queue group name of a shared subscription: name and filter hashed. */
export function queueName(group: string, filter: string): string {
  return "q" + hash64(group + "\u0000" + filter);
}

/** A link that goes nowhere: a cluster of one (tests). */
export const NO_LINK: ClusterLink = {
  route: () => {},
  group: () => {},
  send: () => {},
  sendToGroup: () => {},
};

/** A route table without routes. */
export const NO_ROUTES: RemoteRoutes = {
  size: 0,
  match: () => {},
  hasQueue: () => false,
};

/**
 * The dispatcher of a cluster node.
 *
 * @example
 * ```ts ignore
 * const d = new ClusterDispatcher(2, link, routes);
 * d.subscribe(session, { filter: "a/+", qos: 1 });
 * d.publish(message, "publisher"); // local deliveries, and to NATS if needed
 * ```
 */
export class ClusterDispatcher implements Dispatcher {
  readonly #maxQos: QoS;
  readonly #plain: Router;
  readonly #link: ClusterLink;
  readonly #routes: RemoteRoutes;
  /** Plain filters: subscriptions holding each, and durable ones. */
  readonly #filters = new Map<string, { refs: number; durable: number }>();
  /** `clientId \0 filter` of the durable plain subscriptions. */
  readonly #durable = new Set<string>();
  readonly #groups = new Map<string, LocalGroup>();
  readonly #byQueue = new Map<string, LocalGroup>();
  readonly #groupIndex = new TopicMatcher<LocalGroup>();
  /** The groups each client is a member of. */
  readonly #memberOf = new Map<string, Set<LocalGroup>>();

  // Scratch of one publish (no allocation per message).
  #message: StoredMessage | undefined;
  #publisherId: string | undefined;
  #delivered = 0;
  #needNats = false;
  #handled: string[] = [];
  #durableNodes: string[] = [];
  /** Queue groups of QoS 1/2 messages: kept per queue, refilled per publish. */
  readonly #picks = new Map<string, GroupPick>();
  #touched: GroupPick[] = [];
  /** Inbox, queue pairs of the picked nodes of this publish. */
  #groupTargets: string[] = [];

  /** Caps deliveries at `maxQos`; talks to NATS through `link`. */
  constructor(
    maxQos: QoS,
    link: ClusterLink = NO_LINK,
    routes: RemoteRoutes = NO_ROUTES,
  ) {
    this.#maxQos = maxQos;
    this.#plain = new Router(maxQos);
    this.#link = link;
    this.#routes = routes;
  }

  // Matcher callbacks allocated once.
  #onLocalGroup = (g: LocalGroup): void => {
    if (this.#routes.hasQueue(g.queue)) {
      if (this.#message!.qos > 0) {
        const p = this.#pick(g.queue);
        p.local = g;
        if (g.durable.size > 0) p.durable = true;
      } else this.#needNats = true; // NATS picks the node, this one included
      return;
    }
    this.#delivered += g.router.publish(this.#message!, this.#publisherId);
    this.#handled.push(g.queue);
  };
  #onRoute = (r: RemoteRoute): void => {
    if (r.queue === undefined) {
      this.#needNats = true;
      if (
        r.durable && this.#message!.qos > 0 &&
        !this.#durableNodes.includes(r.node)
      ) {
        this.#durableNodes.push(r.node);
      }
    } else if (this.#message!.qos > 0) {
      const p = this.#pick(r.queue);
      if (!p.nodes.includes(r.node)) p.nodes.push(r.node);
      if (r.durable) p.durable = true;
    } else if (!this.#byQueue.has(r.queue)) this.#needNats = true;
  };

  /** The pick of `queue` for this publish. */
  #pick(queue: string): GroupPick {
    let p = this.#picks.get(queue);
    if (p === undefined) {
      p = {
        queue,
        local: undefined,
        nodes: [],
        durable: false,
        next: 0,
        touched: false,
      };
      this.#picks.set(queue, p);
    }
    if (!p.touched) {
      p.touched = true;
      p.local = undefined;
      p.nodes.length = 0;
      p.durable = false;
      this.#touched.push(p);
    }
    return p;
  }

  /**
   * Decides where this publish's QoS 1/2 messages of queue groups held on
   * other nodes go: a durable group's to one holder (round robin: here, or
   * that node's inbox), another's through NATS (its queue group picks).
   */
  #placeGroups(): void {
    for (const p of this.#touched) {
      p.touched = false;
      const remote = p.nodes.length;
      if (!p.durable) {
        if (remote > 0) this.#needNats = true;
        else if (p.local !== undefined) this.#deliverLocal(p.local);
        continue;
      }
      const holders = remote + (p.local === undefined ? 0 : 1);
      const i = p.next++ % holders;
      if (p.next >= holders) p.next = 0;
      if (i === remote) this.#deliverLocal(p.local!);
      else {
        this.#groupTargets.push(p.nodes[i]!, p.queue);
        this.#handled.push(p.queue);
      }
    }
    this.#touched.length = 0;
  }

  #deliverLocal(g: LocalGroup): void {
    this.#delivered += g.router.publish(this.#message!, this.#publisherId);
    this.#handled.push(g.queue);
  }

  /** Subscriptions held (shared ones included). */
  get size(): number {
    let n = this.#plain.size;
    for (const g of this.#groups.values()) n += g.router.size;
    return n;
  }

  /** Distinct plain filters of this node (what it announces). */
  get filters(): ReadonlyMap<string, { refs: number; durable: number }> {
    return this.#filters;
  }

  /** Adds or replaces a subscription; `shared` for a `$share` one. */
  subscribe(
    subscriber: Subscriber,
    sub: StoredSubscription,
    shared?: SharedFilter,
  ): void {
    if (shared !== undefined) {
      this.#join(subscriber, sub, shared);
      return;
    }
    const before = this.#plain.size;
    this.#plain.subscribe(subscriber, sub);
    const key = subscriber.clientId + "\u0000" + sub.filter;
    let f = this.#filters.get(sub.filter);
    let changed = false;
    if (f === undefined) {
      f = { refs: 0, durable: 0 };
      this.#filters.set(sub.filter, f);
    }
    if (this.#plain.size > before) {
      if (f.refs++ === 0) changed = true;
    }
    const durable = isDurable(subscriber, sub);
    if (durable !== this.#durable.has(key)) {
      if (durable) {
        this.#durable.add(key);
        if (f.durable++ === 0) changed = true;
      } else {
        this.#durable.delete(key);
        if (--f.durable === 0) changed = true;
      }
    }
    if (changed) this.#link.route(sub.filter, true, f.durable > 0);
  }

  #join(subscriber: Subscriber, sub: StoredSubscription, s: SharedFilter) {
    const key = s.group + "\u0000" + s.filter;
    let g = this.#groups.get(key);
    const durable = isDurable(subscriber, sub);
    if (g === undefined) {
      g = {
        key,
        queue: queueName(s.group, s.filter),
        filter: s.filter,
        router: new Router(this.#maxQos),
        durable: new Set(),
      };
      if (durable) g.durable.add(subscriber.clientId);
      this.#groups.set(key, g);
      this.#byQueue.set(g.queue, g);
      this.#groupIndex.set(s.filter, key, g);
      this.#link.group(g.queue, s.filter, true, durable);
    } else if (durable !== g.durable.has(subscriber.clientId)) {
      const was = g.durable.size > 0;
      if (durable) g.durable.add(subscriber.clientId);
      else g.durable.delete(subscriber.clientId);
      if (was !== g.durable.size > 0) {
        this.#link.group(g.queue, s.filter, true, !was);
      }
    }
    g.router.subscribe(subscriber, sub, s);
    let set = this.#memberOf.get(subscriber.clientId);
    if (set === undefined) {
      set = new Set();
      this.#memberOf.set(subscriber.clientId, set);
    }
    set.add(g);
  }

  /** Removes a subscription; true when it existed. */
  unsubscribe(
    subscriber: Subscriber,
    filter: string,
    shared?: SharedFilter,
  ): boolean {
    if (shared !== undefined) return this.#leave(subscriber, filter, shared);
    if (!this.#plain.unsubscribe(subscriber, filter)) return false;
    const f = this.#filters.get(filter)!;
    const key = subscriber.clientId + "\u0000" + filter;
    const lastDurable = this.#durable.delete(key) && --f.durable === 0;
    if (--f.refs === 0) {
      this.#filters.delete(filter);
      this.#link.route(filter, false, false);
    } else if (lastDurable) this.#link.route(filter, true, false);
    return true;
  }

  #leave(subscriber: Subscriber, filter: string, s: SharedFilter): boolean {
    const key = s.group + "\u0000" + s.filter;
    const g = this.#groups.get(key);
    if (g === undefined || !g.router.unsubscribe(subscriber, filter, s)) {
      return false;
    }
    const set = this.#memberOf.get(subscriber.clientId);
    if (set !== undefined) {
      set.delete(g);
      if (set.size === 0) this.#memberOf.delete(subscriber.clientId);
    }
    const was = g.durable.size > 0;
    g.durable.delete(subscriber.clientId);
    if (g.router.size === 0) {
      this.#groups.delete(key);
      this.#byQueue.delete(g.queue);
      this.#groupIndex.delete(s.filter, key);
      this.#picks.delete(g.queue);
      this.#link.group(g.queue, s.filter, false, false);
    } else if (was && g.durable.size === 0) {
      this.#link.group(g.queue, s.filter, true, false);
    }
    return true;
  }

  /**
   * Delivers `message` to this node's subscribers and, when other nodes
   * have matching subscriptions, sends it to them. Returns the deliveries
   * made here, plus one when it went to other nodes.
   */
  publish(message: StoredMessage, publisherId: string | undefined): number {
    let n = this.#plain.publish(message, publisherId);
    const topic = message.topic;
    const local = topic.charCodeAt(0) === 0x24 && topic.startsWith("$SYS/");
    if (this.#groups.size === 0 && (local || this.#routes.size === 0)) {
      return n;
    }
    this.#message = message;
    this.#publisherId = publisherId;
    this.#delivered = 0;
    this.#needNats = false;
    const handled = this.#handled;
    const durable = this.#durableNodes;
    const groups = this.#groupTargets;
    handled.length = 0;
    durable.length = 0;
    groups.length = 0;
    if (this.#groups.size > 0) {
      if (local) {
        this.#groupIndex.match(topic, this.#onLocalSys);
      } else this.#groupIndex.match(topic, this.#onLocalGroup);
    }
    if (!local && this.#routes.size > 0) {
      this.#routes.match(topic, this.#onRoute);
    }
    if (this.#touched.length > 0) this.#placeGroups();
    n += this.#delivered;
    if (this.#needNats || groups.length > 0) {
      this.#link.send(
        message,
        publisherId,
        durable.length > 0 ? durable : undefined,
        handled.length > 0 ? handled : undefined,
        groups.length > 0 ? groups : undefined,
        this.#needNats,
      );
      n++;
    }
    this.#message = undefined;
    return n;
  }

  #onLocalSys = (g: LocalGroup): void => {
    this.#delivered += g.router.publish(this.#message!, this.#publisherId);
  };

  /** A message from another node, for this node's plain subscriptions. */
  deliverRemote(
    message: StoredMessage,
    publisherId: string | undefined,
  ): number {
    return this.#plain.publish(message, publisherId);
  }

  /**
   * A message from another node (or this one) for the shared group
   * `queue`: one of its members here gets it. 0 when the group is gone.
   */
  deliverToGroup(
    queue: string,
    message: StoredMessage,
    publisherId: string | undefined,
  ): number {
    const g = this.#byQueue.get(queue);
    return g === undefined ? 0 : g.router.publish(message, publisherId);
  }

  /**
   * A message for the shared group `queue` that this node was picked for
   * (from its inbox): one of its members here gets it, or, when the group
   * is gone here, one on another node (through NATS).
   */
  routeToGroup(
    queue: string,
    message: StoredMessage,
    publisherId: string | undefined,
  ): number {
    const n = this.deliverToGroup(queue, message, publisherId);
    if (n > 0) return n;
    if (!this.#routes.hasQueue(queue)) return 0;
    this.#link.sendToGroup(queue, message);
    return 1;
  }

  /**
   * A member's connection ended: what it had through a group goes to
   * another online member here first (as on one node), else, when another
   * node has members of that group, to one of them.
   */
  memberLeft(member: SharedMember): void {
    if (member.inflightCount === 0 && member.queued === 0) return;
    const groups = this.#memberOf.get(member.clientId);
    if (groups === undefined) return;
    for (const g of groups) g.router.memberLeft(member);
    if (member.inflightCount === 0 && member.queued === 0) return;
    // What the routers left with the member had no other online member
    // here: another node's member of the group can take it.
    const taken = member.takeShared((obj) => {
      const g = this.#groupOf(obj);
      return g !== undefined && this.#routes.hasQueue(g.queue);
    });
    for (const m of taken) {
      const g = this.#groupOf(m.group!);
      if (g !== undefined) this.#link.sendToGroup(g.queue, m.message);
    }
  }

  /** The local group a `Router`'s group object (`name`, `filter`) is. */
  #groupOf(obj: object): LocalGroup | undefined {
    const o = obj as { name?: unknown; filter?: unknown };
    if (typeof o.name !== "string" || typeof o.filter !== "string") {
      return undefined;
    }
    return this.#groups.get(o.name + "\u0000" + o.filter);
  }

  /** The queue groups of this node, by queue name, with their filters. */
  get queues(): Iterable<[queue: string, filter: string]> {
    return [...this.#byQueue.values()].map((g) => [g.queue, g.filter]);
  }
}

/**
 * Whether a subscription makes its filter durable here: a persistent
 * session (expiry > 0) granted QoS 1 or 2.
 */
function isDurable(s: Subscriber, sub: StoredSubscription): boolean {
  const expiry = (s as Partial<SharedMember>).expiryInterval;
  return sub.qos > 0 && typeof expiry === "number" && expiry > 0;
}
