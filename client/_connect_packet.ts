/**
 * `connectPacket()`: the CONNECT a client sends, from its options (private).
 *
 * @module
 */

import type {
  ConnectPacket,
  Properties,
  ProtocolVersion,
} from "../codec/packet.ts";
import type { ClientOptions } from "./options.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { brokerTarget } from "./_broker_url.ts";

const textEncoder = new TextEncoder();

/**
 * The CONNECT of a client with options `o`. `resume` (an automatic
 * reconnect of a v5 client) sends Clean Start 0, so that the session goes
 * on when the Session Expiry Interval kept it; a 3.1.1 client keeps the
 * Clean Session it asked for, except with an empty client identifier,
 * which 3.1.1 allows only with Clean Session 1 [MQTT-3.1.3-7].
 *
 * @example
 * ```ts ignore
 * const p = connectPacket({ keepAlive: 30 }, 5, "kite-1", false);
 * p.cleanStart; // true
 * ```
 */
export function connectPacket(
  o: ClientOptions,
  version: ProtocolVersion,
  clientId: string,
  resume: boolean,
): ConnectPacket {
  const v5 = version === 5;
  let cleanStart = o.cleanStart ?? o.cleanSession ?? true;
  if (resume) cleanStart = false;
  if (clientId === "" && !v5) cleanStart = true;
  const p: ConnectPacket = {
    type: "connect",
    protocolVersion: version,
    clientId,
    cleanStart,
    keepAlive: o.keepAlive ?? 60,
  };
  if (o.bridge === true && !v5) p.bridge = true;
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

function bytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? textEncoder.encode(v) : v;
}

/** 3.1.1 CONNACK return codes -> v5 reason codes. */
export const V4_CONNACK_TO_V5: readonly number[] = [
  ReasonCode.Success,
  ReasonCode.UnsupportedProtocolVersion,
  ReasonCode.ClientIdentifierNotValid,
  ReasonCode.ServerUnavailable,
  ReasonCode.BadUserNameOrPassword,
  ReasonCode.NotAuthorized,
];

/** `o` with the user and password of its `url` where it gives none. */
export function withUrlCredentials(o: ClientOptions): ClientOptions {
  if (o.url === undefined) return o;
  const t = brokerTarget(o);
  if (t.username === undefined && t.password === undefined) return o;
  const merged = { ...o };
  if (o.username === undefined && t.username !== undefined) {
    merged.username = t.username;
  }
  if (o.password === undefined && t.password !== undefined) {
    merged.password = t.password;
  }
  return merged;
}
