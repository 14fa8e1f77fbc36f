/**
 * Validation of the `bridges` setting: {@linkcode checkBridges} turns a
 * list from a config file or from code into typed `BridgeOptions`, or
 * throws an `Error` whose one-line message names the bridge and the key
 * (`[0] "cloud": topics[1].direction must be in, out or both, got "inn"`).
 * The settings table (config/settings.ts) runs it for the `bridges` row.
 *
 * Keys may be camelCase, snake_case or kebab-case, as elsewhere in a
 * config file.
 *
 * @module
 */

import type { QoS } from "../../codec/packet.ts";
import { isValidTopicFilter, isValidTopicName } from "../../codec/topic.ts";
import { describeValue, didYouMean, toCamel } from "../config/_suggest.ts";
import { parseBridgeAddress } from "./_address.ts";
import type {
  BridgeDirection,
  BridgeOptions,
  BridgeTlsOptions,
  BridgeTopic,
} from "./types.ts";

const UINT16 = 65535;
const UINT32 = 4294967295;

/** A value that does not fit: the message says why, after the key. */
class Bad extends Error {}
/** A `Bad` whose message already names its key (a nested one). */
class Qualified extends Bad {}

type Check<T> = (value: unknown) => T;

function describe(value: unknown): string {
  return value === null || value === undefined
    ? "nothing"
    : describeValue(value);
}

const str = (what = "a string"): Check<string> => (v) => {
  if (typeof v !== "string" || v === "") {
    throw new Bad(`must be ${what}, got ${describe(v)}`);
  }
  return v;
};

const bool: Check<boolean> = (v) => {
  if (typeof v !== "boolean") {
    throw new Bad(`must be true or false, got ${describe(v)}`);
  }
  return v;
};

const int = (min: number, max: number): Check<number> => (v) => {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new Bad(
      `must be an integer from ${min} to ${max}, got ${describe(v)}`,
    );
  }
  return v;
};

function mapping(v: unknown, what: string): Record<string, unknown> {
  if (v === null || typeof v !== "object" || Array.isArray(v)) {
    throw new Bad(`must be ${what}, got ${describe(v)}`);
  }
  return v as Record<string, unknown>;
}

/**
 * Checks the keys of `obj` against `fields`: each known key's check runs
 * (its error prefixed with `path` and the key as written); an unknown key
 * or one given twice is an error. Errors are `Qualified`.
 */
function fieldsOf<T>(
  obj: Record<string, unknown>,
  fields: { readonly [K in keyof T]-?: Check<T[K]> },
  path: string,
): Partial<T> {
  const out: Record<string, unknown> = {};
  const seen = new Map<string, string>();
  const names = Object.keys(fields);
  for (const [raw, value] of Object.entries(obj)) {
    const key = toCamel(raw);
    if (!Object.hasOwn(fields, key)) {
      throw new Qualified(
        `unknown key "${path}${raw}"${didYouMean(raw, names)}`,
      );
    }
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new Qualified(
        `${path}${raw} repeats ${path}${earlier}: give it once`,
      );
    }
    seen.set(key, raw);
    try {
      out[key] = (fields as Record<string, Check<unknown>>)[key]!(value);
    } catch (e) {
      if (!(e instanceof Bad) || e instanceof Qualified) throw e;
      throw new Qualified(`${path}${raw} ${e.message}`);
    }
  }
  return out as Partial<T>;
}

const addresses: Check<string[]> = (v) => {
  const list = typeof v === "string" ? [v] : v;
  if (!Array.isArray(list) || list.length === 0) {
    throw new Bad(
      `must be an mqtt://, mqtts://, ws:// or wss:// URL or a list of them, got ${
        describe(v)
      }`,
    );
  }
  return list.map((a, i) => {
    if (typeof a !== "string") {
      throw new Qualified(`addresses[${i}] must be a URL, got ${describe(a)}`);
    }
    try {
      parseBridgeAddress(a);
    } catch (e) {
      throw new Qualified(
        `addresses[${i}] ${JSON.stringify(a)} ${(e as Error).message}`,
      );
    }
    return a;
  });
};

const protocolVersion: Check<4 | 5> = (v) => {
  const t = String(v).toLowerCase();
  if (["5", "5.0", "mqttv5", "mqttv50"].includes(t)) return 5;
  if (["4", "3.1.1", "mqttv311"].includes(t)) return 4;
  throw new Bad(`must be 5 or 3.1.1, got ${describe(v)}`);
};

const tls: Check<BridgeTlsOptions> = (v) => {
  const o = fieldsOf<BridgeTlsOptions>(mapping(v, "a mapping"), {
    caFile: str("a file name"),
    caCerts: (c) => {
      if (!Array.isArray(c) || c.some((x) => typeof x !== "string")) {
        throw new Bad(`must be a list of PEM texts, got ${describe(c)}`);
      }
      return c as string[];
    },
    certFile: str("a file name"),
    keyFile: str("a file name"),
  }, "tls.");
  if ((o.certFile === undefined) !== (o.keyFile === undefined)) {
    throw new Qualified(
      `tls.${o.certFile === undefined ? "keyFile" : "certFile"} needs tls.${
        o.certFile === undefined ? "certFile" : "keyFile"
      } (the client certificate and its key)`,
    );
  }
  return o;
};

const prefix: Check<string> = (v) => {
  if (typeof v !== "string") {
    throw new Bad(`must be a string, got ${describe(v)}`);
  }
  if (/[+#]/.test(v)) {
    throw new Bad(`must not hold + or # (a prefix is part of a topic)`);
  }
  return v;
};

const TOPIC_FIELDS: {
  readonly [K in keyof BridgeTopic]-?: Check<BridgeTopic[K]>;
} = {
  pattern: (v) => {
    if (typeof v !== "string") {
      throw new Bad(
        `must be a topic filter, got ${describe(v)}` +
          (v === null ? ' (quote "#" in YAML: it starts a comment)' : ""),
      );
    }
    return v;
  },
  direction: (v) => {
    if (v !== "in" && v !== "out" && v !== "both") {
      throw new Bad(`must be in, out or both, got ${describe(v)}`);
    }
    return v as BridgeDirection;
  },
  qos: (v) => int(0, 2)(v) as QoS,
  localPrefix: prefix,
  remotePrefix: prefix,
};

function topicRule(v: unknown, i: number): BridgeTopic {
  const path = `topics[${i}].`;
  const t = fieldsOf<BridgeTopic>(mapping(v, "a mapping"), TOPIC_FIELDS, path);
  const pattern = t.pattern;
  if (pattern === undefined) {
    const p = t.localPrefix !== undefined
      ? "localPrefix"
      : t.remotePrefix !== undefined
      ? "remotePrefix"
      : undefined;
    throw new Qualified(
      p === undefined
        ? `${path}pattern is required`
        : `${path}${p} without pattern: give a pattern ("" maps the prefixes onto each other)`,
    );
  }
  const local = (t.localPrefix ?? "") + pattern;
  const remote = (t.remotePrefix ?? "") + pattern;
  if (pattern === "") {
    if (!t.localPrefix || !t.remotePrefix) {
      throw new Qualified(
        `${path}pattern "" needs both localPrefix and remotePrefix (the topics mapped onto each other)`,
      );
    }
    if (!isValidTopicName(local) || !isValidTopicName(remote)) {
      throw new Qualified(
        `${path}localPrefix and remotePrefix must be topic names`,
      );
    }
  } else {
    const sides = [["local", local], ["remote", remote]] as const;
    for (const [side, filter] of sides) {
      if (!isValidTopicFilter(filter)) {
        throw new Qualified(
          `${path}pattern gives the ${side} filter ${
            JSON.stringify(filter)
          }, which is not a valid topic filter`,
        );
      }
    }
  }
  if (local.startsWith("$share/") || remote.startsWith("$share/")) {
    throw new Qualified(
      `${path}pattern: a bridge topic cannot be a $share filter`,
    );
  }
  const out: BridgeTopic = { pattern };
  if (t.direction !== undefined) out.direction = t.direction;
  if (t.qos !== undefined) out.qos = t.qos;
  if (t.localPrefix !== undefined) out.localPrefix = t.localPrefix;
  if (t.remotePrefix !== undefined) out.remotePrefix = t.remotePrefix;
  return out;
}

const topics: Check<BridgeTopic[]> = (v) => {
  if (!Array.isArray(v) || v.length === 0) {
    throw new Bad(`must be a list of topic rules, got ${describe(v)}`);
  }
  return v.map((t, i) => {
    try {
      return topicRule(t, i);
    } catch (e) {
      if (!(e instanceof Bad) || e instanceof Qualified) throw e;
      throw new Qualified(`topics[${i}] ${e.message}`);
    }
  });
};

const ms: Check<number> = (v) => {
  if (typeof v !== "number" || !Number.isFinite(v) || v <= 0) {
    throw new Bad(
      `must be a number of milliseconds above 0, got ${describe(v)}`,
    );
  }
  return v;
};

const FIELDS: {
  readonly [K in keyof BridgeOptions]-?: Check<BridgeOptions[K]>;
} = {
  name: (v) => {
    if (typeof v !== "string" || !/^[A-Za-z0-9._-]+$/.test(v)) {
      throw new Bad(
        `must be letters, digits, ".", "_" or "-", got ${describe(v)}`,
      );
    }
    return v;
  },
  addresses,
  roundRobin: bool,
  protocolVersion,
  clientId: str("a client id"),
  username: str(),
  password: (v) => {
    if (typeof v !== "string") {
      throw new Bad(`must be a string, got ${describe(v)}`);
    }
    return v;
  },
  tls,
  cleanStart: bool,
  sessionExpiryInterval: int(0, UINT32),
  keepAlive: int(0, UINT16),
  tryPrivate: bool,
  topics,
  notifications: bool,
  notificationTopic: (v) => {
    if (typeof v !== "string" || !isValidTopicName(v)) {
      throw new Bad(`must be a topic name (no + or #), got ${describe(v)}`);
    }
    return v;
  },
  notificationsLocalOnly: bool,
  maxQueued: int(1, Number.MAX_SAFE_INTEGER),
  maxQueuedBytes: int(0, Number.MAX_SAFE_INTEGER),
  localUsername: str("a user name"),
  reconnectDelay: ms,
  maxReconnectDelay: ms,
};

/** One bridge entry; `where` is `[i]` (with its name once known). */
function bridge(v: unknown, where: string): BridgeOptions {
  const obj = mapping(v, "a mapping (name, addresses, topics, ...)");
  const rawName = obj.name;
  const named = typeof rawName === "string" && rawName !== ""
    ? `${where} "${rawName}"`
    : where;
  let b: Partial<BridgeOptions>;
  try {
    b = fieldsOf<BridgeOptions>(obj, FIELDS, "");
    for (const key of ["name", "addresses", "topics"] as const) {
      if (b[key] === undefined) throw new Bad(`${key} is required`);
    }
    if (
      b.reconnectDelay !== undefined && b.maxReconnectDelay !== undefined &&
      b.maxReconnectDelay < b.reconnectDelay
    ) {
      throw new Bad("maxReconnectDelay must not be below reconnectDelay");
    }
  } catch (e) {
    if (e instanceof Bad) throw new Bad(`${named}: ${e.message}`);
    throw e;
  }
  return b as BridgeOptions;
}

/**
 * Checks the `bridges` setting (a list of `BridgeOptions`, from a config
 * file or from code) and returns it typed: addresses always a list,
 * `protocolVersion` a number (`3.1.1` is 4). Throws an `Error` with a
 * one-line message naming the entry and the key, relative to the setting:
 * `[0] "cloud": addresses[0] "ftp://x" has scheme "ftp": use mqtt://,
 * mqtts://, ws:// or wss://`.
 *
 * @example
 * ```ts
 * import { checkBridges } from "@kite/mqtt/broker";
 * const [b] = checkBridges([{
 *   name: "cloud",
 *   addresses: "mqtt://127.0.0.1:1884",
 *   protocol_version: "3.1.1",
 *   topics: [{ pattern: "#", direction: "both", qos: 1 }],
 * }]);
 * console.log(b!.addresses, b!.protocolVersion); // [ "mqtt://127.0.0.1:1884" ] 4
 * ```
 */
export function checkBridges(value: unknown): BridgeOptions[] {
  if (!Array.isArray(value)) {
    throw new Error(`must be a list of bridges, got ${describe(value)}`);
  }
  const names = new Set<string>();
  return value.map((v, i) => {
    let b: BridgeOptions;
    try {
      b = bridge(v, `[${i}]`);
    } catch (e) {
      if (e instanceof Bad) throw new Error(e.message);
      throw e;
    }
    if (names.has(b.name)) {
      throw new Error(
        `[${i}] "${b.name}": name is given to another bridge too`,
      );
    }
    names.add(b.name);
    return b;
  });
}
