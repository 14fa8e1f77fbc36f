/**
 * `-D CMD NAME VALUE`: the v5 properties `kite pub|sub` set per packet, how
 * each value is read, and how CONNECT properties become client options.
 *
 * @module
 */

import type { ClientOptions } from "./client.ts";
import type { Properties } from "../codec/packet.ts";
import { UsageError } from "./_cli_options.ts";
import { intArg } from "./_cli_values.ts";

/** The packets `-D` sets properties of. */
export type PropertyPacket =
  | "connect"
  | "publish"
  | "subscribe"
  | "will"
  | "disconnect";

/** The v5 properties `-D` accepts, per packet: flag name to property. */
export const D_PROPERTIES: Record<
  PropertyPacket,
  Record<string, keyof Properties>
> = {
  connect: {
    "session-expiry-interval": "sessionExpiryInterval",
    "receive-maximum": "receiveMaximum",
    "maximum-packet-size": "maximumPacketSize",
    "topic-alias-maximum": "topicAliasMaximum",
    "request-problem-information": "requestProblemInformation",
    "request-response-information": "requestResponseInformation",
    "authentication-method": "authenticationMethod",
    "user-property": "userProperties",
  },
  publish: {
    "content-type": "contentType",
    "correlation-data": "correlationData",
    "message-expiry-interval": "messageExpiryInterval",
    "payload-format-indicator": "payloadFormatIndicator",
    "response-topic": "responseTopic",
    "topic-alias": "topicAlias",
    "user-property": "userProperties",
  },
  subscribe: {
    "subscription-identifier": "subscriptionIdentifiers",
    "user-property": "userProperties",
  },
  will: {
    "content-type": "contentType",
    "correlation-data": "correlationData",
    "message-expiry-interval": "messageExpiryInterval",
    "payload-format-indicator": "payloadFormatIndicator",
    "response-topic": "responseTopic",
    "will-delay-interval": "willDelayInterval",
    "user-property": "userProperties",
  },
  disconnect: {
    "session-expiry-interval": "sessionExpiryInterval",
    "user-property": "userProperties",
  },
};

/** The properties whose value is text as given; the rest are integers. */
const TEXT_PROPS = new Set<keyof Properties>([
  "contentType",
  "responseTopic",
  "authenticationMethod",
]);

const enc = new TextEncoder();

/**
 * Sets property `name` of `cmd` in `props` from its flag values (two for
 * `user-property`: key and value; one otherwise).
 */
export function setProperty(
  props: Properties,
  cmd: PropertyPacket,
  name: string,
  values: string[],
): void {
  const key = D_PROPERTIES[cmd][name];
  if (!key) {
    throw new UsageError(
      `-D ${cmd}: unknown property "${name}" (one of ${
        Object.keys(D_PROPERTIES[cmd]).join(", ")
      })`,
    );
  }
  const p = props as Record<string, unknown>;
  const value = values[0]!;
  if (key === "userProperties") {
    (props.userProperties ??= []).push([value, values[1]!]);
  } else if (key === "correlationData") {
    props.correlationData = enc.encode(value);
  } else if (key === "subscriptionIdentifiers") {
    props.subscriptionIdentifiers = [
      intArg(`-D ${cmd} ${name}`, value, 1, 268_435_455),
    ];
  } else if (TEXT_PROPS.has(key)) {
    p[key] = value;
  } else {
    p[key] = intArg(`-D ${cmd} ${name}`, value, 0, 4_294_967_295);
  }
}

/** CONNECT properties that are client options of the same name and type. */
const CONNECT_SAME = [
  "sessionExpiryInterval",
  "receiveMaximum",
  "maximumPacketSize",
  "topicAliasMaximum",
] as const;

/** CONNECT properties sent as 0/1 that are boolean client options. */
const CONNECT_FLAGS = [
  "requestProblemInformation",
  "requestResponseInformation",
] as const;

/** Copies the `-D connect ...` properties `c` into the client options. */
export function applyConnectProperties(
  c: Properties,
  client: ClientOptions,
): void {
  for (const key of CONNECT_SAME) {
    const v = c[key];
    if (v !== undefined) client[key] = v;
  }
  for (const key of CONNECT_FLAGS) {
    const v = c[key];
    if (v !== undefined) client[key] = v === 1;
  }
  if (c.authenticationMethod !== undefined) {
    client.authenticationMethod = c.authenticationMethod;
  }
  if (c.userProperties) client.userProperties = c.userProperties;
}
