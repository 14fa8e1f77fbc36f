/**
 * `SyncClient`: a blocking MQTT client for code that cannot `await`
 * (synchronous callbacks, plugin APIs, simple scripts).
 *
 * An async {@linkcode Client} runs in a Worker. Each call posts a request to
 * it and blocks the calling thread with `Atomics.wait` until the worker
 * writes the result into a shared reply buffer, or until the call's timeout.
 * Received messages are copied by the worker into a shared ring buffer, so a
 * blocked thread can read them (`receive()`); when the thread's event loop
 * is free they are also handed to `onMessage` handlers.
 *
 * @module
 */

import type {
  ConnackPacket,
  PublishPacket,
  QoS,
  UserProperty,
} from "../codec/packet.ts";
import {
  type ClientEvents,
  type ClientListener,
  ClientOfflineError,
  type ClientOptions,
  type DisconnectOptions,
  type MessageHandler,
  type PublishOptions,
  type SubscribeOptions,
  TimeoutError,
} from "./client.ts";
import { Message } from "./message.ts";
import { addToList, ListenerLists } from "./_listeners.ts";
import type { PublishResult } from "./state.ts";
import { parseSharedSubscription, TopicMatcher } from "../codec/topic.ts";
import {
  CLIENT_EVENT_NAMES,
  CONNECTED,
  CTRL_WORDS,
  dataToError,
  DROPPED,
  type ErrorData,
  REPLY_ID,
  REPLY_LEN,
  RING_COUNT,
  RingReader,
  SIGNAL,
  unpack,
  WAKE_PENDING,
} from "./_sync_shared.ts";

/**
 * Options of a `SyncClient`: those of the async `Client` (except the `auth`
 * callback and a `dialer` object, which cannot cross the worker boundary;
 * `url` and `tls` can) and the blocking limits.
 */
export interface SyncClientOptions
  extends Omit<ClientOptions, "auth" | "dialer"> {
  /**
   * Milliseconds each blocking call waits for its answer before throwing
   * `TimeoutError` (a call may pass its own). Default 10 000.
   */
  timeout?: number;
  /**
   * Size of the shared buffer of received messages, in bytes (each message
   * takes its payload, topic and properties plus about 50 bytes). When full,
   * the worker stops reading from the socket until messages are taken (TCP
   * backpressure, nothing is lost). A message larger than this is dropped,
   * counted in `droppedMessages` and reported as an "error" event. Default
   * 4 MiB.
   */
  messageBufferBytes?: number;
  /**
   * Size of the shared buffer that carries each call's result (a CONNACK,
   * SUBACK codes, ...), in bytes. Default 64 KiB.
   */
  replyBufferBytes?: number;
}

/** Per-call options: the call's own timeout in milliseconds. */
export interface CallOptions {
  /** Milliseconds to wait for the answer. Default the client's `timeout`. */
  timeout?: number;
}

type Handler = { filter: string; fn: MessageHandler };

/** A call's options without their `timeout`, and the timeout. */
function splitTimeout<T extends object>(
  options: QoS | (T & CallOptions) | undefined,
): [QoS | T | undefined, number | undefined] {
  if (typeof options !== "object") return [options, undefined];
  const { timeout, ...rest } = options;
  return [rest as T, timeout];
}

/**
 * Throws `Deno.errors.NotCapable` now when the worker's module cannot be
 * read: a worker that fails to load cannot answer, and the blocked thread
 * would only see a `TimeoutError` after the call's timeout.
 */
function checkWorkerPermission(url: URL): void {
  if (url.protocol !== "file:") return;
  const path = decodeURIComponent(url.pathname);
  const desc = { name: "read", path } as const;
  let state = Deno.permissions.querySync(desc).state;
  if (state === "prompt") state = Deno.permissions.requestSync(desc).state;
  if (state !== "granted") {
    throw new Deno.errors.NotCapable(
      `SyncClient needs read access to ${path} to start its worker: ` +
        "run with --allow-read (or -A), and --allow-net for the broker",
    );
  }
}

/**
 * A blocking MQTT 3.1.1/5.0 client. `connect()`, `publish()`,
 * `subscribe()`, `unsubscribe()` and `disconnect()` block until the broker
 * answered (QoS 1 until PUBACK, QoS 2 until PUBCOMP), return what the async
 * `Client` resolves with, and throw the same `MqttError`s (same class and
 * reason code), or `TimeoutError` when no answer came within the timeout
 * (the request may still complete later). Automatic reconnect works as in
 * the async client.
 *
 * Messages are consumed once: `receive(ms)` takes the next one, blocking
 * for up to `ms`; while the thread is idle (its event loop free) and a
 * handler is registered (`onMessage()` or `subscribe()`'s handler), waiting
 * messages go to the handlers instead. Use one style or the other.
 *
 * Always `close()` it (or `using`): the worker keeps the process alive.
 *
 * Limits: while a call blocks, nothing else runs on the calling thread (its
 * timers, I/O, and a `Broker` started in the same thread, which therefore
 * cannot answer: run that one in another process or worker). The worker
 * inherits the thread's permissions: it needs read access to its module
 * (without it the constructor throws `Deno.errors.NotCapable` at once) and
 * `--allow-net` to the broker.
 * The `auth` callback of enhanced authentication cannot cross to the worker.
 * A call's result must fit in `replyBufferBytes` (64 KiB). Each call costs a
 * thread hop: about 150 us per QoS 0 publish here, 310 us for QoS 1.
 *
 * @example
 * ```ts ignore
 * import { SyncClient } from "@kite/mqtt/client";
 * using client = new SyncClient({ host: "127.0.0.1", port: 1883 });
 * client.connect();
 * client.subscribe("sensor/#", 1);
 * client.publish("sensor/kitchen", "21.5", { qos: 1 }); // returns after PUBACK
 * const msg = client.receive(1000); // a Message, or undefined after 1 s
 * console.log(msg?.topic, msg?.payloadText);
 * client.disconnect();
 * ```
 */
export class SyncClient implements Disposable {
  /** The default timeout of each call, in milliseconds. */
  timeout: number;
  #worker: Worker | undefined;
  #ctrl: Int32Array;
  #reply: Uint8Array;
  #ring: RingReader;
  #seq = 0;
  #clientId: string | undefined;
  #onMessage: MessageHandler[] = [];
  #matcher = new TopicMatcher<Handler>();
  #handlerKeys = 0;
  #keysByFilter = new Map<string, [inner: string, key: string][]>();
  #matched: Handler[] = [];
  #listeners = new ListenerLists<ClientEvents>();

  /** Starts the worker; nothing is sent until `connect()`. */
  constructor(options: SyncClientOptions = {}) {
    const { timeout, messageBufferBytes, replyBufferBytes, ...rest } = options;
    this.timeout = timeout ?? 10_000;
    const ctrl = new SharedArrayBuffer(CTRL_WORDS * 4);
    const reply = new SharedArrayBuffer(replyBufferBytes ?? 64 * 1024);
    const ring = new SharedArrayBuffer(messageBufferBytes ?? 4 * 1024 * 1024);
    this.#ctrl = new Int32Array(ctrl);
    this.#reply = new Uint8Array(reply);
    this.#ring = new RingReader(this.#ctrl, new Uint8Array(ring));
    const clientOptions: ClientOptions = {
      connectTimeout: this.timeout,
      ...rest,
    };
    if (rest.clientId !== undefined) this.#clientId = rest.clientId;
    const url = new URL("./_sync_worker.ts", import.meta.url);
    checkWorkerPermission(url);
    const w = new Worker(url, { type: "module" });
    w.onmessage = this.#onWorkerMessage;
    w.onerror = (e) => {
      e.preventDefault();
      this.#emit("error", new Error(`sync client worker failed: ${e.message}`));
    };
    w.postMessage({ type: "init", ctrl, reply, ring, options: clientOptions });
    this.#worker = w;
  }

  /** True while connected (updated by the worker as events happen). */
  get connected(): boolean {
    return Atomics.load(this.#ctrl, CONNECTED) === 1;
  }

  /** The client id (given, generated, or assigned by a v5 broker). */
  get clientId(): string | undefined {
    return this.#clientId;
  }

  /** Received messages waiting to be taken. */
  get pendingMessages(): number {
    return Atomics.load(this.#ctrl, RING_COUNT);
  }

  /** Messages dropped because they were larger than `messageBufferBytes`. */
  get droppedMessages(): number {
    return Atomics.load(this.#ctrl, DROPPED);
  }

  /** False once `close()` was called. */
  get open(): boolean {
    return this.#worker !== undefined;
  }

  /**
   * Connects; returns the CONNACK. Throws an `MqttError` with the v5 reason
   * code when the broker refuses (e.g. 0x87 not authorized, 0x88 when it
   * cannot be reached) or `TimeoutError`.
   *
   * @example
   * ```ts ignore
   * const connack = client.connect({ timeout: 2000 });
   * connack.sessionPresent;
   * ```
   */
  connect(
    options: Omit<ClientOptions, "auth"> & CallOptions = {},
  ): ConnackPacket {
    const { timeout, ...rest } = options;
    // The async side gives up when the caller does.
    if (timeout !== undefined) rest.connectTimeout ??= timeout;
    const connack = this.#call("connect", [rest], timeout) as ConnackPacket;
    const s = this.#call("state", [], timeout) as { clientId: string };
    this.#clientId = s.clientId;
    return connack;
  }

  /**
   * Publishes; returns after the message was written (QoS 0), acknowledged
   * by PUBACK (QoS 1) or completed by PUBCOMP (QoS 2), with the v5 reason
   * code of the acknowledgement.
   *
   * @example
   * ```ts ignore
   * client.publish("a/b", "hello", 1); // { reasonCode: 0 }
   * client.publish("a/b", new Uint8Array([1]), { qos: 2, retain: true });
   * ```
   */
  publish(
    topic: string,
    payload: string | Uint8Array,
    options?: QoS | (PublishOptions & CallOptions),
  ): PublishResult {
    const [o, timeout] = splitTimeout<PublishOptions>(options);
    return this.#call("publish", [topic, payload, o], timeout) as PublishResult;
  }

  /**
   * Subscribes; returns the SUBACK codes (granted QoS, or >= 0x80 refused).
   * `handler`, when given, receives the matching messages while the thread
   * is idle (not those taken by `receive()`).
   *
   * @example
   * ```ts ignore
   * const [granted] = client.subscribe("sensor/+/temp", { qos: 1 });
   * ```
   */
  subscribe(
    filters: string | string[],
    options?: QoS | (SubscribeOptions & CallOptions),
    handler?: MessageHandler,
  ): number[] {
    const [o, timeout] = splitTimeout<SubscribeOptions>(options);
    const codes = this.#call("subscribe", [filters, o], timeout) as number[];
    if (handler) {
      const list = typeof filters === "string" ? [filters] : filters;
      list.forEach((filter, i) => {
        if ((codes[i] ?? 0x80) >= 0x80) return;
        const inner = parseSharedSubscription(filter)?.filter ?? filter;
        const key = String(++this.#handlerKeys);
        this.#matcher.set(inner, key, { filter, fn: handler });
        let keys = this.#keysByFilter.get(filter);
        if (!keys) this.#keysByFilter.set(filter, keys = []);
        keys.push([inner, key]);
      });
      this.#scheduleDrain();
    }
    return codes;
  }

  /**
   * Unsubscribes; returns the v5 UNSUBACK codes (all 0 for 3.1.1) and drops
   * the handlers of these filters.
   *
   * @example
   * ```ts ignore
   * client.unsubscribe("sensor/+/temp");
   * ```
   */
  unsubscribe(
    filters: string | string[],
    options: { userProperties?: UserProperty[] } & CallOptions = {},
  ): number[] {
    const { timeout, ...rest } = options;
    const codes = this.#call("unsubscribe", [filters, rest], timeout);
    for (const f of typeof filters === "string" ? [filters] : filters) {
      for (const [inner, key] of this.#keysByFilter.get(f) ?? []) {
        this.#matcher.delete(inner, key);
      }
      this.#keysByFilter.delete(f);
    }
    return codes as number[];
  }

  /**
   * Sends DISCONNECT and returns once the socket is closed. The worker stays
   * (`connect()` may be called again) until `close()`.
   *
   * @example
   * ```ts ignore
   * client.disconnect({ reasonCode: 0x04 }); // v5: have the will published
   * ```
   */
  disconnect(options: DisconnectOptions & CallOptions = {}): void {
    const { timeout, ...rest } = options;
    this.#call("disconnect", [rest], timeout);
  }

  /**
   * Takes the next received message, blocking for up to `timeoutMs`
   * (default 0: only what is already there); `undefined` when none came.
   *
   * @example
   * ```ts ignore
   * for (let m; (m = client.receive(500)) !== undefined;) console.log(m.topic);
   * ```
   */
  receive(timeoutMs = 0): Message | undefined {
    const ctrl = this.#ctrl;
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const signal = Atomics.load(ctrl, SIGNAL);
      const record = this.#ring.read();
      if (record) return toMessage(record);
      if (!this.#worker) return undefined;
      const left = deadline - performance.now();
      if (left <= 0) return undefined;
      Atomics.wait(ctrl, SIGNAL, signal, left);
    }
  }

  /**
   * Adds a handler of every message received (called while the thread is
   * idle); returns a function that removes it.
   *
   * @example
   * ```ts ignore
   * const off = client.onMessage((m) => console.log(m.topic, m.payloadText));
   * ```
   */
  onMessage(handler: MessageHandler): () => void {
    const off = addToList(this.#onMessage, handler);
    this.#scheduleDrain();
    return off;
  }

  /**
   * Adds a listener of a client event (`connect`, `disconnect`, `reconnect`,
   * `offline`, `close`, `error`), called while the thread is idle; returns a
   * function that removes it. Errors arrive rebuilt (same class and code).
   *
   * @example
   * ```ts ignore
   * client.on("reconnect", (e) => console.log("retry in", e.delay, "ms"));
   * ```
   */
  on<K extends keyof ClientEvents>(
    name: K,
    listener: ClientListener<K>,
  ): () => void {
    return this.#listeners.on(name, listener);
  }

  /**
   * Closes the connection without DISCONNECT if one is up (the broker then
   * publishes the will; call `disconnect()` first for a clean end), and
   * terminates the worker. Idempotent. Messages not yet taken are lost.
   */
  close(): void {
    const w = this.#worker;
    if (!w) return;
    try {
      this.#call("close", [], Math.min(this.timeout, 2000));
    } catch { /* terminated below either way */ }
    w.terminate();
    this.#worker = undefined;
    Atomics.store(this.#ctrl, CONNECTED, 0);
  }

  /** `using client = new SyncClient()` closes it at scope end. */
  [Symbol.dispose](): void {
    this.close();
  }

  #call(op: string, args: unknown[], timeout = this.timeout): unknown {
    const w = this.#worker;
    if (!w) {
      throw new ClientOfflineError("the sync client is closed");
    }
    const ctrl = this.#ctrl;
    const id = ++this.#seq;
    w.postMessage({ type: "call", id, op, args });
    const deadline = performance.now() + timeout;
    for (;;) {
      const signal = Atomics.load(ctrl, SIGNAL);
      if (Atomics.load(ctrl, REPLY_ID) === id) break;
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new TimeoutError(`${op}() got no answer within ${timeout} ms`);
      }
      Atomics.wait(ctrl, SIGNAL, signal, left);
    }
    const len = Atomics.load(ctrl, REPLY_LEN);
    const r = unpack(this.#reply.subarray(0, len)) as {
      ok?: unknown;
      error?: ErrorData;
    };
    if (r.error) throw dataToError(r.error);
    return r.ok ?? undefined;
  }

  #onWorkerMessage = (
    e: MessageEvent<
      { type: "wake" } | { type: "event"; name: string; event: unknown }
    >,
  ): void => {
    const m = e.data;
    if (m.type === "wake") {
      Atomics.store(this.#ctrl, WAKE_PENDING, 0);
      this.#drain();
      return;
    }
    const name = m.name as keyof ClientEvents;
    if (!(CLIENT_EVENT_NAMES as readonly string[]).includes(name)) return;
    let event = m.event as Record<string, unknown>;
    if (name === "error") {
      event = dataToError(event as unknown as ErrorData) as never;
    } else if (name === "disconnect" && event.error) {
      event = { ...event, error: dataToError(event.error as ErrorData) };
    } else if (name === "connect") {
      // A v5 broker may assign the id; keep ours in step.
      const id =
        (event as { properties?: { assignedClientIdentifier?: string } })
          .properties?.assignedClientIdentifier;
      if (id) this.#clientId = id;
    }
    this.#emit(name, event as never);
  };

  #emit<K extends keyof ClientEvents>(name: K, event: ClientEvents[K]): void {
    this.#listeners.emit(name, event, (err) => {
      if (name !== "error") this.#emit("error", toError(err));
    });
  }

  #drainScheduled = false;

  #scheduleDrain(): void {
    if (this.#drainScheduled) return;
    this.#drainScheduled = true;
    queueMicrotask(() => {
      this.#drainScheduled = false;
      this.#drain();
    });
  }

  /** Hands waiting messages to the handlers, if there are any. */
  #drain(): void {
    while (
      this.#worker &&
      (this.#onMessage.length > 0 || this.#keysByFilter.size > 0)
    ) {
      const record = this.#ring.read();
      if (!record) return;
      const msg = toMessage(record);
      for (const fn of this.#onMessage.slice()) this.#run(fn, msg);
      if (this.#keysByFilter.size > 0) {
        this.#matcher.match(msg.topic, this.#collect);
        const matched = this.#matched.splice(0);
        // One call per handler even when several of its filters match.
        const seen = new Set<MessageHandler>();
        for (const h of matched) {
          if (seen.has(h.fn)) continue;
          seen.add(h.fn);
          this.#run(h.fn, msg);
        }
      }
    }
  }

  #collect = (h: Handler): void => {
    this.#matched.push(h);
  };

  #run(fn: MessageHandler, msg: Message): void {
    try {
      const r = fn(msg);
      if (r instanceof Promise) r.catch((e) => this.#emit("error", toError(e)));
    } catch (e) {
      this.#emit("error", toError(e));
    }
  }
}

function toMessage(record: Uint8Array): Message {
  const [topic, payload, qos, retain, dup, properties] = unpack(record) as [
    string,
    Uint8Array,
    QoS,
    boolean,
    boolean,
    PublishPacket["properties"],
  ];
  const p: PublishPacket = {
    type: "publish",
    topic,
    payload,
    qos,
    retain,
    dup,
  };
  if (properties && Object.keys(properties).length > 0) {
    p.properties = properties;
  }
  return new Message(p);
}

function toError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}
