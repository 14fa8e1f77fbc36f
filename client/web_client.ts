/**
 * The async MQTT client, without the Deno-only transports: `WebClient`
 * connects over WebSocket (`ws://`, `wss://`) or through any `Dialer` given
 * in its options, and runs in browsers as well as in Deno. `Client`
 * (client.ts) is the same client with TCP and TLS (`mqtt://`, `mqtts://`,
 * `host`/`port`); the browser build (browser.ts) exports `WebClient` as
 * `Client`.
 *
 * The layers under it, as in rumqttc: a `Dialer` (dialer.ts,
 * socket_dialer.ts) opens a connection as a `Duplex`; a `Link` (link.ts)
 * does that connection's I/O (the read loop into the shared codec, one
 * coalesced write per turn, keep-alive); `ClientState` (state.ts) makes the
 * protocol decisions (packet ids, flow control, acknowledgements, what to
 * resend); `Connection` (_connection.ts) runs the connection's life across
 * reconnects (CONNACK, AUTH, the one error exit, the `Reconnector`);
 * `Outbox` sends, `Delivery` hands messages to handlers and iterators. The
 * client validates the user's calls and builds their packets.
 *
 * @module
 */

import type {
  AuthPacket,
  ConnackPacket,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubackPacket,
  Subscription,
  UnsubackPacket,
  UserProperty,
} from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { validateTopicFilter, validateTopicName } from "../codec/topic.ts";
import { getLogger } from "@logtape/logtape";
import { ListenerLists } from "./_listeners.ts";
import type { Message } from "./message.ts";
import type {
  Entry,
  PublishResult,
  SubscribeEntry,
  UnsubscribeEntry,
} from "./state.ts";
import type {
  ClientOptions,
  DisconnectOptions,
  PublishOptions,
  RequestOptions,
  SubscribeOptions,
} from "./options.ts";
import type { ClientEvents, ClientListener, MessageHandler } from "./events.ts";
import { ClientOfflineError } from "./errors.ts";
import { Connection } from "./_connection.ts";
import type { Dialer } from "./dialer.ts";
import { webDialer } from "./_web_dialer.ts";
import { Outbox } from "./_outbox.ts";
import { Delivery, type HandlerKey } from "./_delivery.ts";
import { MessageIterator } from "./_message_iterator.ts";
import { RequestResponse } from "./_request_response.ts";
import { hex, toError } from "./_util.ts";

const log = getLogger(["kite", "client"]);
const textEncoder = new TextEncoder();

/**
 * The async MQTT 3.1.1/5.0 client over WebSocket (or any `Dialer` in
 * `options.dialer`), with no Deno-only calls: the client of the browser
 * build. In Deno, `Client` adds TCP and TLS.
 *
 * @example
 * ```ts ignore
 * import { WebClient } from "@kite/mqtt/client";
 * const client = new WebClient({ url: "ws://127.0.0.1:8080/mqtt" });
 * await client.connect();
 * await client.subscribe("sensors/+/temp", { qos: 1 }, (msg) => {
 *   console.log(msg.topic, msg.payloadText);
 * });
 * await client.publish("sensors/kitchen/temp", "21.5", { qos: 1 });
 * await client.disconnect();
 * ```
 */
export class WebClient {
  /** The options as given (merged with those passed to `connect()`). */
  options: ClientOptions;
  /** The client id: given, generated, or assigned by the broker (v5). */
  clientId: string;
  /** The last CONNACK. */
  connack: ConnackPacket | undefined;

  #listeners = new ListenerLists<ClientEvents>();
  #delivery = new Delivery((e) => this.#emit("error", e));
  #requests = new RequestResponse(this);
  #outbox: Outbox;
  #conn: Connection;

  /** Creates a client; nothing happens until `connect()`. */
  constructor(options: ClientOptions = {}) {
    this.options = { ...options };
    this.clientId = options.clientId ?? randomClientId();
    this.#outbox = new Outbox(this, (e) => this.#emit("error", e));
    this.#conn = new Connection(this, this.#outbox, this.#delivery, {
      emit: (name, event) => this.#emit(name, event),
      closed: (error) => this.#requests.rejectAll(error),
      dialer: () => this.options.dialer ?? this.createDialer(),
    });
  }

  /**
   * The dialer of the next connection attempt when `options.dialer` is not
   * set: here a `WebSocketDialer` for a `ws://` or `wss://` `url`; `Client`
   * overrides it to add TCP and TLS. Throws a `TypeError` for a target this
   * client cannot reach (the attempt then fails with 0x88).
   *
   * @example
   * ```ts ignore
   * class ProxiedClient extends WebClient {
   *   protected override createDialer(): Dialer {
   *     return new WebSocketDialer({ url: "wss://proxy.example/mqtt" });
   *   }
   * }
   * ```
   */
  protected createDialer(): Dialer {
    return webDialer(this.options);
  }

  /** True while a connection is up (CONNACK received). */
  get connected(): boolean {
    return this.#conn.connected;
  }

  /** The protocol version in use (4 or 5). */
  get protocolVersion(): ProtocolVersion {
    return this.#conn.version;
  }

  /** Requests waiting to be sent (offline or held back by flow control). */
  get queued(): number {
    return this.#outbox.state.queued;
  }

  /** QoS 1/2 publishes sent and not yet acknowledged. */
  get inFlight(): number {
    return this.#outbox.state.publishesInFlight;
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
    const conn = this.#conn;
    if (!conn.connecting && !conn.connected) {
      Object.assign(this.options, options);
      if (options.clientId !== undefined) this.clientId = options.clientId;
    }
    return conn.connect();
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
    await this.#conn.disconnect(options);
  }

  /**
   * Closes the socket without DISCONNECT (the broker then publishes the
   * will), and resolves once closed. No reconnect follows.
   */
  async close(): Promise<void> {
    await this.#conn.close();
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
    return this.#conn.reauthenticate(data);
  }

  /** `await using client = new Client(...)` disconnects at scope end. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.disconnect();
  }

  // ------------------------------------------------------------ publish

  /**
   * Publishes a message. QoS 0 resolves once written to the socket, QoS 1 on
   * PUBACK, QoS 2 on PUBCOMP; a v5 acknowledgement with a reason code
   * >= 0x80 rejects with an `MqttError` carrying it. Above the broker's
   * Maximum QoS rejects with 0x9B, retained where the broker has no Retain
   * Available with 0x9A, over the broker's
   * Maximum Packet Size with `PacketTooLargeError` (0x95); with the
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
    let o: PublishOptions | undefined;
    if (typeof options === "number") qos = options;
    else if (options) {
      o = options;
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
      if (alias !== 0 && this.#conn.version !== 5) {
        throw new MqttError(
          ReasonCode.TopicAliasInvalid,
          "topic aliases need MQTT 5",
        );
      }
      if (topic === "" && alias !== 0) {
        const t = this.#outbox.aliasOut.topicOf(alias);
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
    if (this.#conn.closed && o?.resume === undefined) {
      // (A resumed message waits for `connect()`.)
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
    if (properties && this.#conn.version === 5) {
      if (
        properties.topicAlias !== undefined ||
        properties.subscriptionIdentifiers !== undefined
      ) {
        properties = { ...properties };
        delete properties.topicAlias;
        // Set by the broker only (e.g. when republishing a received
        // message's properties) [MQTT-3.3.4-6].
        delete properties.subscriptionIdentifiers;
      }
      packet.properties = properties;
    }
    return this.#outbox.publish(packet, alias, o?.tracker, o?.resume);
  }

  // ---------------------------------------------------------- subscribe

  /**
   * Registers a handler for every message received.
   * Returns a function that removes it.
   */
  onMessage(handler: MessageHandler): () => void {
    return this.#delivery.onMessage(handler);
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
    const list = filterList(filters, "subscribe");
    const o: SubscribeOptions = typeof options === "number"
      ? { qos: options }
      : options ?? {};
    const subs: Subscription[] = [];
    for (const filter of list) {
      validateTopicFilter(filter);
      const s: Subscription = { filter, qos: o.qos ?? 0 };
      if ((this.options.protocolVersion ?? 5) === 5) {
        if (o.noLocal && filter.startsWith("$share/")) {
          throw new MqttError(
            ReasonCode.ProtocolError,
            `No Local is not allowed on the shared subscription "${filter}" [MQTT-3.8.3-4]`,
          );
        }
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
    const keys: HandlerKey[] = [];
    if (handler) {
      for (const s of subs) {
        keys.push(this.#delivery.addHandler(s.filter, handler));
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
        this.#delivery.dropHandler(subs[i]!.filter, keys[i]!);
      }
      throw e;
    }
    const codes = suback.reasonCodes;
    for (let i = 0; i < subs.length; i++) {
      const s = subs[i]!;
      if ((codes[i] ?? 0x80) < 0x80) {
        this.#outbox.subscriptions.set(s, properties);
      } else if (keys[i]) {
        this.#delivery.dropHandler(s.filter, keys[i]!);
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
    const list = filterList(filters, "unsubscribe");
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
      this.#outbox.subscriptions.delete(f);
      this.#delivery.dropFilter(f);
    }
    return unsuback.reasonCodes ?? list.map(() => 0);
  }

  /**
   * Queues the SUBSCRIBE or UNSUBSCRIBE entry that `make` builds; resolves
   * with its acknowledgement.
   */
  #request<T>(
    make: (resolve: (v: T) => void, reject: (e: Error) => void) => Entry,
  ): Promise<T> {
    if (this.#conn.closed) {
      return Promise.reject(
        new ClientOfflineError("the client is closed: call connect() first"),
      );
    }
    return this.#outbox.request(make);
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
    const conn = this.#conn;
    const it = new MessageIterator(
      conn.resumeReading,
      conn.removeIterator,
      this.options.messageBufferSize ?? 1000,
    );
    this.#delivery.iterators.add(it);
    // Created before connect(): waits for it. After the client closed: ends.
    if (conn.closed && conn.everConnected && !conn.connecting) it.end();
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
    if (this.#conn.version !== 5) {
      throw new MqttError(
        ReasonCode.ProtocolError,
        "request() needs MQTT 5 (response topic)",
      );
    }
    return await this.#requests.request(
      topic,
      payload,
      options.qos ?? 1,
      options.timeout ?? 10_000,
      options.properties,
    );
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
    return this.#requests.respond(filter, handler, options.qos ?? 1);
  }
}

function randomClientId(): string {
  return "kite-" + hex(crypto.getRandomValues(new Uint8Array(8)));
}

/** `filters` as a list; a `ProtocolError` for none (`op` names the call). */
function filterList(filters: string | string[], op: string): string[] {
  const list = typeof filters === "string" ? [filters] : filters;
  if (list.length === 0) {
    throw new MqttError(
      ReasonCode.ProtocolError,
      `${op}() needs at least one filter`,
    );
  }
  return list;
}
