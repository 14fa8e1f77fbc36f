/**
 * The broker core: sessions (open, take over, discard, expire), wills,
 * retained messages, and publishing into the `Dispatcher`. It knows
 * connections only as `CoreConnection` and sockets not at all.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { parseSharedSubscription } from "../codec/topic.ts";
import { CommitGate } from "./commit_gate.ts";
import type { IoTurn } from "./connection/_io_turn.ts";
import type { Dispatcher, SharedFilter } from "./dispatcher.ts";
import {
  DropReason,
  type GaugeSource,
  type MessageCounts,
  Metrics,
} from "./metrics.ts";
import type { BrokerOptions, BrokerSettings } from "./config/types.ts";
import { anonymousAllowed, DEFAULT_OPTIONS } from "./config/defaults.ts";
import type { BrokerHooks, ClientInfo } from "./hooks.ts";
import { RetainedMessages } from "./retained.ts";
import { Router } from "./router.ts";
import { isSysTopic } from "./_topic_rules.ts";
import {
  ownPayload,
  Session,
  type SessionContext,
  type SessionLink,
} from "./session.ts";
import type {
  LoadedSession,
  SessionOwner,
  SessionRecord,
  Store,
  StoredMessage,
} from "./store/store.ts";
import { plural } from "./_plural.ts";
import { SliceWalk } from "./_slice_walk.ts";
import { isBridgeId } from "./bridge/_id.ts";
import type { ViewedConnection } from "./views.ts";
import { AS_DOUBLE } from "../codec/_double.ts";

const log = getLogger(["kite", "broker"]);

/** How often expired retained messages are looked for. */
const RETAINED_SWEEP_MS = 5000;
/**
 * How often the broker calls `sweep`, and how long one round over every
 * connection and offline session takes: each call checks one slice, so a
 * broker with many connections pauses briefly and often rather than long
 * (10,000 idle connections took about 1 ms at once).
 */
export const SWEEP_MS = 50;
const SWEEP_ROUND_MS = 250;
const SWEEP_SLICES = SWEEP_ROUND_MS / SWEEP_MS;

/** Options of `new Broker()`: the settings, the hooks, and optionally a store. */
export interface BrokerInit extends BrokerOptions {
  /**
   * The store to mirror durable state into. Default: a `KvStore` at
   * `persistencePath` when `enablePersistence`, else a `MemoryStore`.
   */
  store?: Store;
}

interface PendingWill {
  message: StoredMessage;
  dueAt: number;
  /** Who the will is authorized as when it is published. */
  info: ClientInfo;
}

/** What the core needs from a client connection (also its sessions' link). */
export interface CoreConnection extends SessionLink, ViewedConnection {
  /** The client identifier ("" until the CONNECT is read). */
  readonly clientId: string;
  /** The will of this connection, published on an ungraceful close. */
  readonly will: StoredMessage | undefined;
  /** v5 will delay interval in seconds. */
  readonly willDelay: number;
  /** Who the hooks are told about. */
  readonly info: ClientInfo | undefined;
  /** The user name it connected (or authenticated) with. */
  readonly username: string | undefined;
  /** The session, once connected. */
  readonly session: Session | undefined;
  /** Checks the connect timeout and keep alive. */
  checkTimeouts(now: number): void;
  /** Closes the connection because the broker is shutting down. */
  shutdown(): void;
  /** Closes it for an administrator: v5 DISCONNECT 0x98, will published. */
  kick(): void;
  /** Resolves when the connection is closed. */
  readonly closed: Promise<void>;
}

/**
 * What a cluster (broker/cluster/) plugs into the core: its dispatcher and
 * hooks at the points where a session changes hands. Absent on a single
 * node, where none of this costs anything.
 */
export interface CorePlugin {
  /** The dispatcher to route with (wrapping a local `Router`). */
  dispatcher(core: BrokerCore): Dispatcher;
  /**
   * Before the CONNACK: makes `conn.clientId` this node's (taking the
   * session over from another node). Resolves with 0 to go on, or the
   * reason code to refuse the CONNECT with.
   */
  claim(conn: CoreConnection, cleanStart: boolean, expiry: number): Promise<
    number
  >;
  /** The session of a claimed connection is open (just before CONNACK). */
  opened(conn: CoreConnection, session: Session): void;
  /** A connection that was claimed for ended before its CONNACK. */
  abandoned(conn: CoreConnection): void;
  /** A connected client's connection ended (after the core handled it). */
  closed(conn: CoreConnection, session: Session, discarded: boolean): void;
  /** An offline session expired (the core discarded it). */
  expired(session: Session): void;
}

/**
 * The broker's internals shared with its connections (not public API).
 */
export class BrokerCore implements GaugeSource {
  readonly settings: Readonly<Required<BrokerSettings>>;
  readonly hooks: BrokerHooks;
  /** Group commit: output that waits for durable state waits here. */
  readonly gate: CommitGate;
  /** The store (a mutation of a durable one marks the gate dirty). */
  readonly store: Store;
  readonly dispatcher: Dispatcher;
  readonly retained: RetainedMessages = new RetainedMessages();
  readonly sessions: Map<string, Session> = new Map();
  readonly connections: Set<CoreConnection> = new Set();
  /** Connections ended but still writing or draining (see Connection.end). */
  readonly closing: Set<CoreConnection> = new Set();
  readonly metrics: Metrics = new Metrics(this);
  /** Bytes a connection may buffer before QoS 0 messages to it are dropped. */
  outputBufferLimit: number;
  /** Where a connection that used its read budget waits (connection.ts). */
  ioTurn: IoTurn | undefined;
  connectedCount = 0;
  /** Sessions offline with a finite expiry, checked by the sweep. */
  readonly offline: Set<Session> = new Set();
  readonly pendingWills: Map<string, PendingWill> = new Map();
  readonly sessionContext: SessionContext;
  /** The cluster's hooks, when this broker is a node of one. */
  readonly plugin: CorePlugin | undefined;
  /**
   * Where bridges keep their messages for the remote: the store when it is
   * durable and loaded whole at start-up (not a cluster's); else undefined
   * (they are kept in memory only).
   */
  readonly bridgeStore: Store | undefined;
  /** Bridges' stored messages from start-up, by bridge id, until taken. */
  readonly #bridgeStates = new Map<string, LoadedSession>();

  /** Retained messages with a Message Expiry Interval: topic -> expiresAt. */
  readonly retainedExpiry: Map<string, number> = new Map();
  #nextRetainedSweep = AS_DOUBLE; // timestamps: doubles from the start
  readonly #connSweep = new SliceWalk(this.connections, SWEEP_SLICES);
  readonly #offlineSweep = new SliceWalk(this.offline, SWEEP_SLICES);
  #sweepNow = AS_DOUBLE;

  constructor(init: BrokerInit, store: Store, plugin?: CorePlugin) {
    const settings = { ...DEFAULT_OPTIONS } as Required<BrokerSettings>;
    const hooks: BrokerHooks = {};
    for (const [k, v] of Object.entries(init)) {
      if (v === undefined || k === "store") continue;
      if (
        k === "authenticate" || k === "authorizePublish" ||
        k === "authorizeSubscribe" || k === "enhancedAuth" ||
        k === "authorizeRead" || k === "authorizationEpoch"
      ) {
        (hooks as Record<string, unknown>)[k] = v;
      } else (settings as Record<string, unknown>)[k] = v;
    }
    settings.allowAnonymous = anonymousAllowed(init);
    this.settings = settings;
    this.hooks = hooks;
    this.outputBufferLimit = settings.outputBufferLimit;
    this.gate = new CommitGate(store, this.metrics.storeCommit);
    this.store = this.gate.store;
    this.plugin = plugin;
    this.bridgeStore = store.durable === false || plugin !== undefined
      ? undefined
      : this.store;
    this.dispatcher = plugin?.dispatcher(this) ?? new Router(settings.maxQos);
    this.sessionContext = {
      store: this.store,
      maxQueuedMessages: settings.maxQueuedMessages,
      maxQueuedBytes: settings.maxQueuedBytes,
      queueQos0Messages: settings.queueQos0Messages,
      stats: this.metrics,
    };
    if (hooks.authorizeRead !== undefined) {
      this.sessionContext.authorizeRead = hooks.authorizeRead;
    }
    if (hooks.authorizationEpoch !== undefined) {
      this.sessionContext.authorizationEpoch = hooks.authorizationEpoch;
    }
  }

  // GaugeSource: what the metrics read.
  connectedClients(): number {
    return this.connectedCount;
  }
  sessionCount(): number {
    return this.sessions.size;
  }
  subscriptionCount(): number {
    return this.dispatcher.size;
  }
  retainedCount(): number {
    return this.retained.size;
  }
  connectionCount(): number {
    return this.connections.size;
  }
  sharedSubscriptionCount(): number {
    return this.dispatcher.sharedSize ?? 0;
  }
  retainedBytes(): number {
    return this.retained.bytes;
  }
  messageCounts(): MessageCounts {
    const n: MessageCounts = { queued: 0, queuedBytes: 0, inflight: 0 };
    for (const s of this.sessions.values()) {
      n.queued += s.waiting;
      n.queuedBytes += s.queuedBytes;
      n.inflight += s.inflightCount;
    }
    return n;
  }

  /** Rebuilds sessions, subscriptions and retained messages from the store. */
  async load(): Promise<void> {
    const state = await this.store.load();
    const now = Date.now();
    for (const m of state.retained) {
      if (m.expiresAt !== undefined && m.expiresAt <= now) {
        this.store.putRetained(m.topic, undefined);
        continue;
      }
      this.retained.set(m);
      if (m.expiresAt !== undefined) {
        this.retainedExpiry.set(m.topic, m.expiresAt);
      }
    }
    let dropped = 0;
    for (const ls of state.sessions) {
      if (isBridgeId(ls.record.clientId)) {
        this.#bridgeStates.set(ls.record.clientId, ls);
      } else if (this.adoptSession(ls, now) === undefined) dropped++;
    }
    const retained = this.retained.size;
    const sessions = this.sessions.size;
    log.info(
      `Loaded {retained} ${plural(retained, "retained message")} and ` +
        `{sessions} ${plural(sessions, "session")} ({dropped} expired)`,
      { retained, sessions, dropped },
    );
  }

  /**
   * Installs a stored session (at start-up, or one a cluster node took over
   * from another): offline, its subscriptions routed, its messages and QoS 2
   * ids restored, a will it still had made pending. An expired one is
   * deleted instead (its will published) and undefined returned.
   */
  adoptSession(
    ls: LoadedSession,
    now: number,
    lostAt: number = now,
  ): Session | undefined {
    const r = ls.record;
    // Stored while connected: the connection was lost at `lostAt` (a crash
    // before this start, or a dead cluster node's last heartbeat).
    const since = r.disconnectedAt ?? lostAt;
    if (
      r.expiryInterval !== 0xffffffff &&
      since + r.expiryInterval * 1000 <= now
    ) {
      if (r.will !== undefined) {
        this.#publishWill(r.will, identityOf(r), now);
      }
      this.store.deleteSession(r.clientId);
      this.metrics.sessionsExpired++;
      return undefined;
    }
    const s = new Session(
      r.clientId,
      r.protocolVersion,
      r.expiryInterval,
      this.sessionContext,
    );
    s.disconnectedAt = since;
    if (r.owner !== undefined) {
      s.owner = r.owner;
      s.username = r.owner.username;
    }
    // Mosquitto's bridge flag of its last connection: what is queued for it
    // before it connects again keeps its retain flag.
    if (r.bridge === true) s.bridge = true;
    for (const sub of r.subscriptions) {
      s.subscriptions.set(sub.filter, sub);
      this.dispatcher.subscribe(s, sub, sharedOf(sub.filter));
    }
    for (const o of ls.outgoing) s.restoreOutgoing(o);
    for (const id of ls.incomingQos2) s.incomingQos2.add(id);
    if (r.will !== undefined) {
      // The will delay was running, or the client was connected when the
      // connection was lost: due after its delay from then, or when the
      // session expires, whichever is first [MQTT-3.1.2-8]; cancelled by a
      // reconnect in time [MQTT-3.1.3-9]. Kept in the record until then.
      // Authorized, when due, as the session's owner.
      const dueAt = r.will.dueAt ??
        since + Math.min(r.will.delay ?? 0, r.expiryInterval) * 1000;
      this.pendingWills.set(r.clientId, {
        message: r.will,
        dueAt,
        info: identityOf(r),
      });
      s.will = { ...r.will, dueAt };
    }
    if (r.disconnectedAt === undefined) s.saveRecord();
    this.sessions.set(r.clientId, s);
    this.offline.add(s);
    return s;
  }

  /** Bridge `id`'s stored messages for its remote, as loaded (once). */
  takeBridgeState(id: string): LoadedSession | undefined {
    const s = this.#bridgeStates.get(id);
    this.#bridgeStates.delete(id);
    return s;
  }

  /** The stored bridge states no bridge took (bridges no longer configured). */
  untakenBridgeStates(): LoadedSession[] {
    return [...this.#bridgeStates.values()];
  }

  /**
   * Forgets the session of `clientId` without touching the store: another
   * cluster node took it over (its state stays in the shared store). Its
   * connection, if any, must have ended first.
   */
  releaseSession(clientId: string): Session | undefined {
    const s = this.sessions.get(clientId);
    if (s === undefined || s.link !== undefined) return undefined;
    for (const filter of s.subscriptions.keys()) {
      this.dispatcher.unsubscribe(s, filter, sharedOf(filter));
    }
    this.sessions.delete(clientId);
    this.offline.delete(s);
    this.pendingWills.delete(clientId);
    return s;
  }

  /** Publishes a will now, authorized for `info` (a cluster node's dead peer's client). */
  publishWill(will: StoredMessage, info: ClientInfo): void {
    this.#publishWill(will, info, Date.now());
  }

  /**
   * Finds or creates the session of a connecting client; handles takeover.
   * `bridge`: the CONNECT carried Mosquitto's bridge flag.
   */
  openSession(
    conn: CoreConnection,
    cleanStart: boolean,
    expiry: number,
    bridge = false,
  ): { session: Session; present: boolean } {
    const id = conn.clientId;
    let existing = this.sessions.get(id);
    if (existing?.link !== undefined) {
      // [MQTT-3.1.4-3]: the existing connection is closed (v5 0x8E).
      log.info("{clientId}: taken over by a new connection", { clientId: id });
      this.metrics.sessionsTakenOver++;
      existing.link.takeOver?.();
      existing = this.sessions.get(id);
    }
    if (existing !== undefined && expired(existing, Date.now())) {
      // Expired, not yet swept: it is gone [MQTT-3.1.2-23].
      const w = this.pendingWills.get(id);
      if (w !== undefined) this.#publishWill(w.message, w.info, Date.now());
      this.discardSession(existing);
      this.metrics.sessionsExpired++;
      existing = undefined;
    }
    // A reconnect in time cancels a delayed will.
    this.pendingWills.delete(id);
    if (existing !== undefined && cleanStart) {
      this.discardSession(existing);
      this.metrics.sessionsDiscarded++;
      existing = undefined;
    }
    const present = existing !== undefined;
    if (present) this.metrics.sessionsResumed++;
    else this.metrics.sessionsCreated++;
    const session = existing ??
      new Session(id, conn.version, expiry, this.sessionContext);
    // A new session, or one stored without an owner (by an older Kite),
    // belongs to this identity; `foreignOwner` refused any other.
    session.owner ??= ownerOf(conn.username);
    const wasPersistent = present && session.persistent;
    session.protocolVersion = conn.version;
    session.expiryInterval = expiry;
    session.username = conn.username;
    session.bridge = bridge;
    const will = conn.will;
    // Stored with its delay: a node that finds this connection lost with
    // the broker (a crash, a dead cluster node) keeps the delay too.
    session.will = will !== undefined && conn.willDelay > 0
      ? { ...will, delay: conn.willDelay }
      : will;
    this.offline.delete(session);
    this.sessions.set(id, session);
    if (session.persistent) {
      session.disconnectedAt = undefined;
      session.saveRecord();
    } else if (wasPersistent) this.store.deleteSession(id);
    this.plugin?.opened(conn, session);
    return { session, present };
  }

  /**
   * The owner of the session of `clientId` when that session belongs to
   * another identity than `username` (undefined: anonymous): such a CONNECT
   * must be refused, the session and its connection left alone. Undefined
   * when the client may have it: no session, an expired one, its own, or
   * one stored without an owner.
   */
  foreignOwner(
    clientId: string,
    username: string | undefined,
  ): SessionOwner | undefined {
    const s = this.sessions.get(clientId);
    const owner = s?.owner;
    if (owner === undefined || owner.username === username) return undefined;
    return expired(s!, Date.now()) ? undefined : owner;
  }

  /** Removes a session with its subscriptions and messages. */
  discardSession(session: Session): void {
    if (session.subscriptionCount > 0) { // no Map made just to be emptied
      for (const filter of session.subscriptions.keys()) {
        this.dispatcher.unsubscribe(session, filter, sharedOf(filter));
      }
      session.subscriptions.clear();
    }
    session.clearMessages();
    this.sessions.delete(session.clientId);
    this.offline.delete(session);
    if (session.persistent) this.store.deleteSession(session.clientId);
  }

  /** A connection got its CONNACK. */
  onConnected(): void {
    const m = this.metrics;
    m.clientsConnected++;
    if (++this.connectedCount > m.maxConnected) {
      m.maxConnected = this.connectedCount;
    }
  }

  /** A connection closed before it was connected. */
  onClosedBeforeConnect(conn: CoreConnection): void {
    this.connections.delete(conn);
    this.plugin?.abandoned(conn);
  }

  /** A connected client's connection ended. */
  onDisconnected(conn: CoreConnection, ungraceful: boolean): void {
    this.connections.delete(conn);
    this.connectedCount--;
    this.metrics.clientsDisconnected++;
    const session = conn.session;
    if (session === undefined || session.link !== conn) return;
    const now = Date.now();
    session.detach(now);
    this.dispatcher.memberLeft(session);
    const will = conn.will;
    session.will = undefined;
    if (ungraceful && will !== undefined) {
      const delay = conn.willDelay;
      if (delay > 0 && session.expiryInterval > 0) {
        // v5 will delay: published when due or when the session ends,
        // whichever is first; cancelled by a reconnect.
        const dueAt = now + Math.min(delay, session.expiryInterval) * 1000;
        this.pendingWills.set(session.clientId, {
          message: will,
          dueAt,
          info: conn.info!,
        });
        session.will = { ...will, dueAt };
      } else {
        // Deferred: this may run inside a delivery (a connection closed
        // for overflowing its buffer), and routing is not re-entrant.
        const info = conn.info!;
        queueMicrotask(() => this.#publishWill(will, info, now));
      }
    }
    if (session.expiryInterval === 0) {
      this.discardSession(session);
    } else {
      session.saveRecord();
      if (session.expiryInterval !== 0xffffffff) this.offline.add(session);
    }
    this.plugin?.closed(conn, session, session.expiryInterval === 0);
  }

  /**
   * Publishes a will once `authorizePublish` allows it for `info` (the
   * client, or the owner kept in its stored session after a restart).
   */
  #publishWill(will: StoredMessage, info: ClientInfo, now: number): void {
    const message: StoredMessage = {
      topic: will.topic,
      payload: will.payload,
      qos: will.qos,
      retain: will.retain && this.settings.retainAvailable,
    };
    if (will.properties !== undefined) {
      message.properties = will.properties;
      const mei = will.properties.messageExpiryInterval;
      if (mei !== undefined) message.expiresAt = now + mei * 1000;
    }
    const authz = this.hooks.authorizePublish;
    if (authz !== undefined) {
      const r = authz(info, will.topic, will.qos, will.retain);
      if (typeof r === "number") this.#willDecided(message, info, r);
      else {
        r.then(
          (code) => this.#willDecided(message, info, code),
          (e) => log.error("authorizePublish failed: {e}", { e }),
        );
      }
      return;
    }
    log.debug("Publishing will to {topic}", { topic: will.topic });
    this.publish(message, info.clientId);
  }

  #willDecided(message: StoredMessage, info: ClientInfo, code: number): void {
    if (code < 0x80) {
      this.publish(message, info.clientId);
      return;
    }
    log.info(
      "{clientId}: will to {topic} refused by authorizePublish ({code})",
      {
        clientId: info.clientId,
        username: info.username,
        topic: message.topic,
        code,
      },
    );
  }

  /** Publishes: retained first, then routed; returns the sessions reached. */
  publish(message: StoredMessage, publisherId: string | undefined): number {
    if (message.retain) this.retain(message);
    const n = this.dispatcher.publish(message, publisherId);
    if (n === 0 && !isSysTopic(message.topic)) {
      this.metrics.dropped[DropReason.NoSubscribers]!++;
    }
    return n;
  }

  /** Keeps `message` as its topic's retained one (`$SYS/` not stored). */
  retain(message: StoredMessage): void {
    if (message.payload.length === 0) {
      // [MQTT-3.3.1-10]: an empty retained message clears the topic.
      this.retainedExpiry.delete(message.topic);
      if (this.retained.delete(message.topic)) {
        this.store.putRetained(message.topic, undefined);
      }
      return;
    }
    const p = message.payload;
    const kept: StoredMessage = p.byteLength === p.buffer.byteLength
      ? message
      : { ...message, payload: p.slice() };
    ownPayload(kept); // its Correlation Data, if any
    this.retained.set(kept);
    if (kept.expiresAt !== undefined) {
      this.retainedExpiry.set(kept.topic, kept.expiresAt);
    } else if (this.retainedExpiry.size > 0) {
      this.retainedExpiry.delete(kept.topic);
    }
    if (!message.topic.startsWith("$SYS/")) {
      this.store.putRetained(message.topic, kept);
    }
  }

  /** Resolves when every commit started so far is done. */
  flush(): Promise<void> {
    return this.gate.flush();
  }

  /** Connect timeouts, keep alive, session expiry, will delay. */
  sweep(now: number): void {
    if (this.retainedExpiry.size > 0 && now >= this.#nextRetainedSweep) {
      // Expired retained messages are never sent (checked on subscribe);
      // this frees them, every few seconds at most.
      this.#nextRetainedSweep = now + RETAINED_SWEEP_MS;
      for (const [topic, at] of this.retainedExpiry) {
        if (at > now) continue;
        this.retainedExpiry.delete(topic);
        if (this.retained.delete(topic) && !topic.startsWith("$SYS/")) {
          this.store.putRetained(topic, undefined);
        }
      }
    }
    this.#sweepNow = now;
    this.#connSweep.step(this.#checkConn);
    if (this.pendingWills.size > 0) {
      for (const [id, w] of this.pendingWills) {
        if (w.dueAt <= now) {
          this.pendingWills.delete(id);
          const s = this.sessions.get(id);
          if (s !== undefined && s.will !== undefined) {
            s.will = undefined;
            s.saveRecord();
          }
          this.#publishWill(w.message, w.info, now);
        }
      }
    }
    this.#offlineSweep.step(this.#checkOffline);
  }

  #checkConn = (c: CoreConnection): void => c.checkTimeouts(this.#sweepNow);

  /** Ends an offline session whose expiry interval has passed. */
  #checkOffline = (s: Session): void => {
    const now = this.#sweepNow;
    if (s.link !== undefined) {
      this.offline.delete(s);
      return;
    }
    const since = s.disconnectedAt ?? now;
    if (since + s.expiryInterval * 1000 > now) return;
    log.debug("Session {clientId} expired", { clientId: s.clientId });
    this.metrics.sessionsExpired++;
    const w = this.pendingWills.get(s.clientId);
    if (w !== undefined) {
      this.pendingWills.delete(s.clientId);
      this.#publishWill(w.message, w.info, now);
    }
    this.discardSession(s);
    this.plugin?.expired(s);
  };
}

/** Whether an offline session's expiry has passed (not yet swept). */
function expired(s: Session, now: number): boolean {
  return s.link === undefined && s.disconnectedAt !== undefined &&
    s.expiryInterval !== 0xffffffff &&
    s.disconnectedAt + s.expiryInterval * 1000 <= now;
}

/**
 * Who a stored session's will is authorized as: its owner (anonymous for a
 * record without one), with the session's client id and protocol version.
 */
function identityOf(r: SessionRecord): ClientInfo {
  const info: ClientInfo = {
    clientId: r.clientId,
    protocolVersion: r.protocolVersion,
  };
  const username = r.owner?.username;
  if (username !== undefined) info.username = username;
  return info;
}

/** The owner record of an identity (`{}` for an anonymous client). */
/** The owner of every anonymous client's session (one object for all). */
const ANONYMOUS: SessionOwner = Object.freeze({});

function ownerOf(username: string | undefined): SessionOwner {
  return username === undefined ? ANONYMOUS : { username };
}

/** The parsed `$share` filter, or undefined (not shared, or invalid). */
export function sharedOf(filter: string): SharedFilter | undefined {
  try {
    return parseSharedSubscription(filter);
  } catch {
    return undefined;
  }
}
