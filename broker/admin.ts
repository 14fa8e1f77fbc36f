/**
 * What an operator sees and does (the admin API in http/ calls these): views
 * of the connected clients, the sessions and the subscriptions, and the
 * actions on them (kick a client, end a session, list or delete retained
 * messages). Read-only views are built on demand; nothing here runs on the
 * message path.
 *
 * @module
 */

import type { BrokerCore, CoreConnection } from "./core.ts";
import type { StoredMessage } from "./store/store.ts";
import {
  type ClientView,
  clientView,
  type SessionView,
  sessionView,
  type SubscriptionView,
  subscriptionViews,
} from "./views.ts";

/** The connection of client `clientId`, when it is connected. */
function connected(
  core: BrokerCore,
  clientId: string,
): CoreConnection | undefined {
  const link = core.sessions.get(clientId)?.link as CoreConnection | undefined;
  return link !== undefined && core.connections.has(link) ? link : undefined;
}

/**
 * The operator's view of one broker.
 *
 * @example
 * ```ts ignore
 * const admin = new Admin(core);
 * admin.clients().length; // clients connected now
 * admin.kick("sensor-1"); // v5 DISCONNECT 0x98
 * ```
 */
export class Admin {
  readonly #core: BrokerCore;

  /** The admin of `core`. */
  constructor(core: BrokerCore) {
    this.#core = core;
  }

  /** The connected clients. */
  clients(): ClientView[] {
    const out: ClientView[] = [];
    for (const c of this.#core.connections) {
      const s = c.session;
      if (s !== undefined && s.link === c) out.push(clientView(c, s));
    }
    return out;
  }

  /** The connected client `clientId`, if there is one. */
  client(clientId: string): ClientView | undefined {
    const c = connected(this.#core, clientId);
    return c === undefined ? undefined : clientView(c, c.session!);
  }

  /** Disconnects client `clientId` (v5 0x98); false when not connected. */
  kick(clientId: string): boolean {
    const c = connected(this.#core, clientId);
    c?.kick();
    return c !== undefined;
  }

  /** Every session, connected or offline. */
  sessions(): SessionView[] {
    return Array.from(this.#core.sessions.values(), sessionView);
  }

  /** The session of `clientId`, if there is one. */
  session(clientId: string): SessionView | undefined {
    const s = this.#core.sessions.get(clientId);
    return s === undefined ? undefined : sessionView(s);
  }

  /**
   * Ends the session of `clientId` now: its client (if connected) is
   * kicked, its will (if pending) published, its subscriptions and
   * messages dropped. False when there is no such session.
   */
  endSession(clientId: string): boolean {
    const core = this.#core;
    const s = core.sessions.get(clientId);
    if (s === undefined) return false;
    this.kick(clientId);
    const w = core.pendingWills.get(clientId);
    if (w !== undefined) {
      core.pendingWills.delete(clientId);
      core.publishWill(w.message, w.info);
    }
    if (core.sessions.get(clientId) === s) core.discardSession(s);
    core.metrics.sessionsDiscarded++;
    return true;
  }

  /** Every subscription of every session. */
  subscriptions(): SubscriptionView[] {
    const out: SubscriptionView[] = [];
    for (const s of this.#core.sessions.values()) {
      if (s.subscriptionCount > 0) out.push(...subscriptionViews(s));
    }
    return out;
  }

  /** The retained messages (not expired) whose topics match `filter`. */
  retainedMatching(filter: string): StoredMessage[] {
    const out: StoredMessage[] = [];
    const now = Date.now();
    this.#core.retained.match(filter, (m) => {
      if (m.expiresAt === undefined || m.expiresAt > now) out.push(m);
    });
    return out;
  }

  /** Removes the retained message of `topic`; false when there was none. */
  deleteRetained(topic: string): boolean {
    const core = this.#core;
    core.retainedExpiry.delete(topic);
    if (!core.retained.delete(topic)) return false;
    if (!topic.startsWith("$SYS/")) core.store.putRetained(topic, undefined);
    return true;
  }
}
