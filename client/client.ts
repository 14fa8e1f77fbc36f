/**
 * The async MQTT client: `Client`.
 *
 * One TCP (or TLS) connection at a time, read with a lean loop into a small
 * reused buffer and decoded by the shared codec; outgoing packets are encoded
 * once and coalesced into one write per turn of the event loop. Protocol
 * decisions (packet ids, flow control, resend, aliases) live in `state.ts`.
 *
 * @module
 */

import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  Subscription,
  UnsubackPacket,
  UserProperty,
} from "../codec/packet.ts";
import {
  MqttError,
  PacketTooLargeError,
  QuotaExceededError,
} from "../codec/errors.ts";
import { ReasonCode, reasonCodeName } from "../codec/reason_code.ts";
import { addToList, ListenerLists } from "./_listeners.ts";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import {
  parseSharedSubscription,
  TopicMatcher,
  validateTopicFilter,
  validateTopicName,
} from "../codec/topic.ts";
import { getLogger } from "@logtape/logtape";
import { Message } from "./message.ts";
import { Backoff, type ReconnectOptions } from "./reconnect.ts";
import {
  ClientState,
  type Entry,
  type PublishEntry,
  type PublishResult,
  type SubscribeEntry,
  TopicAliasReceiver,
  TopicAliasSender,
  type UnsubscribeEntry,
} from "./state.ts";

const log = getLogger(["kite", "client"]);
const textEncoder = new TextEncoder();

/** The last will, published by the broker if the client vanishes. */
export interface WillOptions {
  /** Topic of the will message. */
  topic: string;
  /** Payload: a string is sent as UTF-8. */
  payload: string | Uint8Array;
  /** Default 0. */
  qos?: QoS;
  /** Default false. */
  retain?: boolean;
  /** v5 will properties: willDelayInterval, messageExpiryInterval, ... */
  properties?: Properties;
}

/** What the `auth` callback of enhanced authentication (v5) is given. */
export interface AuthChallenge {
  /** The reason code of the broker's AUTH (0x18 Continue authentication). */
  reasonCode: number;
  /** The authentication method. */
  method: string;
  /** The broker's authentication data, if any. */
  data: Uint8Array | undefined;
}

/** Options of a `Client`. Every field is optional. */
export interface ClientOptions {
  /** Broker host. Default `"127.0.0.1"`. */
  host?: string;
  /** Broker port. Default 1883 (8883 with `tls`). */
  port?: number;
  /** Connect with TLS; an object is passed to `Deno.connectTls`. */
  tls?: boolean | { caCerts?: string[] };
  /** Client identifier. Default a random `kite-…` id. */
  clientId?: string;
  /** User name. */
  username?: string;
  /** Password; a string is sent as UTF-8. */
  password?: string | Uint8Array;
  /** Clean Start (v5) / Clean Session (3.1.1). Default true. */
  cleanStart?: boolean;
  /** Alias of `cleanStart` with the 3.1.1 name. */
  cleanSession?: boolean;
  /** Keep alive in seconds; 0 disables pings. Default 60. */
  keepAlive?: number;
  /**
   * Milliseconds to wait for a PINGRESP before the connection is declared
   * dead (closed, then reconnected). Default: the keep alive, at most 10 s.
   */
  pingTimeout?: number;
  /** 4 (MQTT 3.1.1) or 5 (MQTT 5.0). Default 5. */
  protocolVersion?: 4 | 5;
  /** The will message. */
  will?: WillOptions;
  /** v5 Session Expiry Interval in seconds. */
  sessionExpiryInterval?: number;
  /** v5 Receive Maximum the client announces. Default 65535 (not sent). */
  receiveMaximum?: number;
  /** v5 Maximum Packet Size the client accepts, in bytes. */
  maximumPacketSize?: number;
  /** v5 Topic Alias Maximum: aliases the broker may use towards us. Default 0. */
  topicAliasMaximum?: number;
  /** v5: ask for Response Information in CONNACK. */
  requestResponseInformation?: boolean;
  /** v5: whether the broker may send reason strings/user properties on errors. */
  requestProblemInformation?: boolean;
  /** v5 user properties of the CONNECT. */
  userProperties?: UserProperty[];
  /** v5 enhanced authentication method. */
  authenticationMethod?: string;
  /** v5 initial authentication data. */
  authenticationData?: Uint8Array;
  /**
   * v5 enhanced authentication: called for each AUTH (0x18) from the broker
   * during connect; returns the data to answer with.
   */
  auth?: (
    challenge: AuthChallenge,
  ) => Promise<Uint8Array | undefined> | Uint8Array | undefined;
  /** Milliseconds to wait for the TCP connection and CONNACK. Default 30 000. */
  connectTimeout?: number;
  /** Automatic reconnect: `false` to disable, or its options. Default on. */
  reconnect?: boolean | ReconnectOptions;
  /**
   * Most requests (publish, subscribe, unsubscribe) waiting to be sent while
   * offline or held back by the broker's Receive Maximum. When full, a new
   * request is rejected with `QuotaExceededError` (0x97); nothing queued is
   * dropped. Default 10 000.
   */
  maxQueued?: number;
  /**
   * What `publish()` of QoS 0 does while offline: `true` (default) queues it
   * like QoS 1/2 (sent after reconnecting); `false` rejects it at once with
   * `ClientOfflineError`, and QoS 0 messages still queued when the
   * connection drops are rejected the same way.
   */
  queueQoS0Offline?: boolean;
  /**
   * v5: assign topic aliases automatically to published topics, within the
   * broker's Topic Alias Maximum (least recently used alias reused). Default
   * false.
   */
  autoTopicAliases?: boolean;
  /**
   * Whenever a CONNACK says the session is not present, subscribe again to
   * every filter this client subscribed to (and did not unsubscribe), with
   * the same options. Default true.
   */
  resubscribe?: boolean;
  /**
   * Messages buffered per `messages()` iterator. When an iterator's buffer is
   * full the client stops reading from the socket until it is consumed (TCP
   * backpressure: nothing is dropped; pings are not timed out meanwhile).
   * Default 1000.
   */
  messageBufferSize?: number;
}

/** Options of `publish()`. */
export interface PublishOptions {
  /** Default 0. */
  qos?: QoS;
  /** Default false. */
  retain?: boolean;
  /**
   * v5 manual topic alias (1..the broker's Topic Alias Maximum): give the
   * topic the first time and `""` after; the client resends the full topic
   * after a reconnect by itself.
   */
  topicAlias?: number;
  /**
   * v5 properties: messageExpiryInterval, contentType, responseTopic,
   * correlationData, userProperties, payloadFormatIndicator.
   */
  properties?: Properties;
}

/** Options of `subscribe()`, for every filter of the call. */
export interface SubscribeOptions {
  /** Maximum QoS. Default 0. */
  qos?: QoS;
  /** v5: do not receive our own publishes. */
  noLocal?: boolean;
  /** v5: keep the retain flag as published. */
  retainAsPublished?: boolean;
  /** v5: 0 send retained, 1 only for new subscriptions, 2 never. */
  retainHandling?: 0 | 1 | 2;
  /** v5 Subscription Identifier (1..268 435 455). */
  subscriptionIdentifier?: number;
  /** v5 user properties of the SUBSCRIBE. */
  userProperties?: UserProperty[];
}

/** Options of `disconnect()`. */
export interface DisconnectOptions {
  /** v5 reason code. Default 0 (or 0x04 to have the will sent). */
  reasonCode?: number;
  /** v5: change the session expiry interval on the way out. */
  sessionExpiryInterval?: number;
  /** v5 reason string. */
  reasonString?: string;
  /** v5 user properties. */
  userProperties?: UserProperty[];
}

/** Options of `request()`. */
export interface RequestOptions {
  /** QoS of the request and of the response subscription. Default 1. */
  qos?: QoS;
  /** Milliseconds to wait for the response. Default 10 000. */
  timeout?: number;
  /** Extra v5 properties of the request (contentType, userProperties…). */
  properties?: Properties;
}

/** A message handler; a returned promise's rejection is reported as "error". */
export type MessageHandler = (message: Message) => void | Promise<void>;

/** Why a connection ended, as given to "disconnect" listeners. */
export interface DisconnectEvent {
  /**
   * The v5 reason code: from the broker's DISCONNECT, the client's own
   * (e.g. 0x8D keep alive timeout), or 0 for a normal disconnect.
   */
  reasonCode: number;
  /** A sentence a person can read. */
  reason: string;
  /** Who ended it. */
  initiator: "client" | "server" | "network";
  /** The broker's DISCONNECT, if it sent one. */
  packet?: DisconnectPacket;
  /** The error that ended it, if any. */
  error?: Error;
  /** True when the client will try to reconnect. */
  willReconnect: boolean;
}

/** The events of a `Client` and what each listener receives. */
export interface ClientEvents {
  /** Each successful connection (the first and every reconnect). */
  connect: ConnackPacket;
  /** A connection ended. */
  disconnect: DisconnectEvent;
  /** A reconnect attempt is scheduled after `delay` ms. */
  reconnect: { attempt: number; delay: number };
  /** The client lost its connection and queues requests until reconnected. */
  offline: { queued: number };
  /** The client is closed for good (disconnect, close, or gave up). */
  close: { reason: string };
  /** A handler failed, a reconnect attempt failed, or the broker misbehaved. */
  error: Error;
}

/** A listener of event `K`. */
export type ClientListener<K extends keyof ClientEvents> = (
  event: ClientEvents[K],
) => void;

/**
 * A request that cannot be done because the client is offline (QoS 0 with
 * `queueQoS0Offline: false`) or closed. Reason code 0x80.
 */
export class ClientOfflineError extends MqttError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(ReasonCode.UnspecifiedError, message, options);
    this.name = "ClientOfflineError";
  }
}

/** A request that got no answer in time (connect, request). Reason code 0x80. */
export class TimeoutError extends MqttError {
  /** Creates the error. */
  constructor(message: string) {
    super(ReasonCode.UnspecifiedError, message);
    this.name = "TimeoutError";
  }
}

/** 3.1.1 CONNACK return codes -> v5 reason codes. */
const V4_CONNACK_TO_V5: readonly number[] = [
  ReasonCode.Success,
  ReasonCode.UnsupportedProtocolVersion,
  ReasonCode.ClientIdentifierNotValid,
  ReasonCode.ServerUnavailable,
  ReasonCode.BadUserNameOrPassword,
  ReasonCode.NotAuthorized,
];

const QOS0_RESULT: PublishResult = Object.freeze({ reasonCode: 0 });
const READ_BUFFER = 16 * 1024;

type Timer = ReturnType<typeof setTimeout>;
type Handler = { filter: string; fn: MessageHandler };

interface Pending {
  resolve(connack: ConnackPacket): void;
  reject(error: Error): void;
}

/**
 * The async MQTT 3.1.1/5.0 client.
 *
 * @example
 * ```ts ignore
 * import { Client } from "@kite/mqtt/client";
 * const client = new Client({ host: "127.0.0.1", port: 1883 });
 * await client.connect();
 * await client.subscribe("sensors/+/temp", { qos: 1 }, (msg) => {
 *   console.log(msg.topic, msg.payloadText);
 * });
 * await client.publish("sensors/kitchen/temp", "21.5", { qos: 1 });
 * await client.disconnect();
 * ```
 */
export class Client {
  /** The options as given (merged with those passed to `connect()`). */
  options: ClientOptions;
  /** The client id: given, generated, or assigned by the broker (v5). */
  clientId: string;
  /** The last CONNACK. */
  connack: ConnackPacket | undefined;

  #version: ProtocolVersion = 5;
  #state: ClientState;
  #aliasOut: TopicAliasSender;
  #aliasIn: TopicAliasReceiver;
  #backoff: Backoff;
  #reconnect: boolean;

  // connection
  #conn: Deno.Conn | undefined;
  #epoch = 0;
  #connected = false;
  #everConnected = false;
  #resume = false;
  #closed = true; // no connection wanted (before connect / after close)
  #pending: Pending | undefined;
  #reauth: PromiseWithResolvers<AuthPacket> | undefined;
  #connectTimer: Timer | undefined;
  #reconnectTimer: Timer | undefined;
  #reads = new Set<Promise<void>>();
  #connecting: Promise<ConnackPacket> | undefined;

  // broker limits
  #maxPacketSize = Infinity;

  // writes
  #out: Uint8Array[] = [];
  #outBytes = 0;
  #batch: PromiseWithResolvers<PublishResult> | undefined;
  #flushScheduled = false;
  #flushing: Promise<void> | undefined;
  #writing = false;
  #lastWrite = 0;

  // keep alive
  #keepAliveMs = 0;
  #pingTimeoutMs = 0;
  #pingSentAt = 0;
  #kaTimer: Timer | undefined;

  // receiving
  #onMessage: MessageHandler[] = [];
  #matcher = new TopicMatcher<Handler>();
  #handlerKeys = 0;
  #iterators = new Set<MessageIterator>();
  #readPaused: (() => void) | undefined;
  #matched: Handler[] = [];
  #collect = (h: Handler): void => {
    this.#matched.push(h);
  };
  #handlerKeysByFilter = new Map<string, [inner: string, key: string][]>();
  #subscriptions = new Map<
    string,
    { sub: Subscription; properties: Properties | undefined }
  >();

  // request/response
  #responseTopic: string | undefined;
  #responseSub: Promise<void> | undefined;
  #requests = new Map<
    string,
    { resolve(m: Message): void; reject(e: Error): void; timer: Timer }
  >();

  #listeners = new ListenerLists<ClientEvents>();

  /** Creates a client; nothing happens until `connect()`. */
  constructor(options: ClientOptions = {}) {
    this.options = { ...options };
    this.clientId = options.clientId ?? randomClientId();
    this.#state = new ClientState({ maxQueued: options.maxQueued ?? 10_000 });
    this.#aliasOut = new TopicAliasSender(options.autoTopicAliases === true);
    this.#aliasIn = new TopicAliasReceiver(options.topicAliasMaximum ?? 0);
    const r = options.reconnect;
    this.#reconnect = r !== false &&
      !(typeof r === "object" && r.enabled === false);
    this.#backoff = new Backoff(typeof r === "object" ? r : {});
  }

  /** True while a connection is up (CONNACK received). */
  get connected(): boolean {
    return this.#connected;
  }

  /** The protocol version in use (4 or 5). */
  get protocolVersion(): ProtocolVersion {
    return this.#version;
  }

  /** Requests waiting to be sent (offline or held back by flow control). */
  get queued(): number {
    return this.#state.queued;
  }

  /** QoS 1/2 publishes sent and not yet acknowledged. */
  get inFlight(): number {
    return this.#state.publishesInFlight;
  }

  // ---------------------------------------------------------------- events

  /**
   * Adds a listener; returns a function that removes it.
   *
   * @example
   * ```ts ignore
   * const off = client.on("disconnect", (e) => console.log(e.reason));
   * off();
   * ```
   */
  on<K extends keyof ClientEvents>(
    name: K,
    listener: ClientListener<K>,
  ): () => void {
    return this.#listeners.on(name, listener);
  }

  #emit<K extends keyof ClientEvents>(name: K, event: ClientEvents[K]): void {
    if (this.#listeners.count(name) === 0) {
      if (name === "error") {
        log.warn("unhandled client error: {error}", { error: event });
      }
      return;
    }
    this.#listeners.emit(name, event, (e) => {
      if (name !== "error") this.#emit("error", toError(e));
      else log.error("error listener threw: {error}", { error: e });
    });
  }

  // --------------------------------------------------------------- connect

  /**
   * Connects (options given here are merged into the constructor's).
   * Resolves with the CONNACK; rejects with an `MqttError` carrying the v5
   * reason code when the broker refuses (3.1.1 return codes are mapped:
   * 1 -> 0x84, 2 -> 0x85, 3 -> 0x88, 4 -> 0x86, 5 -> 0x87), with 0x88 when
   * the broker cannot be reached, or with `TimeoutError`. A failed first
   * connect is not retried; automatic reconnect applies to connections lost
   * later.
   *
   * @example
   * ```ts ignore
   * const connack = await new Client({ port: 1883 }).connect();
   * connack.sessionPresent;
   * ```
   */
  connect(options: ClientOptions = {}): Promise<ConnackPacket> {
    if (this.#connecting) return this.#connecting;
    if (this.#connected) return Promise.resolve(this.connack!);
    Object.assign(this.options, options);
    if (options.clientId !== undefined) this.clientId = options.clientId;
    this.#closed = false;
    this.#resume = false;
    this.#everConnected = false; // a failed connect() is not retried
    const p = this.#open().finally(() => {
      this.#connecting = undefined;
    });
    this.#connecting = p;
    return p;
  }

  async #open(): Promise<ConnackPacket> {
    const o = this.options;
    const version: ProtocolVersion = o.protocolVersion ?? 5;
    if (version !== 4 && version !== 5) {
      throw new MqttError(
        ReasonCode.UnsupportedProtocolVersion,
        `protocolVersion must be 4 or 5, not ${version}`,
      );
    }
    this.#version = version;
    const host = o.host ?? "127.0.0.1";
    const port = o.port ?? (o.tls ? 8883 : 1883);
    const timeout = o.connectTimeout ?? 30_000;
    const epoch = ++this.#epoch;

    const { promise, resolve, reject } = Promise.withResolvers<ConnackPacket>();
    this.#pending = { resolve, reject };
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      this.#fail(
        epoch,
        new TimeoutError(
          `no CONNACK from ${host}:${port} within ${timeout} ms`,
        ),
        "network",
      );
    }, timeout);

    let conn: Deno.Conn;
    try {
      conn = o.tls
        ? await Deno.connectTls({
          hostname: host,
          port,
          ...(typeof o.tls === "object" && o.tls.caCerts
            ? { caCerts: o.tls.caCerts }
            : {}),
        })
        : await Deno.connect({ hostname: host, port });
    } catch (e) {
      const err = new MqttError(
        ReasonCode.ServerUnavailable,
        `cannot connect to ${host}:${port}: ${toError(e).message}`,
        { cause: e },
      );
      if (epoch === this.#epoch && this.#pending) {
        this.#fail(epoch, err, "network");
      }
      return promise;
    }
    if (epoch !== this.#epoch || this.#closed) {
      conn.close();
      return promise;
    }
    if (!o.tls) {
      try {
        (conn as Deno.TcpConn).setNoDelay(true);
      } catch { /* not a TCP socket */ }
    }
    this.#conn = conn;
    const decoder = new PacketDecoder({
      version,
      ...(o.maximumPacketSize ? { maxPacketSize: o.maximumPacketSize } : {}),
    });
    const reading = this.#readLoop(conn, decoder, epoch).finally(() => {
      this.#reads.delete(reading);
    });
    this.#reads.add(reading);
    this.#send(encode(this.#connectPacket(), { version }));
    return promise;
  }

  #connectPacket(): ConnectPacket {
    const o = this.options;
    const v5 = this.#version === 5;
    // An automatic reconnect of a v5 client resumes its session (Clean Start
    // 0; the Session Expiry Interval decides whether there is one); a 3.1.1
    // client keeps the Clean Session it asked for. `connect()` starts over.
    let cleanStart = o.cleanStart ?? o.cleanSession ?? true;
    if (this.#resume) cleanStart = false;
    const p: ConnectPacket = {
      type: "connect",
      protocolVersion: this.#version,
      clientId: this.clientId,
      cleanStart,
      keepAlive: o.keepAlive ?? 60,
    };
    if (o.username !== undefined) p.username = o.username;
    if (o.password !== undefined) p.password = bytes(o.password);
    if (o.will) {
      p.will = {
        topic: o.will.topic,
        payload: bytes(o.will.payload),
        qos: o.will.qos ?? 0,
        retain: o.will.retain ?? false,
      };
      if (v5 && o.will.properties) p.will.properties = o.will.properties;
    }
    if (v5) {
      const props: Properties = {};
      if (o.sessionExpiryInterval !== undefined) {
        props.sessionExpiryInterval = o.sessionExpiryInterval;
      }
      if (o.receiveMaximum !== undefined) {
        props.receiveMaximum = o.receiveMaximum;
      }
      if (o.maximumPacketSize !== undefined) {
        props.maximumPacketSize = o.maximumPacketSize;
      }
      if (o.topicAliasMaximum) props.topicAliasMaximum = o.topicAliasMaximum;
      if (o.requestResponseInformation) props.requestResponseInformation = 1;
      if (o.requestProblemInformation === false) {
        props.requestProblemInformation = 0;
      }
      if (o.userProperties) props.userProperties = o.userProperties;
      if (o.authenticationMethod !== undefined) {
        props.authenticationMethod = o.authenticationMethod;
        if (o.authenticationData) {
          props.authenticationData = o.authenticationData;
        }
      }
      if (Object.keys(props).length > 0) p.properties = props;
    }
    return p;
  }

  // ------------------------------------------------------------- reading

  async #readLoop(
    conn: Deno.Conn,
    decoder: PacketDecoder,
    epoch: number,
  ): Promise<void> {
    const buf = new Uint8Array(READ_BUFFER);
    const onPacket = (p: Packet) => this.#onPacket(p, epoch);
    let error: Error | undefined;
    try {
      while (epoch === this.#epoch) {
        const n = await conn.read(buf);
        if (n === null) break;
        if (epoch !== this.#epoch) break;
        // The decoder may keep references into the chunk: hand it a copy
        // so the read buffer can be reused.
        decoder.push(buf.slice(0, n), onPacket);
        if (this.#iterators.size > 0 && this.#anyIteratorFull()) {
          await new Promise<void>((r) => this.#readPaused = r);
          this.#readPaused = undefined;
        }
      }
    } catch (e) {
      error = toError(e);
    }
    if (epoch !== this.#epoch) return;
    if (error instanceof MqttError) {
      // Bad input from the broker: tell it why (v5) and drop the connection.
      if (this.#version === 5 && this.#connected) {
        this.#sendPacket({ type: "disconnect", reasonCode: error.reasonCode });
        this.#startFlush();
        await this.#flushing;
      }
      this.#fail(epoch, error, "client");
    } else {
      this.#fail(
        epoch,
        error ??
          new MqttError(
            ReasonCode.UnspecifiedError,
            "connection closed by the broker",
          ),
        "network",
      );
    }
  }

  #onPacket(p: Packet, epoch: number): void {
    if (epoch !== this.#epoch) return;
    switch (p.type) {
      case "publish":
        if (this.#connected) this.#onPublish(p);
        return;
      case "puback":
      case "pubrec":
      case "pubrel":
      case "pubcomp":
      case "suback":
      case "unsuback": {
        const reply = this.#state.handleAck(p);
        if (reply) this.#sendPacket(reply);
        if (this.#state.queued > 0) this.#pump();
        return;
      }
      case "pingresp":
        this.#pingSentAt = 0;
        return;
      case "connack":
        this.#onConnack(p, epoch);
        return;
      case "auth":
        this.#onAuth(p, epoch);
        return;
      case "disconnect": {
        const code = p.reasonCode ?? 0;
        const why = p.properties?.reasonString;
        const err = new MqttError(
          code,
          `the broker disconnected: ${reasonCodeName(code)}${
            why ? ` (${why})` : ""
          }`,
        );
        this.#fail(epoch, err, "server", p);
        return;
      }
      default:
        this.#fail(
          epoch,
          new MqttError(
            ReasonCode.ProtocolError,
            `unexpected ${p.type} from the broker`,
          ),
          "client",
        );
    }
  }

  #onConnack(p: ConnackPacket, epoch: number): void {
    if (this.#connectTimer !== undefined) {
      clearTimeout(this.#connectTimer);
      this.#connectTimer = undefined;
    }
    const pending = this.#pending;
    if (this.#connected || !pending) {
      this.#fail(
        epoch,
        new MqttError(ReasonCode.ProtocolError, "a second CONNACK"),
        "client",
      );
      return;
    }
    const code = this.#version === 5
      ? p.reasonCode
      : (V4_CONNACK_TO_V5[p.reasonCode] ?? ReasonCode.UnspecifiedError);
    if (code !== 0) {
      const why = p.properties?.reasonString;
      this.#fail(
        epoch,
        new MqttError(
          code,
          `connection refused: ${reasonCodeName(code)}${
            why ? ` (${why})` : ""
          }`,
        ),
        "server",
      );
      return;
    }
    this.#pending = undefined;
    this.#connected = true;
    this.#resume = this.#version === 5;
    this.#everConnected = true;
    this.connack = p;
    const props = p.properties ?? {};
    if (props.assignedClientIdentifier) {
      this.clientId = props.assignedClientIdentifier;
    }
    this.#maxPacketSize = props.maximumPacketSize ?? Infinity;
    this.#aliasOut.reset(props.topicAliasMaximum ?? 0);
    this.#aliasIn.reset();
    this.#backoff.reset();

    // Keep alive: the broker's Server Keep Alive wins [MQTT-3.2.2-21].
    const ka = props.serverKeepAlive ?? this.options.keepAlive ?? 60;
    this.#keepAliveMs = ka * 1000;
    this.#pingTimeoutMs = this.options.pingTimeout ??
      Math.min(this.#keepAliveMs, 10_000);
    this.#pingSentAt = 0;
    this.#lastWrite = Date.now();
    this.#scheduleKeepAlive();

    // Session gone: subscribe again, then resend in flight, then the queue.
    if (
      !p.sessionPresent && this.#subscriptions.size > 0 &&
      this.options.resubscribe !== false
    ) {
      this.#resubscribe();
    }
    for (
      const r of this.#state.onConnack(
        p.sessionPresent,
        props.receiveMaximum ?? 65535,
      )
    ) {
      if (r.packet.type === "publish") {
        this.#sendPublish(r.entry as PublishEntry);
      } else this.#sendPacket(r.packet);
    }
    this.#pump();
    pending.resolve(p);
    this.#emit("connect", p);
  }

  async #onAuth(p: AuthPacket, epoch: number): Promise<void> {
    const code = p.reasonCode ?? 0;
    const method = p.properties?.authenticationMethod ??
      this.options.authenticationMethod ?? "";
    const auth = this.options.auth;
    if (code === ReasonCode.Success && this.#connected) {
      // The end of a re-authentication.
      const r = this.#reauth;
      this.#reauth = undefined;
      r?.resolve(p);
      return;
    }
    if (code !== ReasonCode.ContinueAuthentication || !auth) {
      this.#fail(
        epoch,
        new MqttError(
          ReasonCode.ProtocolError,
          `unexpected AUTH (${reasonCodeName(code)})`,
        ),
        "client",
      );
      return;
    }
    try {
      const data = await auth({
        reasonCode: code,
        method,
        data: p.properties?.authenticationData,
      });
      if (epoch !== this.#epoch) return;
      const props: Properties = { authenticationMethod: method };
      if (data) props.authenticationData = data;
      this.#sendPacket({
        type: "auth",
        reasonCode: ReasonCode.ContinueAuthentication,
        properties: props,
      });
    } catch (e) {
      this.#fail(
        epoch,
        new MqttError(
          ReasonCode.NotAuthorized,
          `auth callback failed: ${toError(e).message}`,
          { cause: e },
        ),
        "client",
      );
    }
  }

  #onPublish(p: PublishPacket): void {
    const alias = p.properties?.topicAlias;
    if (alias !== undefined) {
      // Resolve the broker's alias before the user sees the message.
      p.topic = this.#aliasIn.resolve(p.topic, alias);
      delete p.properties!.topicAlias;
    }
    if (p.qos === 2) {
      const fresh = this.#state.receiveQos2(p.packetId!);
      if (fresh) this.#dispatch(new Message(p));
      this.#send(ack(0x50, p.packetId!));
      return;
    }
    this.#dispatch(new Message(p));
    if (p.qos === 1) {
      this.#send(ack(0x40, p.packetId!));
    }
  }

  #dispatch(msg: Message): void {
    const all = this.#onMessage;
    for (let i = 0; i < all.length; i++) this.#call(all[i]!, msg);
    if (this.#matcher.size > 0) {
      const matched = this.#matched;
      this.#matcher.match(msg.topic, this.#collect);
      for (let i = 0; i < matched.length; i++) this.#call(matched[i]!.fn, msg);
      matched.length = 0;
    }
    if (this.#iterators.size > 0) {
      for (const it of this.#iterators) it.push(msg);
    }
  }

  #call(fn: MessageHandler, msg: Message): void {
    try {
      const r = fn(msg);
      if (r && typeof (r as Promise<void>).then === "function") {
        (r as Promise<void>).then(
          undefined,
          (e) => this.#emit("error", toError(e)),
        );
      }
    } catch (e) {
      this.#emit("error", toError(e));
    }
  }

  #anyIteratorFull(): boolean {
    for (const it of this.#iterators) if (it.full) return true;
    return false;
  }

  #resumeReading = (): void => {
    if (this.#readPaused && !this.#anyIteratorFull()) this.#readPaused();
  };

  #removeIterator = (it: MessageIterator): void => {
    this.#iterators.delete(it);
    this.#resumeReading();
  };

  // ------------------------------------------------------------- writing

  #sendPacket(p: Packet): void {
    this.#send(encode(p, { version: this.#version }));
  }

  #send(bytes: Uint8Array): void {
    this.#out.push(bytes);
    this.#outBytes += bytes.byteLength;
    if (!this.#flushScheduled && !this.#writing) {
      this.#flushScheduled = true;
      queueMicrotask(this.#startFlush);
    }
  }

  /**
   * The promise of the QoS 0 publishes in the current batch of output: it
   * settles when the batch is written (one promise per write, not per
   * message). It is marked handled, so a fire-and-forget QoS 0 publish that
   * fails never becomes an unhandled rejection.
   */
  #batchPromise(): Promise<PublishResult> {
    let b = this.#batch;
    if (!b) {
      b = this.#batch = Promise.withResolvers<PublishResult>();
      b.promise.catch(noop);
    }
    return b.promise;
  }

  #startFlush = (): void => {
    this.#flushScheduled = false;
    if (!this.#writing && this.#out.length > 0) this.#flushing = this.#flush();
  };

  async #flush(): Promise<void> {
    this.#writing = true;
    while (this.#out.length > 0) {
      const epoch = this.#epoch;
      const conn = this.#conn;
      const chunks = this.#out;
      const total = this.#outBytes;
      const batch = this.#batch;
      this.#out = [];
      this.#outBytes = 0;
      this.#batch = undefined;
      let buf: Uint8Array;
      if (chunks.length === 1) buf = chunks[0]!;
      else {
        buf = new Uint8Array(total);
        let off = 0;
        for (let i = 0; i < chunks.length; i++) {
          const c = chunks[i]!;
          buf.set(c, off);
          off += c.byteLength;
        }
      }
      try {
        if (!conn || epoch !== this.#epoch) {
          throw new ClientOfflineError("connection lost before the write");
        }
        let off = 0;
        while (off < buf.byteLength) off += await conn.write(buf.subarray(off));
        this.#lastWrite = Date.now();
      } catch (e) {
        batch?.reject(
          e instanceof MqttError ? e : new ClientOfflineError(
            `connection lost during the write: ${toError(e).message}`,
            { cause: e },
          ),
        );
        if (epoch === this.#epoch) this.#fail(epoch, toError(e), "network");
        continue;
      }
      batch?.resolve(QOS0_RESULT);
    }
    // Synchronously after the last check of #out: a #send() from now on
    // schedules a new flush.
    this.#writing = false;
  }

  /** Drops unwritten bytes of a dead connection, rejecting QoS 0 waiters. */
  #dropOutput(): void {
    const batch = this.#batch;
    this.#out = [];
    this.#outBytes = 0;
    this.#batch = undefined;
    batch?.reject(new ClientOfflineError("connection lost before the write"));
  }

  /** Sends what the queue holds, as far as flow control allows. */
  #pump(): void {
    if (!this.#connected || this.#state.queued === 0) return;
    const out: Entry[] = [];
    this.#state.takeSendable(out);
    for (const e of out) {
      if (e.kind === "publish") this.#sendPublish(e);
      else {
        try {
          this.#sendPacket(e.packet);
        } catch (err) {
          // Not encodable (e.g. a bad subscription identifier): give the
          // packet id back and fail this request only.
          this.#state.forget(e);
          e.reject(toError(err));
        }
      }
    }
  }

  /** Encodes and writes a publish that is tracked (QoS > 0) or QoS 0. */
  #sendPublish(e: PublishEntry): void {
    let bytes: Uint8Array;
    try {
      bytes = this.#wire(e.packet, e.alias);
    } catch (err) {
      this.#abandon(e, toError(err));
      return;
    }
    this.#send(bytes);
    if (e.packet.qos === 0) this.#batchPromise().then(e.resolve, e.reject);
  }

  /**
   * The bytes of a publish on this connection: topic alias applied (v5), and
   * checked against the broker's Maximum Packet Size. Throws MqttError 0x94
   * for a bad alias and PacketTooLargeError (0x95).
   */
  #wire(p: PublishPacket, alias: number): Uint8Array {
    let wire = p;
    let newAlias = false;
    if (this.#version === 5 && (alias !== 0 || this.#aliasOut.auto)) {
      const r = this.#aliasOut.resolve(p.topic, alias);
      if (r.alias !== 0) {
        newAlias = r.topic !== "";
        wire = {
          ...p,
          topic: r.topic,
          properties: { ...p.properties, topicAlias: r.alias },
        };
      }
    }
    const bytes = encode(wire, { version: this.#version });
    if (bytes.byteLength > this.#maxPacketSize) {
      // The broker never saw this alias: forget every alias (each topic is
      // then sent in full once more).
      if (newAlias) this.#aliasOut.reset(this.#aliasOut.max);
      throw new PacketTooLargeError(
        `publish to "${p.topic}" is ${bytes.byteLength} bytes, over the ` +
          `broker's Maximum Packet Size of ${this.#maxPacketSize}`,
      );
    }
    return bytes;
  }

  #abandon(e: PublishEntry, err: Error): void {
    this.#state.forget(e);
    e.reject(err);
    if (this.#state.queued > 0) this.#pump();
  }

  // ---------------------------------------------------------- keep alive

  #scheduleKeepAlive(): void {
    if (this.#keepAliveMs === 0) return;
    const tick = Math.max(
      50,
      Math.min(this.#keepAliveMs, this.#pingTimeoutMs) / 4,
    );
    this.#kaTimer = setTimeout(this.#keepAliveTick, tick);
  }

  #keepAliveTick = (): void => {
    this.#kaTimer = undefined;
    if (!this.#connected) return;
    const now = Date.now();
    if (this.#pingSentAt !== 0) {
      if (now - this.#pingSentAt >= this.#pingTimeoutMs && !this.#readPaused) {
        this.#fail(
          this.#epoch,
          new MqttError(
            ReasonCode.KeepAliveTimeout,
            `no PINGRESP within ${this.#pingTimeoutMs} ms`,
          ),
          "client",
        );
        return;
      }
    } else if (now - this.#lastWrite >= this.#keepAliveMs * 0.75) {
      this.#pingSentAt = now;
      this.#send(PINGREQ);
    }
    this.#scheduleKeepAlive();
  };

  // ------------------------------------------------- connection lifecycle

  /**
   * The one place a connection ends: closes the socket, rejects a pending
   * connect, reports "disconnect", and reconnects or closes for good.
   */
  #fail(
    epoch: number,
    error: Error,
    initiator: DisconnectEvent["initiator"],
    packet?: DisconnectPacket,
  ): void {
    if (epoch !== this.#epoch) return;
    this.#epoch++;
    const wasConnected = this.#connected;
    this.#connected = false;
    this.#clearTimers();
    if (this.#conn) {
      try {
        this.#conn.close();
      } catch { /* already closed */ }
      this.#conn = undefined;
    }
    this.#readPaused?.();
    this.#dropOutput();
    const pending = this.#pending;
    this.#pending = undefined;
    const reauth = this.#reauth;
    this.#reauth = undefined;
    reauth?.reject(error);
    const willReconnect = !this.#closed && this.#reconnect &&
      this.#everConnected &&
      !this.#backoff.exhausted && !isFatal(error);
    if (pending) {
      // Before CONNACK every failure is typed: a network or TLS error is
      // 0x88 ServerUnavailable with the cause attached.
      pending.reject(
        error instanceof MqttError ? error : new MqttError(
          ReasonCode.ServerUnavailable,
          `connection failed before CONNACK: ${error.message}`,
          { cause: error },
        ),
      );
    }
    if (wasConnected) {
      const ev: DisconnectEvent = {
        reasonCode: packet
          ? packet.reasonCode ?? 0
          : error instanceof MqttError
          ? error.reasonCode
          : ReasonCode.UnspecifiedError,
        reason: error.message,
        initiator,
        error,
        willReconnect,
      };
      if (packet && initiator === "server") ev.packet = packet;
      this.#emit("disconnect", ev);
    }
    if (this.#closed) return;
    if (willReconnect) {
      if (wasConnected) {
        if (this.options.queueQoS0Offline === false) {
          const err = new ClientOfflineError(
            "connection lost: QoS 0 message not sent",
          );
          for (const e of this.#state.dropQueuedQos0()) e.reject(err);
        }
        this.#emit("offline", { queued: this.#state.queued });
      }
      this.#scheduleReconnect();
    } else if (this.#everConnected || !pending) {
      this.#shutdown(`connection lost: ${error.message}`, error);
    } else {
      // A failed first connect: nothing to keep.
      this.#closed = true;
    }
  }

  #scheduleReconnect(): void {
    const delay = this.#backoff.next();
    this.#emit("reconnect", { attempt: this.#backoff.attempt, delay });
    this.#reconnectTimer = setTimeout(() => {
      this.#reconnectTimer = undefined;
      if (this.#closed) return;
      this.#connecting = this.#open().finally(() => {
        this.#connecting = undefined;
      });
      this.#connecting.catch((e) => {
        this.#emit("error", toError(e));
      });
    }, delay);
  }

  #clearTimers(): void {
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    if (this.#kaTimer !== undefined) clearTimeout(this.#kaTimer);
    this.#connectTimer = undefined;
    this.#kaTimer = undefined;
  }

  /** Closes for good: rejects everything pending, ends iterators. */
  #shutdown(reason: string, cause?: Error): void {
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    this.#clearTimers();
    const err = new ClientOfflineError(
      `client closed: ${reason}`,
      cause ? { cause } : undefined,
    );
    for (const e of this.#state.drain()) e.reject(err);
    for (const r of this.#requests.values()) {
      clearTimeout(r.timer);
      r.reject(err);
    }
    this.#requests.clear();
    for (const it of [...this.#iterators]) it.end();
    this.#emit("close", { reason });
  }

  /**
   * Sends DISCONNECT (v5: with `reasonCode`, `sessionExpiryInterval`, …) and
   * resolves once the socket is closed. Requests still pending are rejected
   * with `ClientOfflineError`; no reconnect follows.
   *
   * @example
   * ```ts ignore
   * await client.disconnect({ reasonCode: 0x04 }); // v5: have the will sent
   * ```
   */
  async disconnect(options: DisconnectOptions = {}): Promise<void> {
    if (this.#closed && !this.#conn && !this.#reconnectTimer) return;
    if (this.#connected) {
      const p: DisconnectPacket = { type: "disconnect" };
      if (this.#version === 5) {
        if (options.reasonCode) p.reasonCode = options.reasonCode;
        const props: Properties = {};
        if (options.sessionExpiryInterval !== undefined) {
          props.sessionExpiryInterval = options.sessionExpiryInterval;
        }
        if (options.reasonString) props.reasonString = options.reasonString;
        if (options.userProperties) {
          props.userProperties = options.userProperties;
        }
        if (Object.keys(props).length > 0) p.properties = props;
      }
      this.#sendPacket(p);
      this.#startFlush();
      await this.#flushing;
    }
    await this.#end("disconnect() called", options.reasonCode ?? 0);
  }

  /**
   * Closes the socket without DISCONNECT (the broker then publishes the
   * will), and resolves once closed. No reconnect follows.
   */
  async close(): Promise<void> {
    await this.#end("close() called", 0);
  }

  async #end(reason: string, code: number): Promise<void> {
    const alreadyClosed = this.#closed;
    this.#closed = true;
    if (this.#reconnectTimer !== undefined) clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = undefined;
    if (this.#conn || this.#pending) {
      this.#fail(this.#epoch, new ClientOfflineError(reason), "client", {
        type: "disconnect",
        reasonCode: code,
      });
    }
    await Promise.all(this.#reads);
    await this.#flushing;
    if (!alreadyClosed || this.#state.inFlight + this.#state.queued > 0) {
      this.#shutdown(reason);
    }
  }

  /**
   * v5 re-authentication: sends AUTH (0x19 Re-authenticate) with the
   * connection's `authenticationMethod` and `data`; each AUTH (0x18) from the
   * broker is answered by the `auth` callback. Resolves with the broker's
   * final AUTH (0x00 Success); rejects with the broker's reason when it
   * disconnects instead. Needs a connection made with an
   * `authenticationMethod` (MQTT 5.0 section 4.12.1).
   *
   * @example
   * ```ts ignore
   * await client.reauthenticate(new TextEncoder().encode(freshToken));
   * ```
   */
  reauthenticate(data?: Uint8Array): Promise<AuthPacket> {
    const method = this.options.authenticationMethod;
    if (!this.#connected || this.#version !== 5 || method === undefined) {
      return Promise.reject(
        new MqttError(
          ReasonCode.ProtocolError,
          "reauthenticate() needs a v5 connection made with an authenticationMethod",
        ),
      );
    }
    if (this.#reauth) return this.#reauth.promise;
    const r = this.#reauth = Promise.withResolvers<AuthPacket>();
    const props: Properties = { authenticationMethod: method };
    if (data) props.authenticationData = data;
    this.#sendPacket({
      type: "auth",
      reasonCode: ReasonCode.ReAuthenticate,
      properties: props,
    });
    return r.promise;
  }

  /** `await using client = new Client(...)` disconnects at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.disconnect();
  }

  // ------------------------------------------------------------ publish

  /**
   * Publishes a message. QoS 0 resolves once written to the socket, QoS 1 on
   * PUBACK, QoS 2 on PUBCOMP; a v5 acknowledgement with a reason code
   * >= 0x80 rejects with an `MqttError` carrying it. Over the broker's
   * Maximum Packet Size rejects with `PacketTooLargeError` (0x95); with the
   * queue full, `QuotaExceededError` (0x97). A QoS 0 promise that nobody
   * awaits never becomes an unhandled rejection (fire and forget is fine);
   * QoS 0 publishes written in the same turn share one promise.
   *
   * @example
   * ```ts ignore
   * await client.publish("a/b", "hello", 1);
   * await client.publish("a/b", new Uint8Array([1, 2]), {
   *   qos: 2, retain: true, properties: { contentType: "bin" },
   * });
   * ```
   */
  publish(
    topic: string,
    payload: string | Uint8Array,
    options?: QoS | PublishOptions,
  ): Promise<PublishResult> {
    let qos: QoS = 0;
    let retain = false;
    let alias = 0;
    let properties: Properties | undefined;
    if (typeof options === "number") qos = options;
    else if (options) {
      qos = options.qos ?? 0;
      retain = options.retain ?? false;
      alias = options.topicAlias ?? 0;
      properties = options.properties;
    }
    try {
      if (qos !== 0 && qos !== 1 && qos !== 2) {
        throw new MqttError(
          ReasonCode.QoSNotSupported,
          `QoS must be 0, 1 or 2, not ${qos}`,
        );
      }
      if (alias !== 0 && this.#version !== 5) {
        throw new MqttError(
          ReasonCode.TopicAliasInvalid,
          "topic aliases need MQTT 5",
        );
      }
      if (topic === "" && alias !== 0) {
        const t = this.#aliasOut.topicOf(alias);
        if (t === undefined) {
          throw new MqttError(
            ReasonCode.TopicAliasInvalid,
            `topic alias ${alias} was not set on this connection: give the topic`,
          );
        }
        topic = t;
      } else {
        validateTopicName(topic);
      }
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.#closed) {
      return Promise.reject(
        new ClientOfflineError("the client is closed: call connect() first"),
      );
    }
    const packet: PublishPacket = {
      type: "publish",
      topic,
      payload: typeof payload === "string"
        ? textEncoder.encode(payload)
        : payload,
      qos,
      retain,
      dup: false,
    };
    if (properties && this.#version === 5) {
      if (properties.topicAlias !== undefined) {
        properties = { ...properties };
        delete properties.topicAlias;
      }
      packet.properties = properties;
    }
    if (qos === 0 && this.#connected && this.#state.canSendNow(0)) {
      // Hot path: no entry, no promise of its own.
      let bytes: Uint8Array;
      try {
        bytes = this.#wire(packet, alias);
      } catch (e) {
        return Promise.reject(e);
      }
      this.#send(bytes);
      return this.#batchPromise();
    }
    const { promise, resolve, reject } = Promise.withResolvers<PublishResult>();
    if (qos === 0) promise.catch(noop); // fire and forget is fine for QoS 0
    const entry: PublishEntry = {
      kind: "publish",
      packet,
      alias,
      stage: 0,
      resolve,
      reject,
    };
    if (this.#connected && this.#state.canSendNow(qos)) {
      this.#state.track(entry);
      this.#sendPublish(entry);
      return promise;
    }
    if (
      !this.#connected && qos === 0 && this.options.queueQoS0Offline === false
    ) {
      return Promise.reject(
        new ClientOfflineError("offline: QoS 0 message not queued"),
      );
    }
    return this.#enqueue(entry, promise);
  }

  // ---------------------------------------------------------- subscribe

  /**
   * Registers a handler for every message received.
   * Returns a function that removes it.
   */
  onMessage(handler: MessageHandler): () => void {
    return addToList(this.#onMessage, handler);
  }

  /**
   * Subscribes to one or more filters, resolving with the SUBACK reason
   * codes in order: the granted QoS (0-2) or a failure code (>= 0x80).
   * `handler`, when given, receives the messages matching these filters
   * (for `$share/group/filter`, the inner filter), and is removed for
   * filters the broker refused.
   *
   * @example
   * ```ts ignore
   * const [granted] = await client.subscribe("sensor/+/temp", { qos: 1 }, (m) => {
   *   console.log(m.topic, m.json());
   * });
   * ```
   */
  async subscribe(
    filters: string | string[],
    options?: QoS | SubscribeOptions,
    handler?: MessageHandler,
  ): Promise<number[]> {
    const list = typeof filters === "string" ? [filters] : filters;
    if (list.length === 0) {
      throw new MqttError(
        ReasonCode.ProtocolError,
        "subscribe() needs at least one filter",
      );
    }
    const o: SubscribeOptions = typeof options === "number"
      ? { qos: options }
      : options ?? {};
    const subs: Subscription[] = [];
    for (const filter of list) {
      validateTopicFilter(filter);
      const s: Subscription = { filter, qos: o.qos ?? 0 };
      if ((this.options.protocolVersion ?? 5) === 5) {
        if (o.noLocal) s.noLocal = true;
        if (o.retainAsPublished) s.retainAsPublished = true;
        if (o.retainHandling) s.retainHandling = o.retainHandling;
      }
      subs.push(s);
    }
    let properties: Properties | undefined;
    if (o.subscriptionIdentifier !== undefined || o.userProperties) {
      properties = {};
      if (o.subscriptionIdentifier !== undefined) {
        properties.subscriptionIdentifiers = [o.subscriptionIdentifier];
      }
      if (o.userProperties) properties.userProperties = o.userProperties;
    }
    const keys: [string, string][] = [];
    if (handler) {
      for (const s of subs) {
        const inner = parseSharedSubscription(s.filter)?.filter ?? s.filter;
        const key = String(++this.#handlerKeys);
        this.#matcher.set(inner, key, { filter: s.filter, fn: handler });
        keys.push([inner, key]);
        let list = this.#handlerKeysByFilter.get(s.filter);
        if (!list) this.#handlerKeysByFilter.set(s.filter, list = []);
        list.push([inner, key]);
      }
    }
    let suback: SubackPacket;
    try {
      suback = await this.#request<SubackPacket>((resolve, reject) => {
        const e: SubscribeEntry = {
          kind: "subscribe",
          packet: {
            type: "subscribe",
            packetId: 0,
            subscriptions: subs,
            ...(properties ? { properties } : {}),
          },
          stage: 0,
          resolve,
          reject,
        };
        return e;
      });
    } catch (e) {
      for (let i = 0; i < keys.length; i++) {
        this.#dropHandler(subs[i]!.filter, keys[i]!);
      }
      throw e;
    }
    const codes = suback.reasonCodes;
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i]!;
      if ((codes[i] ?? 0x80) < 0x80) {
        this.#subscriptions.set(s.filter, { sub: s, properties });
      } else if (keys[i]) {
        this.#dropHandler(s.filter, keys[i]!);
      }
    }
    return codes;
  }

  /**
   * Unsubscribes, resolving with the v5 UNSUBACK reason codes (all 0 for
   * 3.1.1), and removes the handlers registered for these filters.
   */
  async unsubscribe(
    filters: string | string[],
    options: { userProperties?: UserProperty[] } = {},
  ): Promise<number[]> {
    const list = typeof filters === "string" ? [filters] : filters;
    if (list.length === 0) {
      throw new MqttError(
        ReasonCode.ProtocolError,
        "unsubscribe() needs at least one filter",
      );
    }
    for (const f of list) validateTopicFilter(f);
    const unsuback = await this.#request<UnsubackPacket>((resolve, reject) => {
      const e: UnsubscribeEntry = {
        kind: "unsubscribe",
        packet: {
          type: "unsubscribe",
          packetId: 0,
          filters: list,
          ...(options.userProperties
            ? { properties: { userProperties: options.userProperties } }
            : {}),
        },
        stage: 0,
        resolve,
        reject,
      };
      return e;
    });
    for (const f of list) {
      this.#subscriptions.delete(f);
      for (const [inner, key] of this.#handlerKeysByFilter.get(f) ?? []) {
        this.#matcher.delete(inner, key);
      }
      this.#handlerKeysByFilter.delete(f);
    }
    return unsuback.reasonCodes ?? list.map(() => 0);
  }

  #dropHandler(filter: string, ik: [string, string]): void {
    this.#matcher.delete(ik[0], ik[1]);
    const list = this.#handlerKeysByFilter.get(filter);
    if (!list) return;
    const i = list.indexOf(ik);
    if (i !== -1) list.splice(i, 1);
    if (list.length === 0) this.#handlerKeysByFilter.delete(filter);
  }

  /**
   * Queues `entry` and sends what may go now; `promise` is its outcome.
   * Rejects with 0x97 instead when the queue is full.
   */
  #enqueue<T>(entry: Entry, promise: Promise<T>): Promise<T> {
    if (!this.#state.enqueue(entry)) {
      return Promise.reject(
        new QuotaExceededError(
          `the queue is full (${this.#state.maxQueued} requests waiting)`,
        ),
      );
    }
    this.#pump();
    return promise;
  }

  #request<T>(
    make: (resolve: (v: T) => void, reject: (e: Error) => void) => Entry,
  ): Promise<T> {
    if (this.#closed) {
      return Promise.reject(
        new ClientOfflineError("the client is closed: call connect() first"),
      );
    }
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    const entry = make(resolve, reject);
    return this.#enqueue(entry, promise);
  }

  #resubscribe(): void {
    if (this.#subscriptions.size === 0) return;
    // One SUBSCRIBE per subscription identifier (it is per packet).
    const groups = new Map<
      number | undefined,
      { subs: Subscription[]; properties: Properties | undefined }
    >();
    for (const { sub, properties } of this.#subscriptions.values()) {
      const id = properties?.subscriptionIdentifiers?.[0];
      let g = groups.get(id);
      if (!g) groups.set(id, g = { subs: [], properties });
      g.subs.push(sub);
    }
    for (const g of groups.values()) {
      const e: SubscribeEntry = {
        kind: "subscribe",
        packet: {
          type: "subscribe",
          packetId: 0,
          subscriptions: g.subs,
          ...(g.properties ? { properties: g.properties } : {}),
        },
        stage: 0,
        resolve: (suback) => {
          const bad = suback.reasonCodes.findIndex((c) => c >= 0x80);
          if (bad !== -1) {
            this.#emit(
              "error",
              new MqttError(
                suback.reasonCodes[bad]!,
                `resubscribe to "${g.subs[bad]?.filter}" refused: ${
                  reasonCodeName(suback.reasonCodes[bad]!)
                }`,
              ),
            );
          }
        },
        reject: () => {},
      };
      this.#state.track(e);
      this.#sendPacket(e.packet);
    }
  }

  // ----------------------------------------------------------- messages

  /**
   * An async iterator over every message received from now on. Each
   * iterator buffers at most `messageBufferSize` messages (default 1000);
   * when one is full the client stops reading the socket until it is
   * consumed (backpressure, no loss). It ends when the client closes or
   * when the loop is left (`break`).
   *
   * @example
   * ```ts ignore
   * for await (const msg of client.messages()) {
   *   console.log(msg.topic, msg.payloadText);
   *   if (msg.topic === "stop") break;
   * }
   * ```
   */
  messages(): AsyncIterableIterator<Message> {
    const it = new MessageIterator(
      this.#resumeReading,
      this.#removeIterator,
      this.options.messageBufferSize ?? 1000,
    );
    this.#iterators.add(it);
    // Created before connect(): waits for it. After the client closed: ends.
    if (this.#closed && this.#everConnected && !this.#connecting) it.end();
    return it;
  }

  // ---------------------------------------------------- request/response

  /**
   * v5 request/response: publishes `payload` to `topic` with a Response
   * Topic (this client's `kite/response/<clientId>`, or the Response
   * Information the broker gave when `requestResponseInformation` is set)
   * and random Correlation Data, and resolves with the first message that
   * comes back with the same correlation data. Rejects with `TimeoutError`
   * after `timeout` ms.
   *
   * @example
   * ```ts ignore
   * const reply = await client.request("svc/time", "now?", { timeout: 2000 });
   * reply.payloadText;
   * ```
   */
  async request(
    topic: string,
    payload: string | Uint8Array,
    options: RequestOptions = {},
  ): Promise<Message> {
    if (this.#version !== 5) {
      throw new MqttError(
        ReasonCode.ProtocolError,
        "request() needs MQTT 5 (response topic)",
      );
    }
    const qos = options.qos ?? 1;
    if (!this.#responseSub) {
      const base = this.connack?.properties?.responseInformation;
      this.#responseTopic = `${
        base ? base.replace(/\/$/, "") : "kite/response"
      }/${this.clientId}`;
      this.#responseSub = this.subscribe(
        this.#responseTopic,
        { qos: 1 },
        (m) => {
          const cd = m.correlationData;
          if (!cd) return;
          const r = this.#requests.get(hex(cd));
          if (r) {
            this.#requests.delete(hex(cd));
            clearTimeout(r.timer);
            r.resolve(m);
          }
        },
      ).then((codes) => {
        if ((codes[0] ?? 0x80) >= 0x80) {
          this.#responseSub = undefined;
          throw new MqttError(
            codes[0]!,
            `cannot subscribe to the response topic ${this.#responseTopic}`,
          );
        }
      }, (e) => {
        this.#responseSub = undefined;
        throw e;
      });
    }
    await this.#responseSub;
    const correlation = crypto.getRandomValues(new Uint8Array(16));
    const key = hex(correlation);
    const timeout = options.timeout ?? 10_000;
    const { promise, resolve, reject } = Promise.withResolvers<Message>();
    const timer = setTimeout(() => {
      this.#requests.delete(key);
      reject(
        new TimeoutError(`no response on "${topic}" within ${timeout} ms`),
      );
    }, timeout);
    this.#requests.set(key, { resolve, reject, timer });
    this.publish(topic, payload, {
      qos,
      properties: {
        ...options.properties,
        responseTopic: this.#responseTopic!,
        correlationData: correlation,
      },
    }).catch((e) => {
      if (this.#requests.delete(key)) {
        clearTimeout(timer);
        reject(e);
      }
    });
    return promise;
  }

  /**
   * The responder side of `request()`: for each message on `filter` that
   * has a Response Topic, publishes `handler`'s result there with the same
   * Correlation Data. Resolves with the SUBACK codes once subscribed.
   */
  respond(
    filter: string,
    handler: (
      message: Message,
    ) => Promise<string | Uint8Array> | string | Uint8Array,
    options: { qos?: QoS } = {},
  ): Promise<number[]> {
    const qos = options.qos ?? 1;
    return this.subscribe(filter, { qos }, async (m) => {
      const rt = m.responseTopic;
      if (!rt) return;
      const reply = await handler(m);
      const props: Properties = {};
      if (m.correlationData) props.correlationData = m.correlationData;
      await this.publish(rt, reply, { qos, properties: props });
    });
  }
}

const PINGREQ = new Uint8Array([0xc0, 0x00]);

/**
 * A 4-byte PUBACK (0x40) or PUBREC (0x50) with reason Success, built
 * without the encoder: the same bytes in 3.1.1 and 5.0 (v5 section 3.4.2.1
 * lets the reason code be left out when it is Success with no properties).
 */
function ack(first: number, packetId: number): Uint8Array {
  const b = new Uint8Array(4);
  b[0] = first;
  b[1] = 2;
  b[2] = packetId >> 8;
  b[3] = packetId & 0xff;
  return b;
}

class MessageIterator implements AsyncIterableIterator<Message> {
  #onRoom: () => void;
  #onEnd: (it: MessageIterator) => void;
  #limit: number;
  #buf: Message[] = [];
  #head = 0;
  #waiter: ((r: IteratorResult<Message>) => void) | undefined;
  #done = false;

  constructor(
    onRoom: () => void,
    onEnd: (it: MessageIterator) => void,
    limit: number,
  ) {
    this.#onRoom = onRoom;
    this.#onEnd = onEnd;
    this.#limit = limit;
  }

  get full(): boolean {
    return this.#buf.length - this.#head >= this.#limit;
  }

  push(m: Message): void {
    if (this.#done) return;
    const w = this.#waiter;
    if (w) {
      this.#waiter = undefined;
      w({ value: m, done: false });
    } else this.#buf.push(m);
  }

  end(): void {
    if (this.#done) return;
    this.#done = true;
    this.#onEnd(this);
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.({ value: undefined, done: true });
  }

  next(): Promise<IteratorResult<Message>> {
    if (this.#head < this.#buf.length) {
      const m = this.#buf[this.#head]!;
      this.#buf[this.#head++] = undefined as unknown as Message;
      if (this.#head === this.#buf.length) {
        this.#buf.length = 0;
        this.#head = 0;
      } else if (this.#head > 512 && this.#head * 2 > this.#buf.length) {
        this.#buf.splice(0, this.#head);
        this.#head = 0;
      }
      this.#onRoom();
      return Promise.resolve({ value: m, done: false });
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    return new Promise((r) => this.#waiter = r);
  }

  return(): Promise<IteratorResult<Message>> {
    this.end();
    this.#buf = [];
    return Promise.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): AsyncIterableIterator<Message> {
    return this;
  }
}

function isFatal(e: Error): boolean {
  // Refusals that a retry would not fix.
  if (!(e instanceof MqttError)) return false;
  return e.reasonCode === ReasonCode.UnsupportedProtocolVersion ||
    e.reasonCode === ReasonCode.ClientIdentifierNotValid ||
    e.reasonCode === ReasonCode.Banned ||
    e.reasonCode === ReasonCode.BadAuthenticationMethod ||
    e.reasonCode === ReasonCode.SessionTakenOver;
}

function bytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? textEncoder.encode(v) : v;
}

function hex(b: Uint8Array): string {
  let s = "";
  for (let i = 0; i < b.length; i++) s += b[i]!.toString(16).padStart(2, "0");
  return s;
}

function noop(): void {}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

function randomClientId(): string {
  return "kite-" + hex(crypto.getRandomValues(new Uint8Array(8)));
}
