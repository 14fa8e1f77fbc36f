/**
 * The `Broker`: the facade users hold. It owns the listeners (where clients
 * come from), the core (sessions, dispatcher, store) and the timers, and
 * serves every accepted `Duplex` with a `Connection`.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { QoS } from "../codec/packet.ts";
import { type Duplex, streamDuplex } from "../codec/duplex.ts";
import type { Bridge } from "./bridge/bridge.ts";
import { prepareBridges, startBridges } from "./bridge/start.ts";
import type { BridgeStatus } from "./bridge/types.ts";
import { Connection } from "./connection/connection.ts";
import { BrokerCore, type BrokerInit, SWEEP_MS } from "./core.ts";
import { type Listener, listenerUrl } from "./listen/listener.ts";
import { openListener } from "./listen/open.ts";
import { TcpListener } from "./listen/tcp.ts";
import { openFileLimit, socketCap } from "./listen/_fd_limit.ts";
import type { BrokerStats } from "./metrics.ts";
import type { BrokerSettings } from "./config/types.ts";
import { anonymousAllowed, DEFAULT_OPTIONS } from "./config/defaults.ts";
import { isLoopbackHost } from "./config/secure_defaults.ts";
import { KvStore } from "./store/kv.ts";
import { MemoryStore } from "./store/memory.ts";
import type { StoredMessage } from "./store/store.ts";
import { startSys, sysPublisher } from "./sys.ts";
import { type Health, HttpServer } from "./http/server.ts";
import type { Transport } from "./transport.ts";
import { plural } from "./_plural.ts";
import { IoTurn } from "./connection/_io_turn.ts";
import type { ClusterNode } from "./cluster/mod.ts";

export type { BrokerInit } from "./core.ts";
export type { BrokerStats } from "./metrics.ts";

/**
 * What `Broker.reloadCertificates()` did for one TLS listener.
 *
 * @example
 * ```ts ignore
 * for (const r of await broker.reloadCertificates()) {
 *   console.log(r.url, r.changed ? "new certificate" : r.error?.message ?? "unchanged");
 * }
 * ```
 */
export interface CertificateReload {
  /** The listener's URL. */
  url: string;
  /** Whether it serves a new certificate now (false: unchanged, or failed). */
  changed: boolean;
  /** Why it keeps the old one, when the new files could not be used. */
  error?: Error;
}

const log = getLogger(["kite", "broker"]);

const NO_STATS: Readonly<BrokerStats> = Object.freeze({
  messagesReceived: 0,
  messagesSent: 0,
  bytesReceived: 0,
  bytesSent: 0,
  messagesDropped: 0,
});

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
  #listeners: Listener[] = [];
  #acceptLoops: Promise<void>[] = [];
  #sweepTimer: ReturnType<typeof setInterval> | undefined;
  #stopSys: (() => void) | undefined;
  #bridges: Bridge[] = [];
  #started: Promise<void> | undefined;
  #closing: Promise<void> | undefined;
  #http: HttpServer | undefined;
  #health: Health = "starting";
  #outputBufferLimit: number | undefined;
  /** Most sockets held open (see listen/_fd_limit.ts). */
  #socketCap = Infinity;
  #capRefused = 0;
  #capLogged = -Infinity;
  /** listen() failed: close() quietly (the caller reports the error). */
  #listenFailed = false;
  /** This broker's cluster node, when `cluster.url` is set. */
  #cluster: ClusterNode | undefined;

  /** Creates a broker; nothing happens until `start()` or `listen()`. */
  constructor(options: BrokerInit = {}) {
    this.#init = options;
  }

  /** The effective settings (defaults merged with the options). */
  get settings(): Readonly<Required<BrokerSettings>> {
    return this.#core?.settings ?? {
      ...DEFAULT_OPTIONS,
      ...this.#init,
      allowAnonymous: anonymousAllowed(this.#init),
    };
  }

  /** Counters (messages and bytes in and out). */
  get stats(): Readonly<BrokerStats> {
    return this.#core?.metrics ?? NO_STATS;
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
    return this.#core?.dispatcher.size ?? 0;
  }

  /**
   * The state of each bridge (the `bridges` option): connected or not,
   * the address in use, messages queued for the remote, counters.
   *
   * @example
   * ```ts ignore
   * for (const b of broker.bridges) console.log(b.name, b.connected, b.queued);
   * ```
   */
  get bridges(): BridgeStatus[] {
    return this.#bridges.map((b) => b.status());
  }

  /**
   * Bytes a connection may buffer for a slow reader before QoS 0 messages to
   * it are dropped (QoS 1/2 wait in its session queue). Default 1 MiB; a
   * connection buffering four times this is closed.
   */
  get outputBufferLimit(): number {
    return this.#outputBufferLimit ?? this.settings.outputBufferLimit;
  }
  set outputBufferLimit(n: number) {
    this.#outputBufferLimit = n;
    if (this.#core !== undefined) this.#core.outputBufferLimit = n;
  }

  #start(): Promise<void> {
    if (this.#started !== undefined) return this.#started;
    const init = this.#init;
    this.#started = (async () => {
      // A bad bridge entry stops start-up before anything is opened.
      const bridges = await prepareBridges(init.bridges ?? []);
      let store = init.store;
      const enable = init.enablePersistence ??
        DEFAULT_OPTIONS.enablePersistence;
      if ((init.cluster?.url?.length ?? 0) > 0) {
        // Cluster mode: state in JetStream, shared by the nodes.
        this.#cluster = await loadCluster(init);
        store = this.#cluster.store;
      }
      if (store === undefined) {
        store = enable
          ? await KvStore.open(
            init.persistencePath ?? DEFAULT_OPTIONS.persistencePath,
          )
          : new MemoryStore({ keepOutgoing: false });
      }
      const core = new BrokerCore(init, store, this.#cluster?.plugin);
      if (this.#outputBufferLimit !== undefined) {
        core.outputBufferLimit = this.#outputBufferLimit;
      }
      this.#core = core;
      const s = core.settings;
      if (s.httpPort >= 0) {
        // Before the store loads: /healthz says "starting" meanwhile.
        this.#http = HttpServer.start(core, () => this.#health, {
          hostname: s.httpHost,
          port: s.httpPort,
          token: s.httpToken,
        });
        log.info("Listening on {url} (HTTP: /metrics, /healthz, /api/v1, /)", {
          url: this.#http.url,
        });
        if (s.httpToken === "" && !isLoopbackHost(s.httpHost)) {
          log.warn(
            "No httpToken: the admin API on {url} answers loopback clients only",
            { url: this.#http.url },
          );
        }
      }
      await core.load();
      await this.#cluster?.attach(core);
      core.ioTurn = await IoTurn.open();
      const max = core.settings.maxConnections;
      const fdLimit = openFileLimit();
      this.#socketCap = socketCap(max, fdLimit);
      if (fdLimit !== undefined && this.#socketCap < max) {
        log.warn(
          "maxConnections is {max} but the open file limit is {fdLimit}: at most {cap} connections; raise it with `ulimit -n`",
          { max, fdLimit, cap: this.#socketCap },
        );
      }
      this.#sweepTimer = setInterval(() => core.sweep(Date.now()), SWEEP_MS);
      this.#bridges = startBridges(core, bridges);
      const interval = core.settings.sysInterval;
      if (interval > 0) {
        this.#stopSys = startSys(
          core.metrics,
          sysPublisher(core),
          interval,
        );
      }
      // Started: the listeners `listen()` opens next come in this same
      // turn, before any HTTP request is answered.
      if (this.#closing === undefined) this.#health = "serving";
    })();
    return this.#started;
  }

  /**
   * Loads the store and starts the timers and, with `httpPort`, the HTTP
   * server, without listening for MQTT clients (connections can then be
   * attached with `handleConnection`). When it fails (the store cannot be
   * opened, the HTTP port is taken), what was started is closed again.
   */
  async start(): Promise<void> {
    await this.#startOrClose();
  }

  /** Starts; when that fails, releases what was started and rethrows. */
  async #startOrClose(): Promise<void> {
    try {
      await this.#start();
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  /**
   * Starts (see `start`) and listens on `host`:`port` (MQTT over TCP), then
   * on each of `listeners` (TLS, WebSocket, more TCP ports), in order. If
   * one cannot open, the broker closes and this rejects with an error whose
   * message names it: the bind error for an address (`Deno.errors.AddrInUse`:
   * `cannot listen on 0.0.0.0:1883: address already in use`), a
   * `ListenError` for a missing or bad certificate file.
   */
  async listen(): Promise<void> {
    await this.#startOrClose();
    const s = this.#core!.settings;
    const opened: Listener[] = [];
    try {
      // Its errors name the address (`cannot listen on HOST:PORT: ...`).
      opened.push(new TcpListener({ hostname: s.host, port: s.port }));
      for (const config of s.listeners) {
        opened.push(await openListener(config, { host: s.host }));
      }
    } catch (e) {
      for (const l of opened) l.close();
      // Release the timers and the store: nothing else will.
      this.#listenFailed = true;
      await this.close();
      throw e;
    }
    for (const l of opened) this.serve(l);
  }

  /**
   * Re-reads the certificate and key files of every TLS listener (`mqtts`,
   * `wss`): connections accepted from now on get the new certificate, open
   * ones keep theirs. A listener whose files cannot be used keeps serving the
   * old certificate (its entry has the `error`); each outcome is logged.
   * `broker/main.ts` calls this on SIGHUP.
   *
   * @example
   * ```ts ignore
   * Deno.addSignalListener("SIGHUP", () => broker.reloadCertificates());
   * ```
   */
  async reloadCertificates(): Promise<CertificateReload[]> {
    const out: CertificateReload[] = [];
    for (const l of this.#listeners) {
      const { protocol } = l.addr;
      if (protocol !== "mqtts" && protocol !== "wss") continue;
      if (l.reloadCertificates === undefined) continue;
      const url = listenerUrl(l.addr);
      try {
        const changed = await l.reloadCertificates();
        if (changed) log.info("{url}: new certificate loaded", { url });
        out.push({ url, changed });
      } catch (e) {
        const error = e instanceof Error ? e : new Error(String(e));
        log.error(
          "{url}: certificate not reloaded, the old one is served: {message}",
          {
            url,
            message: error.message,
          },
        );
        out.push({ url, changed: false, error });
      }
    }
    return out;
  }

  /**
   * Accepts clients from `listener` (any transport) until the broker
   * closes; the broker closes it then. Call after `start()` or `listen()`.
   */
  serve(listener: Listener): void {
    if (this.#core === undefined) {
      throw new Error("the broker is not started: call start() first");
    }
    if (this.#closing !== undefined) {
      listener.close();
      return;
    }
    this.#listeners.push(listener);
    // broker/main.ts logs each listener's URL at info level.
    log.debug("Listening on {url}", {
      url: listener.endpoint ?? listenerUrl(listener.addr),
    });
    this.#acceptLoops.push(this.#accept(listener));
  }

  async #accept(listener: Listener): Promise<void> {
    try {
      for await (const duplex of listener.accept()) {
        if (this.#closing !== undefined) {
          duplex.close();
          continue;
        }
        if (this.#core!.connections.size >= this.#socketCap) {
          // Past maxConnections plus the refusal slack (or the descriptor
          // limit): closed at once, before it can take more.
          duplex.close();
          this.#noteCapRefusal();
          continue;
        }
        this.#serve(duplex);
      }
    } catch (e) {
      if (this.#closing === undefined) {
        log.error("Accept failed on {url}: {error}", {
          url: listenerUrl(listener.addr),
          error: e,
        });
      }
    }
  }

  #noteCapRefusal(): void {
    this.#capRefused++;
    const now = Date.now();
    if (now - this.#capLogged < 10_000) return;
    log.warn(
      `{count} ${
        plural(this.#capRefused, "connection")
      } closed at accept: {cap} sockets open (maxConnections and the open file limit)`,
      { count: this.#capRefused, cap: this.#socketCap },
    );
    this.#capLogged = now;
    this.#capRefused = 0;
  }

  #serve(duplex: Duplex): Connection {
    const core = this.#core!;
    core.metrics.connectionsAccepted++;
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

  /** The address the broker listens on (its first listener: `host`:`port`). */
  get addr(): { hostname: string; port: number } {
    const first = this.#listeners[0];
    if (first === undefined) throw new Error("the broker is not listening");
    return { hostname: first.addr.hostname, port: first.addr.port };
  }

  /**
   * Where the HTTP server (`httpPort`: metrics, health, admin API,
   * dashboard) listens; undefined when it is off or not started.
   */
  get httpAddr(): { hostname: string; port: number } | undefined {
    return this.#http?.addr;
  }

  /**
   * The listeners serving clients now: `host`:`port` first, then those of
   * `listeners` in order (their `addr` has the real port when 0 was asked).
   */
  get listeners(): readonly Listener[] {
    return this.#listeners;
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
    this.#health = "closing";
    this.#closing ??= this.#close().finally(async () => {
      await this.#http?.close();
      this.#http = undefined;
    });
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
    for (const l of this.#listeners) l.close();
    await Promise.all(this.#acceptLoops);
    if (this.#sweepTimer !== undefined) clearInterval(this.#sweepTimer);
    this.#stopSys?.();
    await Promise.all(this.#bridges.map((b) => b.stop()));
    const core = this.#core;
    if (core === undefined) {
      await this.#cluster?.close();
      return;
    }
    const conns = [...core.connections, ...core.closing];
    for (const c of conns) c.shutdown();
    await Promise.all(conns.map((c) => c.closed));
    core.ioTurn?.close();
    await core.flush();
    await core.store.close();
    await this.#cluster?.close();
    if (!this.#listenFailed) log.info("Broker closed");
  }
}

/**
 * Starts this broker's cluster node: broker/cluster/ (and NATS) is loaded
 * only here, so a single broker never loads, nor fetches, any of it.
 */
async function loadCluster(init: BrokerInit): Promise<ClusterNode> {
  // A specifier Deno does not follow ahead of time (a literal one would
  // make `deno run` fetch the NATS packages for every broker).
  const spec = "./cluster/mod.ts";
  const mod = await import(spec) as typeof import("./cluster/mod.ts");
  return await mod.startCluster(init);
}
