/**
 * The extension points of a `Broker`: {@linkcode ClientInfo}, the context
 * each hook is given, and every hook type ({@linkcode BrokerHooks}).
 *
 * How the broker calls them:
 * - `authenticate(ctx)` after the CONNECT protocol checks, when the CONNECT
 *   has no v5 Authentication Method: `0` accepts, a code >= 0x80 is sent in
 *   CONNACK (mapped to the 3.1.1 return code for 3.1.1 clients).
 * - `enhancedAuth(ctx)` when the CONNECT has an Authentication Method (and
 *   on a v5 AUTH 0x19 re-authentication): see {@linkcode EnhancedAuthHook}.
 * - `authorizePublish(client, topic, qos, retain)` for each PUBLISH (and
 *   will); `authorizeSubscribe(client, filter, qos)` for each SUBSCRIBE
 *   filter. Both may return a number synchronously: the broker only
 *   `await`s when the result is a promise.
 * - `authorizeRead(client, topic)` before each message a session is about
 *   to receive (see {@linkcode AuthorizeReadHook}): synchronous, cached per
 *   session and topic until `authorizationEpoch()` changes.
 *
 * This module holds types only and imports nothing from the rest of the
 * broker, so options (`config/`), `auth.ts` and the connection can all
 * depend on it without a cycle. `options.ts` and `auth.ts` re-export these
 * types where users import them from.
 *
 * @module
 */

import type { Properties, ProtocolVersion, QoS } from "../codec/packet.ts";

/** Who a hook is asked about: a connected (or connecting) client. */
export interface ClientInfo {
  /** The client identifier (the assigned one when the client sent none). */
  clientId: string;
  /** The user name of the CONNECT, if any. */
  username?: string;
  /** 3, 4 or 5. */
  protocolVersion: ProtocolVersion;
  /** The peer address, e.g. `127.0.0.1:50123`, when the transport knows it. */
  remoteAddress?: string;
}

/** What `authenticate` is given: the client and its CONNECT credentials. */
export interface AuthenticateContext extends ClientInfo {
  /** The password of the CONNECT, if any. Never log it. */
  password?: Uint8Array;
  /** The v5 CONNECT properties (authentication method and data, ...). */
  properties?: Properties;
}

/**
 * Decides whether a client may connect: returns `ReasonCode.Success` (0) or a
 * v5 CONNACK reason code (>= 0x80; mapped to the 3.1.1 return code for 3.1.1
 * clients, e.g. 0x86 -> 4, 0x87 -> 5).
 */
export type AuthenticateHook = (
  ctx: AuthenticateContext,
) => Promise<number> | number;

/**
 * Decides whether a client may publish to `topic`: returns 0 to allow or a v5
 * reason code (>= 0x80, e.g. 0x87) to refuse. A refused message is not
 * routed; a v5 QoS > 0 publisher gets the code in its PUBACK/PUBREC.
 */
export type AuthorizePublishHook = (
  client: ClientInfo,
  topic: string,
  qos: QoS,
  retain: boolean,
) => Promise<number> | number;

/**
 * Decides whether a client may subscribe to `filter`: returns the granted
 * QoS (0-2, at most `qos`) or a v5 reason code >= 0x80 to refuse (3.1.1
 * clients get 0x80 in SUBACK).
 */
export type AuthorizeSubscribeHook = (
  client: ClientInfo,
  filter: string,
  qos: QoS,
) => Promise<number> | number;

/**
 * Decides whether a client may receive a message published to `topic`:
 * `true` delivers, `false` skips it for this client (as if it had no
 * matching subscription). Synchronous, because it runs on the delivery path:
 * the broker asks it for every message a session is about to receive (live
 * deliveries, retained messages on SUBSCRIBE, queued and restored messages
 * when they are sent, wills), so that tightened rules apply to existing
 * subscriptions at once, as Mosquitto does. A hook that throws counts as
 * `false`.
 *
 * `client` is the session's owner (client id and user name), also while it
 * is offline and after a restart, so `remoteAddress` may be absent.
 *
 * When `authorizationEpoch` is given too, the broker caches the answers per
 * session and topic (bounded) until the epoch changes; without it, the hook
 * is called for every delivery.
 *
 * @example
 * ```ts
 * import type { AuthorizeReadHook } from "./hooks.ts";
 * // Each user reads under users/<name>/ and news/ only.
 * const authorizeRead: AuthorizeReadHook = (client, topic) =>
 *   topic.startsWith(`users/${client.username}/`) || topic.startsWith("news/");
 * ```
 */
export type AuthorizeReadHook = (client: ClientInfo, topic: string) => boolean;

/**
 * The generation of the authorization rules: returns a number that changes
 * whenever the answers of `authorizeRead` may change (bump it when the rules
 * are reloaded). Called once per delivery check, so it must be cheap.
 */
export type AuthorizationEpochHook = () => number;

/** What {@linkcode EnhancedAuthHook} is given when an exchange starts. */
export interface EnhancedAuthContext extends ClientInfo {
  /** The Authentication Method of the CONNECT (e.g. `SCRAM-SHA-256`). */
  method: string;
  /** True for a re-authentication (AUTH 0x19 on a connected client). */
  reauthenticate: boolean;
}

/**
 * One step of an enhanced authentication exchange, as the server decides it:
 * - `reasonCode` 0x18 (ContinueAuthentication): the broker sends AUTH 0x18
 *   with the method and `data`, and waits for the client's AUTH 0x18;
 * - `reasonCode` 0x00 (Success): the broker sends CONNACK 0x00 (or AUTH 0x00
 *   after a re-authentication) carrying the method and `data`;
 * - `reasonCode` >= 0x80: the broker refuses with CONNACK (or DISCONNECT
 *   after a re-authentication) with that code, e.g. 0x86 or 0x87.
 */
export interface AuthStep {
  /** 0x18, 0x00 or a failure code >= 0x80. */
  reasonCode: number;
  /** Authentication Data to send, if any. */
  data?: Uint8Array;
  /** A v5 Reason String for a person, if useful. */
  reasonString?: string;
  /**
   * On success: the identity the exchange proved. The broker uses it as the
   * client's `username` for the authorization hooks.
   */
  username?: string;
}

/** The server side of one enhanced authentication exchange. */
export interface EnhancedAuthSession {
  /**
   * Takes the client's Authentication Data (from the CONNECT, or the AUTH
   * 0x19 for a re-authentication, then from each AUTH 0x18) and returns what
   * to answer.
   */
  step(data: Uint8Array | undefined): Promise<AuthStep> | AuthStep;
}

/**
 * Starts an enhanced authentication exchange for a CONNECT (or AUTH 0x19)
 * that carries an Authentication Method. Returns `undefined` for a method
 * it does not support: the broker then answers CONNACK 0x8C (Bad
 * authentication method). Without this hook the broker answers 0x8C to any
 * Authentication Method. A client AUTH with another method, or with a reason
 * code other than 0x18 during the exchange, is a protocol error (0x82).
 *
 * @example
 * ```ts
 * import type { EnhancedAuthHook } from "./hooks.ts";
 * import { ReasonCode } from "../codec/reason_code.ts";
 * // A toy method: the client must send "open sesame".
 * const enhancedAuth: EnhancedAuthHook = (ctx) =>
 *   ctx.method !== "TOY" ? undefined : {
 *     step: (data) =>
 *       new TextDecoder().decode(data) === "open sesame"
 *         ? { reasonCode: ReasonCode.Success }
 *         : { reasonCode: ReasonCode.NotAuthorized },
 *   };
 * ```
 */
export type EnhancedAuthHook = (
  ctx: EnhancedAuthContext,
) => EnhancedAuthSession | undefined;

/**
 * The extension points of a `Broker`: default allow everything. Each hook
 * is also a `BrokerOptions` field, so hooks are spread into the options.
 *
 * @example
 * ```ts
 * import type { BrokerHooks } from "@kite/mqtt/broker";
 * import { ReasonCode } from "@kite/mqtt/codec";
 * // Each user may publish under users/<name>/ only.
 * const hooks: BrokerHooks = {
 *   authorizePublish: (client, topic) =>
 *     topic.startsWith(`users/${client.username}/`)
 *       ? ReasonCode.Success
 *       : ReasonCode.NotAuthorized,
 * };
 * ```
 */
export interface BrokerHooks {
  /** Called for every CONNECT after the protocol checks. */
  authenticate?: AuthenticateHook;
  /** Called for every PUBLISH (and will) before it is routed. */
  authorizePublish?: AuthorizePublishHook;
  /** Called for every filter of a SUBSCRIBE. */
  authorizeSubscribe?: AuthorizeSubscribeHook;
  /**
   * Called before each message a session is about to receive; see
   * {@linkcode AuthorizeReadHook} (synchronous, on the delivery path).
   */
  authorizeRead?: AuthorizeReadHook;
  /**
   * The generation of the rules `authorizeRead` answers from: its answers
   * are cached per session and topic until this changes. See
   * {@linkcode AuthorizationEpochHook}.
   */
  authorizationEpoch?: AuthorizationEpochHook;
  /**
   * v5 enhanced authentication (AUTH packets) for a CONNECT with an
   * Authentication Method; see {@linkcode EnhancedAuthHook}. Without it
   * such a CONNECT gets CONNACK 0x8C. When it is used, `authenticate` is not
   * called for that client.
   */
  enhancedAuth?: EnhancedAuthHook;
}
