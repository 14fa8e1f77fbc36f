/**
 * `Connection`: the client's connection to the broker across reconnects
 * (private; the `Client` is its API). It dials with a `Dialer`, runs one
 * `Link` at a time, does the CONNECT/CONNACK and AUTH exchanges, feeds
 * incoming packets to `ClientState` and sends what it answers, hands
 * messages to `Delivery`, and owns the one error exit, after which the
 * `Reconnector` schedules the next attempt or the client closes for good.
 *
 * @module
 */

import type {
  AuthPacket,
  ConnackPacket,
  DisconnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
} from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode, reasonCodeName } from "../codec/reason_code.ts";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import { Message } from "./message.ts";
import { TopicAliasReceiver } from "./state.ts";
import type { ClientOptions, DisconnectOptions } from "./options.ts";
import type { ClientEvents, DisconnectEvent } from "./events.ts";
import { ClientOfflineError, TimeoutError } from "./errors.ts";
import type { Dialer } from "./dialer.ts";
import { Link } from "./link.ts";
import { Reconnector } from "./_reconnector.ts";
import type { Delivery } from "./_delivery.ts";
import type { Outbox } from "./_outbox.ts";
import {
  connectPacket,
  V4_CONNACK_TO_V5,
  withUrlCredentials,
} from "./_connect_packet.ts";
import { ackPacket, type AckSink, ConnectionAcks } from "./_acks.ts";
import type { MessageIterator } from "./_message_iterator.ts";
import { toError } from "./_util.ts";

/** The `Client` fields a connection reads and updates. */
export interface ConnectionOwner {
  /** The options (merged with those of `connect()`). */
  readonly options: ClientOptions;
  /** The client id; a broker-assigned one replaces it. */
  clientId: string;
  /** The last CONNACK. */
  connack: ConnackPacket | undefined;
}

/** What a connection tells its client. */
export interface ConnectionHooks {
  /** Reports an event to the client's listeners. */
  emit<K extends keyof ClientEvents>(name: K, event: ClientEvents[K]): void;
  /** The client closed for good: `error` is for whatever still waits. */
  closed(error: Error): void;
  /** The dialer of the next connection attempt; may throw a `TypeError`. */
  dialer(): Dialer;
}

interface Pending {
  resolve(connack: ConnackPacket): void;
  reject(error: Error): void;
}

/**
 * One client's connection, from `connect()` to the final close.
 *
 * @example
 * ```ts ignore
 * const conn = new Connection(client, outbox, delivery, hooks);
 * await conn.connect();
 * await conn.disconnect();
 * ```
 */
export class Connection implements AckSink {
  #owner: ConnectionOwner;
  #outbox: Outbox;
  #delivery: Delivery;
  #hooks: ConnectionHooks;
  #version: ProtocolVersion = 5;
  #aliasIn: TopicAliasReceiver;
  #reconnector: Reconnector;
  #link: Link | undefined;
  /** `done` of every link not yet finished (awaited on close). */
  #links = new Set<Promise<void>>();
  #epoch = 0;
  #connected = false;
  #everConnected = false;
  #resume = false;
  /** The Clean Start of the CONNECT in flight. */
  #cleanStart = true;
  #closed = true; // no connection wanted (before connect / after close)
  #pending: Pending | undefined;
  #reauth: PromiseWithResolvers<AuthPacket> | undefined;
  #connectTimer: ReturnType<typeof setTimeout> | undefined;
  #connecting: Promise<ConnackPacket> | undefined;
  /** With `manualAcks`: the acks of the current connection's messages. */
  #acks: ConnectionAcks | undefined;

  /**
   * Creates the connection of `owner`, sending through `outbox` and
   * delivering to `delivery`; nothing happens until `connect()`.
   */
  constructor(
    owner: ConnectionOwner,
    outbox: Outbox,
    delivery: Delivery,
    hooks: ConnectionHooks,
  ) {
    const o = owner.options;
    this.#owner = owner;
    this.#outbox = outbox;
    this.#delivery = delivery;
    this.#hooks = hooks;
    this.#aliasIn = new TopicAliasReceiver(o.topicAliasMaximum ?? 0);
    this.#reconnector = new Reconnector(o.reconnect);
  }

  /** True while a connection is up (CONNACK received). */
  get connected(): boolean {
    return this.#connected;
  }

  /** True when no connection is wanted (before connect, after close). */
  get closed(): boolean {
    return this.#closed;
  }

  /** True once a connection succeeded since `connect()`. */
  get everConnected(): boolean {
    return this.#everConnected;
  }

  /** True while a connect or reconnect attempt runs. */
  get connecting(): boolean {
    return this.#connecting !== undefined;
  }

  /** The protocol version in use (4 or 5). */
  get version(): ProtocolVersion {
    return this.#version;
  }

  // --------------------------------------------------------------- connect

  /** `Client.connect()` after merging its options. */
  connect(): Promise<ConnackPacket> {
    if (this.#connecting) return this.#connecting;
    if (this.#connected) return Promise.resolve(this.#owner.connack!);
    this.#closed = false;
    this.#resume = false;
    this.#everConnected = false; // a failed connect() is not retried
    const p = this.#open().finally(() => {
      this.#connecting = undefined;
    });
    this.#connecting = p;
    return p;
  }

  /**
   * One connection attempt: resolves with the CONNACK, or rejects (also
   * when the attempt is abandoned while the dial is still under way).
   */
  #open(): Promise<ConnackPacket> {
    const o = this.#owner.options;
    const version: ProtocolVersion = o.protocolVersion ?? 5;
    if (version !== 4 && version !== 5) {
      return Promise.reject(
        new MqttError(
          ReasonCode.UnsupportedProtocolVersion,
          `protocolVersion must be 4 or 5, not ${version}`,
        ),
      );
    }
    this.#version = version;
    const timeout = o.connectTimeout ?? 30_000;
    const epoch = ++this.#epoch;

    const { promise, resolve, reject } = Promise.withResolvers<ConnackPacket>();
    this.#pending = { resolve, reject };
    let dialer: Dialer;
    try {
      dialer = this.#hooks.dialer();
    } catch (e) {
      this.#fail(
        epoch,
        new MqttError(
          ReasonCode.ServerUnavailable,
          `cannot connect: ${toError(e).message}`,
          { cause: e },
        ),
        "client",
      );
      return promise;
    }
    const address = dialer.address;
    this.#connectTimer = setTimeout(() => {
      this.#connectTimer = undefined;
      this.#fail(
        epoch,
        new TimeoutError(`no CONNACK from ${address} within ${timeout} ms`),
        "network",
      );
    }, timeout);
    void this.#dial(dialer, epoch, version);
    return promise;
  }

  /** Dials, then sends the CONNECT (attempt `epoch`). */
  async #dial(
    dialer: Dialer,
    epoch: number,
    version: ProtocolVersion,
  ): Promise<void> {
    const o = this.#owner.options;
    const address = dialer.address;
    let duplex;
    try {
      duplex = await dialer.dial();
    } catch (e) {
      const err = new MqttError(
        ReasonCode.ServerUnavailable,
        `cannot connect to ${address}: ${toError(e).message}`,
        { cause: e },
      );
      if (epoch === this.#epoch && this.#pending) {
        this.#fail(epoch, err, "network");
      }
      return;
    }
    if (epoch !== this.#epoch || this.#closed) {
      duplex.close();
      return;
    }
    const decoder = new PacketDecoder({
      version,
      ...(o.maximumPacketSize ? { maxPacketSize: o.maximumPacketSize } : {}),
    });
    const link = this.#link = new Link(duplex, decoder, {
      packet: (p) => this.#onPacket(p, epoch),
      readEnded: (e) => void this.#onReadEnded(e, epoch),
      writeFailed: (e) => this.#fail(epoch, e, "network"),
      pingTimeout: (ms) =>
        this.#fail(
          epoch,
          new MqttError(
            ReasonCode.KeepAliveTimeout,
            `no PINGRESP within ${ms} ms`,
          ),
          "client",
        ),
    });
    const done = link.done.finally(() => this.#links.delete(done));
    this.#links.add(done);
    const connect = connectPacket(
      withUrlCredentials(o),
      version,
      this.#owner.clientId,
      this.#resume,
    );
    this.#cleanStart = connect.cleanStart;
    link.send(encode(connect, { version }));
  }

  // -------------------------------------------------------- from the broker

  /** The link stopped reading: EOF, a socket error or bad input. */
  async #onReadEnded(error: Error | undefined, epoch: number): Promise<void> {
    if (epoch !== this.#epoch) return;
    if (error instanceof MqttError) {
      // Bad input from the broker: tell it why (v5) and drop the connection.
      if (this.#version === 5 && this.#connected) {
        this.#sendPacket({ type: "disconnect", reasonCode: error.reasonCode });
        await this.#link?.flush();
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
      case "pubrel":
        this.#outbox.onAck(p);
        this.#hooks.emit("released", { packetId: p.packetId });
        return;
      case "puback":
      case "pubrec":
      case "pubcomp":
      case "suback":
      case "unsuback": {
        this.#outbox.onAck(p);
        return;
      }
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
    this.#clearConnectTimer();
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
    if (this.#version === 5 && p.sessionPresent && this.#cleanStart) {
      // A session the client cannot have: it asked for a new one
      // [MQTT-3.2.2-4].
      this.#fail(
        epoch,
        new MqttError(
          ReasonCode.ProtocolError,
          "CONNACK with Session Present 1 after Clean Start 1",
        ),
        "client",
      );
      return;
    }
    this.#pending = undefined;
    this.#connected = true;
    this.#resume = this.#version === 5;
    this.#everConnected = true;
    this.#owner.connack = p;
    const props = p.properties ?? {};
    if (props.assignedClientIdentifier) {
      this.#owner.clientId = props.assignedClientIdentifier;
    }
    this.#aliasIn.reset();
    this.#reconnector.reset();
    if (this.#owner.options.manualAcks === true) {
      this.#acks = new ConnectionAcks(epoch, this);
    }

    // Keep alive: the broker's Server Keep Alive wins [MQTT-3.2.2-21].
    const o = this.#owner.options;
    const ka = (props.serverKeepAlive ?? o.keepAlive ?? 60) * 1000;
    const link = this.#link!;
    link.startKeepAlive(ka, o.pingTimeout ?? Math.min(ka, 10_000));
    this.#outbox.connected(link, p, this.#version);
    pending.resolve(p);
    this.#hooks.emit("connect", p);
  }

  async #onAuth(p: AuthPacket, epoch: number): Promise<void> {
    const code = p.reasonCode ?? 0;
    const method = p.properties?.authenticationMethod ??
      this.#owner.options.authenticationMethod ?? "";
    const auth = this.#owner.options.auth;
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
      this.#sendAuth(ReasonCode.ContinueAuthentication, method, data);
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
    const r = this.#outbox.state.receivePublish(p);
    const ack = r.ack; // r is reused: read it before any handler runs
    if (
      r.deliver &&
      this.#delivery.deliver(new Message(p, p.qos > 0 ? this.#acks : undefined))
    ) {
      this.#link?.pause(); // an iterator is full: backpressure
    }
    if (ack !== undefined) this.#sendPacket(ack);
  }

  /** `Message.ack()` with `manualAcks` (see `ackPacket`). */
  ackReceived(epoch: number, message: Message, reasonCode: number): void {
    const connected = this.#connected;
    const p = ackPacket(
      this.#outbox.state,
      message,
      reasonCode,
      connected && epoch === this.#epoch,
      this.#version,
    );
    if (p !== undefined && connected) this.#sendPacket(p);
  }

  /** An iterator took a message: read on when none is full any more. */
  readonly resumeReading = (): void => {
    const link = this.#link;
    if (link?.paused && !this.#delivery.anyIteratorFull()) link.resume();
  };

  /** An iterator ended. */
  readonly removeIterator = (it: MessageIterator): void => {
    this.#delivery.iterators.delete(it);
    this.resumeReading();
  };

  // ---------------------------------------------------------- to the broker

  #sendPacket(p: Packet): void {
    this.#link?.send(encode(p, { version: this.#version }));
  }

  /** An AUTH packet of `method`, with `data` when there is some. */
  #sendAuth(
    reasonCode: number,
    method: string,
    data: Uint8Array | undefined,
  ): void {
    const properties: Properties = { authenticationMethod: method };
    if (data) properties.authenticationData = data;
    this.#sendPacket({ type: "auth", reasonCode, properties });
  }

  // ------------------------------------------------- connection lifecycle

  /**
   * The one place a connection ends: closes the link, rejects a pending
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
    this.#clearConnectTimer();
    this.#outbox.disconnected();
    const link = this.#link;
    this.#link = undefined;
    link?.close();
    const pending = this.#pending;
    this.#pending = undefined;
    const reauth = this.#reauth;
    this.#reauth = undefined;
    reauth?.reject(error);
    const willReconnect = !this.#closed && this.#everConnected &&
      this.#reconnector.shouldRetry(error);
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
      this.#hooks.emit("disconnect", ev);
    }
    if (this.#closed) return;
    if (willReconnect) {
      if (wasConnected) {
        if (this.#owner.options.queueQoS0Offline === false) {
          const err = new ClientOfflineError(
            "connection lost: QoS 0 message not sent",
          );
          for (const e of this.#outbox.state.dropQueuedQos0()) e.reject(err);
        }
        this.#hooks.emit("offline", { queued: this.#outbox.state.queued });
      }
      this.#hooks.emit("reconnect", this.#reconnector.schedule(this.#reopen));
    } else if (this.#everConnected || !pending) {
      this.#shutdown(`connection lost: ${error.message}`, error);
    } else {
      // A failed first connect: nothing to keep.
      this.#closed = true;
    }
  }

  /** A reconnect attempt (from the reconnector's timer). */
  #reopen = (): void => {
    if (this.#closed) return;
    this.#connecting = this.#open().finally(() => {
      this.#connecting = undefined;
    });
    this.#connecting.catch((e) => {
      this.#hooks.emit("error", toError(e));
    });
  };

  #clearConnectTimer(): void {
    if (this.#connectTimer !== undefined) clearTimeout(this.#connectTimer);
    this.#connectTimer = undefined;
  }

  /** Closes for good: rejects everything pending, ends iterators. */
  #shutdown(reason: string, cause?: Error): void {
    this.#closed = true;
    this.#reconnector.cancel();
    this.#clearConnectTimer();
    const err = new ClientOfflineError(
      `client closed: ${reason}`,
      cause ? { cause } : undefined,
    );
    for (const e of this.#outbox.state.drain()) e.reject(err);
    this.#hooks.closed(err);
    for (const it of [...this.#delivery.iterators]) it.end();
    this.#hooks.emit("close", { reason });
  }

  /** `Client.disconnect()`: DISCONNECT, then closed for good. */
  async disconnect(options: DisconnectOptions = {}): Promise<void> {
    if (this.#closed && !this.#link && !this.#reconnector.scheduled) return;
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
        // Within the broker's Maximum Packet Size: without the Reason String
        // and User Properties if need be [MQTT-3.14.2-3] [MQTT-3.14.2-4].
        const max = this.#owner.connack?.properties?.maximumPacketSize;
        if (
          max !== undefined && p.properties !== undefined &&
          encode(p, { version: 5 }).length > max
        ) {
          delete props.reasonString;
          delete props.userProperties;
          if (Object.keys(props).length === 0) delete p.properties;
        }
      }
      this.#sendPacket(p);
      await this.#link?.flush();
    }
    await this.#end("disconnect() called", options.reasonCode ?? 0);
  }

  /** `Client.close()`: closed for good without DISCONNECT. */
  async close(): Promise<void> {
    await this.#end("close() called", 0);
  }

  async #end(reason: string, code: number): Promise<void> {
    const alreadyClosed = this.#closed;
    this.#closed = true;
    this.#reconnector.cancel();
    if (this.#link || this.#pending) {
      this.#fail(this.#epoch, new ClientOfflineError(reason), "client", {
        type: "disconnect",
        reasonCode: code,
      });
    }
    await Promise.all(this.#links);
    if (
      !alreadyClosed ||
      this.#outbox.state.inFlight + this.#outbox.state.queued > 0
    ) {
      this.#shutdown(reason);
    }
  }

  /** `Client.reauthenticate()`: AUTH 0x19, answered as in `#onAuth`. */
  reauthenticate(data?: Uint8Array): Promise<AuthPacket> {
    const method = this.#owner.options.authenticationMethod;
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
    this.#sendAuth(ReasonCode.ReAuthenticate, method, data);
    return r.promise;
  }
}
