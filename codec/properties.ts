/**
 * The MQTT 5.0 property table: every property with its identifier, wire type,
 * the packets it may appear in and whether it may repeat. The codec checks
 * properties against this one table on decode and on encode, and the value
 * types of {@linkcode Properties} are checked against it at compile time.
 *
 * @module
 */

import type { Properties, UserProperty } from "./packet.ts";

/**
 * Wire types of property values [MQTT-2.2.2.2]: `byte`, `u16` (Two Byte
 * Integer), `u32` (Four Byte Integer), `varint` (Variable Byte Integer),
 * `string` (UTF-8 string), `binary` (Binary Data), `pair` (UTF-8 string pair).
 */
export type PropertyWireType =
  | "byte"
  | "u16"
  | "u32"
  | "varint"
  | "string"
  | "binary"
  | "pair";

/**
 * Where a property may appear: a packet type with properties, or `will` for
 * the will properties of a CONNECT payload.
 */
export type PropertyContext =
  | "connect"
  | "connack"
  | "publish"
  | "will"
  | "puback"
  | "pubrec"
  | "pubrel"
  | "pubcomp"
  | "subscribe"
  | "suback"
  | "unsubscribe"
  | "unsuback"
  | "disconnect"
  | "auth";

/** One row of the property table. */
export interface PropertyDefinition {
  /** The property identifier on the wire. */
  readonly id: number;
  /** The camelCase field name in {@linkcode Properties}. */
  readonly name: keyof Properties;
  /** The wire type of the value. */
  readonly type: PropertyWireType;
  /** The packets (and `will`) that may carry it. */
  readonly contexts: readonly PropertyContext[];
  /** Whether it may appear more than once in one packet. */
  readonly repeat: boolean;
  /** Byte flags whose only legal values are 0 and 1. */
  readonly flag?: boolean;
}

const ACKS = ["puback", "pubrec", "pubrel", "pubcomp"] as const;

/**
 * The MQTT 5.0 properties, by identifier [MQTT-2.2.2.2].
 *
 * @example
 * ```ts
 * import { PROPERTY_TABLE } from "@kite/mqtt/codec";
 * const row = PROPERTY_TABLE.find((p) => p.name === "topicAlias");
 * console.log(row?.id, row?.type); // 35 "u16"
 * ```
 */
export const PROPERTY_TABLE = [
  {
    id: 0x01,
    name: "payloadFormatIndicator",
    type: "byte",
    contexts: ["publish", "will"],
    repeat: false,
    flag: true,
  },
  {
    id: 0x02,
    name: "messageExpiryInterval",
    type: "u32",
    contexts: ["publish", "will"],
    repeat: false,
  },
  {
    id: 0x03,
    name: "contentType",
    type: "string",
    contexts: ["publish", "will"],
    repeat: false,
  },
  {
    id: 0x08,
    name: "responseTopic",
    type: "string",
    contexts: ["publish", "will"],
    repeat: false,
  },
  {
    id: 0x09,
    name: "correlationData",
    type: "binary",
    contexts: ["publish", "will"],
    repeat: false,
  },
  {
    id: 0x0b,
    name: "subscriptionIdentifiers",
    type: "varint",
    // May repeat in PUBLISH; at most once in SUBSCRIBE (checked by the codec).
    contexts: ["publish", "subscribe"],
    repeat: true,
  },
  {
    id: 0x11,
    name: "sessionExpiryInterval",
    type: "u32",
    contexts: ["connect", "connack", "disconnect"],
    repeat: false,
  },
  {
    id: 0x12,
    name: "assignedClientIdentifier",
    type: "string",
    contexts: ["connack"],
    repeat: false,
  },
  {
    id: 0x13,
    name: "serverKeepAlive",
    type: "u16",
    contexts: ["connack"],
    repeat: false,
  },
  {
    id: 0x15,
    name: "authenticationMethod",
    type: "string",
    contexts: ["connect", "connack", "auth"],
    repeat: false,
  },
  {
    id: 0x16,
    name: "authenticationData",
    type: "binary",
    contexts: ["connect", "connack", "auth"],
    repeat: false,
  },
  {
    id: 0x17,
    name: "requestProblemInformation",
    type: "byte",
    contexts: ["connect"],
    repeat: false,
    flag: true,
  },
  {
    id: 0x18,
    name: "willDelayInterval",
    type: "u32",
    contexts: ["will"],
    repeat: false,
  },
  {
    id: 0x19,
    name: "requestResponseInformation",
    type: "byte",
    contexts: ["connect"],
    repeat: false,
    flag: true,
  },
  {
    id: 0x1a,
    name: "responseInformation",
    type: "string",
    contexts: ["connack"],
    repeat: false,
  },
  {
    id: 0x1c,
    name: "serverReference",
    type: "string",
    contexts: ["connack", "disconnect"],
    repeat: false,
  },
  {
    id: 0x1f,
    name: "reasonString",
    type: "string",
    contexts: [
      "connack",
      ...ACKS,
      "suback",
      "unsuback",
      "disconnect",
      "auth",
    ],
    repeat: false,
  },
  {
    id: 0x21,
    name: "receiveMaximum",
    type: "u16",
    contexts: ["connect", "connack"],
    repeat: false,
  },
  {
    id: 0x22,
    name: "topicAliasMaximum",
    type: "u16",
    contexts: ["connect", "connack"],
    repeat: false,
  },
  {
    id: 0x23,
    name: "topicAlias",
    type: "u16",
    contexts: ["publish"],
    repeat: false,
  },
  {
    id: 0x24,
    name: "maximumQoS",
    type: "byte",
    contexts: ["connack"],
    repeat: false,
    flag: true,
  },
  {
    id: 0x25,
    name: "retainAvailable",
    type: "byte",
    contexts: ["connack"],
    repeat: false,
    flag: true,
  },
  {
    id: 0x26,
    name: "userProperties",
    type: "pair",
    contexts: [
      "connect",
      "connack",
      "publish",
      "will",
      ...ACKS,
      "subscribe",
      "suback",
      "unsubscribe",
      "unsuback",
      "disconnect",
      "auth",
    ],
    repeat: true,
  },
  {
    id: 0x27,
    name: "maximumPacketSize",
    type: "u32",
    contexts: ["connect", "connack"],
    repeat: false,
  },
  {
    id: 0x28,
    name: "wildcardSubscriptionAvailable",
    type: "byte",
    contexts: ["connack"],
    repeat: false,
    flag: true,
  },
  {
    id: 0x29,
    name: "subscriptionIdentifierAvailable",
    type: "byte",
    contexts: ["connack"],
    repeat: false,
    flag: true,
  },
  {
    id: 0x2a,
    name: "sharedSubscriptionAvailable",
    type: "byte",
    contexts: ["connack"],
    repeat: false,
    flag: true,
  },
] as const satisfies readonly PropertyDefinition[];

/** One row of {@linkcode PROPERTY_TABLE}, with its literal types. */
export type PropertyRow = (typeof PROPERTY_TABLE)[number];

/** The JavaScript value type of a wire type (repeating ones are arrays). */
export type PropertyValue<T extends PropertyWireType> = T extends "string"
  ? string
  : T extends "binary" ? Uint8Array
  : T extends "pair" ? UserProperty[]
  : T extends "varint" ? number[]
  : number;

/** The properties object type derived from {@linkcode PROPERTY_TABLE}. */
export type TableProperties = {
  [R in PropertyRow as R["name"]]?: PropertyValue<R["type"]>;
};

// Compile-time proof that packet.ts's Properties and the table agree, both ways.
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _tableMatchesProperties: Same<
  Required<TableProperties>,
  Required<Properties>
> = true;
void _tableMatchesProperties;

/** Bit of a context in {@linkcode PropertyInfo.mask}. @internal */
export const CONTEXT_BIT: Readonly<Record<PropertyContext, number>> = {
  connect: 1 << 0,
  connack: 1 << 1,
  publish: 1 << 2,
  will: 1 << 3,
  puback: 1 << 4,
  pubrec: 1 << 5,
  pubrel: 1 << 6,
  pubcomp: 1 << 7,
  subscribe: 1 << 8,
  suback: 1 << 9,
  unsubscribe: 1 << 10,
  unsuback: 1 << 11,
  disconnect: 1 << 12,
  auth: 1 << 13,
};

/** A table row with its contexts as a bit mask (codec internal). @internal */
export interface PropertyInfo extends PropertyDefinition {
  readonly mask: number;
}

function toInfo(row: PropertyDefinition): PropertyInfo {
  let mask = 0;
  for (const c of row.contexts) mask |= CONTEXT_BIT[c];
  return { ...row, mask };
}

/** Property rows indexed by identifier (codec internal). @internal */
export const PROPERTY_BY_ID: readonly (PropertyInfo | undefined)[] = (() => {
  const a: (PropertyInfo | undefined)[] = new Array(0x2b).fill(undefined);
  for (const row of PROPERTY_TABLE) a[row.id] = toInfo(row);
  return a;
})();

/** Property rows indexed by field name (codec internal). @internal */
export const PROPERTY_BY_NAME: ReadonlyMap<string, PropertyInfo> = new Map(
  PROPERTY_TABLE.map((row) => [row.name, toInfo(row)]),
);
