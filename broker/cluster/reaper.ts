/**
 * `Reaper`: what a dead node held, taken over by one survivor. Any node
 * that finds a run of a node dead (membership, or a claim that found the
 * holder gone) calls `reap`; the first to take the run's lock in the
 * registry does it, the others wait until it is done. An adoption that
 * fails (JetStream not answering) is tried again two seconds later, with
 * what it adopted so far, until it is done or the run is heard again:
 *
 * - each registry entry of that run is taken over by compare-and-set (so a
 *   client that reconnects meanwhile and the reaper never both get it);
 * - a persistent session is loaded from the store and adopted here,
 *   offline, as if its connection was lost at the run's last heartbeat: a
 *   will it had (the client was connected) is published after its v5 Will
 *   Delay Interval from then, or when the session expires if that is
 *   first, and not at all if the client reconnects (to any node) in time;
 * - a non-persistent session ends: the will of a client connected at the
 *   time is published, once (the entry is deleted by compare-and-set first);
 * - the run's routes are removed once this node announced the adopted
 *   sessions' subscriptions, and its JetStream inbox (QoS 1/2 messages other
 *   nodes sent it for persistent sessions) is drained into the adopted
 *   sessions, then deleted. An inbox message the dead node had delivered
 *   but not acknowledged comes again: its QoS 2 messages are not taken by a
 *   session whose stored outgoing messages hold their `origin` (link.ts
 *   acknowledges such a message before their PUBLISH can reach a client,
 *   so whatever the client received is still stored).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { QoS } from "../../codec/packet.ts";
import type { BrokerCore } from "../core.ts";
import type { Session } from "../session.ts";
import type { ClientInfo } from "../hooks.ts";
import type { JetStreamStore } from "./jetstream_store.ts";
import { INBOX_ACK_WAIT_MS, inboxConsumer } from "./_inbox.ts";
import type { ClusterNames, NatsHandles } from "./nats.ts";
import { type SessionRegistry, willOf } from "./registry.ts";
import type { RouteTable } from "./routes.ts";
import { decodeMessage, decodeRaw, wireMeta } from "./_wire.ts";
import { DrainTarget, originsOf } from "./_drain_target.ts";
import type { ClusterDispatcher } from "./dispatcher.ts";
import { PACK_HEADER, unpack } from "./_inbox_pack.ts";

const log = getLogger(["kite", "cluster"]);

/** How long other nodes get to stop using a dead run's routes. */
const ROUTE_GRACE_MS = 1000;
/** How long a node waits for another to finish adopting a run. */
const WAIT_MS = 30_000;
/** Longest drain of a dead run's inbox. */
const DRAIN_MS = 60_000;
/** Wait before a failed adoption is tried again. */
const RETRY_MS = 2000;

/**
 * What the reaper and the handover both get from the node: its run, its
 * NATS names, the session registry and the store, and the core and
 * dispatcher (made later), and whether NATS is reachable now.
 */
export interface NodeParts {
  readonly node: string;
  readonly boot: string;
  readonly names: ClusterNames;
  readonly registry: SessionRegistry;
  readonly store: JetStreamStore;
  core(): BrokerCore;
  dispatcher(): ClusterDispatcher;
  /** Whether NATS is reachable now. */
  up(): boolean;
}

/** What the reaper needs around it. */
export interface ReaperDeps extends NodeParts {
  readonly h: NatsHandles;
  readonly routes: RouteTable;
  /** Whether the node is closing (nothing more is adopted). */
  closing(): boolean;
  /** When run `boot` of `node` was last heard (undefined: never here). */
  lastSeen(node: string, boot: string): number | undefined;
  /** Whether run `boot` of `node` is up (heard again). */
  alive(node: string, boot: string): boolean;
}

/** Adopts dead runs (see the module doc). */
export class Reaper {
  readonly #d: ReaperDeps;
  readonly #runs = new Map<string, Promise<void>>();
  /** Adopted client ids whose inbox drain is not finished. */
  readonly #draining = new Map<string, Promise<void>>();
  readonly #done = new Set<string>();
  /** Runs whose adoption failed part way: what was adopted so far. */
  readonly #partial = new Map<
    string,
    {
      adopted: Session[];
      held: Map<Session, Set<string>>;
      /** Client ids whose registry entry is this node's, not yet loaded. */
      claimed: Set<string>;
      wills: number;
    }
  >();
  readonly #timers = new Set<ReturnType<typeof setTimeout>>();

  /** A reaper over `deps`. */
  constructor(deps: ReaperDeps) {
    this.#d = deps;
  }

  /**
   * Adopts the run `boot` of `node` (or waits for the node that does).
   * Resolves when it is done, or failed (then it is tried again a little
   * later, while that run is still gone).
   */
  reap(node: string, boot: string): Promise<void> {
    const run = `${node}.${boot}`;
    if (this.#done.has(run)) return Promise.resolve();
    let p = this.#runs.get(run);
    if (p === undefined) {
      p = this.#reap(node, boot).catch((e) => {
        log.error("adopting node {node} failed: {error}; trying again", {
          node,
          error: (e as Error).message,
        });
        this.#retryLater(node, boot);
      }).finally(() => {
        this.#runs.delete(run);
      });
      this.#runs.set(run, p);
    }
    return p;
  }

  #retryLater(node: string, boot: string): void {
    const d = this.#d;
    if (d.closing()) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      const run = `${node}.${boot}`;
      if (d.closing() || this.#done.has(run) || d.alive(node, boot)) return;
      this.reap(node, boot);
    }, RETRY_MS);
    this.#timers.add(timer);
  }

  /**
   * Run `boot` of `node`, found dead, is back (it was cut off): what it
   * holds from now on is adopted again if it dies.
   */
  returned(node: string, boot: string): void {
    this.#done.delete(`${node}.${boot}`);
  }

  /** The adoptions in progress. */
  running(): Promise<void>[] {
    return [...this.#runs.values()];
  }

  /** Stops trying failed adoptions again. */
  stop(): void {
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  /** Resolves once an adopted session's inbox messages are delivered. */
  settled(clientId: string): Promise<void> {
    return this.#draining.get(clientId) ?? Promise.resolve();
  }

  async #reap(node: string, boot: string): Promise<void> {
    const d = this.#d;
    if (d.closing()) return;
    // Cut off from NATS, a node cannot tell who is gone (nor adopt).
    if (!d.up()) throw new Error("NATS is unreachable");
    const run = `${node}.${boot}`;
    const lock = `${node}_${boot}`;
    if (!(await d.registry.lock(lock, `${d.node}.${d.boot}`))) {
      await this.#waitAdopted(node, boot);
      this.#done.add(run);
      return;
    }
    // What an earlier try adopted stays adopted (its inbox drain too).
    let state = this.#partial.get(run);
    const retry = state !== undefined;
    if (state === undefined) {
      state = { adopted: [], held: new Map(), claimed: new Set(), wills: 0 };
      this.#partial.set(run, state);
    }
    const { adopted, held, claimed } = state;
    const { promise: drained, resolve: drainDone } = Promise.withResolvers<
      void
    >();
    for (const s of adopted) this.#draining.set(s.clientId, drained);
    try {
      const core = d.core();
      const all = await d.registry.all();
      const entries = all.filter((v) =>
        v.entry.n === node && v.entry.b === boot
      );
      log.debug("Adopting {run}: {count} registry entries", {
        run,
        count: entries.length,
      });
      // Its clients' connections count as lost at its last heartbeat.
      const lostAt = d.lastSeen(node, boot) ?? Date.now();
      const adopt = async (id: string): Promise<void> => {
        const ls = await d.store.loadSession(id);
        claimed.delete(id);
        const s = ls === undefined || core.sessions.has(id)
          ? undefined
          : core.adoptSession(ls, Date.now(), lostAt);
        if (s === undefined) {
          log.debug("{clientId}: no stored session ({found}), not adopted", {
            clientId: id,
            found: ls !== undefined,
          });
          if (!core.sessions.has(id)) await d.registry.remove(id);
          return;
        }
        if (ls?.record.will !== undefined) state.wills++;
        adopted.push(s);
        held.set(s, originsOf(ls!));
        this.#draining.set(id, drained);
      };
      // Taken by an earlier try, not loaded then (or whose answer was
      // lost: this node's, offline, and not here).
      if (retry) {
        for (const v of all) {
          const e = v.entry;
          if (
            e.n === d.node && e.b === d.boot && e.p && !e.c &&
            !core.sessions.has(e.id)
          ) claimed.add(e.id);
        }
      }
      for (const id of [...claimed]) await adopt(id);
      for (const { entry, revision } of entries) {
        if (entry.p) {
          const rev = await d.registry.put({
            id: entry.id,
            n: d.node,
            b: d.boot,
            c: false,
            p: true,
          }, revision);
          if (rev === undefined) {
            log.debug("{clientId}: changed meanwhile, not adopted", {
              clientId: entry.id,
            });
            continue; // its client reconnected meanwhile
          }
          claimed.add(entry.id);
          await adopt(entry.id);
          continue;
        }
        if (!(await d.registry.removeAt(entry.id, revision))) continue;
        const will = willOf(entry);
        if (entry.c && will !== undefined) {
          const info: ClientInfo = {
            clientId: entry.id,
            protocolVersion: entry.v ?? 4,
          };
          if (entry.u !== undefined) info.username = entry.u;
          core.publishWill(will, info);
          state.wills++;
        }
      }
      log.warn(
        "Node {node} is gone: adopted {sessions} of its sessions, {wills} will(s) to publish",
        { node, sessions: adopted.length, wills: state.wills },
      );
      // Announce the adopted subscriptions before the dead run's go.
      await core.flush();
      await d.routes.settle();
      await d.routes.removeRun(node, run);
      await this.#drain(run, adopted, held);
      this.#partial.delete(run);
      this.#done.add(run);
    } finally {
      for (const s of adopted) {
        if (this.#draining.get(s.clientId) === drained) {
          this.#draining.delete(s.clientId);
        }
      }
      drainDone();
      await d.registry.unlock(lock);
    }
  }

  /** Waits until no registry entry of the run is left (another node adopts). */
  async #waitAdopted(node: string, boot: string): Promise<void> {
    const deadline = Date.now() + WAIT_MS;
    while (Date.now() < deadline && !this.#d.closing()) {
      const left = (await this.#d.registry.all()).some((v) =>
        v.entry.n === node && v.entry.b === boot
      );
      if (!left) return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /**
   * Delivers what is left in the run's inbox to the adopted sessions, then
   * deletes the inbox consumer.
   */
  async #drain(
    run: string,
    adopted: Session[],
    held: Map<Session, Set<string>>,
  ): Promise<void> {
    const d = this.#d;
    // Its inbox, and the ones it used after coming back from a split.
    const base = inboxConsumer(run);
    const names: string[] = [];
    for await (const ci of d.h.jsm.consumers.list(d.names.inboxStream)) {
      if (ci.name === base || ci.name.startsWith(base + "-")) {
        names.push(ci.name);
      }
    }
    if (names.length === 0) return; // no inbox (no durable subscriptions)
    const core = d.core();
    const target = new DrainTarget(
      core.settings.maxQos as QoS,
      adopted,
      held,
      d.dispatcher(),
    );
    // Other nodes may still send to the dead run for a moment.
    await new Promise((r) => setTimeout(r, ROUTE_GRACE_MS));
    let delivered = 0;
    for (const name of names) delivered += await this.#drainOne(name, target);
    if (delivered > 0) {
      log.info("Delivered {count} message(s) from {run}'s inbox", {
        count: delivered,
        run,
      });
    }
  }

  /** Drains the inbox consumer `name` into `target`, then deletes it. */
  async #drainOne(name: string, target: DrainTarget): Promise<number> {
    const d = this.#d;
    const core = d.core();
    const c = await d.h.js.consumers.get(d.names.inboxStream, name);
    const meta = wireMeta();
    let delivered = 0;
    const deadline = Date.now() + DRAIN_MS + INBOX_ACK_WAIT_MS;
    while (Date.now() < deadline && !d.closing()) {
      const batch = await c.fetch({ max_messages: 500, expires: 1000 });
      const msgs = [];
      for await (const m of batch) {
        if (m.headers?.get(PACK_HEADER) === "1") {
          unpack(m.data, (block, payload) => {
            const message = decodeRaw(block, payload, meta);
            if (message !== undefined) delivered += target.take(message, meta);
          });
        } else {
          const message = decodeMessage(undefined, m, meta);
          if (message !== undefined) delivered += target.take(message, meta);
        }
        msgs.push(m);
      }
      if (msgs.length > 0) {
        await core.flush();
        for (const m of msgs) m.ack();
        continue;
      }
      // Empty: done unless the dead node had taken messages it never
      // acknowledged (they come back after the ack wait).
      const info = await c.info();
      if (info.num_pending === 0 && info.num_ack_pending === 0) break;
    }
    await d.h.jsm.consumers.delete(d.names.inboxStream, name).catch(() => {});
    return delivered;
  }
}
