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
  /** Will topic (a topic name, no wildcards). */
  topic: string;
  /** Will payload. */
  payload: Uint8Array;
  /** QoS of the will message. */
  qos: QoS;
  /** Whether the will message is retained. */
  retain: boolean;
  /** v5 will properties (willDelayInterval, messageExpiryInterval, ...). */
  properties?: Properties;
}

/** CONNECT (type 1). */
export interface ConnectPacket {
  /** Discriminant. */
  type: "connect";
  /** 3 (`MQIsdp`), 4 (`MQTT` 3.1.1) or 5 (`MQTT` 5.0). */
  protocolVersion: ProtocolVersion;
  /** Client identifier; may be empty (the server may assign one). */
  clientId: string;
  /** Clean Session (3.1.1) / Clean Start (5.0). */
  cleanStart: boolean;
  /** Seconds; 0 disables keep alive. */
  keepAlive: number;
  /** User name, if any. */
  username?: string;
  /** Password (binary data), if any. */
  password?: Uint8Array;
  /** Will message, if any. */
  will?: Will;
  /** v5 CONNECT properties. */
  properties?: Properties;
  /**
   * Mosquitto's bridge flag: the top bit (0x80) of the protocol level set,
   * as a 3.1 or 3.1.1 bridge with `try_private` sends it (level 0x83 or
   * 0x84). A broker that knows the flag treats the client as a bridge
   * (Kite, as Mosquitto: its subscriptions keep retain flags as published
   * and do not get its own messages back).
   */
  bridge?: boolean;
}

/** CONNACK (type 2). */
export interface ConnackPacket {
  /** Discriminant. */
  type: "connack";
  /** Whether the server resumed a session. */
  sessionPresent: boolean;
  /**
   * The wire value for the connection's version: a 3.1.1 return code (0-5)
   * or a v5 reason code (see `ConnackReturnCode` and `ReasonCode`).
   */
  reasonCode: number;
  /** v5 CONNACK properties. */
  properties?: Properties;
}

/** PUBLISH (type 3). */
export interface PublishPacket {
  /** Discriminant. */
  type: "publish";
  /** May be empty in v5 when a topic alias is set. */
  topic: string;
  /** Application message (decoded: a view of the received bytes). */
  payload: Uint8Array;
  /** Quality of service. */
  qos: QoS;
  /** RETAIN flag. */
  retain: boolean;
  /** DUP flag: a redelivery (QoS > 0 only). */
  dup: boolean;
  /** Present exactly when qos > 0. */
  packetId?: number;
  /** v5 PUBLISH properties. */
  properties?: Properties;
}

/** PUBACK, PUBREC, PUBREL, PUBCOMP (types 4-7). */
export interface AckPacket {
  /** Discriminant. */
  type: "puback" | "pubrec" | "pubrel" | "pubcomp";
  /** Packet identifier of the acknowledged flow. */
  packetId: number;
  /** v5 only; absent means 0x00 Success. */
  reasonCode?: number;
  /** v5 properties (reasonString, userProperties). */
  properties?: Properties;
}

/** One entry of a SUBSCRIBE payload. */
export interface Subscription {
  /** Topic filter, possibly `$share/{group}/{filter}`. */
  filter: string;
  /** Maximum QoS requested. */
  qos: QoS;
  /** v5 subscription options; absent means false / 0. */
  noLocal?: boolean;
  /** v5 Retain As Published option; absent means false. */
  retainAsPublished?: boolean;
  /** v5 Retain Handling option; absent means 0. */
  retainHandling?: 0 | 1 | 2;
}

/** SUBSCRIBE (type 8). */
export interface SubscribePacket {
  /** Discriminant. */
  type: "subscribe";
  /** Packet identifier (1-65535). */
  packetId: number;
  /** Never empty [MQTT-3.8.3-3]. */
  subscriptions: Subscription[];
  /** v5 SUBSCRIBE properties. */
  properties?: Properties;
}

/** SUBACK (type 9). */
export interface SubackPacket {
  /** Discriminant. */
  type: "suback";
  /** Packet identifier of the SUBSCRIBE. */
  packetId: number;
  /** Granted QoS (0-2) or a failure code (0x80 in 3.1.1, >= 0x80 in v5). */
  reasonCodes: number[];
  /** v5 SUBACK properties. */
  properties?: Properties;
}

/** UNSUBSCRIBE (type 10). */
export interface UnsubscribePacket {
  /** Discriminant. */
  type: "unsubscribe";
  /** Packet identifier (1-65535). */
  packetId: number;
  /** Never empty [MQTT-3.10.3-2]. */
  filters: string[];
  /** v5 UNSUBSCRIBE properties (userProperties only). */
  properties?: Properties;
}

/** UNSUBACK (type 11). */
export interface UnsubackPacket {
  /** Discriminant. */
  type: "unsuback";
  /** Packet identifier of the UNSUBSCRIBE. */
  packetId: number;
  /** v5 only: one reason code per filter. */
  reasonCodes?: number[];
  /** v5 UNSUBACK properties. */
  properties?: Properties;
}

/** PINGREQ (type 12). */
export interface PingreqPacket {
  /** Discriminant. */
  type: "pingreq";
}

/** PINGRESP (type 13). */
export interface PingrespPacket {
  /** Discriminant. */
  type: "pingresp";
}

/** DISCONNECT (type 14). */
export interface DisconnectPacket {
  /** Discriminant. */
  type: "disconnect";
  /** v5 only; absent means 0x00 Normal disconnection. */
  reasonCode?: number;
  /** v5 DISCONNECT properties. */
  properties?: Properties;
}

/** AUTH (type 15, v5 only). */
export interface AuthPacket {
  /** Discriminant. */
  type: "auth";
  /** Absent means 0x00 Success. */
  reasonCode?: number;
  /** v5 AUTH properties (authenticationMethod, authenticationData, ...). */
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
