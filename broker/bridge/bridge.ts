/**
 * `Bridge`: a connection from this broker to another MQTT broker that
 * carries messages both ways by topic rules, as Mosquitto's bridges do.
 *
 * - Outgoing: the bridge is a `Subscriber` in the broker's dispatcher, with
 *   No Local subscriptions to the local filters of its `out`/`both` rules
 *   (so what it brought in never goes back out). Each message is
 *   published on the remote broker with Kite's own `Client`, once per
 *   remote topic, at the lower of its QoS and the rule's, with its retain
 *   flag and v5 properties (the Message Expiry Interval reduced by the
 *   time it waited).
 * - Incoming: the client subscribes on the remote to the remote filters of
 *   the `in`/`both` rules (v5: No Local, Retain As Published; 3.1.1:
 *   Mosquitto's bridge flag does the same on a remote that knows it) and
 *   publishes what arrives into the broker core with the bridge as the
 *   publisher. With `localUsername`, outgoing messages are also checked
 *   against `authorizeRead` for that user.
 * - QoS 1/2 messages for the remote are held until it acknowledges them
 *   (`_outgoing.ts`): bounded by `maxQueued` and `maxQueuedBytes` (new ones
 *   dropped when full, logged and counted), and kept in the broker's store
 *   when it is durable, so that a restart or a crash loses none. While the
 *   remote is down they wait; QoS 0 ones are dropped. The client reconnects
 *   on Kite's jittered backoff, to the next address when one fails.
 * - What comes in (`_incoming.ts`) is acknowledged to the remote once it is
 *   committed here; with `localUsername` it is authorized first.
 * - Notifications: `1`/`0` retained on the notification topic here, and on
 *   the remote (where the bridge's will publishes `0`).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type {
  ConnackPacket,
  Properties,
  ProtocolVersion,
  QoS,
} from "../../codec/packet.ts";
import { MqttError } from "../../codec/errors.ts";
import { ReasonCode, reasonCodeName } from "../../codec/reason_code.ts";
import { Client } from "../../client/client.ts";
import type { DisconnectEvent } from "../../client/events.ts";
import type {
  PublishOptions,
  PublishTracker,
  TlsOptions,
} from "../../client/options.ts";
import { bridgeClientOptions, useAddress } from "./_client_options.ts";
import { Backoff } from "../../client/reconnect.ts";
import type { Dispatcher, Subscriber } from "../dispatcher.ts";
import { ownPayload } from "../delivery.ts";
import type {
  AuthorizationEpochHook,
  AuthorizeReadHook,
  ClientInfo,
} from "../hooks.ts";
import { DropReason } from "../metrics.ts";
import { countDrop } from "../_session_drops.ts";
import { ReadCache } from "../_read_cache.ts";
import type { LoadedSession, Store, StoredMessage } from "../store/store.ts";
import { type BridgeAddress, parseBridgeAddress } from "./_address.ts";
import { bridgeId, bridgeRecord } from "./_id.ts";
import { Incoming, type IncomingHost } from "./_incoming.ts";
import { type Outgoing, OutgoingQueue, sendProperties } from "./_outgoing.ts";
import {
  type BridgeRule,
  compileRules,
  retainedOut,
  RuleMatcher,
  subscriptionsOf,
  toRemote,
} from "./_rules.ts";
import type { BridgeOptions, BridgeStatus } from "./types.ts";

const log = getLogger(["kite", "bridge"]);
const ONE = new TextEncoder().encode("1");
const ZERO = new TextEncoder().encode("0");

/** What a bridge needs of the broker (the core implements it). */
export interface BridgeHost extends IncomingHost {
  /** Where the bridge subscribes its outgoing side. */
  readonly dispatcher: Dispatcher;
  /** The retained messages, sent out on each connection (`out` rules). */
  readonly retained: {
    match(filter: string, cb: (message: StoredMessage) => void): void;
  };
  /** The hooks asked with `localUsername`. */
  readonly hooks: IncomingHost["hooks"] & {
    readonly authorizeRead?: AuthorizeReadHook;
    readonly authorizationEpoch?: AuthorizationEpochHook;
  };
  /** Where to keep messages for the remote; undefined: in memory only. */
  readonly bridgeStore: Store | undefined;
  /** What a bridge stored before a restart (once). */
  takeBridgeState(id: string): LoadedSession | undefined;
}

/**
 * One bridge. `start()` subscribes and connects; `stop()` disconnects.
 *
 * @example
 * ```ts ignore
 * const bridge = new Bridge(options, core, "host-1", undefined);
 * bridge.start();
 * bridge.status().connected;
 * await bridge.stop();
 * ```
 */
export class Bridge implements Subscriber {
  /** The bridge's name. */
  readonly name: string;
  /**
   * Its id in the dispatcher (and as publisher, for No Local): a NUL makes
   * it one no client can take.
   */
  readonly clientId: string;
  /** Deliveries keep their retain flag (Retain As Published). */
  readonly protocolVersion: ProtocolVersion = 5;
  /** Always takes deliveries: it queues while the remote is down. */
  readonly online = true;

  #host: BridgeHost;
  #addresses: BridgeAddress[];
  #addr = 0;
  #tried: BridgeAddress;
  #roundRobin: boolean;
  #tls: TlsOptions;
  #version: 4 | 5;
  #rules: BridgeRule[];
  #outRules: RuleMatcher;
  #in: RuleMatcher;
  #client: Client;
  #out: OutgoingQueue;
  #incoming: Incoming;
  /** `authorizeRead` answers for `localUsername` (undefined: not asked). */
  #read: ReadCache | undefined;
  /** The notification topics here and on the remote (undefined: none). */
  #notify: string | undefined;
  #notifyRemote: string | undefined;
  #backoff: Backoff;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #everConnected = false;
  #lost = false;
  #stopped = false;
  #failures = 0;
  #full = false;
  #down0 = false;
  #sent = 0;
  #dropped = 0;
  // Reused by every delivery (no allocation per message).
  #remotes: string[] = [];
  #qos: QoS[] = [];
  #plain: { qos: QoS; retain: boolean; tracker?: PublishTracker } = {
    qos: 0,
    retain: false,
  };
  #withProps: {
    qos: QoS;
    retain: boolean;
    properties: Properties;
    tracker?: PublishTracker;
  } = { qos: 0, retain: false, properties: {} };

  /**
   * A bridge with validated `options` (see `checkBridges`) for `host`;
   * `node` goes in the default client id; `caCerts` are trusted for
   * `mqtts://` and `wss://` addresses.
   */
  constructor(
    options: BridgeOptions,
    host: BridgeHost,
    node: string,
    caCerts: string[] | undefined,
  ) {
    const o = options;
    this.name = o.name;
    this.clientId = bridgeId(o.name);
    this.#host = host;
    this.#addresses = o.addresses.map(parseBridgeAddress);
    this.#tried = this.#addresses[0]!;
    this.#roundRobin = o.roundRobin ?? false;
    const tls: TlsOptions = this.#tls = {};
    if (caCerts !== undefined) tls.caCerts = caCerts;
    if (o.tls?.certFile !== undefined) tls.certFile = o.tls.certFile;
    if (o.tls?.keyFile !== undefined) tls.keyFile = o.tls.keyFile;
    this.#version = o.protocolVersion ?? 5;
    this.#rules = compileRules(o.topics);
    this.#outRules = new RuleMatcher(this.#rules, true);
    this.#in = new RuleMatcher(this.#rules, false);
    const maxQueued = o.maxQueued ?? 10_000;
    this.#out = new OutgoingQueue({
      id: this.clientId,
      store: host.bridgeStore,
      gate: host.gate,
      maxQueued,
      maxQueuedBytes: o.maxQueuedBytes ?? 0,
      events: this,
    });
    const clientId = o.clientId ?? `kite-bridge-${o.name}-${node}`;
    let identity: ClientInfo | undefined;
    if (o.localUsername !== undefined) {
      // Who the local rules are asked about, as Mosquitto's local_username
      // (its local client id is `local.<clientid>`).
      identity = {
        clientId: `local.${clientId}`,
        username: o.localUsername,
        protocolVersion: 5,
      };
      const read = host.hooks.authorizeRead;
      if (read !== undefined) {
        this.#read = new ReadCache(
          read,
          host.hooks.authorizationEpoch,
          identity,
        );
      }
    }
    this.#incoming = new Incoming(
      o.name,
      this.clientId,
      this.#in,
      host,
      identity,
      host.bridgeStore,
    );
    if (o.notifications !== false) {
      // On the remote, as Mosquitto: the state of this client id (a Kite
      // remote lets a client publish that one `$SYS` topic).
      this.#notify = o.notificationTopic ??
        `$SYS/broker/connection/${o.name}/state`;
      if (o.notificationsLocalOnly !== true) {
        this.#notifyRemote = o.notificationTopic ??
          `$SYS/broker/connection/${clientId}/state`;
      }
    }
    const reconnect = {
      initialDelay: o.reconnectDelay ?? 500,
      maxDelay: Math.max(o.maxReconnectDelay ?? 30_000, o.reconnectDelay ?? 0),
    };
    this.#backoff = new Backoff(reconnect);
    const c = this.#client = new Client(
      bridgeClientOptions(
        o,
        clientId,
        this.#notifyRemote,
        reconnect,
        maxQueued,
        tls,
        this.#addresses[0]!,
      ),
    );
    c.on("connect", this.#onConnect);
    c.on("disconnect", this.#onDisconnect);
    c.on("reconnect", this.#onReconnect);
    c.on("error", this.#onError);
    c.onMessage(this.#incoming.onMessage);
    c.on("released", this.#incoming.released);
  }

  /**
   * Subscribes the outgoing side here, takes back the messages for the
   * remote it stored before a restart, and starts connecting.
   */
  start(): void {
    const out = this.#out;
    const stored = this.#host.takeBridgeState(this.clientId);
    if (stored === undefined) {
      this.#host.bridgeStore?.putSession(bridgeRecord(this.clientId));
    }
    const resume = out.restore(stored);
    this.#incoming.restore(stored);
    if (out.count > 0) {
      log.info(
        "Bridge {name}: {count} messages for the remote kept from before the restart",
        { name: this.name, count: out.count },
      );
    }
    // In flight before: resent first after the CONNACK, with their ids.
    for (const o of resume) this.#publish(o, true);
    for (const [filter, qos] of subscriptionsOf(this.#rules, "local")) {
      this.#host.dispatcher.subscribe(this, {
        filter,
        qos,
        noLocal: true,
        retainAsPublished: true,
      });
    }
    this.#notifyLocal(false);
    this.#attempt();
  }

  /** What `Broker.bridges` reports. */
  status(): BridgeStatus {
    const c = this.#client;
    return {
      name: this.name,
      connected: c.connected,
      address: this.#addresses[this.#addr]!.url,
      queued: this.#out.waiting.length + c.queued,
      inFlight: c.inFlight,
      sent: this.#sent,
      received: this.#incoming.received,
      dropped: this.#dropped + this.#incoming.refused,
    };
  }

  // ----------------------------------------------------- Subscriber (out)

  /** Room for one more QoS 1/2 message. */
  hasRoom(): boolean {
    return this.#out.fits(0);
  }

  /** Whether QoS 0 messages go through now. */
  writable(): boolean {
    return this.#client.connected;
  }

  /**
   * A local message for the remote: once per remote topic of the matching
   * rules, at the lower of `qos` and the rule's QoS.
   */
  deliver(message: StoredMessage, qos: QoS, retain: boolean): void {
    const topic = message.topic;
    if (this.#read !== undefined && !this.#read.allows(topic)) return;
    const rules = this.#outRules.match(topic);
    const n = rules.length;
    if (n === 1) {
      const r = rules[0]!;
      this.#forward(
        message,
        toRemote(r, topic),
        r.qos < qos ? r.qos : qos,
        retain,
      );
      return;
    }
    if (n === 0) return;
    const remotes = this.#remotes;
    const qs = this.#qos;
    remotes.length = 0;
    qs.length = 0;
    for (let i = 0; i < n; i++) {
      const r = rules[i]!;
      const t = toRemote(r, topic);
      const q = r.qos < qos ? r.qos : qos;
      const j = remotes.indexOf(t);
      if (j < 0) {
        remotes.push(t);
        qs.push(q);
      } else if (q > qs[j]!) qs[j] = q;
    }
    for (let i = 0; i < remotes.length; i++) {
      this.#forward(message, remotes[i]!, qs[i]!, retain);
    }
  }

  #forward(message: StoredMessage, topic: string, qos: QoS, retain: boolean) {
    const c = this.#client;
    if (qos === 0) {
      if (c.connected) this.#publish0(message, topic, retain);
      else this.#drop0();
      return;
    }
    const out = this.#out;
    if (!out.fits(message.payload.byteLength + topic.length)) {
      this.#queueFull();
      return;
    }
    if (this.#full) {
      this.#full = false;
      log.info("Bridge {name}: queue has room again", { name: this.name });
    }
    ownPayload(message); // kept until acknowledged
    // As it goes to the remote (and is stored): its topic there, the
    // retain flag it is sent with.
    const m = topic === message.topic && retain === message.retain
      ? message
      : { ...message, topic, retain };
    const o = out.add(m, qos)!;
    if (c.connected && out.waiting.length === 0) this.#publish(o, false);
    else out.waiting.push(o);
  }

  /** Hands a QoS 0 message to the client (connected). */
  #publish0(message: StoredMessage, topic: string, retain: boolean): void {
    const props = sendProperties(message, this.#version, false);
    if (props === null) {
      this.#dropped++; // expired while waiting
      return;
    }
    let o: { qos: QoS; retain: boolean; properties?: Properties } = this.#plain;
    if (props !== undefined) {
      o = this.#withProps;
      o.properties = props;
    }
    o.qos = 0;
    o.retain = retain;
    this.#client.publish(topic, message.payload, o);
    this.#sent++;
  }

  /**
   * Hands a QoS 1/2 message to the client, tracked; `resumed`: one that was
   * in flight before a restart, resent with its packet id after the CONNACK.
   */
  #publish(o: Outgoing, resumed: boolean): void {
    const m = o.message;
    const props = sendProperties(m, this.#version, resumed);
    if (props === null) {
      this.#out.drop(o);
      this.#dropped++;
      countDrop(this.#host.metrics, DropReason.Expired);
      return;
    }
    let opts: PublishOptions;
    if (resumed) {
      opts = {
        qos: o.qos,
        retain: m.retain,
        tracker: o,
        resume: { packetId: o.packetId, released: o.state === "pubrec" },
      };
      if (props !== undefined) opts.properties = props;
    } else if (props !== undefined) {
      const w = this.#withProps;
      w.properties = props;
      opts = w;
    } else opts = this.#plain;
    opts.qos = o.qos;
    opts.retain = m.retain;
    opts.tracker = o;
    this.#client.publish(m.topic, m.payload, opts);
  }

  /** OutgoingEvents: the remote acknowledged, or refused, a message. */
  settled(_o: Outgoing, error: Error | undefined): void {
    if (error === undefined) {
      this.#sent++;
      return;
    }
    this.#dropped++;
    this.#host.metrics.messagesDropped++;
    log.warn("Bridge {name}: the remote refused a message: {error}", {
      name: this.name,
      error: error.message,
    });
  }

  #drop0(): void {
    this.#dropped++;
    this.#host.metrics.messagesDropped++;
    if (!this.#down0) {
      this.#down0 = true;
      log.info(
        "Bridge {name}: remote down: QoS 0 messages are dropped until it is back",
        { name: this.name },
      );
    }
  }

  #queueFull(): void {
    this.#dropped++;
    countDrop(this.#host.metrics, DropReason.QueueFull);
    if (!this.#full) {
      this.#full = true;
      log.warn(
        "Bridge {name}: {count} messages ({bytes} bytes) held for the remote (maxQueued, maxQueuedBytes): new messages are dropped until it takes some",
        { name: this.name, count: this.#out.count, bytes: this.#out.bytes },
      );
    }
  }

  // ---------------------------------------------------------- connection

  /** The first connection: tried until it succeeds (then the client reconnects). */
  #attempt = (): void => {
    this.#timer = undefined;
    if (this.#stopped) return;
    this.#use(this.#addr);
    this.#client.connect().catch(this.#firstFailed);
  };

  #firstFailed = (e: unknown): void => {
    if (this.#stopped || this.#everConnected) return;
    if (this.#failed(e)) {
      this.#timer = setTimeout(this.#attempt, 0); // same address, no flag
      return;
    }
    this.#addr = (this.#addr + 1) % this.#addresses.length;
    this.#timer = setTimeout(this.#attempt, this.#backoff.next());
  };

  /** Points the client at address `i` for its next attempt. */
  #use(i: number): void {
    this.#addr = i;
    const a = this.#tried = this.#addresses[i]!;
    useAddress(this.#client.options, a, this.#tls);
  }

  #onConnect = (connack: ConnackPacket): void => {
    const first = !this.#everConnected;
    this.#everConnected = true;
    this.#failures = 0;
    this.#down0 = false;
    this.#backoff.reset();
    const c = this.#client;
    log.info("Bridge {name}: connected to {url}{session}", {
      name: this.name,
      url: this.#tried.url,
      session: connack.sessionPresent ? " (session present)" : "",
      bridgeFlag: c.options.bridge,
    });
    if (this.#notifyRemote !== undefined) {
      c.publish(this.#notifyRemote, ONE, { qos: 1, retain: true }).catch(
        this.#notifyRefused,
      );
    }
    if (first) this.#subscribeRemote();
    // No QoS 2 id of an old session on the remote comes again.
    if (!connack.sessionPresent) this.#incoming.sessionLost();
    // What waited while the remote was down, in order, before anything new.
    // (Those in flight before were resent first, by the client.)
    const waiting = this.#out.waiting;
    while (waiting.length > 0) this.#publish(waiting.shift()!, false);
    this.#sendRetained();
    this.#notifyLocal(true);
  };

  #subscribeRemote(): void {
    const byQos = new Map<QoS, string[]>();
    for (const [filter, qos] of subscriptionsOf(this.#rules, "remote")) {
      const list = byQos.get(qos);
      if (list === undefined) byQos.set(qos, [filter]);
      else list.push(filter);
    }
    for (const [qos, filters] of byQos) {
      this.#client.subscribe(filters, {
        qos,
        noLocal: true,
        retainAsPublished: true,
      }).then((codes) => {
        codes.forEach((code, i) => {
          if (code < 0x80) return;
          log.warn("Bridge {name}: the remote refused {filter}: {reason}", {
            name: this.name,
            filter: filters[i],
            reason: reasonCodeName(code),
          });
        });
      }, () => {/* resent after a reconnect, or the bridge stopped */});
    }
  }

  /** The retained messages under `out` rules, sent on each connection. */
  #sendRetained(): void {
    retainedOut(
      this.#rules,
      this.#outRules,
      this.#host.retained,
      (m, topic, qos) => this.#forward(m, topic, qos, true),
    );
  }

  #notifyRefused = (e: unknown): void => {
    log.warn(
      "Bridge {name}: the remote refused the state on {topic}: {error} (set notificationsLocalOnly)",
      { name: this.name, topic: this.#notifyRemote, error: String(e) },
    );
  };

  #onDisconnect = (e: DisconnectEvent): void => {
    if (this.#stopped) return;
    this.#lost = true;
    log.warn("Bridge {name}: connection to {url} lost: {reason}", {
      name: this.name,
      url: this.#tried.url,
      reason: e.reason,
    });
    this.#notifyLocal(false);
  };

  /** The client scheduled an attempt: which address it tries. */
  #onReconnect = (): void => {
    const n = this.#addresses.length;
    let next = (this.#addr + 1) % n;
    if (this.#lost && !this.#roundRobin) next = 0; // the first one first
    this.#lost = false;
    if (n > 1) this.#use(next);
  };

  /** A reconnect attempt failed. */
  #onError = (e: Error): void => {
    if (!this.#stopped) this.#failed(e);
  };

  /** Logs a failed attempt; true when it dropped the bridge flag. */
  #failed(e: unknown): boolean {
    const c = this.#client;
    if (
      e instanceof MqttError &&
      e.reasonCode === ReasonCode.UnsupportedProtocolVersion &&
      c.options.bridge === true
    ) {
      // `try_private` refused: as Mosquitto, go on without the flag.
      c.options.bridge = false;
      const loops = this.#version === 4 &&
        this.#rules.some((r) => r.direction === "both");
      log.info(
        "Bridge {name}: {url} refused the bridge flag: connecting without it{loops}",
        {
          name: this.name,
          url: this.#tried.url,
          loops: loops
            ? " (MQTT 3.1.1 without it: messages on `both` topics may come back)"
            : "",
        },
      );
      return true;
    }
    const props = {
      name: this.name,
      url: this.#tried.url,
      error: e instanceof Error ? e.message : String(e),
    };
    const message = "Bridge {name}: cannot connect to {url}: {error}";
    if (++this.#failures === 1) log.warn(message, props);
    else log.debug(message, props);
    return false;
  }

  #notifyLocal(up: boolean): void {
    const topic = this.#notify;
    if (topic === undefined) return;
    this.#host.publish({
      topic,
      payload: up ? ONE : ZERO,
      qos: 1,
      retain: this.#host.settings.retainAvailable,
    }, this.clientId);
  }

  /**
   * Unsubscribes here, tells the remote the bridge is down (`0`, when
   * notifications go there), disconnects. Messages still held for the
   * remote stay in the store when it is durable (sent after a restart),
   * else they are lost (logged).
   */
  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    for (const filter of subscriptionsOf(this.#rules, "local").keys()) {
      this.#host.dispatcher.unsubscribe(this, filter);
    }
    const c = this.#client;
    if (c.connected && this.#notifyRemote !== undefined) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        c.publish(this.#notifyRemote, ZERO, { qos: 1, retain: true }).catch(
          () => {},
        ),
        new Promise((r) => timer = setTimeout(r, 1000)),
      ]);
      clearTimeout(timer);
    }
    await c.disconnect();
    this.#notifyLocal(false);
    const left = this.#out.count;
    if (left === 0) return;
    if (this.#out.durable) {
      log.info(
        "Bridge {name}: stopped with {count} messages for the remote kept in the store: sent when the broker starts again",
        { name: this.name, count: left },
      );
    } else {
      log.warn(
        "Bridge {name}: stopped with {count} messages not delivered to the remote (persistence is off: they are lost)",
        { name: this.name, count: left },
      );
    }
  }
}
