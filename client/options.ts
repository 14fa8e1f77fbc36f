/**
 * The options of a `Client` and of its calls (`publish()`, `subscribe()`,
 * `disconnect()`, `request()`). `client.ts` re-exports them; they live here
 * so that the client's connection layer can read them without an import
 * cycle.
 *
 * @module
 */

import type { Properties, QoS, UserProperty } from "../codec/packet.ts";
import type { ReconnectOptions } from "./reconnect.ts";
import type { Dialer } from "./dialer.ts";

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

/**
 * TLS settings of a `Client` (`mqtts://`, `wss://` or `tls: {...}`). PEM
 * text and file paths may be mixed; files are read at each connection
 * attempt, so a renewed certificate is used from the next reconnect on.
 * Only Deno's `Client` applies them: a browser checks a `wss://` server
 * against its own trust store.
 */
export interface TlsOptions {
  /** CA certificates (PEM text) trusted besides the system's roots. */
  caCerts?: string[];
  /** The same as `caCerts`, by MQTT.js's name: one PEM text or several. */
  ca?: string | string[];
  /** A PEM file of CA certificates trusted besides the system's roots. */
  caFile?: string;
  /** Client certificate chain (PEM text), for mutual TLS; needs a key. */
  cert?: string;
  /** Client certificate chain file (PEM). */
  certFile?: string;
  /** The private key of the client certificate (PEM text). */
  key?: string;
  /** The private key file (PEM). */
  keyFile?: string;
  /**
   * The name the broker's certificate must carry (and the SNI sent) when
   * it differs from the host, e.g. when dialing an IP address. It cannot be
   * combined with a client certificate (Deno's `startTls` sends none).
   */
  servername?: string;
  /**
   * Do not check that the broker's certificate names the host (as
   * `mosquitto_pub --insecure`); the chain is still verified against the
   * CA. For tests only. (Deno has no per-connection switch to skip the
   * chain check, MQTT.js's `rejectUnauthorized: false`: trust the CA.)
   */
  insecure?: boolean;
  /**
   * ALPN protocols offered. Default none over `mqtts://`, `http/1.1` over
   * `wss://`.
   */
  alpnProtocols?: string[];
}

/** Options of a `Client`. Every field is optional. */
export interface ClientOptions {
  /**
   * The broker's URL: `mqtt://host[:port]`, `mqtts://` (TLS), `ws://` or
   * `wss://host[:port]/path` (WebSocket; MQTT.js's `tcp:`, `ssl:`, `tls:`
   * work too). Default ports as MQTT.js: 1883, 8883, 80 and 443; a
   * WebSocket path defaults to `/`. A user and password in the URL are
   * used when `username`/`password` are not given; `host` and `port`
   * given beside it win.
   */
  url?: string;
  /** Broker host. Default `"127.0.0.1"`. */
  host?: string;
  /** Broker port. Default 1883 (8883 with `tls`), or the URL's. */
  port?: number;
  /**
   * TLS: `true` for `host`/`port` over TLS with the system's roots, or its
   * settings (CA, client certificate, server name); with a `url` the
   * scheme decides whether TLS is used and this gives the settings.
   */
  tls?: boolean | TlsOptions;
  /**
   * Opens the connections instead of the dialer chosen from `url`, `host`,
   * `port` and `tls` (a custom transport, a proxy, a test double).
   */
  dialer?: Dialer;
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
  /**
   * MQTT 3.1.1: connect as a bridge with Mosquitto's bridge flag
   * (`try_private`: protocol level 0x84). A broker that knows it
   * (Mosquitto, Kite) then keeps retain flags as published on this
   * client's subscriptions and does not send it its own messages back;
   * other brokers refuse the CONNECT (0x84 Unsupported protocol version).
   * Ignored for MQTT 5, where the subscription options `noLocal` and
   * `retainAsPublished` do the same. Default false.
   */
  bridge?: boolean;
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
  /**
   * Acknowledge received QoS 1/2 messages only when the application calls
   * `message.ack()` (as MQTT.js's `customHandleAcks`), e.g. once it has
   * stored them; until then the broker keeps each message and sends it
   * again after a reconnect. Acknowledge in the order the messages came:
   * the protocol wants PUBACKs in that order [MQTT-4.6.0-2]. A QoS 1 message acknowledged after its connection was lost is
   * not acknowledged (the broker sends it again and the new copy is
   * delivered); a QoS 2 one is acknowledged on the next connection, where
   * its resent copy is not delivered twice. The broker's Receive Maximum
   * stops it sending more while too many wait. Not for `SyncClient`.
   * Default false: messages are acknowledged as they arrive.
   */
  manualAcks?: boolean;
}

/**
 * Follows one QoS 1/2 publish through its exchange with the broker, so that
 * the application can keep it in durable storage, with its packet id, and
 * resume it after a restart (`PublishOptions.resume`): given as
 * `PublishOptions.tracker`. Kite's bridges keep their messages for the
 * remote broker this way. The methods are called synchronously by the
 * client; not for `SyncClient`.
 *
 * @example
 * ```ts ignore
 * // One record per message in some store, keyed by `seq`.
 * class Tracked implements PublishTracker {
 *   constructor(readonly seq: number) {}
 *   sent(packetId: number) {
 *     return db.put(this.seq, { packetId, state: "sent" }); // written once stored
 *   }
 *   received(packetId: number) {
 *     db.put(this.seq, { packetId, state: "pubrec" });
 *   }
 *   done() {
 *     db.delete(this.seq);
 *   }
 * }
 * client.publish("a/b", payload, { qos: 2, tracker: new Tracked(1) });
 * ```
 */
export interface PublishTracker {
  /**
   * The PUBLISH got packet id `packetId` and is about to be written for the
   * first time. A returned promise holds that write until it settles (e.g.
   * until the id is stored: a QoS 2 message whose id is lost in a crash
   * could be delivered twice).
   */
  sent(packetId: number): Promise<unknown> | void;
  /**
   * QoS 2: the broker's PUBREC came; the PUBREL is written next. A returned
   * promise holds that write until it settles (e.g. until the new state is
   * stored: after a crash, a PUBLISH resent for a message already released
   * could be delivered twice).
   */
  received(packetId: number): Promise<unknown> | void;
  /**
   * The exchange ended: the broker acknowledged the message (`error`
   * undefined), refused it (a v5 reason code of 0x80 or above), or it cannot
   * be sent (over the broker's Maximum Packet Size or Maximum QoS). Not
   * called when the client closes first: the message is then still to be
   * resumed.
   */
  done(error: Error | undefined): void;
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
  /**
   * QoS 1/2: told of this message's packet id, PUBREC and end (see
   * `PublishTracker`). A promise the publish rejects is then never an
   * unhandled rejection (the tracker hears of it).
   */
  tracker?: PublishTracker;
  /**
   * QoS 1/2: resumes a message that an earlier run of this client (same
   * `clientId`, `cleanStart: false`) had in flight with `packetId`
   * (`released`: its PUBREC had come), as a `PublishTracker` kept it. It
   * takes that packet id at once and, after the CONNACK, is sent again as
   * the protocol says [MQTT-4.4.0-1]: with the session present, the PUBLISH
   * with DUP (or the PUBREL when released); without it, as a new PUBLISH
   * (a released one is then complete). Only while the client is not
   * connected; rejects with 0x91 (Packet identifier in use) for an id
   * already taken.
   */
  resume?: { packetId: number; released?: boolean };
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
