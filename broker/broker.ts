/**
 * The `Broker`: listens, serves connections, keeps sessions, routes
 * messages, and mirrors durable state into a `Store`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Packet, QoS } from "../codec/packet.ts";
import { parseSharedSubscription } from "../codec/topic.ts";
import { Connection } from "./connection.ts";
import {
  type BrokerHooks,
  type BrokerOptions,
  type BrokerSettings,
  DEFAULT_OPTIONS,
} from "./options.ts";
import { RetainedMessages } from "./retained.ts";
import { Router } from "./router.ts";
import {
  ownPayload,
  type PublishEncoding,
  Session,
  type SessionContext,
} from "./session.ts";
import { KvStore } from "./store/kv.ts";
import { MemoryStore } from "./store/memory.ts";
import type {
  LoadedState,
  OutgoingRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "./store/store.ts";
import { startSys } from "./sys.ts";
import { connDuplex } from "../codec/_conn_duplex.ts";
import { type Duplex, streamDuplex } from "../codec/duplex.ts";
import type { Transport } from "./transport.ts";

const log = getLogger(["kite", "broker"]);

/** How often timeouts (connect, keep alive, session expiry, will delay) are checked. */
const SWEEP_MS = 250;

/** How often expired retained messages are looked for. */
const RETAINED_SWEEP_MS = 5000;

/** Counters of a broker, as published under `$SYS/broker/...`. */
export interface BrokerStats {
  /** PUBLISH packets received. */
  messagesReceived: number;
  /** PUBLISH packets sent. */
  messagesSent: number;
  /** Bytes read from clients. */
  bytesReceived: number;
  /** Bytes written to clients. */
  bytesSent: number;
  /**
   * Messages dropped for a subscriber: its queue or output buffer was full,
   * or the message was above its v5 Maximum Packet Size.
   */
  messagesDropped: number;
}

/** Options of `new Broker()`: the settings, the hooks, and optionally a store. */
export interface BrokerInit extends BrokerOptions {
  /**
   * The store to mirror durable state into. Default: a `KvStore` at
   * `persistencePath` when `enablePersistence`, else a `MemoryStore`.
   */
  store?: Store;
}

/** A store wrapper that notes whether mutations are pending a commit. */
class TrackedStore implements Store {
  dirty = false;
  readonly inner: Store;
  constructor(inner: Store) {
    this.inner = inner;
  }
  putRetained(topic: string, message: StoredMessage | undefined): void {
    this.dirty = true;
    this.inner.putRetained(topic, message);
  }
  putSession(record: SessionRecord): void {
    this.dirty = true;
    this.inner.putSession(record);
  }
  deleteSession(clientId: string): void {
    this.dirty = true;
    this.inner.deleteSession(clientId);
  }
  putOutgoing(clientId: string, record: OutgoingRecord): void {
    this.dirty = true;
    this.inner.putOutgoing(clientId, record);
  }
  deleteOutgoing(clientId: string, seq: number): void {
    this.dirty = true;
    this.inner.deleteOutgoing(clientId, seq);
  }
  putIncomingQos2(clientId: string, packetId: number): void {
    this.dirty = true;
    this.inner.putIncomingQos2(clientId, packetId);
  }
  deleteIncomingQos2(clientId: string, packetId: number): void {
    this.dirty = true;
    this.inner.deleteIncomingQos2(clientId, packetId);
  }
  commit(): Promise<void> {
    this.dirty = false;
    return this.inner.commit();
  }
  load(): Promise<LoadedState> {
    return this.inner.load();
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}

interface PendingWill {
  message: StoredMessage;
  dueAt: number;
  info: Connection["info"];
}

/**
 * The broker's internals shared with its connections (not public API).
 */
export class BrokerCore {
  readonly settings: Readonly<Required<BrokerSettings>>;
  readonly hooks: BrokerHooks;
  readonly store: TrackedStore;
  readonly router: Router = new Router();
  readonly retained: RetainedMessages = new RetainedMessages();
  readonly sessions: Map<string, Session> = new Map();
  readonly connections: Set<Connection> = new Set();
  readonly stats: BrokerStats = {
    messagesReceived: 0,
    messagesSent: 0,
    bytesReceived: 0,
    bytesSent: 0,
    messagesDropped: 0,
  };
  readonly startedAt: number = Date.now();
  /** Bytes a connection may buffer before QoS 0 messages to it are dropped. */
  outputBufferLimit = 1024 * 1024;
  connectedCount = 0;
  /** Sessions offline with a finite expiry, checked by the sweep. */
  readonly offline: Set<Session> = new Set();
  readonly pendingWills: Map<string, PendingWill> = new Map();
  readonly sessionContext: SessionContext;

  #pending: {
    conn: Connection;
    packet: Packet | undefined;
    enc: PublishEncoding | undefined;
    packetId: number;
    dup: boolean;
  }[] = [];
  #commitScheduled = false;
  /** Retained messages with a Message Expiry Interval: topic -> expiresAt. */
  readonly retainedExpiry: Map<string, number> = new Map();
  #nextRetainedSweep = 0;
  #commitChain: Promise<void> = Promise.resolve();

  constructor(init: BrokerInit, store: Store) {
    const settings = { ...DEFAULT_OPTIONS } as Required<BrokerSettings>;
    const hooks: BrokerHooks = {};
    for (const [k, v] of Object.entries(init)) {
      if (v === undefined || k === "store") continue;
      if (
        k === "authenticate" || k === "authorizePublish" ||
        k === "authorizeSubscribe" || k === "enhancedAuth"
      ) {
        (hooks as Record<string, unknown>)[k] = v;
      } else (settings as Record<string, unknown>)[k] = v;
    }
    this.settings = settings;
    this.hooks = hooks;
    this.store = new TrackedStore(store);
    this.sessionContext = {
      store: this.store,
      maxQueuedMessages: settings.maxQueuedMessages,
      queueQos0Messages: settings.queueQos0Messages,
      stats: this.stats,
    };
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
      const r = ls.record;
      const since = r.disconnectedAt ?? now;
      if (
        r.expiryInterval !== 0xffffffff &&
        since + r.expiryInterval * 1000 <= now
      ) {
        if (r.will !== undefined) this.#publishWill(r.will, undefined, now);
        this.store.deleteSession(r.clientId);
        dropped++;
        continue;
      }
      const s = new Session(
        r.clientId,
        r.protocolVersion,
        r.expiryInterval,
        this.sessionContext,
      );
      s.disconnectedAt = since;
      for (const sub of r.subscriptions) {
        s.subscriptions.set(sub.filter, sub);
        this.router.subscribe(s, sub, sharedOf(sub.filter));
      }
      for (const o of ls.outgoing) s.restoreOutgoing(o);
      for (const id of ls.incomingQos2) s.incomingQos2.add(id);
      if (r.will !== undefined) {
        // The broker stopped while the client was connected (or its will
        // delay was running): the will is due.
        this.pendingWills.set(r.clientId, {
          message: r.will,
          dueAt: r.will.dueAt ?? now,
          info: undefined,
        });
        s.will = undefined;
      }
      if (r.disconnectedAt === undefined) s.saveRecord();
      this.sessions.set(r.clientId, s);
      this.offline.add(s);
    }
    log.info(
      "Loaded {retained} retained messages and {sessions} sessions ({dropped} expired)",
      {
        retained: this.retained.size,
        sessions: this.sessions.size,
        dropped,
      },
    );
  }

  /** Finds or creates the session of a connecting client; handles takeover. */
  openSession(
    conn: Connection,
    cleanStart: boolean,
    expiry: number,
  ): { session: Session; present: boolean } {
    const id = conn.clientId;
    let existing = this.sessions.get(id);
    if (existing?.link !== undefined) {
      // [MQTT-3.1.4-3]: the existing connection is closed (v5 0x8E).
      log.info("{clientId}: taken over by a new connection", { clientId: id });
      (existing.link as Connection).takeOver();
      existing = this.sessions.get(id);
    }
    if (
      existing !== undefined && existing.link === undefined &&
      existing.disconnectedAt !== undefined &&
      existing.expiryInterval !== 0xffffffff &&
      existing.disconnectedAt + existing.expiryInterval * 1000 <= Date.now()
    ) {
      // Expired, not yet swept: it is gone [MQTT-3.1.2-23].
      const w = this.pendingWills.get(id);
      if (w !== undefined) this.#publishWill(w.message, w.info, Date.now());
      this.discardSession(existing);
      existing = undefined;
    }
    // A reconnect in time cancels a delayed will.
    this.pendingWills.delete(id);
    if (existing !== undefined && cleanStart) {
      this.discardSession(existing);
      existing = undefined;
    }
    const present = existing !== undefined;
    const session = existing ??
      new Session(id, conn.version, expiry, this.sessionContext);
    const wasPersistent = present && session.persistent;
    session.protocolVersion = conn.version;
    session.expiryInterval = expiry;
    const will = conn.will;
    session.will = will;
    this.offline.delete(session);
    this.sessions.set(id, session);
    if (session.persistent) {
      session.disconnectedAt = undefined;
      session.saveRecord();
    } else if (wasPersistent) this.store.deleteSession(id);
    return { session, present };
  }

  /** Removes a session with its subscriptions and messages. */
  discardSession(session: Session): void {
    for (const filter of session.subscriptions.keys()) {
      this.router.unsubscribe(session, filter, sharedOf(filter));
    }
    session.subscriptions.clear();
    session.clearMessages();
    this.sessions.delete(session.clientId);
    this.offline.delete(session);
    if (session.persistent) this.store.deleteSession(session.clientId);
  }

  onConnected(conn: Connection): void {
    this.connectedCount++;
    void conn;
  }

  onClosedBeforeConnect(conn: Connection): void {
    this.connections.delete(conn);
  }

  /** A connected client's connection ended. */
  onDisconnected(conn: Connection, ungraceful: boolean): void {
    this.connections.delete(conn);
    this.connectedCount--;
    const session = conn.session;
    if (session === undefined || session.link !== conn) return;
    const now = Date.now();
    session.detach(now);
    this.#redispatchShared(session);
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
          info: conn.info,
        });
        session.will = { ...will, dueAt };
      } else {
        // Deferred: this may run inside a delivery (a connection closed
        // for overflowing its buffer), and routing is not re-entrant.
        const info = conn.info;
        queueMicrotask(() => this.#publishWill(will, info, now));
      }
    }
    if (session.expiryInterval === 0) {
      this.discardSession(session);
    } else {
      session.saveRecord();
      if (session.expiryInterval !== 0xffffffff) this.offline.add(session);
    }
  }

  /**
   * A shared-subscription member left: what it had not acknowledged goes to
   * another online member of the group (see Router); the rest stays with
   * the session (resent with DUP when it comes back).
   */
  #redispatchShared(session: Session): void {
    if (session.inflightCount === 0 && session.queued === 0) return;
    const router = this.router;
    const taken = session.takeShared((g) => router.canTake(g, session));
    if (taken.length === 0) return;
    const left = router.redispatch(session, taken, this.settings.maxQos);
    if (left.length === 0 || session.expiryInterval === 0) return;
    for (const m of left) {
      session.deliver(m.message, m.qos, m.retain, m.subIds, undefined, m.group);
    }
  }

  #publishWill(
    will: StoredMessage,
    info: Connection["info"],
    now: number,
  ): void {
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
    if (authz !== undefined && info !== undefined) {
      const r = authz(info, will.topic, will.qos, will.retain);
      if (typeof r === "number") {
        if (r < 0x80) this.publish(message, info.clientId);
      } else {
        r.then((code) => {
          if (code < 0x80) this.publish(message, info.clientId);
        }, (e) => log.error("authorizePublish failed: {e}", { e }));
      }
      return;
    }
    log.debug("Publishing will to {topic}", { topic: will.topic });
    this.publish(message, info?.clientId);
  }

  /**
   * Publishes a message: retained store first, then routing. Returns the
   * number of sessions it went to.
   */
  publish(message: StoredMessage, publisherId: string | undefined): number {
    if (message.retain) {
      if (message.payload.length === 0) {
        // [MQTT-3.3.1-10]: an empty retained message clears the topic.
        this.retainedExpiry.delete(message.topic);
        if (this.retained.delete(message.topic)) {
          this.store.putRetained(message.topic, undefined);
        }
      } else {
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
    }
    return this.router.publish(message, publisherId, this.settings.maxQos);
  }

  /**
   * Sends a packet (or an encoded PUBLISH) once the store has committed what
   * was enqueued so far (group commit: one commit for everything pending in
   * a turn). At once when nothing is pending. Used for PUBACK/PUBREC/PUBCOMP
   * to publishers and for QoS 2 PUBLISH/PUBREL to persistent sessions, so a
   * crash never loses what was acknowledged nor reuses a packet id the peer
   * still holds.
   */
  sendDurable(
    conn: Connection,
    packet: Packet | undefined,
    enc?: PublishEncoding,
    packetId = 0,
    dup = false,
  ): void {
    if (!this.store.dirty && conn.deferred === 0) {
      if (packet !== undefined) conn.writePacket(packet);
      else conn.writeEncoded(enc!, packetId, dup);
      return;
    }
    this.defer(conn, packet, enc, packetId, dup);
  }

  /** Queues output of `conn` behind the next store commit. */
  defer(
    conn: Connection,
    packet: Packet | undefined,
    enc: PublishEncoding | undefined,
    packetId: number,
    dup: boolean,
  ): void {
    conn.deferred++;
    this.#pending.push({ conn, packet, enc, packetId, dup });
    if (!this.#commitScheduled) {
      this.#commitScheduled = true;
      queueMicrotask(this.#commit);
    }
  }

  #commit = (): void => {
    this.#commitScheduled = false;
    const batch = this.#pending;
    this.#pending = [];
    const p = this.store.commit();
    this.#commitChain = this.#commitChain.then(() => p).then(() => {
      for (const d of batch) {
        const conn = d.conn;
        conn.deferred--;
        if (!conn.connected) continue;
        if (d.packet !== undefined) conn.writePacket(d.packet);
        else conn.writeEncoded(d.enc!, d.packetId, d.dup);
      }
    }, (e) => {
      log.error("Store commit failed: {error}", { error: e });
      for (const { conn } of batch) {
        conn.deferred--;
        conn.shutdown();
      }
    });
  };

  /** Resolves when every commit started so far is done. */
  async flush(): Promise<void> {
    if (this.store.dirty) this.#commit();
    await this.#commitChain;
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
    for (const c of this.connections) c.checkTimeouts(now);
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
    for (const s of this.offline) {
      if (s.link !== undefined) {
        this.offline.delete(s);
        continue;
      }
      const since = s.disconnectedAt ?? now;
      if (since + s.expiryInterval * 1000 <= now) {
        log.debug("Session {clientId} expired", { clientId: s.clientId });
        const w = this.pendingWills.get(s.clientId);
        if (w !== undefined) {
          this.pendingWills.delete(s.clientId);
          this.#publishWill(w.message, w.info, now);
        }
        this.discardSession(s);
      }
    }
  }
}

function sharedOf(
  filter: string,
): { group: string; filter: string } | undefined {
  try {
    return parseSharedSubscription(filter);
  } catch {
    return undefined;
  }
}

/**
 * An MQTT 3.1.1 and 5.0 broker.
 *
 * @example
 * ```ts
 * import { Broker } from "@kite/mqtt/broker";
 * const broker = new Broker({ host: "127.0.0.1", port: 0, sysInterval: 0 });
 * await broker.listen();
 * console.log(`listening on ${broker.addr.hostname}:${broker.addr.port}`);
 * await broker.close();
 * ```
 */
export class Broker {
  #init: BrokerInit;
  #core: BrokerCore | undefined;
  #listener: Deno.Listener | undefined;
  #acceptLoop: Promise<void> | undefined;
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #stopSys: (() => void) | undefined;
  #started: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #outputBufferLimit = 1024 * 1024;

  /** Creates a broker; nothing happens until `start()` or `listen()`. */
  constructor(options: BrokerInit = {}) {
    this.#init = options;
  }

  /** The effective settings (defaults merged with the options). */
  get settings(): Readonly<Required<BrokerSettings>> {
    return this.#core?.settings ?? { ...DEFAULT_OPTIONS, ...this.#init };
  }

  /** Counters (messages and bytes in and out). */
  get stats(): Readonly<BrokerStats> {
    return this.#core?.stats ?? {
      messagesReceived: 0,
      messagesSent: 0,
      bytesReceived: 0,
      bytesSent: 0,
      messagesDropped: 0,
    };
  }

  /** Clients connected now. */
  get connectedClients(): number {
    return this.#core?.connectedCount ?? 0;
  }

  /** Sessions known (connected or offline). */
  get sessionCount(): number {
    return this.#core?.sessions.size ?? 0;
  }

  /** Retained messages held. */
  get retainedCount(): number {
    return this.#core?.retained.size ?? 0;
  }

  /** Subscriptions held (shared ones included). */
  get subscriptionCount(): number {
    return this.#core?.router.size ?? 0;
  }

  /**
   * Bytes a connection may buffer for a slow reader before QoS 0 messages to
   * it are dropped (QoS 1/2 wait in its session queue). Default 1 MiB; a
   * connection buffering four times this is closed.
   */
  get outputBufferLimit(): number {
    return this.#outputBufferLimit;
  }
  set outputBufferLimit(n: number) {
    this.#outputBufferLimit = n;
    if (this.#core !== undefined) this.#core.outputBufferLimit = n;
  }

  #start(): Promise<void> {
    if (this.#started !== undefined) return this.#started;
    const init = this.#init;
    this.#started = (async () => {
      let store = init.store;
      const enable = init.enablePersistence ??
        DEFAULT_OPTIONS.enablePersistence;
      if (store === undefined) {
        store = enable
          ? await KvStore.open(
            init.persistencePath ?? DEFAULT_OPTIONS.persistencePath,
          )
          : new MemoryStore();
      }
      const core = new BrokerCore(init, store);
      core.outputBufferLimit = this.#outputBufferLimit;
      this.#core = core;
      await core.load();
      this.#sweepTimer = setInterval(() => core.sweep(Date.now()), SWEEP_MS);
      if (core.settings.sysInterval > 0) {
        this.#stopSys = startSys(this, core);
      }
    })();
    return this.#started;
  }

  /**
   * Loads the store and starts the timers, without listening on a socket
   * (connections can then be attached with `handleConnection`).
   */
  async start(): Promise<void> {
    await this.#start();
  }

  /** Starts (see `start`) and listens on `host`:`port` (TCP). */
  async listen(): Promise<void> {
    await this.#start();
    const s = this.#core!.settings;
    let listener: Deno.Listener;
    try {
      listener = Deno.listen({ hostname: s.host, port: s.port });
    } catch (e) {
      // Release the timers and the store: nothing else will.
      await this.close();
      throw e;
    }
    this.#listener = listener;
    const a = listener.addr as Deno.NetAddr;
    log.info("Listening on {hostname}:{port}", {
      hostname: a.hostname,
      port: a.port,
    });
    this.#acceptLoop = this.#accept(listener);
  }

  async #accept(listener: Deno.Listener): Promise<void> {
    try {
      for await (const conn of listener) {
        if (this.#closing !== undefined) {
          conn.close();
          continue;
        }
        try {
          (conn as Deno.TcpConn).setNoDelay(true);
        } catch {
          // not TCP
        }
        this.#serve(connDuplex(conn));
      }
    } catch (e) {
      if (this.#closing === undefined) {
        log.error("Accept failed: {error}", { error: e });
      }
    }
  }

  #serve(duplex: Duplex): Connection {
    const core = this.#core!;
    const c = new Connection(core, duplex);
    core.connections.add(c);
    return c;
  }

  /**
   * Serves one client over any `{readable, writable, close}` transport (an
   * in-memory stream pair, a WebSocket adapter, ...). Resolves when the
   * connection is closed.
   */
  async handleConnection(transport: Transport): Promise<void> {
    await this.#start();
    if (this.#closing !== undefined) {
      transport.close();
      return;
    }
    await this.#serve(streamDuplex(transport)).closed;
  }

  /** The address the broker listens on. */
  get addr(): { hostname: string; port: number } {
    if (this.#listener === undefined) {
      throw new Error("the broker is not listening");
    }
    const a = this.#listener.addr as Deno.NetAddr;
    return { hostname: a.hostname, port: a.port };
  }

  /**
   * Publishes a message from the broker itself (no publisher session).
   * Returns the number of sessions it went to.
   */
  publish(
    topic: string,
    payload: Uint8Array | string,
    options: { qos?: QoS; retain?: boolean } = {},
  ): number {
    if (this.#core === undefined) {
      throw new Error("the broker is not started");
    }
    const message: StoredMessage = {
      topic,
      payload: typeof payload === "string"
        ? new TextEncoder().encode(payload)
        : payload,
      qos: options.qos ?? 0,
      retain: options.retain ?? false,
    };
    return this.#core!.publish(message, undefined);
  }

  /**
   * Stops accepting, sends v5 clients DISCONNECT 0x8B, closes every
   * connection, commits and closes the store.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    if (this.#started !== undefined) {
      try {
        await this.#started;
      } catch {
        // start-up failed; still release what exists
      }
    }
    this.#listener?.close();
    await this.#acceptLoop;
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#stopSys?.();
    const core = this.#core;
    if (core === undefined) return;
    const conns = [...core.connections];
    for (const c of conns) c.shutdown();
    await Promise.all(conns.map((c) => c.closed));
    await core.flush();
    await core.store.close();
    log.info("Broker closed");
  }
}
