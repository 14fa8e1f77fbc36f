/**
 * Named MQTT reason codes. No other file uses a bare number for a reason code.
 *
 * @module
 */

/** MQTT 5.0 reason codes (also used internally for 3.1.1). */
export const ReasonCode = {
  Success: 0x00,
  NormalDisconnection: 0x00,
  GrantedQoS0: 0x00,
  GrantedQoS1: 0x01,
  GrantedQoS2: 0x02,
  DisconnectWithWillMessage: 0x04,
  NoMatchingSubscribers: 0x10,
  NoSubscriptionExisted: 0x11,
  ContinueAuthentication: 0x18,
  ReAuthenticate: 0x19,
  UnspecifiedError: 0x80,
  MalformedPacket: 0x81,
  ProtocolError: 0x82,
  ImplementationSpecificError: 0x83,
  UnsupportedProtocolVersion: 0x84,
  ClientIdentifierNotValid: 0x85,
  BadUserNameOrPassword: 0x86,
  NotAuthorized: 0x87,
  ServerUnavailable: 0x88,
  ServerBusy: 0x89,
  Banned: 0x8a,
  ServerShuttingDown: 0x8b,
  BadAuthenticationMethod: 0x8c,
  KeepAliveTimeout: 0x8d,
  SessionTakenOver: 0x8e,
  TopicFilterInvalid: 0x8f,
  TopicNameInvalid: 0x90,
  PacketIdentifierInUse: 0x91,
  PacketIdentifierNotFound: 0x92,
  ReceiveMaximumExceeded: 0x93,
  TopicAliasInvalid: 0x94,
  PacketTooLarge: 0x95,
  MessageRateTooHigh: 0x96,
  QuotaExceeded: 0x97,
  AdministrativeAction: 0x98,
  PayloadFormatInvalid: 0x99,
  RetainNotSupported: 0x9a,
  QoSNotSupported: 0x9b,
  UseAnotherServer: 0x9c,
  ServerMoved: 0x9d,
  SharedSubscriptionsNotSupported: 0x9e,
  ConnectionRateExceeded: 0x9f,
  MaximumConnectTime: 0xa0,
  SubscriptionIdentifiersNotSupported: 0xa1,
  WildcardSubscriptionsNotSupported: 0xa2,
} as const;

/** A v5 reason code value. */
export type ReasonCodeValue = (typeof ReasonCode)[keyof typeof ReasonCode];

/** MQTT 3.1.1 CONNACK return codes [MQTT-3.2.2.3]. */
export const ConnackReturnCode = {
  Accepted: 0x00,
  UnacceptableProtocolVersion: 0x01,
  IdentifierRejected: 0x02,
  ServerUnavailable: 0x03,
  BadUserNameOrPassword: 0x04,
  NotAuthorized: 0x05,
} as const;

/** The 3.1.1 SUBACK failure return code. */
export const SUBACK_FAILURE_V4 = 0x80;

const NAMES: Map<number, string> = (() => {
  const m = new Map<number, string>();
  for (const [name, code] of Object.entries(ReasonCode)) {
    if (!m.has(code)) m.set(code, name);
  }
  // Prefer the generic names for shared values.
  m.set(0x00, "Success");
  m.set(0x01, "GrantedQoS1");
  m.set(0x02, "GrantedQoS2");
  return m;
})();

/**
 * The name of a v5 reason code, for messages a person reads.
 *
 * @example
 * ```ts
 * import { reasonCodeName } from "./reason_code.ts";
 * reasonCodeName(0x87); // "NotAuthorized"
 * ```
 */
export function reasonCodeName(code: number): string {
  return NAMES.get(code) ??
    `0x${code.toString(16).padStart(2, "0")}`;
}

/**
 * Maps a v5 CONNACK reason code to the closest 3.1.1 return code.
 *
 * @example
 * ```ts
 * import { ReasonCode, toConnackReturnCodeV4 } from "./reason_code.ts";
 * toConnackReturnCodeV4(ReasonCode.NotAuthorized); // 5
 * ```
 */
export function toConnackReturnCodeV4(code: number): number {
  switch (code) {
    case ReasonCode.Success:
      return ConnackReturnCode.Accepted;
    case ReasonCode.UnsupportedProtocolVersion:
      return ConnackReturnCode.UnacceptableProtocolVersion;
    case ReasonCode.ClientIdentifierNotValid:
      return ConnackReturnCode.IdentifierRejected;
    case ReasonCode.BadUserNameOrPassword:
    case ReasonCode.BadAuthenticationMethod:
      return ConnackReturnCode.BadUserNameOrPassword;
    case ReasonCode.NotAuthorized:
    case ReasonCode.Banned:
      return ConnackReturnCode.NotAuthorized;
    default:
      return ConnackReturnCode.ServerUnavailable;
  }
}
