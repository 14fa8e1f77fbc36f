/**
 * One client connection: the protocol state machine between a transport and
 * the broker. This is the only place where errors become CONNACK,
 * DISCONNECT or a closed socket:
 *
 * - before CONNACK: a refusal is a CONNACK with the version's code (3.1.1
 *   return codes, v5 reason codes), a bad first packet closes the socket
 *   [MQTT-3.1.0-1], an unsupported protocol level gets CONNACK 0x01
 *   [MQTT-3.1.2-2];
 * - after CONNACK: v5 clients get DISCONNECT with the error's reason code,
 *   3.1.1 clients a closed socket [MQTT-4.8.0-1]; the will is published.
 *
 * Outgoing packets are coalesced: everything queued during one turn of the
 * event loop (and while a write is in progress) goes out in one write, with
 * packet ids patched into shared PUBLISH encodings as they are copied.
 *
 * MQTT 5 rules kept here:
 * - Topic aliases from the client: up to `topicAliasMaximum` (advertised in
 *   CONNACK), mapped per connection; 0 or above the maximum is DISCONNECT
 *   0x94, an empty topic with an alias never set is 0x82.
 * - Topic aliases to the client, when its CONNECT allows them: given first
 *   come, first served per topic until its maximum is used, then topics go
 *   in full; never remapped. The shared encoding is rewritten (not
 *   re-encoded) per connection, the "alias in use" form shared among
 *   connections with the same alias for the topic. Clients without aliases
 *   keep the encode-once path.
 * - Receive Maximum from the client: QoS 1 PUBLISHes whose PUBACK is not
 *   written yet plus QoS 2 ones not released count against it; one more is
 *   DISCONNECT 0x93.
 * - Payload Format Indicator 1 with a payload that is not UTF-8: PUBACK or
 *   PUBREC 0x99 (QoS 0: DISCONNECT 0x99); the message is not routed.
 * - Reason strings on the broker's refusals: always on CONNACK and
 *   DISCONNECT, on PUBACK/PUBREC/SUBACK only unless the client set Request
 *   Problem Information to 0 [MQTT-3.1.2-29]; left out when they would take
 *   a packet past the client's Maximum Packet Size.
 * - Enhanced authentication (`enhancedAuth` hook, through
 *   `EnhancedAuthFlow`): between CONNECT and CONNACK only AUTH and
 *   DISCONNECT are accepted, under the same connect timeout; `authenticate`
 *   and the anonymous check are skipped; the identity the method proved
 *   becomes the client's user name for the authorization hooks, also after
 *   a re-authentication (AUTH 0x19).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import { aliasPublish } from "../codec/_publish_template.ts";
import { MqttError } from "../codec/errors.ts";
import type {
  AckPacket,
  ConnackPacket,
  ConnectPacket,
  DisconnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
  SubscribePacket,
  UnsubscribePacket,
} from "../codec/packet.ts";
import {
  ReasonCode,
  reasonCodeName,
  SUBACK_FAILURE_V4,
  toConnackReturnCodeV4,
} from "../codec/reason_code.ts";
import { hasWildcard, parseSharedSubscription } from "../codec/topic.ts";
import type { ClientInfo } from "./options.ts";
import { type AuthAction, EnhancedAuthFlow } from "./auth.ts";
import type { BrokerCore } from "./broker.ts";
import {
  ownPayload,
  type PublishEncoding,
  type Session,
  type SessionLink,
} from "./session.ts";
import type { StoredMessage, StoredSubscription } from "./store/store.ts";
import type { Duplex } from "../codec/duplex.ts";
import { debugEnabled } from "./_log.ts";

const log = getLogger(["kite", "broker", "connection"]);

const CONNECTING = 0;
const CONNECTED = 1;
const CLOSING = 2;
const CLOSED = 3;

/** How long a closing connection may take to flush its last bytes. */
const CLOSE_FLUSH_MS = 1000;

/** Reason strings of the broker's own DISCONNECTs that carry no error. */
const DISCONNECT_REASONS: Record<number, string> = {
  [ReasonCode.KeepAliveTimeout]: "keep alive timeout",
  [ReasonCode.SessionTakenOver]:
    "another connection took this client identifier over",
  [ReasonCode.ServerShuttingDown]: "the server is shutting down",
};

/**
 * The output arrays of every connection with nothing queued: frozen, so
 * that a push to them throws instead of leaking between connections.
 */
const NO_BUFS: Uint8Array[] = Object.freeze([]) as unknown as Uint8Array[];
const NO_NUMS: number[] = Object.freeze([]) as unknown as number[];

let assignedIds = 0;

function assignClientId(): string {
  assignedIds = (assignedIds + 1) % 0x100000;
  return `kite-${crypto.randomUUID().slice(0, 18)}-${assignedIds.toString(36)}`;
}

function minQos(a: QoS, b: QoS): QoS {
  return a < b ? a : b;
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function isUtf8(b: Uint8Array): boolean {
  try {
    utf8.decode(b);
    return true;
  } catch {
    return false;
  }
}

/**
 * A client connection served by a broker.
 */
export class Connection implements SessionLink {
  /** Protocol version (4 until the CONNECT is read). */
  version: ProtocolVersion = 4;
  /** Most unacknowledged QoS 1/2 messages to this client. */
  sendWindow: number;
  /** The client's v5 Maximum Packet Size (Infinity when not given). */
  maxPacketSize = Infinity;
  /** The client identifier, once connected. */
  clientId = "";
  /** The session, once connected. */
  session: Session | undefined;
  /** Epoch ms of the last byte received. */
  lastRx: number;
  /** Epoch ms the connection was accepted. */
  readonly openedAt: number;
  /** Keep alive in seconds (0: none). */
  keepAlive = 0;
  /** Packets of this connection waiting for a store commit. */
  deferred = 0;

  #core: BrokerCore;
  #duplex: Duplex;
  #decoder: PacketDecoder;
  #state = CONNECTING;
  #will: StoredMessage | undefined;
  #willDelay = 0;
  #backlog: Packet[] | undefined;
  #unblocked: Promise<void> | undefined;
  // Created only when someone asks for `closed`.
  #closed: Promise<void> | undefined;
  #closedResolve: (() => void) | undefined;
  #closeTimer: ReturnType<typeof setTimeout> | undefined;
  #sessionExpiryFromConnect = 0;
  /** v5 Request Problem Information (false when the client sent 0). */
  #problemInfo = true;
  /** Topic aliases the client set (v5), by alias. */
  #aliasIn: Map<number, string> | undefined;
  /** Topic aliases the broker set for the client (v5), by topic. */
  #aliasOut: Map<string, number> | undefined;
  #aliasOutMax = 0;
  /** QoS 1 PUBLISHes received whose PUBACK is not written yet. */
  #qos1Unacked = 0;
  /** The v5 enhanced authentication exchange, when CONNECT had a method. */
  #authFlow: EnhancedAuthFlow | undefined;
  #connectPacket: ConnectPacket | undefined;
  #assigned = false;
  /** Built on first use (hooks, wills): most brokers never ask. */
  #info: ClientInfo | undefined;
  #username: string | undefined;

  // Output buffer: parallel arrays, coalesced into one write per turn.
  // While nothing is queued they are the shared empty NO_BUFS/NO_NUMS.
  #outBufs: Uint8Array[] = NO_BUFS;
  #outOffs: number[] = NO_NUMS;
  #outIds: number[] = NO_NUMS;
  #outBytes = 0;
  #writing = false;
  #flushScheduled = false;
  #sentCount = 0;

  /** Creates a connection and starts reading. */
  constructor(core: BrokerCore, duplex: Duplex) {
    this.#core = core;
    this.#duplex = duplex;
    this.#decoder = new PacketDecoder({
      maxPacketSize: core.settings.maxPacketSize,
    });
    this.sendWindow = core.settings.maxInflightMessages;
    this.openedAt = this.lastRx = Date.now();
    this.#readLoop();
  }

  /** Resolves when the connection is closed and its socket released. */
  get closed(): Promise<void> {
    if (this.#closed === undefined) {
      this.#closed = this.#state === CLOSED
        ? Promise.resolve()
        : new Promise((r) => this.#closedResolve = r);
    }
    return this.#closed;
  }

  /**
   * Who the hooks are told about (undefined until the CONNECT is read).
   * Built on first use, so a broker without hooks keeps no such object
   * (nor the address string) per connection.
   */
  get info(): ClientInfo | undefined {
    if (this.#info === undefined && this.clientId !== "") {
      const info: ClientInfo = {
        clientId: this.clientId,
        protocolVersion: this.version,
      };
      if (this.#username !== undefined) info.username = this.#username;
      const remote = this.remoteAddress;
      if (remote !== undefined) info.remoteAddress = remote;
      this.#info = info;
    }
    return this.#info;
  }

  /** The peer address, if the transport knows it. */
  get remoteAddress(): string | undefined {
    return this.#duplex.remoteAddress;
  }

  /** Whether CONNACK was sent and the connection is not closing. */
  get connected(): boolean {
    return this.#state === CONNECTED;
  }

  /** Bytes queued for the socket and not yet written. */
  get bufferedAmount(): number {
    return this.#outBytes;
  }

  // ---------------------------------------------------------------- reading
  //
  // No async function stays suspended per idle connection: one read is
  // pending, and its settlement (or the end of a blocking handler) calls
  // the one `#onRead` closure of the connection.

  /** Starts the next read, unless closing. */
  #readLoop(): void {
    if (this.#state >= CLOSING) return;
    const duplex = this.#duplex;
    const onRead = this.#onRead;
    const raw = duplex.raw;
    if (raw !== undefined) raw.readRaw().then(onRead, onRead);
    else duplex.read().then(onRead, onRead);
  }

  /**
   * A read settled (bytes: a count from `ConnDuplex.readRaw()` or a chunk;
   * null: EOF; anything else: an error), or a blocking handler finished
   * (undefined).
   */
  #onRead = (r: unknown): void => {
    try {
      if (r === undefined) {
        this.#afterPush();
        return;
      }
      let chunk: Uint8Array | null;
      const raw = this.#duplex.raw;
      if (typeof r === "number") chunk = raw!.take(r);
      else if (r instanceof Uint8Array) chunk = r;
      else {
        // EOF, or a read failed: after our own close() that is just the end.
        raw?.ended();
        if (r === null || raw?.isClosed === true) chunk = null;
        else {
          this.#fail(r);
          return;
        }
      }
      if (chunk === null) {
        if (this.#state < CLOSING) {
          if (debugEnabled()) {
            log.debug("{clientId}: connection closed by the client", {
              clientId: this.clientId,
            });
          }
          this.#end(undefined, true);
        }
        return;
      }
      if (this.#state >= CLOSING) return;
      this.lastRx = Date.now();
      this.#core.stats.bytesReceived += chunk.length;
      // One dispatcher shared by all connections instead of a bound
      // callback per connection: push() calls it synchronously.
      const prev = Connection.#pushing;
      Connection.#pushing = this;
      try {
        this.#decoder.push(chunk, Connection.#dispatch);
      } finally {
        Connection.#pushing = prev;
      }
      this.#afterPush();
    } catch (e) {
      this.#fail(e);
    }
  };

  /** Reads on, or first waits for a blocking handler (backpressure). */
  #afterPush(): void {
    const unblocked = this.#unblocked;
    if (unblocked !== undefined && this.#state < CLOSING) {
      unblocked.then(this.#onRead, this.#onRead);
    } else this.#readLoop();
  }

  /** The connection whose decoder is pushing (see #readLoop). */
  static #pushing: Connection | undefined;

  /** The decoder's callback, one for all connections: no closure each. */
  static #dispatch(this: void, p: Packet): void {
    Connection.#pushing!.#onPacket(p);
  }

  #onPacket(p: Packet): void {
    if (this.#state >= CLOSING) return;
    if (this.#backlog !== undefined) {
      this.#backlog.push(p);
      return;
    }
    const r = this.#handle(p);
    if (r !== undefined) this.#block(r);
  }

  #block(r: Promise<void>): void {
    this.#backlog ??= [];
    this.#unblocked = r.then(() => this.#drain(), (e) => this.#fail(e));
  }

  #drain(): void {
    const backlog = this.#backlog!;
    while (backlog.length > 0 && this.#state < CLOSING) {
      const p = backlog.shift()!;
      let r: Promise<void> | undefined;
      try {
        r = this.#handle(p);
      } catch (e) {
        this.#fail(e);
        return;
      }
      if (r !== undefined) {
        this.#unblocked = r.then(() => this.#drain(), (e) => this.#fail(e));
        return;
      }
    }
    this.#backlog = undefined;
    this.#unblocked = undefined;
  }

  #handle(p: Packet): Promise<void> | undefined {
    if (this.#state === CONNECTING) {
      if (this.#authFlow !== undefined) {
        // Between CONNECT and CONNACK only AUTH and DISCONNECT [MQTT-4.12.0-6].
        if (p.type === "auth") {
          return this.#authFlow.auth(p).then((a) => this.#onAuthAction(a));
        }
        if (p.type === "disconnect") {
          this.#end(undefined, false);
          return;
        }
        throw new MqttError(
          ReasonCode.ProtocolError,
          `${p.type} during the authentication exchange [MQTT-4.12.0-6]`,
        );
      }
      if (p.type !== "connect") {
        throw new MqttError(
          ReasonCode.ProtocolError,
          `first packet must be CONNECT, got ${p.type} [MQTT-3.1.0-1]`,
        );
      }
      return this.#onConnect(p);
    }
    switch (p.type) {
      case "publish":
        return this.#onPublish(p);
      case "puback":
        this.session!.onPuback(p.packetId);
        return;
      case "pubrec":
        this.#onPubrec(p);
        return;
      case "pubrel":
        this.#onPubrel(p);
        return;
      case "pubcomp":
        this.session!.onPubcomp(p.packetId);
        return;
      case "subscribe":
        return this.#onSubscribe(p);
      case "unsubscribe":
        this.#onUnsubscribe(p);
        return;
      case "pingreq":
        this.sendPacket({ type: "pingresp" });
        return;
      case "disconnect":
        this.#onDisconnect(p);
        return;
      case "connect":
        throw new MqttError(
          ReasonCode.ProtocolError,
          "second CONNECT on a connection [MQTT-3.1.0-2]",
        );
      case "auth":
        if (this.#authFlow === undefined) {
          throw new MqttError(
            ReasonCode.ProtocolError,
            "AUTH without an authentication method in CONNECT [MQTT-4.12.0-7]",
          );
        }
        // Re-authentication [MQTT-4.12.1-1].
        return this.#authFlow.auth(p).then((a) => this.#onAuthAction(a));
      default:
        throw new MqttError(
          ReasonCode.ProtocolError,
          `a client must not send ${p.type}`,
        );
    }
  }

  // ---------------------------------------------------------------- CONNECT

  #onConnect(p: ConnectPacket): Promise<void> | undefined {
    const core = this.#core;
    const s = core.settings;
    this.version = p.protocolVersion;
    const v5 = this.version === 5;
    this.keepAlive = p.keepAlive;
    if (v5 && p.properties !== undefined) {
      if (p.properties.requestProblemInformation === 0) {
        this.#problemInfo = false;
      }
      // Already for a refusing CONNACK [MQTT-3.1.2-24].
      const mps = p.properties.maximumPacketSize;
      if (mps !== undefined) this.maxPacketSize = mps;
    }
    let clientId = p.clientId;
    let assigned = false;
    if (clientId.length === 0) {
      if (!p.cleanStart || this.version === 3) {
        // MQTT 3.1 has no assigned identifiers.
        // [MQTT-3.1.3-8]
        return this.#refuse(
          ReasonCode.ClientIdentifierNotValid,
          "empty client id without clean session",
        );
      }
      clientId = assignClientId();
      assigned = true;
    }
    this.clientId = clientId;
    if (core.connectedCount >= s.maxConnections) {
      return this.#refuse(
        ReasonCode.QuotaExceeded,
        `maxConnections ${s.maxConnections} reached`,
      );
    }
    if (v5 && p.will !== undefined) {
      if (p.will.qos > s.maxQos) {
        // [MQTT-3.2.2-12]
        return this.#refuse(
          ReasonCode.QoSNotSupported,
          `will QoS ${p.will.qos} above the maximum ${s.maxQos}`,
        );
      }
      if (p.will.retain && !s.retainAvailable) {
        // [MQTT-3.2.2-13]
        return this.#refuse(
          ReasonCode.RetainNotSupported,
          "will retain without retain available",
        );
      }
    }
    this.#username = p.username;
    if (v5 && p.properties?.authenticationMethod !== undefined) {
      // Enhanced authentication: the exchange decides (no `authenticate`,
      // no anonymous check: the method proves who the client is).
      const flow = new EnhancedAuthFlow(core.hooks.enhancedAuth, this.info!, {
        requestProblemInformation: this.#problemInfo,
      });
      this.#authFlow = flow;
      this.#connectPacket = p;
      this.#assigned = assigned;
      return flow.connect(p.properties).then((a) => this.#onAuthAction(a));
    }
    if (!s.allowAnonymous && p.username === undefined) {
      return this.#refuse(ReasonCode.NotAuthorized, "anonymous client");
    }
    const auth = core.hooks.authenticate;
    if (auth !== undefined) {
      const ctx = { ...this.info! } as ClientInfo & {
        password?: Uint8Array;
        properties?: Properties;
      };
      if (p.password !== undefined) ctx.password = p.password;
      if (p.properties !== undefined) ctx.properties = p.properties;
      const r = auth(ctx);
      if (typeof r === "number") {
        if (r !== ReasonCode.Success) {
          return this.#refuse(r, "authentication failed");
        }
      } else {
        return r.then((code) => {
          if (this.#state !== CONNECTING) return;
          if (code !== ReasonCode.Success) {
            this.#refuse(code, "authentication failed");
            return;
          }
          this.#accept(p, assigned);
        });
      }
    }
    this.#accept(p, assigned);
    return undefined;
  }

  /** Does what the enhanced authentication exchange decided. */
  #onAuthAction(a: AuthAction): void {
    if (this.#state >= CLOSING) return;
    if (a.type === "auth") {
      if (a.username !== undefined) this.#setUsername(a.username);
      this.sendPacket(a.packet);
      return;
    }
    if (a.type === "disconnect") {
      this.#end(a.reasonCode, true, false, a.properties);
      return;
    }
    if (a.reasonCode !== ReasonCode.Success) {
      this.#refuse(
        a.reasonCode,
        a.properties.reasonString ?? "enhanced authentication failed",
        a.properties,
      );
      return;
    }
    if (a.username !== undefined) this.#setUsername(a.username);
    this.#authFlow!.connected();
    this.#accept(this.#connectPacket!, this.#assigned, a.properties);
    this.#connectPacket = undefined;
  }

  #setUsername(username: string): void {
    this.#username = username;
    const info = this.#info;
    if (info !== undefined) this.#info = { ...info, username };
  }

  #refuse(code: number, why: string, props?: Properties): undefined {
    log.info("{clientId} refused: {why} ({code})", {
      clientId: this.clientId,
      why,
      code,
      remote: this.remoteAddress,
    });
    const v5 = this.version === 5;
    const connack: ConnackPacket = {
      type: "connack",
      sessionPresent: false,
      reasonCode: v5 ? code : toConnackReturnCodeV4(code),
    };
    // A reason string is allowed on CONNACK whatever Request Problem
    // Information says [MQTT-3.1.2-29].
    if (v5) connack.properties = { reasonString: why, ...props };
    this.sendPacket(connack);
    this.#end(undefined, false);
    return undefined;
  }

  #accept(p: ConnectPacket, assigned: boolean, authProps?: Properties): void {
    const core = this.#core;
    const s = core.settings;
    const v5 = this.version === 5;
    // Session expiry: v5 from the CONNECT, 3.1.1 by the clean session flag;
    // both capped by the broker's sessionExpiryInterval.
    const asked = v5
      ? (p.properties?.sessionExpiryInterval ?? 0)
      : (p.cleanStart ? 0 : 0xffffffff);
    const expiry = Math.min(asked, s.sessionExpiryInterval);
    this.#sessionExpiryFromConnect = asked;
    if (v5) {
      const rm = p.properties?.receiveMaximum;
      if (rm !== undefined && rm < this.sendWindow) this.sendWindow = rm;
      const mps = p.properties?.maximumPacketSize;
      if (mps !== undefined) this.maxPacketSize = mps;
      const tam = p.properties?.topicAliasMaximum;
      if (tam !== undefined && tam > 0) {
        // The broker may alias topics it sends, up to the client's maximum.
        this.#aliasOutMax = tam;
        this.#aliasOut = new Map();
      }
    }
    if (p.will !== undefined) {
      const w = p.will;
      const will: StoredMessage = {
        topic: w.topic,
        payload: w.payload.slice(),
        qos: w.qos,
        retain: w.retain,
      };
      if (v5 && w.properties !== undefined) {
        const { willDelayInterval, ...props } = w.properties;
        this.#willDelay = willDelayInterval ?? 0;
        if (Object.keys(props).length > 0) will.properties = props;
      }
      ownPayload(will); // its Correlation Data, if any
      this.#will = will;
    }
    const { session, present } = core.openSession(this, p.cleanStart, expiry);
    this.session = session;
    let keepAlive = p.keepAlive;
    if (v5 && s.serverKeepAlive > 0) keepAlive = s.serverKeepAlive;
    this.keepAlive = keepAlive;
    const connack: ConnackPacket = {
      type: "connack",
      sessionPresent: present,
      reasonCode: ReasonCode.Success,
    };
    if (v5) {
      const props: Properties = {
        receiveMaximum: s.receiveMaximum,
        maximumPacketSize: s.maxPacketSize,
        topicAliasMaximum: s.topicAliasMaximum,
        wildcardSubscriptionAvailable: s.wildcardSubscriptionAvailable ? 1 : 0,
        sharedSubscriptionAvailable: s.sharedSubscriptionAvailable ? 1 : 0,
        subscriptionIdentifierAvailable: 1,
      };
      if (s.maxQos < 2) props.maximumQoS = s.maxQos;
      if (!s.retainAvailable) props.retainAvailable = 0;
      if (assigned) props.assignedClientIdentifier = this.clientId;
      if (asked !== expiry) props.sessionExpiryInterval = expiry;
      if (keepAlive !== p.keepAlive) props.serverKeepAlive = keepAlive;
      if (authProps !== undefined) Object.assign(props, authProps);
      connack.properties = props;
    }
    this.#state = CONNECTED;
    this.sendPacket(connack);
    core.onConnected(this);
    if (debugEnabled()) {
      log.debug("{clientId} connected (v{version}, present {present})", {
        clientId: this.clientId,
        version: this.version,
        present,
      });
    }
    session.attach(this);
  }

  /** The will of this connection (published by the broker on an ungraceful close). */
  get will(): StoredMessage | undefined {
    return this.#will;
  }

  /** v5 will delay interval in seconds. */
  get willDelay(): number {
    return this.#willDelay;
  }

  // ---------------------------------------------------------------- PUBLISH

  #onPublish(p: PublishPacket): Promise<void> | undefined {
    const core = this.#core;
    const s = core.settings;
    core.stats.messagesReceived++;
    const v5 = this.version === 5;
    if (v5) {
      const props = p.properties;
      if (props !== undefined) {
        if (props.topicAlias !== undefined) {
          this.#resolveAlias(p, props.topicAlias);
        }
        if (props.subscriptionIdentifiers !== undefined) {
          throw new MqttError(
            ReasonCode.ProtocolError,
            "a PUBLISH from a client must not carry a Subscription Identifier [MQTT-3.3.4-6]",
          );
        }
      }
      if (p.qos > s.maxQos) {
        throw new MqttError(
          ReasonCode.QoSNotSupported,
          `QoS ${p.qos} above the maximum ${s.maxQos} [MQTT-3.2.2-11]`,
        );
      }
      if (p.retain && !s.retainAvailable) {
        throw new MqttError(
          ReasonCode.RetainNotSupported,
          "retain is not available [MQTT-3.2.2-14]",
        );
      }
    }
    const session = this.session!;
    if (p.qos === 2) {
      if (session.incomingQos2.has(p.packetId!)) {
        // A duplicate of a message not yet released: acknowledge it again,
        // do not deliver it twice [MQTT-4.3.3-2].
        core.sendDurable(this, { type: "pubrec", packetId: p.packetId! });
        return;
      }
    }
    if (p.qos > 0) {
      if (
        v5 && this.#qos1Unacked + session.incomingQos2Count >= s.receiveMaximum
      ) {
        // [MQTT-3.3.4-9]
        throw new MqttError(
          ReasonCode.ReceiveMaximumExceeded,
          `more than the Receive Maximum ${s.receiveMaximum} QoS 1/2 messages unacknowledged`,
        );
      }
      if (p.qos === 1) this.#qos1Unacked++;
    }
    if (
      v5 && p.properties?.payloadFormatIndicator === 1 && !isUtf8(p.payload)
    ) {
      // [MQTT-3.3.2-4]: the payload must be UTF-8; refused in the ack, or
      // with DISCONNECT for QoS 0.
      if (p.qos === 0) {
        throw new MqttError(
          ReasonCode.PayloadFormatInvalid,
          "payload format indicator 1 with a payload that is not UTF-8",
        );
      }
      this.#publishAuthorized(p, ReasonCode.PayloadFormatInvalid);
      return;
    }
    const authz = core.hooks.authorizePublish;
    if (authz !== undefined) {
      const r = authz(this.info!, p.topic, p.qos, p.retain);
      if (typeof r !== "number") {
        return r.then((code) => {
          if (this.#state === CONNECTED) this.#publishAuthorized(p, code);
        });
      }
      this.#publishAuthorized(p, r);
      return;
    }
    this.#publishAuthorized(p, ReasonCode.Success);
    return;
  }

  /** Applies an incoming v5 Topic Alias to `p` (sets or uses the mapping). */
  #resolveAlias(p: PublishPacket, alias: number): void {
    const max = this.#core.settings.topicAliasMaximum;
    if (alias === 0 || alias > max) {
      // [MQTT-3.3.2-8], [MQTT-3.3.2-9]
      throw new MqttError(
        ReasonCode.TopicAliasInvalid,
        `topic alias ${alias} not in 1..${max}`,
      );
    }
    if (p.topic.length > 0) {
      (this.#aliasIn ??= new Map()).set(alias, p.topic);
      return;
    }
    const topic = this.#aliasIn?.get(alias);
    if (topic === undefined) {
      throw new MqttError(
        ReasonCode.ProtocolError,
        `topic alias ${alias} used before it was set`,
      );
    }
    p.topic = topic;
  }

  #publishAuthorized(p: PublishPacket, code: number): void {
    const core = this.#core;
    const v5 = this.version === 5;
    let routed = 0;
    if (code < 0x80) {
      // The payload is a view of the read chunk; a session that queues the
      // message copies it out (see Session), retained messages too.
      const message: StoredMessage = {
        topic: p.topic,
        payload: p.payload,
        qos: p.qos,
        retain: p.retain && core.settings.retainAvailable,
      };
      const props = p.properties;
      if (v5 && props !== undefined) {
        const { topicAlias: _a, subscriptionIdentifiers: _s, ...rest } = props;
        if (rest.messageExpiryInterval !== undefined) {
          message.expiresAt = Date.now() + rest.messageExpiryInterval * 1000;
        }
        for (const _ in rest) {
          message.properties = rest;
          break;
        }
      }
      routed = core.publish(message, this.clientId);
    } else {
      log.info("{clientId}: publish to {topic} refused ({code})", {
        clientId: this.clientId,
        topic: p.topic,
        code,
      });
    }
    if (p.qos === 0) return;
    let reasonCode: number = ReasonCode.Success;
    if (v5) {
      if (code >= 0x80) reasonCode = code;
      else if (routed === 0) reasonCode = ReasonCode.NoMatchingSubscribers;
    }
    const ack: AckPacket = {
      type: p.qos === 1 ? "puback" : "pubrec",
      packetId: p.packetId!,
    };
    if (reasonCode !== ReasonCode.Success) ack.reasonCode = reasonCode;
    if (reasonCode >= 0x80 && this.#problemInfo) {
      ack.properties = {
        reasonString: reasonCode === ReasonCode.PayloadFormatInvalid
          ? "payload is not valid UTF-8 (payload format indicator 1)"
          : `publish refused: ${reasonCodeName(reasonCode)}`,
      };
    }
    if (p.qos === 2 && reasonCode < 0x80) {
      const session = this.session!;
      session.incomingQos2.add(p.packetId!);
      if (session.persistent) {
        core.store.putIncomingQos2(this.clientId, p.packetId!);
      }
    }
    core.sendDurable(this, ack);
  }

  #onPubrec(p: AckPacket): void {
    const failed = (p.reasonCode ?? 0) >= 0x80;
    const known = this.session!.onPubrec(p.packetId, failed);
    if (failed) return;
    const rel: AckPacket = { type: "pubrel", packetId: p.packetId };
    if (!known && this.version === 5) {
      rel.reasonCode = ReasonCode.PacketIdentifierNotFound;
    }
    // After the "pubrec" state is durable: a crash must not make the broker
    // resend a PUBLISH the client already released.
    this.#core.sendDurable(this, rel);
  }

  #onPubrel(p: AckPacket): void {
    const session = this.session!;
    const known = session.incomingQos2.delete(p.packetId);
    if (known && session.persistent) {
      this.#core.store.deleteIncomingQos2(this.clientId, p.packetId);
    }
    const comp: AckPacket = { type: "pubcomp", packetId: p.packetId };
    if (!known && this.version === 5) {
      comp.reasonCode = ReasonCode.PacketIdentifierNotFound;
    }
    // After the id is durably forgotten: the client may reuse it at once.
    this.#core.sendDurable(this, comp);
  }

  // -------------------------------------------------------------- SUBSCRIBE

  #onSubscribe(p: SubscribePacket): Promise<void> | undefined {
    const core = this.#core;
    const s = core.settings;
    const n = p.subscriptions.length;
    const codes: number[] = new Array(n);
    const shares: ({ group: string; filter: string } | undefined)[] = new Array(
      n,
    );
    for (let i = 0; i < n; i++) {
      const sub = p.subscriptions[i]!;
      let shared: { group: string; filter: string } | undefined;
      try {
        shared = parseSharedSubscription(sub.filter);
      } catch (e) {
        if (!(e instanceof MqttError)) throw e;
        codes[i] = ReasonCode.TopicFilterInvalid;
        continue;
      }
      shares[i] = shared;
      if (shared !== undefined) {
        if (sub.noLocal === true) {
          throw new MqttError(
            ReasonCode.ProtocolError,
            "No Local on a shared subscription [MQTT-3.8.3-4]",
          );
        }
        if (!s.sharedSubscriptionAvailable) {
          codes[i] = ReasonCode.SharedSubscriptionsNotSupported;
          continue;
        }
      }
      if (
        !s.wildcardSubscriptionAvailable &&
        hasWildcard(shared?.filter ?? sub.filter)
      ) {
        codes[i] = ReasonCode.WildcardSubscriptionsNotSupported;
        continue;
      }
      codes[i] = minQos(sub.qos, s.maxQos);
    }
    const authz = core.hooks.authorizeSubscribe;
    if (authz === undefined) {
      this.#subscribeAuthorized(p, codes, shares);
      return;
    }
    const results: (number | Promise<number>)[] = [];
    let async = false;
    for (let i = 0; i < n; i++) {
      const c = codes[i]!;
      if (c >= 0x80) {
        results.push(c);
        continue;
      }
      const r = authz(this.info!, p.subscriptions[i]!.filter, c as QoS);
      if (typeof r !== "number") async = true;
      results.push(r);
    }
    const apply = (rs: number[]) => {
      for (let i = 0; i < n; i++) {
        const c = codes[i]!;
        if (c >= 0x80) continue;
        const r = rs[i]!;
        codes[i] = r >= 0x80 ? r : Math.min(c, r);
      }
    };
    if (!async) {
      apply(results as number[]);
      this.#subscribeAuthorized(p, codes, shares);
      return;
    }
    return Promise.all(results).then((rs) => {
      if (this.#state !== CONNECTED) return;
      apply(rs);
      this.#subscribeAuthorized(p, codes, shares);
    });
  }

  #subscribeAuthorized(
    p: SubscribePacket,
    codes: number[],
    shares: ({ group: string; filter: string } | undefined)[],
  ): void {
    const core = this.#core;
    const session = this.session!;
    const v5 = this.version === 5;
    const subId = v5 ? p.properties?.subscriptionIdentifiers?.[0] : undefined;
    const retainedToSend: {
      filter: string;
      qos: QoS;
      subIds: number[] | undefined;
    }[] = [];
    for (let i = 0; i < codes.length; i++) {
      const code = codes[i]!;
      if (code >= 0x80) continue;
      const req = p.subscriptions[i]!;
      const sub: StoredSubscription = { filter: req.filter, qos: code as QoS };
      if (v5) {
        if (req.noLocal === true) sub.noLocal = true;
        if (req.retainAsPublished === true) sub.retainAsPublished = true;
        if (req.retainHandling !== undefined && req.retainHandling !== 0) {
          sub.retainHandling = req.retainHandling;
        }
        if (subId !== undefined) sub.subscriptionIdentifier = subId;
      }
      const existed = session.subscriptions.has(req.filter);
      session.subscriptions.set(req.filter, sub);
      const shared = shares[i];
      core.router.subscribe(session, sub, shared);
      // Retained messages: not for shared subscriptions; v5 retain handling
      // 1 only for a new subscription, 2 never [MQTT-3.3.1-9..11].
      const rh = sub.retainHandling ?? 0;
      if (
        shared === undefined && core.settings.retainAvailable &&
        (rh === 0 || (rh === 1 && !existed))
      ) {
        retainedToSend.push({
          filter: req.filter,
          qos: sub.qos,
          subIds: subId !== undefined ? [subId] : undefined,
        });
      }
    }
    session.saveRecord();
    const suback: Packet = {
      type: "suback",
      packetId: p.packetId,
      reasonCodes: v5
        ? codes
        : codes.map((c) => (c >= 0x80 ? SUBACK_FAILURE_V4 : c)),
    };
    if (v5 && this.#problemInfo) {
      const refused: string[] = [];
      for (let i = 0; i < codes.length; i++) {
        const c = codes[i]!;
        if (c >= 0x80) {
          refused.push(`${p.subscriptions[i]!.filter}: ${reasonCodeName(c)}`);
        }
      }
      if (refused.length > 0) {
        suback.properties = { reasonString: `refused ${refused.join(", ")}` };
      }
    }
    this.sendPacket(suback);
    // [MQTT-3.8.4-4]: retained messages after the SUBACK.
    for (const r of retainedToSend) {
      const now = Date.now();
      core.retained.match(r.filter, (m) => {
        if (m.expiresAt !== undefined && m.expiresAt <= now) return;
        session.deliver(m, minQos(m.qos, r.qos), true, r.subIds, undefined);
      });
    }
  }

  #onUnsubscribe(p: UnsubscribePacket): void {
    const core = this.#core;
    const session = this.session!;
    const codes: number[] = [];
    for (const filter of p.filters) {
      let shared: { group: string; filter: string } | undefined;
      try {
        shared = parseSharedSubscription(filter);
      } catch {
        codes.push(ReasonCode.TopicFilterInvalid);
        continue;
      }
      const had = session.subscriptions.delete(filter);
      if (had) core.router.unsubscribe(session, filter, shared);
      codes.push(had ? ReasonCode.Success : ReasonCode.NoSubscriptionExisted);
    }
    session.saveRecord();
    const unsuback: Packet = { type: "unsuback", packetId: p.packetId };
    if (this.version === 5) unsuback.reasonCodes = codes;
    this.sendPacket(unsuback);
  }

  // ------------------------------------------------------------- DISCONNECT

  #onDisconnect(p: DisconnectPacket): void {
    const session = this.session!;
    if (this.version === 5) {
      const exp = p.properties?.sessionExpiryInterval;
      if (exp !== undefined) {
        if (this.#sessionExpiryFromConnect === 0 && exp !== 0) {
          // [MQTT-3.14.2-2]
          throw new MqttError(
            ReasonCode.ProtocolError,
            "session expiry set at DISCONNECT after 0 at CONNECT",
          );
        }
        session.expiryInterval = Math.min(
          exp,
          this.#core.settings.sessionExpiryInterval,
        );
        if (!session.persistent) this.#core.store.deleteSession(this.clientId);
      }
    }
    // A will is discarded on a normal DISCONNECT [MQTT-3.1.2-10]; v5 0x04
    // asks for it to be published.
    const withWill = p.reasonCode === ReasonCode.DisconnectWithWillMessage;
    this.#end(undefined, withWill);
  }

  // ---------------------------------------------------------------- writing

  /** Whether the output buffer is under its bound. */
  writable(): boolean {
    return this.#outBytes < this.#core.outputBufferLimit &&
      this.#state === CONNECTED;
  }

  /** Queues a packet (after any output waiting for a store commit). */
  sendPacket(p: Packet): void {
    if (this.deferred > 0) {
      this.#core.defer(this, p, undefined, 0, false);
      return;
    }
    this.writePacket(p);
  }

  /** Queues a packet now, ahead of output waiting for a store commit. */
  writePacket(p: Packet): void {
    if (this.#state === CLOSED) return;
    if (p.type === "puback") this.#qos1Unacked--;
    let bytes = encode(p, { version: this.version });
    if (bytes.length > this.maxPacketSize && "properties" in p) {
      // A reason string or user properties must not take a packet past the
      // client's Maximum Packet Size: they are left out [MQTT-3.2.2-19]
      // (and the same rule for the other packets).
      const props = p.properties as Properties | undefined;
      if (props !== undefined) {
        const { reasonString: _r, userProperties: _u, ...rest } = props;
        bytes = encode({ ...p, properties: rest } as Packet, {
          version: this.version,
        });
      }
    }
    this.#push(bytes, -1, 0);
  }

  /** Queues a pre-encoded PUBLISH with its packet id (and DUP) patched in. */
  sendEncoded(enc: PublishEncoding, packetId: number, dup: boolean): void {
    if (this.deferred > 0) {
      this.#core.defer(this, undefined, enc, packetId, dup);
      return;
    }
    this.writeEncoded(enc, packetId, dup);
  }

  /** Like `sendEncoded`, once the store has committed what is pending. */
  sendEncodedDurable(
    enc: PublishEncoding,
    packetId: number,
    dup: boolean,
  ): void {
    this.#core.sendDurable(this, undefined, enc, packetId, dup);
  }

  /** Like `sendPacket`, once the store has committed what is pending. */
  sendPacketDurable(p: Packet): void {
    this.#core.sendDurable(this, p);
  }

  /** Queues a pre-encoded PUBLISH now. */
  writeEncoded(enc: PublishEncoding, packetId: number, dup: boolean): void {
    if (this.#state === CLOSED) return;
    this.#sentCount++;
    const id = dup ? packetId | 0x10000 : packetId;
    if (this.#aliasOut !== undefined && enc.version === 5) {
      const a = this.#aliased(enc);
      if (a !== undefined) {
        this.#push(a.bytes, a.idOffset, id);
        return;
      }
    }
    this.#push(enc.bytes, enc.idOffset, id);
  }

  /**
   * The aliased form of `enc` for this connection: the topic's alias when
   * it has one, else a new alias while the client's Topic Alias Maximum
   * allows (aliases are given first come, first served, and kept for the
   * connection), else undefined (sent as is).
   */
  #aliased(
    enc: PublishEncoding,
  ): { bytes: Uint8Array; idOffset: number } | undefined {
    const map = this.#aliasOut!;
    let alias = map.get(enc.topic);
    if (alias !== undefined) {
      // Shared among the subscribers that use the same alias for the topic
      // (the packet id is patched in the copy made by #flush).
      const forms = enc.aliased ??= new Map();
      let a = forms.get(alias);
      if (a === undefined) {
        a = aliasPublish(enc, alias, false);
        forms.set(alias, a);
      }
      return a;
    }
    if (map.size >= this.#aliasOutMax) return undefined;
    // Setting an alias adds 3-4 bytes: not past the client's maximum.
    if (enc.bytes.length + 4 > this.maxPacketSize) return undefined;
    alias = map.size + 1;
    map.set(enc.topic, alias);
    return aliasPublish(enc, alias, true);
  }

  #push(bytes: Uint8Array, off: number, id: number): void {
    if (this.#outBufs === NO_BUFS) {
      this.#outBufs = [];
      this.#outOffs = [];
      this.#outIds = [];
    }
    this.#outBufs.push(bytes);
    this.#outOffs.push(off);
    this.#outIds.push(id);
    this.#outBytes += bytes.length;
    if (this.#outBytes > this.#core.outputBufferLimit * 4) {
      // A client that never reads but keeps sending: it must not grow the
      // broker's memory without bound.
      log.warn("{clientId}: output buffer over {n} bytes, closing", {
        clientId: this.clientId,
        n: this.#outBytes,
      });
      this.#outBufs = NO_BUFS;
      this.#outOffs = NO_NUMS;
      this.#outIds = NO_NUMS;
      this.#outBytes = 0;
      this.#end(undefined, true, true);
      return;
    }
    if (!this.#flushScheduled && !this.#writing) {
      this.#flushScheduled = true;
      if (Connection.#flushQueue.push(this) === 1) {
        queueMicrotask(Connection.#flushAll);
      }
    }
  }

  /**
   * Connections with output queued this turn: one microtask flushes them
   * all (no per-connection callback to keep).
   */
  static #flushQueue: Connection[] = [];

  static #flushAll(this: void): void {
    const q = Connection.#flushQueue;
    Connection.#flushQueue = [];
    for (let i = 0; i < q.length; i++) {
      try {
        q[i]!.#flush();
      } catch (e) {
        q[i]!.#fail(e);
      }
    }
  }

  #flush(): void {
    this.#flushScheduled = false;
    if (this.#writing || this.#outBufs.length === 0) return;
    const bufs = this.#outBufs;
    const offs = this.#outOffs;
    const ids = this.#outIds;
    let total = 0;
    for (let i = 0; i < bufs.length; i++) total += bufs[i]!.length;
    let out: Uint8Array;
    if (bufs.length === 1 && offs[0] === -1) {
      out = bufs[0]!;
    } else {
      out = new Uint8Array(total);
      let pos = 0;
      for (let i = 0; i < bufs.length; i++) {
        const b = bufs[i]!;
        out.set(b, pos);
        const off = offs[i]!;
        if (off >= 0) {
          const id = ids[i]!;
          out[pos + off] = (id >> 8) & 0xff;
          out[pos + off + 1] = id & 0xff;
          if (id & 0x10000) out[pos] = out[pos]! | 0x08;
        }
        pos += b.length;
      }
    }
    this.#outBufs = NO_BUFS;
    this.#outOffs = NO_NUMS;
    this.#outIds = NO_NUMS;
    this.#writing = true;
    const sent = this.#sentCount;
    this.#sentCount = 0;
    this.#duplex.write(out).then(
      () => this.#written(total, sent),
      (e) => {
        this.#writing = false;
        this.#outBytes = 0;
        if (this.#state < CLOSING) {
          if (debugEnabled()) {
            log.debug("{clientId}: write failed: {error}", {
              clientId: this.clientId,
              error: String(e),
            });
          }
          this.#end(undefined, true);
        } else this.#release();
      },
    );
  }

  #written(bytes: number, publishes: number): void {
    this.#writing = false;
    this.#outBytes -= bytes;
    const stats = this.#core.stats;
    stats.bytesSent += bytes;
    stats.messagesSent += publishes;
    // Room again: queued QoS 1/2 messages go first (they wait for it).
    const session = this.session;
    if (session !== undefined && session.queued > 0 && this.connected) {
      session.pump();
    }
    if (this.#outBufs.length > 0) {
      this.#flush();
      return;
    }
    if (this.#state === CLOSING) this.#release();
  }

  // ---------------------------------------------------------------- closing

  /** Checks the connect timeout and keep alive; called by the broker's sweep. */
  checkTimeouts(now: number): void {
    if (this.#state === CONNECTING) {
      if (now - this.openedAt > this.#core.settings.connectTimeout * 1000) {
        if (debugEnabled()) {
          log.debug("connection from {remote}: no CONNECT in time", {
            remote: this.remoteAddress,
          });
        }
        this.#end(undefined, false, true);
      }
      return;
    }
    if (
      this.#state === CONNECTED && this.keepAlive > 0 &&
      now - this.lastRx > this.keepAlive * 1500
    ) {
      // [MQTT-3.1.2-24]: one and a half times the keep alive.
      if (debugEnabled()) {
        log.debug("{clientId}: keep alive timeout", {
          clientId: this.clientId,
        });
      }
      this.#end(ReasonCode.KeepAliveTimeout, true);
    }
  }

  /** Closes this connection because another took its client id over. */
  takeOver(): void {
    this.#end(ReasonCode.SessionTakenOver, true);
  }

  /** Closes this connection because the broker is shutting down. */
  shutdown(): void {
    if (this.#state === CONNECTING) this.#end(undefined, false, true);
    else this.#end(ReasonCode.ServerShuttingDown, false);
  }

  #fail(e: unknown): void {
    if (this.#state >= CLOSING) return;
    if (e instanceof MqttError) {
      if (debugEnabled()) {
        log.debug("{clientId}: {error}", {
          clientId: this.clientId,
          error: e.message,
          code: e.reasonCode,
        });
      }
      if (this.#state === CONNECTING) {
        if (e.reasonCode === ReasonCode.UnsupportedProtocolVersion) {
          // [MQTT-3.1.2-2]: CONNACK 0x01 (3.1.1 form) then close.
          this.version = 4;
          this.sendPacket({
            type: "connack",
            sessionPresent: false,
            reasonCode: toConnackReturnCodeV4(e.reasonCode),
          });
        } else if (this.#decoder.version === 5) {
          this.version = 5;
          this.sendPacket({
            type: "connack",
            sessionPresent: false,
            reasonCode: e.reasonCode >= 0x80
              ? e.reasonCode
              : ReasonCode.UnspecifiedError,
            properties: { reasonString: e.message },
          });
        }
        this.#end(undefined, false);
        return;
      }
      this.#end(
        e.reasonCode >= 0x80 ? e.reasonCode : ReasonCode.UnspecifiedError,
        true,
        false,
        { reasonString: e.message },
      );
      return;
    }
    const closedByPeer = e instanceof Deno.errors.ConnectionReset ||
      e instanceof Deno.errors.BrokenPipe ||
      e instanceof Deno.errors.BadResource ||
      e instanceof Deno.errors.Interrupted;
    if (closedByPeer) {
      if (debugEnabled()) {
        log.debug("{clientId}: socket error {error}", {
          clientId: this.clientId,
          error: String(e),
        });
      }
    } else {
      log.error("{clientId}: internal error {error}", {
        clientId: this.clientId,
        error: e,
      });
    }
    this.#end(
      closedByPeer || this.#state === CONNECTING
        ? undefined
        : ReasonCode.UnspecifiedError,
      true,
      closedByPeer,
    );
  }

  /**
   * Ends the connection: optionally a v5 DISCONNECT with `code` first, the
   * will published when `ungraceful`, then the socket closed once the
   * buffered bytes are written (or at once when `now`).
   */
  #end(
    code: number | undefined,
    ungraceful: boolean,
    now = false,
    props?: Properties,
  ): void {
    if (this.#state >= CLOSING) return;
    const wasConnected = this.#state === CONNECTED;
    if (code !== undefined && wasConnected && this.version === 5) {
      // A reason string is allowed on DISCONNECT whatever Request Problem
      // Information says [MQTT-3.1.2-29].
      const d: DisconnectPacket = { type: "disconnect", reasonCode: code };
      const why = props?.reasonString ?? DISCONNECT_REASONS[code];
      if (props !== undefined || why !== undefined) {
        d.properties = { ...props };
        if (why !== undefined) d.properties.reasonString = why;
      }
      this.writePacket(d);
    }
    this.#state = CLOSING;
    this.#backlog = undefined;
    this.#unblocked = undefined;
    if (wasConnected) this.#core.onDisconnected(this, ungraceful);
    else this.#core.onClosedBeforeConnect(this);
    if (now || (!this.#writing && this.#outBufs.length === 0)) {
      this.#release();
      return;
    }
    this.#closeTimer = setTimeout(() => this.#release(), CLOSE_FLUSH_MS);
  }

  #release(): void {
    if (this.#state === CLOSED) return;
    this.#state = CLOSED;
    if (this.#closeTimer !== undefined) clearTimeout(this.#closeTimer);
    this.#duplex.close();
    this.#closedResolve?.();
  }
}
