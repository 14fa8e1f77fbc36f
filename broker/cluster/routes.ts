/**
 * `RouteTable`: which node has which subscriptions, in a JetStream KV
 * bucket every node watches (the route table EMQX keeps, here on NATS).
 *
 * A node puts one key per distinct plain filter and per shared group it
 * holds (`{node}.{hash}`, value `{f: filter, q?: queue, d?: 1, i: inbox}`)
 * and deletes it when the last subscription goes. Every node keeps the
 * others' keys in a `TopicMatcher`, so a publish asks "does another node
 * want this topic?" without any NATS round trip. The table is eventually
 * consistent: a new subscription is known on the other nodes a few
 * milliseconds after its SUBACK.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { follow, type Following } from "./_kv_follow.ts";
import { TopicMatcher } from "../../codec/topic.ts";
import type { RemoteRoute, RemoteRoutes } from "./dispatcher.ts";
import { hash64 } from "./_keys.ts";

const log = getLogger(["kite", "cluster"]);
const encoder = new TextEncoder();

interface RouteValue {
  /** The MQTT filter. */
  f: string;
  /** The queue group (shared subscription). */
  q?: string;
  /** Durable (persistent sessions at QoS 1/2; for a group: a member). */
  d?: 1;
  /** The node's inbox (`node.boot`). */
  i: string;
}

interface Known {
  filter: string;
  route: RemoteRoute;
}

/** This node's routes and the other nodes' (see the module doc). */
export class RouteTable implements RemoteRoutes {
  readonly #kv: KV;
  readonly #node: string;
  #inbox: string;
  readonly #matcher = new TopicMatcher<RemoteRoute>();
  readonly #known = new Map<string, Known>();
  readonly #queues = new Map<string, number>();
  /** This node's routes: key -> value. */
  readonly #own = new Map<string, RouteValue>();
  #following: Following | undefined;
  /** Writes since the last `settle` (the gate waits for route puts). */
  #writes: Promise<unknown>[] = [];
  #failed = false;
  /** Highest revision this node wrote, and the highest its watcher saw. */
  #written = 0;
  #applied = 0;
  #appliedWaiters: { revision: number; resolve: () => void }[] = [];
  /** Called when the remote routes changed (a node's routes appeared or went). */
  onChange: (() => void) | undefined;

  /** The table of `node` (whose inbox is `inbox`) in bucket `kv`. */
  constructor(kv: KV, node: string, inbox: string) {
    this.#kv = kv;
    this.#node = node;
    this.#inbox = inbox;
  }

  /** Remote routes known. */
  get size(): number {
    return this.#known.size;
  }

  /** Calls `cb` for every remote route matching `topic`. */
  match(topic: string, cb: (route: RemoteRoute) => void): void {
    this.#matcher.match(topic, cb);
  }

  /** Whether another node has members of `queue`. */
  hasQueue(queue: string): boolean {
    return this.#queues.has(queue);
  }

  /** The nodes (ids) that have routes. */
  nodes(): Set<string> {
    const out = new Set<string>();
    for (const k of this.#known.values()) out.add(k.route.node);
    return out;
  }

  /** Loads the table and follows it; resolves once it is loaded. */
  async start(): Promise<void> {
    this.#following = await follow(
      this.#kv,
      (e) => this.#apply(e),
      log,
      "route table",
    );
  }

  #apply(e: KvWatchEntry): void {
    if (e.revision > this.#applied) {
      this.#applied = e.revision;
      if (this.#appliedWaiters.length > 0) {
        const ready = this.#appliedWaiters.filter((w) =>
          w.revision <= e.revision
        );
        this.#appliedWaiters = this.#appliedWaiters.filter((w) =>
          w.revision > e.revision
        );
        for (const w of ready) w.resolve();
      }
    }
    const dot = e.key.indexOf(".");
    const node = e.key.slice(0, dot);
    if (node === this.#node) return;
    this.#forget(e.key);
    if (e.operation !== "PUT") return;
    let v: RouteValue;
    try {
      v = e.json<RouteValue>();
    } catch {
      return;
    }
    if (typeof v.f !== "string" || typeof v.i !== "string") return;
    const route: RemoteRoute = {
      node: v.i,
      queue: v.q,
      durable: v.d === 1,
    };
    try {
      this.#matcher.set(v.f, e.key, route);
    } catch {
      return; // not a valid filter: ignore
    }
    this.#known.set(e.key, { filter: v.f, route });
    if (v.q !== undefined) {
      this.#queues.set(v.q, (this.#queues.get(v.q) ?? 0) + 1);
    }
    this.onChange?.();
  }

  #forget(key: string): void {
    const k = this.#known.get(key);
    if (k === undefined) return;
    this.#known.delete(key);
    this.#matcher.delete(k.filter, key);
    const q = k.route.queue;
    if (q !== undefined) {
      const n = (this.#queues.get(q) ?? 1) - 1;
      if (n === 0) this.#queues.delete(q);
      else this.#queues.set(q, n);
    }
    this.onChange?.();
  }

  /** Announces (or updates) this node's plain filter. */
  putFilter(filter: string, durable: boolean): void {
    const v: RouteValue = { f: filter, i: this.#inbox };
    if (durable) v.d = 1;
    this.#put(this.#node + "." + hash64("f\u0000" + filter), v);
  }

  /** Points this node's routes at a new inbox (`resync` writes them again). */
  moveInbox(inbox: string): void {
    this.#inbox = inbox;
    for (const v of this.#own.values()) v.i = inbox;
  }

  /** Whether some of this node's routes are missing from the table. */
  async ownMissing(): Promise<boolean> {
    const present = new Set<string>();
    for await (const k of await this.#kv.keys(this.#node + ".>")) {
      present.add(k);
    }
    for (const k of this.#own.keys()) if (!present.has(k)) return true;
    return false;
  }

  /** Withdraws this node's plain filter. */
  deleteFilter(filter: string): void {
    this.#delete(this.#node + "." + hash64("f\u0000" + filter));
  }

  /**
   * Announces (or updates) this node's shared group `queue` on `filter`;
   * `durable` when a persistent session is a member at QoS 1/2.
   */
  putQueue(queue: string, filter: string, durable: boolean): void {
    const v: RouteValue = { f: filter, q: queue, i: this.#inbox };
    if (durable) v.d = 1;
    this.#put(this.#node + "." + hash64("q\u0000" + queue), v);
  }

  /** Withdraws this node's shared group `queue`. */
  deleteQueue(queue: string): void {
    this.#delete(this.#node + "." + hash64("q\u0000" + queue));
  }

  #put(key: string, v: RouteValue): void {
    this.#own.set(key, v);
    this.#track(
      this.#kv.put(key, encoder.encode(JSON.stringify(v))).then((rev) => {
        if (rev > this.#written) this.#written = rev;
      }),
    );
  }

  #delete(key: string): void {
    if (!this.#own.delete(key)) return;
    this.#track(this.#kv.delete(key));
  }

  #track(p: Promise<unknown>): void {
    const guarded = p.catch(() => {
      this.#failed = true;
    });
    this.#writes.push(guarded);
  }

  /**
   * Resolves when this node's route writes so far are stored, with the
   * highest revision written (`ok` false when one failed: NATS was
   * unreachable, `resync` puts them again).
   */
  async settle(): Promise<{ ok: boolean; revision: number }> {
    while (this.#writes.length > 0) {
      const w = this.#writes;
      this.#writes = [];
      await Promise.all(w);
    }
    const ok = !this.#failed;
    this.#failed = false;
    return { ok, revision: this.#written };
  }

  /**
   * Resolves once this node's watcher has seen `revision` of the table (or
   * after `timeout` ms).
   */
  waitApplied(revision: number, timeout: number): Promise<void> {
    if (this.#applied >= revision) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const w = { revision, resolve };
    this.#appliedWaiters.push(w);
    const timer = setTimeout(() => {
      this.#appliedWaiters = this.#appliedWaiters.filter((x) => x !== w);
      resolve();
    }, timeout);
    return promise.finally(() => clearTimeout(timer));
  }

  /**
   * Writes this node's routes again and removes its stale keys (after
   * NATS came back, or at start-up over a previous run's keys).
   */
  async resync(): Promise<void> {
    const stale: string[] = [];
    for await (const k of await this.#kv.keys(this.#node + ".>")) {
      if (!this.#own.has(k)) stale.push(k);
    }
    await Promise.all([
      ...stale.map((k) => this.#kv.delete(k)),
      ...[...this.#own].map(([k, v]) =>
        this.#kv.put(k, encoder.encode(JSON.stringify(v)))
      ),
    ]);
  }

  /**
   * Removes the routes of a dead run of a node (`inbox` is `node.boot`):
   * its sessions moved. Keys the node wrote in a later run stay.
   */
  async removeRun(node: string, inbox: string): Promise<void> {
    const doomed: string[] = [];
    for (const [key, k] of this.#known) {
      const i = k.route.node;
      if (i === inbox || i.startsWith(inbox + "-")) doomed.push(key);
    }
    if (node === this.#node) {
      // This node's earlier run: whatever it has not put again.
      for await (const k of await this.#kv.keys(node + ".>")) {
        if (!this.#own.has(k)) doomed.push(k);
      }
    }
    await Promise.all(doomed.map((k) => this.#kv.delete(k)));
  }

  /** Stops following the table; withdraws this node's routes when `leave`. */
  async close(leave: boolean): Promise<void> {
    await this.#following?.stop();
    if (leave) {
      await Promise.allSettled(
        [...this.#own.keys()].map((k) => this.#kv.delete(k)),
      );
    }
  }
}
