/**
 * CONNECT and AUTH: a client's way in. Refusals are CONNACKs with the
 * version's code (`Connection.refuse`); enhanced authentication (v5,
 * `enhancedAuth` hook through `EnhancedAuthFlow`) runs between CONNECT and
 * CONNACK under the same connect timeout, replaces `authenticate` and the
 * anonymous check, and the identity it proves becomes the client's user
 * name for the authorization hooks, also after a re-authentication (AUTH
 * 0x19).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { encode } from "../../../codec/encode.ts";
import { MqttError } from "../../../codec/errors.ts";
import type {
  AuthPacket,
  ConnackPacket,
  ConnectPacket,
  Properties,
} from "../../../codec/packet.ts";
import {
  ReasonCode,
  toConnackReturnCodeV4,
} from "../../../codec/reason_code.ts";
import { OutgoingAliases } from "../../../codec/_publish_template.ts";
import { type AuthAction, EnhancedAuthFlow } from "../../auth.ts";
import { ownPayload } from "../../delivery.ts";
import type { ClientInfo } from "../../hooks.ts";
import type { StoredMessage } from "../../store/store.ts";
import { bridgeStateTopic, isSysTopic, tooDeep } from "../../_topic_rules.ts";
import {
  CLOSING,
  CONNECTED,
  CONNECTING,
  type ConnectionContext,
} from "../context.ts";
import { logConnected, logRefused } from "../_lifecycle_log.ts";

const log = getLogger(["kite", "broker", "connection"]);

let assignedIds = 0;

/** A client identifier for a client that sent none [MQTT-3.1.3-6]. */
function assignClientId(): string {
  assignedIds = (assignedIds + 1) % 0x100000;
  return `kite-${crypto.randomUUID().slice(0, 18)}-${assignedIds.toString(36)}`;
}

/**
 * CONNECT: protocol version and options, client identifier (assigned when
 * empty [MQTT-3.1.3-6]), limits, then authentication (the `authenticate`
 * hook, or the enhanced authentication exchange) and CONNACK.
 */
export function onConnect(
  c: ConnectionContext,
  p: ConnectPacket,
): Promise<void> | undefined {
  const core = c.core;
  const s = core.settings;
  c.version = p.protocolVersion;
  const v5 = c.version === 5;
  c.keepAlive = p.keepAlive;
  if (v5 && p.properties !== undefined) {
    if (p.properties.requestProblemInformation === 0) {
      c.problemInfo = false;
    }
    // Already for a refusing CONNACK [MQTT-3.1.2-24].
    const mps = p.properties.maximumPacketSize;
    if (mps !== undefined) c.maxPacketSize = mps;
  }
  let clientId = p.clientId;
  let assigned = false;
  if (clientId.length === 0) {
    if (!p.cleanStart || c.version === 3) {
      // MQTT 3.1 has no assigned identifiers.
      // [MQTT-3.1.3-8]
      return refuse(
        c,
        ReasonCode.ClientIdentifierNotValid,
        "empty client id without clean session",
      );
    }
    clientId = assignClientId();
    assigned = true;
  }
  c.clientId = clientId;
  const cap = s.maxKeepAlive;
  if (
    !v5 && cap < 65535 && (p.keepAlive === 0 || p.keepAlive > cap)
  ) {
    // 3.1.1 cannot be told another keep alive: refused, as Mosquitto's
    // max_keepalive does (v5 gets Server Keep Alive in `accept`).
    return refuse(
      c,
      ReasonCode.ClientIdentifierNotValid,
      `keep alive ${p.keepAlive} s above the maximum ${cap} s (maxKeepAlive)`,
    );
  }
  if (core.connectedCount >= s.maxConnections) {
    return refuse(
      c,
      ReasonCode.QuotaExceeded,
      `maxConnections ${s.maxConnections} reached`,
    );
  }
  if (p.will !== undefined) {
    if (tooDeep(p.will.topic, s.maxTopicLevels)) {
      // v5: CONNACK 0x90, the will topic is not accepted. 3.1.1 has no
      // return code for it: closed without CONNACK [MQTT-3.2.2-6].
      throw new MqttError(
        ReasonCode.TopicNameInvalid,
        `will topic with more than ${s.maxTopicLevels} levels (maxTopicLevels)`,
      );
    }
    const t = p.will.topic; // a bridge may leave its state (notifications)
    if (isSysTopic(t) && !bridgeStateTopic(t, clientId)) {
      return refuse(c, ReasonCode.NotAuthorized, "will topic in $SYS");
    }
  }
  if (v5 && p.will !== undefined) {
    if (p.will.qos > s.maxQos) {
      // [MQTT-3.2.2-12]
      return refuse(
        c,
        ReasonCode.QoSNotSupported,
        `will QoS ${p.will.qos} above the maximum ${s.maxQos}`,
      );
    }
    if (p.will.retain && !s.retainAvailable) {
      // [MQTT-3.2.2-13]
      return refuse(
        c,
        ReasonCode.RetainNotSupported,
        "will retain without retain available",
      );
    }
  }
  // A client certificate the listener verified names the user (mutual TLS
  // with useIdentityAsUsername, as Mosquitto's use_identity_as_username):
  // the CONNECT's user name and password do not count.
  const identity = c.peerIdentity;
  c.username = identity ?? p.username;
  if (v5 && p.properties?.authenticationMethod !== undefined) {
    // Enhanced authentication: the exchange decides (no `authenticate`,
    // no anonymous check: the method proves who the client is).
    const flow = new EnhancedAuthFlow(core.hooks.enhancedAuth, c.info!, {
      requestProblemInformation: c.problemInfo,
    });
    c.authFlow = flow;
    c.connectPacket = p;
    c.assigned = assigned;
    return flow.connect(p.properties).then((a) => onAuthAction(c, a));
  }
  if (identity !== undefined) {
    // The certificate proved who it is: no `authenticate` to ask.
    accept(c, p, assigned);
    return undefined;
  }
  if (!s.allowAnonymous && p.username === undefined) {
    core.metrics.authFailures++;
    return refuse(c, ReasonCode.NotAuthorized, "anonymous client");
  }
  const auth = core.hooks.authenticate;
  if (auth !== undefined) {
    const ctx = { ...c.info! } as ClientInfo & {
      password?: Uint8Array;
      properties?: Properties;
    };
    if (p.password !== undefined) ctx.password = p.password;
    if (p.properties !== undefined) ctx.properties = p.properties;
    const r = auth(ctx);
    if (typeof r === "number") {
      if (r !== ReasonCode.Success) {
        core.metrics.authFailures++;
        return refuse(c, r, "authentication failed");
      }
    } else {
      return r.then((code) => {
        if (c.state !== CONNECTING) return;
        if (code !== ReasonCode.Success) {
          core.metrics.authFailures++;
          refuse(c, code, "authentication failed");
          return;
        }
        return admit(c, p, assigned);
      });
    }
  }
  return admit(c, p, assigned);
}

/** AUTH: the next step of the enhanced authentication exchange. */
export function onAuth(c: ConnectionContext, p: AuthPacket): Promise<void> {
  return c.authFlow!.auth(p).then((a) => onAuthAction(c, a));
}

/** Does what the enhanced authentication exchange decided. */
function onAuthAction(
  c: ConnectionContext,
  a: AuthAction,
): Promise<void> | undefined {
  if (c.state >= CLOSING) return;
  if (a.type === "auth") {
    if (a.username !== undefined) c.username = a.username;
    c.send(a.packet);
    return;
  }
  if (a.type === "disconnect") {
    c.end(a.reasonCode, true, false, a.properties);
    return;
  }
  if (a.reasonCode !== ReasonCode.Success) {
    c.core.metrics.authFailures++;
    refuse(
      c,
      a.reasonCode,
      a.properties.reasonString ?? "enhanced authentication failed",
      a.properties,
    );
    return;
  }
  if (a.username !== undefined) c.username = a.username;
  c.authFlow!.connected();
  const p = c.connectPacket!;
  c.connectPacket = undefined;
  return admit(c, p, c.assigned, a.properties);
}

/**
 * The client is authenticated: its will, if any, must be one it may
 * publish (`authorizePublish`, as Mosquitto 2 checks it), else the CONNECT
 * is refused with 0x87 (3.1.1: 0x05). Then `accept`.
 */
function admit(
  c: ConnectionContext,
  p: ConnectPacket,
  assigned: boolean,
  authProps?: Properties,
): Promise<void> | undefined {
  const w = p.will;
  const authz = c.core.hooks.authorizePublish;
  if (w === undefined || authz === undefined) {
    return accept(c, p, assigned, authProps);
  }
  const decided = (code: number): Promise<void> | undefined => {
    if (c.state !== CONNECTING) return;
    if (code >= 0x80) {
      refuse(c, ReasonCode.NotAuthorized, `will to ${w.topic} not authorized`);
      return;
    }
    return accept(c, p, assigned, authProps);
  };
  const r = authz(c.info!, w.topic, w.qos, w.retain);
  if (typeof r === "number") return decided(r);
  return r.then(decided);
}

/**
 * Accepts the client: session opened or resumed, CONNACK sent. On a
 * cluster node the client id is claimed first (`CorePlugin.claim`: the
 * session may live on another node, which closes its connection).
 */
function accept(
  c: ConnectionContext,
  p: ConnectPacket,
  assigned: boolean,
  authProps?: Properties,
): Promise<void> | undefined {
  const plugin = c.core.plugin;
  if (plugin === undefined) {
    acceptNow(c, p, assigned, authProps);
    return undefined;
  }
  if (refuseForeign(c)) return undefined;
  return plugin.claim(c, p.cleanStart, sessionExpiry(c, p)).then((code) => {
    if (c.state !== CONNECTING) return;
    if (code !== ReasonCode.Success) {
      refuse(c, code, "the cluster refused the client identifier");
      return;
    }
    acceptNow(c, p, assigned, authProps);
  });
}

/** The session expiry of a CONNECT, capped by the broker's maximum. */
function sessionExpiry(c: ConnectionContext, p: ConnectPacket): number {
  // v5 from the CONNECT, 3.1.1 by the clean session flag.
  const asked = c.version === 5
    ? (p.properties?.sessionExpiryInterval ?? 0)
    : (p.cleanStart ? 0 : 0xffffffff);
  return Math.min(asked, c.core.settings.sessionExpiryInterval);
}

/**
 * Refuses the CONNECT (true) when the client id's session belongs to
 * another identity.
 */
function refuseForeign(c: ConnectionContext): boolean {
  const owner = c.core.foreignOwner(c.clientId, c.username);
  if (owner === undefined) return false;
  // A session belongs to the identity that created it: another one may
  // neither resume it, nor take it over, nor discard it (clean start).
  log.info(
    "{clientId}: user {username} refused: the session belongs to user {owner}",
    {
      clientId: c.clientId,
      username: c.username ?? "(anonymous)",
      owner: owner.username ?? "(anonymous)",
    },
  );
  refuse(c, ReasonCode.NotAuthorized, "client identifier in use");
  return true;
}

/** Accepts the client now (see `accept`). */
function acceptNow(
  c: ConnectionContext,
  p: ConnectPacket,
  assigned: boolean,
  authProps?: Properties,
): void {
  const core = c.core;
  if (refuseForeign(c)) return;
  const s = core.settings;
  const v5 = c.version === 5;
  // Session expiry: v5 from the CONNECT, 3.1.1 by the clean session flag;
  // both capped by the broker's sessionExpiryInterval.
  const asked = v5
    ? (p.properties?.sessionExpiryInterval ?? 0)
    : (p.cleanStart ? 0 : 0xffffffff);
  const expiry = Math.min(asked, s.sessionExpiryInterval);
  c.sessionExpiryFromConnect = asked;
  if (v5) {
    const rm = p.properties?.receiveMaximum;
    if (rm !== undefined && rm < c.sendWindow) c.sendWindow = rm;
    const mps = p.properties?.maximumPacketSize;
    if (mps !== undefined) c.maxPacketSize = mps;
    const tam = p.properties?.topicAliasMaximum;
    if (tam !== undefined && tam > 0) {
      // The broker may alias topics it sends, up to the client's maximum.
      c.aliasOut = new OutgoingAliases(tam);
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
      c.willDelay = willDelayInterval ?? 0;
      if (Object.keys(props).length > 0) will.properties = props;
    }
    ownPayload(will); // its Correlation Data, if any
    c.will = will;
  }
  const keepAlive = v5 ? keepAliveFor(p.keepAlive, s) : p.keepAlive;
  c.keepAlive = keepAlive;
  const connack: ConnackPacket = {
    type: "connack",
    sessionPresent: false,
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
    if (assigned) props.assignedClientIdentifier = c.clientId;
    if (asked !== expiry) props.sessionExpiryInterval = expiry;
    if (keepAlive !== p.keepAlive) props.serverKeepAlive = keepAlive;
    if (authProps !== undefined) Object.assign(props, authProps);
    connack.properties = props;
    if (
      c.maxPacketSize !== Infinity &&
      encode(connack, { version: 5 }).length > c.maxPacketSize
    ) {
      // No packet above the client's Maximum Packet Size, the CONNACK
      // included [MQTT-3.1.2-24]: no session, the connection is closed.
      log.info("{clientId} refused: CONNACK above its Maximum Packet Size", {
        clientId: c.clientId,
        maximumPacketSize: c.maxPacketSize,
        remote: c.remoteAddress,
      });
      c.end(undefined, false);
      return;
    }
  }
  const { session, present } = core.openSession(
    c,
    p.cleanStart,
    expiry,
    p.bridge === true, // Mosquitto's flag (try_private)
  );
  c.session = session;
  // MQTT 3.1 has no Session Present flag: that CONNACK byte is reserved.
  connack.sessionPresent = present && c.version !== 3;
  c.state = CONNECTED;
  c.connectedAt = Date.now();
  c.send(connack);
  core.onConnected();
  logConnected(c, c.version, p.cleanStart, present, keepAlive, c.username);
  session.attach(c);
}

/**
 * The keep alive a v5 client is held to (sent as Server Keep Alive when it
 * differs from the one asked): `serverKeepAlive` when set, then capped by
 * `maxKeepAlive` (below 65535), which also replaces 0 (no keep alive).
 */
function keepAliveFor(
  asked: number,
  s: { serverKeepAlive: number; maxKeepAlive: number },
): number {
  const k = s.serverKeepAlive > 0 ? s.serverKeepAlive : asked;
  const cap = s.maxKeepAlive;
  return cap < 65535 && (k === 0 || k > cap) ? cap : k;
}

/**
 * Refuses the CONNECT: CONNACK with `code` (the 3.1.1 return code for
 * 3.1.1 clients; a reason string and `props` for v5), then closes.
 */
function refuse(
  c: ConnectionContext,
  code: number,
  why: string,
  props?: Properties,
): undefined {
  c.core.metrics.connectsRefused++;
  logRefused(c, code, why);
  const v5 = c.version === 5;
  const connack: ConnackPacket = {
    type: "connack",
    sessionPresent: false,
    reasonCode: v5 ? code : toConnackReturnCodeV4(code),
  };
  // A reason string is allowed on CONNACK whatever Request Problem
  // Information says [MQTT-3.1.2-29].
  if (v5) connack.properties = { reasonString: why, ...props };
  c.send(connack);
  c.end(undefined, false);
  return undefined;
}
