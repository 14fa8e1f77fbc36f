/**
 * `Membership`: which nodes are up. Every node publishes a heartbeat
 * (`_kite.{name}.hb`, its id and boot id) twice a second. A node not heard
 * for 1.5 s is pinged on its control subject: NATS answers "no responders"
 * at once when its connection is gone (a killed process), and the node is
 * declared dead; a node that does not answer at all for 10 s (cut off
 * behind a half-open connection) is declared dead too. A new boot id for a
 * node id means its previous run is dead. `onDead` is called once per dead
 * boot; the survivors then race to adopt what it held (reaper.ts). While
 * this node is cut off from NATS it finds nobody dead; a boot found dead
 * that is heard again (it was cut off) is reported by `onBack`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  errors,
  type NatsConnection,
  type Subscription,
} from "@nats-io/transport-node";
import type { ClusterNames } from "./nats.ts";

const log = getLogger(["kite", "cluster"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Milliseconds between heartbeats. */
export const HEARTBEAT_MS = 500;
/** Silence after which a node is pinged. */
const SUSPECT_MS = 1500;
/** Silence (with pings unanswered) after which a node is dead. */
const DEAD_MS = 10_000;
/** Dead runs whose last heartbeat is remembered. */
const GONE_KEPT = 64;

/** A node that is up, as its heartbeats say. */
export interface Peer {
  readonly node: string;
  readonly boot: string;
  lastSeen: number;
  /** Clients connected to it (from its heartbeat). */
  clients: number;
}

/** What a ping found. */
export type PingResult = "alive" | "dead" | "silent";

/** Tracks the other nodes (see the module doc). */
export class Membership {
  readonly #nc: NatsConnection;
  readonly #names: ClusterNames;
  readonly #node: string;
  readonly #boot: string;
  readonly #peers = new Map<string, Peer>();
  readonly #pinging = new Set<string>();
  /** Cut off from NATS: silence says nothing about the others. */
  #paused = false;
  /** When the runs found dead were last heard (`node.boot`; the latest few). */
  readonly #gone = new Map<string, number>();
  #sub: Subscription | undefined;
  #timer: ReturnType<typeof setInterval> | undefined;
  /** Called once for each boot of a node found dead. */
  onDead: (node: string, boot: string) => void = () => {};
  /** Called when a boot found dead is heard again (it was cut off). */
  onBack: (node: string, boot: string) => void = () => {};
  /** Clients connected here, for the heartbeat. */
  clients: () => number = () => 0;

  /** The membership of node `node` (boot `boot`). */
  constructor(
    nc: NatsConnection,
    names: ClusterNames,
    node: string,
    boot: string,
  ) {
    this.#nc = nc;
    this.#names = names;
    this.#node = node;
    this.#boot = boot;
  }

  /** Nodes up, this one included. */
  get size(): number {
    return this.#peers.size + 1;
  }

  /** The other nodes up. */
  peers(): Peer[] {
    return [...this.#peers.values()];
  }

  /**
   * When run `boot` of `node` was last heard (epoch ms): its last
   * heartbeat, while it is up or once found dead (the latest few runs);
   * undefined when this node never heard it.
   */
  lastSeen(node: string, boot: string): number | undefined {
    const p = this.#peers.get(node);
    if (p !== undefined && p.boot === boot) return p.lastSeen;
    return this.#gone.get(`${node}.${boot}`);
  }

  #dead(p: Peer): void {
    this.#gone.set(`${p.node}.${p.boot}`, p.lastSeen);
    if (this.#gone.size > GONE_KEPT) {
      this.#gone.delete(this.#gone.keys().next().value!);
    }
    this.onDead(p.node, p.boot);
  }

  /** The boot id of `node` if it is up. */
  bootOf(node: string): string | undefined {
    return node === this.#node ? this.#boot : this.#peers.get(node)?.boot;
  }

  /** Starts sending and following heartbeats. */
  start(): void {
    this.#sub = this.#nc.subscribe(this.#names.heartbeat, {
      callback: (err, m) => {
        if (err !== null) return;
        try {
          const v = JSON.parse(decoder.decode(m.data)) as {
            n: string;
            b: string;
            c?: number;
          };
          this.#seen(v.n, v.b, v.c ?? 0);
        } catch {
          // not a heartbeat
        }
      },
    });
    this.#beat();
    this.#timer = setInterval(() => {
      this.#beat();
      this.#check();
    }, HEARTBEAT_MS);
  }

  #beat(): void {
    if (this.#nc.isClosed()) return;
    try {
      this.#nc.publish(
        this.#names.heartbeat,
        encoder.encode(JSON.stringify({
          n: this.#node,
          b: this.#boot,
          c: this.clients(),
        })),
      );
    } catch {
      // Reconnecting: the next one goes.
    }
  }

  #seen(node: string, boot: string, clients: number): void {
    if (node === this.#node) return;
    const now = Date.now();
    const p = this.#peers.get(node);
    if (p !== undefined && p.boot === boot) {
      p.lastSeen = now;
      p.clients = clients;
      return;
    }
    this.#peers.set(node, { node, boot, lastSeen: now, clients });
    if (p !== undefined) {
      log.info("Cluster node {node} restarted", { node });
      this.#dead(p);
    } else if (this.#gone.delete(`${node}.${boot}`)) {
      log.warn("Cluster node {node} is back (it was found dead)", { node });
      this.onBack(node, boot);
    } else log.info("Cluster node {node} is up", { node });
  }

  #check(): void {
    if (this.#paused) return;
    const now = Date.now();
    for (const p of this.#peers.values()) {
      if (now - p.lastSeen < SUSPECT_MS || this.#pinging.has(p.node)) continue;
      this.#pinging.add(p.node);
      this.ping(p.node).then((r) => {
        this.#pinging.delete(p.node);
        const cur = this.#peers.get(p.node);
        if (cur !== p || this.#paused) return;
        if (r === "alive") return;
        if (r === "dead" || Date.now() - p.lastSeen > DEAD_MS) {
          this.#peers.delete(p.node);
          log.warn("Cluster node {node} is down", { node: p.node });
          this.#dead(p);
        }
      });
    }
  }

  /**
   * Pings `node`'s control subject: "alive" (it answered), "dead" (no
   * responders: its connection is gone) or "silent" (no answer in time).
   */
  async ping(node: string, boot?: string): Promise<PingResult> {
    try {
      const m = await this.#nc.request(
        this.#names.control(node),
        encoder.encode(JSON.stringify({ op: "ping" })),
        { timeout: 1000 },
      );
      if (boot === undefined) return "alive";
      const v = JSON.parse(decoder.decode(m.data)) as { boot?: string };
      return v.boot === boot ? "alive" : "dead";
    } catch (e) {
      if (e instanceof errors.NoRespondersError) return "dead";
      if (e instanceof errors.RequestError && e.isNoResponders()) return "dead";
      return "silent";
    }
  }

  /**
   * NATS is unreachable: no node is found dead until it is back (this node
   * cannot hear them, nor adopt what they held).
   */
  disconnected(): void {
    this.#paused = true;
  }

  /**
   * NATS came back after an outage: every node gets a fresh start (they
   * could not beat to this one either).
   */
  reconnected(): void {
    this.#paused = false;
    const now = Date.now();
    for (const p of this.#peers.values()) p.lastSeen = now;
  }

  /** Stops. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#sub?.unsubscribe();
  }
}
