/**
 * The MQTT packet model: one discriminated union for MQTT 3.1, 3.1.1 and 5.0.
 *
 * Fields that only exist in MQTT 5.0 (properties, most reason codes) are
 * optional; the encoder ignores them for 3.1.1 and the decoder never sets
 * them for 3.1.1. The protocol version is a codec option, not a packet field,
 * except in CONNECT where it is on the wire.
 *
 * @module
 */

/** Quality of service level. */
export type QoS = 0 | 1 | 2;

/**
 * Protocol level as carried in CONNECT: 3 = MQTT 3.1 (`MQIsdp`),
 * 4 = MQTT 3.1.1, 5 = MQTT 5.0.
 */
export type ProtocolVersion = 3 | 4 | 5;

/** A user property: a key/value pair. Order and repeated keys are kept. */
export type UserProperty = [key: string, value: string];

/**
 * All MQTT 5.0 properties, by camelCase name. Byte-valued flags keep their
 * wire value (0 or 1) so that a decoded packet re-encodes to the same bytes.
 * Which packet may carry which property is checked by the codec against the
 * table in `properties.ts`.
 */
export interface Properties {
  /** 0x01 PUBLISH, Will: 0 = unspecified bytes, 1 = UTF-8. */
  payloadFormatIndicator?: number;
  /** 0x02 PUBLISH, Will: seconds. */
  messageExpiryInterval?: number;
  /** 0x03 PUBLISH, Will. */
  contentType?: string;
  /** 0x08 PUBLISH, Will. */
  responseTopic?: string;
  /** 0x09 PUBLISH, Will. */
  correlationData?: Uint8Array;
  /**
   * 0x0B PUBLISH (may repeat), SUBSCRIBE (at most one). Always an array in
   * this model; a SUBSCRIBE carries at most one element.
   */
  subscriptionIdentifiers?: number[];
  /** 0x11 CONNECT, CONNACK, DISCONNECT: seconds. */
  sessionExpiryInterval?: number;
  /** 0x12 CONNACK. */
  assignedClientIdentifier?: string;
  /** 0x13 CONNACK: seconds. */
  serverKeepAlive?: number;
  /** 0x15 CONNECT, CONNACK, AUTH. */
  authenticationMethod?: string;
  /** 0x16 CONNECT, CONNACK, AUTH. */
  authenticationData?: Uint8Array;
  /** 0x17 CONNECT: 0 or 1. */
  requestProblemInformation?: number;
  /** 0x18 Will: seconds. */
  willDelayInterval?: number;
  /** 0x19 CONNECT: 0 or 1. */
  requestResponseInformation?: number;
  /** 0x1A CONNACK. */
  responseInformation?: string;
  /** 0x1C CONNACK, DISCONNECT. */
  serverReference?: string;
  /** 0x1F CONNACK, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK, DISCONNECT, AUTH. */
  reasonString?: string;
  /** 0x21 CONNECT, CONNACK. */
  receiveMaximum?: number;
  /** 0x22 CONNECT, CONNACK. */
  topicAliasMaximum?: number;
  /** 0x23 PUBLISH. */
  topicAlias?: number;
  /** 0x24 CONNACK: 0 or 1. */
  maximumQoS?: number;
  /** 0x25 CONNACK: 0 or 1. */
  retainAvailable?: number;
  /** 0x26 every packet with properties; may repeat, order kept. */
  userProperties?: UserProperty[];
  /** 0x27 CONNECT, CONNACK: bytes. */
  maximumPacketSize?: number;
  /** 0x28 CONNACK: 0 or 1. */
  wildcardSubscriptionAvailable?: number;
  /** 0x29 CONNACK: 0 or 1. */
  subscriptionIdentifierAvailable?: number;
  /** 0x2A CONNACK: 0 or 1. */
  sharedSubscriptionAvailable?: number;
}

/** The will message in a CONNECT. */
export interface Will {
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  /** v5 will properties (willDelayInterval, messageExpiryInterval, ...). */
  properties?: Properties;
}

/** CONNECT (type 1). */
export interface ConnectPacket {
  type: "connect";
  /** 3 (`MQIsdp`), 4 (`MQTT` 3.1.1) or 5 (`MQTT` 5.0). */
  protocolVersion: ProtocolVersion;
  clientId: string;
  /** Clean Session (3.1.1) / Clean Start (5.0). */
  cleanStart: boolean;
  /** Seconds; 0 disables keep alive. */
  keepAlive: number;
  username?: string;
  password?: Uint8Array;
  will?: Will;
  properties?: Properties;
}

/** CONNACK (type 2). */
export interface ConnackPacket {
  type: "connack";
  sessionPresent: boolean;
  /**
   * The wire value for the connection's version: a 3.1.1 return code (0-5)
   * or a v5 reason code (see `ConnackReturnCode` and `ReasonCode`).
   */
  reasonCode: number;
  properties?: Properties;
}

/** PUBLISH (type 3). */
export interface PublishPacket {
  type: "publish";
  /** May be empty in v5 when a topic alias is set. */
  topic: string;
  payload: Uint8Array;
  qos: QoS;
  retain: boolean;
  dup: boolean;
  /** Present exactly when qos > 0. */
  packetId?: number;
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP (types 4-7). */
export interface AckPacket {
  type: "puback" | "pubrec" | "pubrel" | "pubcomp";
  packetId: number;
  /** v5 only; absent means 0x00 Success. */
  reasonCode?: number;
  properties?: Properties;
}

/** One entry of a SUBSCRIBE payload. */
export interface Subscription {
  filter: string;
  /** Maximum QoS requested. */
  qos: QoS;
  /** v5 subscription options; absent means false / 0. */
  noLocal?: boolean;
  retainAsPublished?: boolean;
  retainHandling?: 0 | 1 | 2;
}

/** SUBSCRIBE (type 8). */
export interface SubscribePacket {
  type: "subscribe";
  packetId: number;
  /** Never empty [MQTT-3.8.3-3]. */
  subscriptions: Subscription[];
  properties?: Properties;
}

/** SUBACK (type 9). */
export interface SubackPacket {
  type: "suback";
  packetId: number;
  /** Granted QoS (0-2) or a failure code (0x80 in 3.1.1, >= 0x80 in v5). */
  reasonCodes: number[];
  properties?: Properties;
}

/** UNSUBSCRIBE (type 10). */
export interface UnsubscribePacket {
  type: "unsubscribe";
  packetId: number;
  /** Never empty [MQTT-3.10.3-2]. */
  filters: string[];
  properties?: Properties;
}

/** UNSUBACK (type 11). */
export interface UnsubackPacket {
  type: "unsuback";
  packetId: number;
  /** v5 only: one reason code per filter. */
  reasonCodes?: number[];
  properties?: Properties;
}

/** PINGREQ (type 12). */
export interface PingreqPacket {
  type: "pingreq";
}

/** PINGRESP (type 13). */
export interface PingrespPacket {
  type: "pingresp";
}

/** DISCONNECT (type 14). */
export interface DisconnectPacket {
  type: "disconnect";
  /** v5 only; absent means 0x00 Normal disconnection. */
  reasonCode?: number;
  properties?: Properties;
}

/** AUTH (type 15, v5 only). */
export interface AuthPacket {
  type: "auth";
  /** Absent means 0x00 Success. */
  reasonCode?: number;
  properties?: Properties;
}

/** Any MQTT control packet. */
export type Packet =
  | ConnectPacket
  | ConnackPacket
  | PublishPacket
  | AckPacket
  | SubscribePacket
  | SubackPacket
  | UnsubscribePacket
  | UnsubackPacket
  | PingreqPacket
  | PingrespPacket
  | DisconnectPacket
  | AuthPacket;

/** The `type` of a packet. */
export type PacketType = Packet["type"];

/** Control packet type numbers, as in the fixed header's high nibble. */
export const PACKET_TYPE_NUMBER: Readonly<Record<PacketType, number>> = {
  connect: 1,
  connack: 2,
  publish: 3,
  puback: 4,
  pubrec: 5,
  pubrel: 6,
  pubcomp: 7,
  subscribe: 8,
  suback: 9,
  unsubscribe: 10,
  unsuback: 11,
  pingreq: 12,
  pingresp: 13,
  disconnect: 14,
  auth: 15,
};
