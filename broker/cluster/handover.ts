/**
 * `Handover`: a client id belongs to one node at a time. When a client
 * connects, its node claims the id in the registry (compare-and-set); if
 * another node holds the session, that node is asked to `release` it: it
 * closes the client's connection there (v5 DISCONNECT 0x8E Session Taken
 * Over [MQTT-3.1.4-3]), commits the session's state (subscriptions, queued
 * and in-flight messages, QoS 2 ids) to the shared store and forgets it;
 * the claiming node then loads that state and the client resumes there. If
 * the holder is dead, its run is adopted first (reaper.ts).
 *
 * The registry entry follows the connection: connected, disconnected (a
 * persistent session stays with the node), removed (the session ended).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { NatsConnection } from "@nats-io/transport-node";
import { ReasonCode } from "../../codec/reason_code.ts";
import { type CoreConnection, sharedOf } from "../core.ts";
import type { Session } from "../session.ts";
import { ask, type ReleaseResult } from "./control.ts";
import type { NodeParts, Reaper } from "./reaper.ts";
import { encodeWill, type RegistryEntry } from "./registry.ts";

const log = getLogger(["kite", "cluster"]);

/** Longest wait for the inbox before a persistent session moves. */
const INBOX_CATCH_UP_MS = 5000;
/** Attempts at a claim before the CONNECT is refused (0x89 Server busy). */
const CLAIM_ATTEMPTS = 8;

/** What the handover needs around it. */
export interface HandoverDeps extends NodeParts {
  readonly nc: NatsConnection;
  readonly reaper: Reaper;
  /** Resolves once the inbox is taken (see `NatsLink.caughtUp`). */
  inboxCaughtUp(ms: number): Promise<void>;
}

/** Claims and releases client ids (see the module doc). */
export class Handover {
  readonly #d: HandoverDeps;
  /** Client ids being released to another node (no registry writes). */
  readonly #releasing = new Set<string>();
  readonly #claimed = new WeakSet<CoreConnection>();
  readonly #abandoned = new WeakSet<CoreConnection>();

  /** A handover over `deps`. */
  constructor(deps: HandoverDeps) {
    this.#d = deps;
  }

  #entry(id: string, connected: boolean, persistent: boolean): RegistryEntry {
    return {
      id,
      n: this.#d.node,
      b: this.#d.boot,
      c: connected,
      p: persistent,
    };
  }

  /** Makes `conn.clientId` this node's; resolves with 0 or a refusal code. */
  async claim(
    conn: CoreConnection,
    cleanStart: boolean,
    expiry: number,
  ): Promise<number> {
    const d = this.#d;
    if (!d.up()) return ReasonCode.ServerUnavailable;
    const id = conn.clientId;
    const mine = this.#entry(id, true, expiry > 0);
    for (let attempt = 0; attempt < CLAIM_ATTEMPTS; attempt++) {
      const cur = await d.registry.get(id);
      if (cur === undefined) {
        const rev = await d.registry.serial(id, () => d.registry.put(mine, 0));
        if (rev !== undefined) return this.#claimedFor(conn, cleanStart);
        continue;
      }
      const e = cur.entry;
      if (e.n === d.node && e.b === d.boot) {
        const rev = await d.registry.serial(
          id,
          () => d.registry.put(mine, cur.revision),
        );
        if (rev !== undefined) return this.#claimedFor(conn, cleanStart);
        continue;
      }
      // Held by another node, or by an earlier run of this one.
      let dead = e.n === d.node;
      if (!dead) {
        const r = await ask(d.nc, d.names, e.n, {
          op: "release",
          clientId: id,
          ...(conn.username === undefined ? {} : { username: conn.username }),
        }, 10_000);
        if (r.kind === "silent") {
          log.warn("{clientId}: node {node} does not answer", {
            clientId: id,
            node: e.n,
          });
          return ReasonCode.ServerUnavailable;
        }
        if (r.kind === "answer" && r.body.result === "refused") {
          return ReasonCode.NotAuthorized;
        }
        dead = r.kind === "dead";
      }
      if (dead) {
        // Its whole run is adopted first (wills, sessions, inbox).
        await d.reaper.reap(e.n, e.b);
        continue;
      }
      this.#dropLocal(id);
      const rev = await d.registry.serial(
        id,
        () => d.registry.put(mine, cur.revision),
      );
      if (rev === undefined) continue;
      if (e.p) {
        if (cleanStart) d.store.deleteSession(id);
        else {
          const ls = await d.store.loadSession(id);
          const core = d.core();
          if (ls !== undefined && !core.sessions.has(id)) {
            core.adoptSession(ls, Date.now());
          }
        }
      }
      log.info("{clientId}: session taken over from node {node}", {
        clientId: id,
        node: e.n,
      });
      return this.#claimedFor(conn, cleanStart);
    }
    return ReasonCode.ServerBusy;
  }

  #claimedFor(conn: CoreConnection, _cleanStart: boolean): number {
    if (this.#abandoned.has(conn)) {
      // Gone while the claim ran: what it claimed is not connected.
      this.#disconnected(conn.clientId);
      return ReasonCode.UnspecifiedError;
    }
    this.#claimed.add(conn);
    return ReasonCode.Success;
  }

  /** A local session of a client id this node no longer holds. */
  #dropLocal(id: string): void {
    const core = this.#d.core();
    const s = core.sessions.get(id);
    if (s === undefined) return;
    this.#releasing.add(id);
    try {
      s.link?.takeOver?.();
      core.releaseSession(id);
      this.#d.store.forget(id);
    } finally {
      this.#releasing.delete(id);
    }
  }

  /** The session of a claimed connection was opened. */
  opened(conn: CoreConnection, session: Session): void {
    if (!this.#claimed.has(conn)) return;
    const entry = this.#entry(conn.clientId, true, session.persistent);
    const will = conn.will;
    if (!session.persistent && will !== undefined) {
      entry.w = encodeWill(will);
      entry.v = conn.version;
      if (conn.info?.username !== undefined) entry.u = conn.info.username;
    }
    this.#d.registry.update(entry);
    // The session's expiry may have changed: its subscriptions' durability.
    const dispatcher = this.#d.dispatcher();
    for (const sub of session.subscriptions.values()) {
      const shared = sharedOf(sub.filter);
      if (shared !== undefined || !sub.filter.startsWith("$share/")) {
        dispatcher.subscribe(session, sub, shared);
      }
    }
  }

  /** A connected client's connection ended. */
  closed(conn: CoreConnection, session: Session, discarded: boolean): void {
    const id = session.clientId;
    if (this.#releasing.has(id) || !this.#claimed.has(conn)) return;
    if (discarded) this.#d.registry.remove(id);
    else this.#d.registry.update(this.#entry(id, false, true));
  }

  #disconnected(id: string): void {
    if (this.#d.core().sessions.has(id)) {
      this.#d.registry.update(this.#entry(id, false, true));
    } else this.#d.registry.remove(id);
  }

  /** A claimed connection ended before its CONNACK. */
  abandoned(conn: CoreConnection): void {
    this.#abandoned.add(conn);
    if (this.#claimed.has(conn)) this.#disconnected(conn.clientId);
  }

  /** An offline session expired here. */
  expired(session: Session): void {
    this.#d.registry.remove(session.clientId);
  }

  /**
   * Another node asks for the session of `clientId`: the connection here
   * is closed (0x8E), the state committed, the session forgotten.
   */
  async release(
    clientId: string,
    username: string | undefined,
  ): Promise<ReleaseResult> {
    const d = this.#d;
    const core = d.core();
    await d.reaper.settled(clientId);
    if (core.sessions.has(clientId)) {
      if (core.foreignOwner(clientId, username) !== undefined) {
        return "refused";
      }
      // What other nodes sent here for it goes with it.
      if (core.sessions.get(clientId)!.persistent) {
        await d.inboxCaughtUp(INBOX_CATCH_UP_MS);
      }
      this.#dropLocal(clientId);
      await core.flush();
    }
    d.registry.forget(clientId);
    return "released";
  }

  /**
   * After an outage: drops the local sessions whose registry entry another
   * node took meanwhile (their clients are told 0x8E).
   */
  async reconcile(): Promise<number> {
    const d = this.#d;
    const core = d.core();
    let lost = 0;
    for (const id of [...core.sessions.keys()]) {
      let cur;
      try {
        cur = await d.registry.get(id);
      } catch {
        return lost; // NATS went again: next time
      }
      if (
        cur === undefined || cur.entry.n !== d.node || cur.entry.b !== d.boot
      ) {
        this.#dropLocal(id);
        d.registry.forget(id);
        lost++;
      }
    }
    return lost;
  }
}
