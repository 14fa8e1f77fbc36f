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
 *   publisher.
 * - While the remote is down, QoS 1/2 messages wait in the bridge and are
 *   sent when it is back; QoS 0 ones are dropped. At most `maxQueued` wait
 *   (here, or in the client behind the remote's Receive Maximum, which
 *   bounds those in flight); when full, new ones are dropped, logged and
 *   counted. The client reconnects on Kite's jittered backoff, to the
 *   next address when one fails.
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
import { Fifo } from "../../codec/_fifo.ts";
import { Client } from "../../client/client.ts";
import { ClientOfflineError } from "../../client/errors.ts";
import type { DisconnectEvent } from "../../client/events.ts";
import type { Message } from "../../client/message.ts";
import type { ClientOptions } from "../../client/options.ts";
import { Backoff } from "../../client/reconnect.ts";
import type { Dispatcher, Subscriber } from "../dispatcher.ts";
import { ownPayload } from "../delivery.ts";
import type { StoredMessage } from "../store/store.ts";
import { type BridgeAddress, parseBridgeAddress } from "./_address.ts";
import {
  type BridgeRule,
  compileRules,
  RuleMatcher,
  subscriptionsOf,
  toLocal,
  toRemote,
} from "./_rules.ts";
import type { BridgeOptions, BridgeStatus } from "./types.ts";

const log = getLogger(["kite", "bridge"]);
const ONE = new TextEncoder().encode("1");
const ZERO = new TextEncoder().encode("0");

/** What a bridge needs of the broker (the core implements it). */
export interface BridgeHost {
  /** Where the bridge subscribes its outgoing side. */
  readonly dispatcher: Dispatcher;
  /** The retained messages, sent out on each connection (`out` rules). */
  readonly retained: {
    match(filter: string, cb: (message: StoredMessage) => void): void;
  };
  /** Whether retained messages are supported here. */
  readonly settings: { readonly retainAvailable: boolean };
  /** Counters: the bridge adds the messages it drops. */
  readonly metrics: { messagesDropped: number };
  /** Publishes into the broker (retained store, then routing). */
  publish(message: StoredMessage, publisherId: string | undefined): number;
}

/** A QoS 1/2 message waiting for the remote. */
interface Waiting {
  message: StoredMessage;
  topic: string;
  qos: QoS;
  retain: boolean;
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
  #tls: true | { caCerts: string[] };
  #version: 4 | 5;
  #rules: BridgeRule[];
  #out: RuleMatcher;
  #in: RuleMatcher;
  #client: Client;
  #maxQueued: number;
  /** The notification topics here and on the remote (undefined: none). */
  #notify: string | undefined;
  #notifyRemote: string | undefined;
  #backoff: Backoff;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #waiting = new Fifo<Waiting>();
  #everConnected = false;
  #lost = false;
  #stopped = false;
  #failures = 0;
  #full = false;
  #down0 = false;
  #sent = 0;
  #received = 0;
  #dropped = 0;
  // Reused by every delivery (no allocation per message).
  #remotes: string[] = [];
  #qos: QoS[] = [];
  #plain: { qos: QoS; retain: boolean } = { qos: 0, retain: false };
  #withProps: { qos: QoS; retain: boolean; properties: Properties } = {
    qos: 0,
    retain: false,
    properties: {},
  };

  /**
   * A bridge with validated `options` (see `checkBridges`) for `host`;
   * `node` goes in the default client id; `caCerts` are trusted for
   * `mqtts://` addresses.
   */
  constructor(
    options: BridgeOptions,
    host: BridgeHost,
    node: string,
    caCerts: string[] | undefined,
  ) {
    const o = options;
    this.name = o.name;
    this.clientId = `\u0000bridge:${o.name}`;
    this.#host = host;
    this.#addresses = o.addresses.map(parseBridgeAddress);
    this.#tried = this.#addresses[0]!;
    this.#roundRobin = o.roundRobin ?? false;
    this.#tls = caCerts === undefined ? true : { caCerts };
    this.#version = o.protocolVersion ?? 5;
    this.#rules = compileRules(o.topics);
    this.#out = new RuleMatcher(this.#rules, true);
    this.#in = new RuleMatcher(this.#rules, false);
    this.#maxQueued = o.maxQueued ?? 10_000;
    const clientId = o.clientId ?? `kite-bridge-${o.name}-${node}`;
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
    const first = this.#addresses[0]!;
    const co: ClientOptions = {
      host: first.host,
      port: first.port,
      clientId,
      protocolVersion: this.#version,
      bridge: this.#version === 4 && o.tryPrivate !== false,
      cleanStart: o.cleanStart ?? false,
      keepAlive: o.keepAlive ?? 60,
      connectTimeout: 15_000,
      reconnect: { ...reconnect, retryRefusals: true },
      // The bridge bounds what it hands over; the client never refuses.
      maxQueued: this.#maxQueued + 1,
      queueQoS0Offline: false,
    };
    if (this.#version === 5) {
      co.sessionExpiryInterval = o.sessionExpiryInterval ?? 86_400;
    }
    if (o.username !== undefined) co.username = o.username;
    if (o.password !== undefined) co.password = o.password;
    if (this.#notifyRemote !== undefined) {
      co.will = {
        topic: this.#notifyRemote,
        payload: ZERO,
        qos: 1,
        retain: true,
      };
    }
    const c = this.#client = new Client(co);
    c.on("connect", this.#onConnect);
    c.on("disconnect", this.#onDisconnect);
    c.on("reconnect", this.#onReconnect);
    c.on("error", this.#onError);
    c.onMessage(this.#onRemote);
  }

  /** Subscribes the outgoing side here and starts connecting. */
  start(): void {
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
      queued: this.#waiting.length + c.queued,
      inFlight: c.inFlight,
      sent: this.#sent,
      received: this.#received,
      dropped: this.#dropped,
    };
  }

  // ----------------------------------------------------- Subscriber (out)

  /** Room for one more QoS 1/2 message. */
  hasRoom(): boolean {
    return this.#waiting.length + this.#client.queued < this.#maxQueued;
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
    const rules = this.#out.match(topic);
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
      if (c.connected) this.#publish(message, topic, 0, retain);
      else this.#drop0();
      return;
    }
    if (this.#waiting.length + c.queued >= this.#maxQueued) {
      this.#queueFull();
      return;
    }
    if (this.#full) {
      this.#full = false;
      log.info("Bridge {name}: queue has room again", { name: this.name });
    }
    ownPayload(message); // kept until acknowledged
    if (c.connected) this.#publish(message, topic, qos, retain);
    else this.#waiting.push({ message, topic, qos, retain });
  }

  /** Hands one message to the client (connected). */
  #publish(
    message: StoredMessage,
    topic: string,
    qos: QoS,
    retain: boolean,
  ): void {
    let o: { qos: QoS; retain: boolean; properties?: Properties } = this.#plain;
    if (this.#version === 5) {
      let props = message.properties;
      const at = message.expiresAt;
      if (at !== undefined) {
        // The time spent here counts [MQTT-3.3.2-6].
        const left = Math.ceil((at - Date.now()) / 1000);
        if (left <= 0) {
          this.#dropped++; // expired while waiting
          return;
        }
        props = { ...props, messageExpiryInterval: left };
      }
      if (props !== undefined) {
        o = this.#withProps;
        o.properties = props;
      }
    }
    o.qos = qos;
    o.retain = retain;
    const p = this.#client.publish(topic, message.payload, o);
    if (qos === 0) this.#sent++;
    else p.then(this.#acked, this.#refused);
  }

  #acked = (): void => {
    this.#sent++;
  };

  #refused = (e: unknown): void => {
    this.#dropped++;
    this.#host.metrics.messagesDropped++;
    if (!(e instanceof ClientOfflineError)) {
      log.warn("Bridge {name}: the remote refused a message: {error}", {
        name: this.name,
        error: e instanceof Error ? e.message : String(e),
      });
    }
  };

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
    this.#host.metrics.messagesDropped++;
    if (!this.#full) {
      this.#full = true;
      log.warn(
        "Bridge {name}: {max} messages held for the remote (maxQueued): new messages are dropped until it takes some",
        { name: this.name, max: this.#maxQueued },
      );
    }
  }

  // ------------------------------------------------------------------ in

  /** A message from the remote: published here under the first rule. */
  #onRemote = (m: Message): void => {
    const r = this.#in.match(m.topic)[0];
    if (r === undefined) return;
    const message: StoredMessage = {
      topic: toLocal(r, m.topic),
      payload: m.payload,
      qos: m.qos < r.qos ? m.qos : r.qos,
      retain: m.retain && this.#host.settings.retainAvailable,
    };
    const props = m.properties;
    for (const _ in props) {
      let p = props;
      if (p.subscriptionIdentifiers !== undefined) {
        p = { ...p };
        delete p.subscriptionIdentifiers;
      }
      const mei = p.messageExpiryInterval;
      if (mei !== undefined) message.expiresAt = Date.now() + mei * 1000;
      message.properties = p;
      break;
    }
    this.#received++;
    this.#host.publish(message, this.clientId);
  };

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
    const o = this.#client.options;
    o.host = a.host;
    o.port = a.port;
    o.tls = a.tls ? this.#tls : false;
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
    // What waited while the remote was down, in order, before anything new.
    const waiting = this.#waiting;
    while (waiting.length > 0) {
      const w = waiting.shift()!;
      this.#publish(w.message, w.topic, w.qos, w.retain);
    }
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

  /**
   * The retained messages under `out` rules, sent on each connection (as
   * Mosquitto does). Not under `both` rules: there they may have come from
   * the remote, and an old copy would overwrite a newer value there.
   */
  #sendRetained(): void {
    const found = new Map<string, StoredMessage>();
    const now = Date.now();
    for (const r of this.#rules) {
      if (r.direction !== "out") continue;
      this.#host.retained.match(r.localFilter, (m) => {
        if (m.expiresAt === undefined || m.expiresAt > now) {
          found.set(m.topic, m);
        }
      });
    }
    for (const m of found.values()) {
      const sent = new Set<string>();
      for (const r of this.#out.match(m.topic)) {
        if (r.direction !== "out") continue;
        const t = toRemote(r, m.topic);
        if (sent.has(t)) continue;
        sent.add(t);
        this.#forward(m, t, r.qos < m.qos ? r.qos : m.qos, true);
      }
    }
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
   * notifications go there), disconnects. Messages still waiting are lost
   * (logged).
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
    const left = this.#waiting.length + c.queued + c.inFlight;
    await c.disconnect();
    this.#notifyLocal(false);
    if (left > 0) {
      log.warn(
        "Bridge {name}: stopped with {count} messages not delivered to the remote",
        { name: this.name, count: left },
      );
    }
  }
}
