/**
 * Checking the `listeners` setting (private): a list of `ListenerConfig`
 * mappings, each key checked, the combinations too (a TLS listener needs a
 * certificate; WebSocket keys only on WebSocket listeners; ...). A problem
 * is one line naming the listener (`listener #2 (wss port 8884)`) and the
 * key, and where the YAML has it.
 *
 * @module
 */

import type { ListenerProtocol } from "../listen/listener.ts";
import { describeValue, didYouMean, toCamel } from "./_suggest.ts";
import type { ListenerConfig } from "./types.ts";

const PROTOCOLS: readonly ListenerProtocol[] = ["mqtt", "mqtts", "ws", "wss"];

type Kind = "string" | "boolean" | "port" | "count" | "path" | "origins";

/** Every key of a listener entry and the kind of its value. */
const KEYS: { readonly [K in keyof ListenerConfig]-?: Kind | "protocol" } = {
  protocol: "protocol",
  host: "string",
  port: "port",
  certFile: "string",
  keyFile: "string",
  caFile: "string",
  requireClientCertificate: "boolean",
  useIdentityAsUsername: "boolean",
  path: "path",
  allowedOrigins: "origins",
  maxConnections: "count",
};
const KEY_NAMES = Object.keys(KEYS) as (keyof ListenerConfig)[];

/** Keys that apply to some protocols only. */
const ONLY: { readonly [K in keyof ListenerConfig]?: readonly string[] } = {
  certFile: ["mqtts", "wss"],
  keyFile: ["mqtts", "wss"],
  caFile: ["mqtts", "wss"],
  requireClientCertificate: ["mqtts", "wss"],
  useIdentityAsUsername: ["mqtts", "wss"],
  path: ["ws", "wss"],
  allowedOrigins: ["ws", "wss"],
};

/** A problem: the message, and the YAML path of the key it is about. */
export interface ListenerProblem {
  message: string;
  /** `listeners.1.certFile` or `listeners.1`: for the line number. */
  at: string;
}

/** What is wrong with `value` for a key of `kind`, or undefined. */
function checkKind(kind: Kind, value: unknown): string | undefined {
  switch (kind) {
    case "string":
      if (typeof value !== "string") {
        return `must be a string, got ${describeValue(value)}`;
      }
      return value === "" ? "must not be empty" : undefined;
    case "boolean":
      return typeof value === "boolean"
        ? undefined
        : `must be true or false, got ${describeValue(value)}`;
    case "port":
      return Number.isInteger(value) && (value as number) >= 0 &&
          (value as number) <= 65535
        ? undefined
        : `must be an integer from 0 to 65535, got ${describeValue(value)}`;
    case "count":
      return Number.isSafeInteger(value) && (value as number) >= 1
        ? undefined
        : `must be a positive integer, got ${describeValue(value)}`;
    case "path":
      return typeof value === "string" && value.startsWith("/")
        ? undefined
        : `must be a path starting with /, got ${describeValue(value)}`;
    case "origins":
      return Array.isArray(value) &&
          value.every((o) => typeof o === "string" && o !== "")
        ? undefined
        : `must be a list of origins (https://example.com), got ${
          describeValue(value)
        }`;
  }
}

/** `listener #2 (wss port 8884)`: how messages name entry `i`. */
function nameOf(i: number, entry: Record<string, unknown>): string {
  const protocol = typeof entry.protocol === "string" ? entry.protocol : "";
  const port = typeof entry.port === "number" ? `port ${entry.port}` : "";
  const what = [protocol, port].filter((s) => s !== "").join(" ");
  return `listener #${i + 1}${what === "" ? "" : ` (${what})`}`;
}

/**
 * Checks a `listeners` value: the entries as `ListenerConfig`s (camelCase
 * keys), or the first problem found.
 */
export function checkListeners(
  value: unknown,
): { ok: true; value: ListenerConfig[] } | {
  ok: false;
  problem: ListenerProblem;
} {
  if (!Array.isArray(value)) {
    return {
      ok: false,
      problem: {
        message: `listeners must be a list of listener mappings, got ${
          describeValue(value)
        }`,
        at: "listeners",
      },
    };
  }
  const out: ListenerConfig[] = [];
  for (let i = 0; i < value.length; i++) {
    const raw: unknown = value[i];
    const at = `listeners.${i}`;
    if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
      return {
        ok: false,
        problem: {
          message: `listener #${
            i + 1
          } must be a mapping (protocol, port, ...), got ${describeValue(raw)}`,
          at,
        },
      };
    }
    const entry: Record<string, unknown> = {};
    const rawKeys = new Map<string, string>();
    for (const [k, v] of Object.entries(raw)) {
      const key = toCamel(k);
      if (!Object.hasOwn(KEYS, key)) {
        return fail(
          i,
          raw as Record<string, unknown>,
          `unknown key "${k}"${didYouMean(k, KEY_NAMES)}`,
          `${at}.${k}`,
        );
      }
      if (rawKeys.has(key)) {
        return fail(
          i,
          raw as Record<string, unknown>,
          `${k} repeats ${rawKeys.get(key)}: give it once`,
          `${at}.${k}`,
        );
      }
      rawKeys.set(key, k);
      entry[key] = v;
    }
    const problem = checkEntry(entry, rawKeys);
    if (problem !== undefined) {
      return fail(
        i,
        entry,
        problem.message,
        problem.key === undefined ? at : `${at}.${problem.key}`,
      );
    }
    out.push(entry as unknown as ListenerConfig);
  }
  return { ok: true, value: out };
}

function fail(
  i: number,
  entry: Record<string, unknown>,
  message: string,
  at: string,
): { ok: false; problem: ListenerProblem } {
  return {
    ok: false,
    problem: { message: `${nameOf(i, entry)}: ${message}`, at },
  };
}

/** The first problem of one entry (keys camelCase), naming the raw key. */
function checkEntry(
  entry: Record<string, unknown>,
  rawKeys: ReadonlyMap<string, string>,
): { message: string; key?: string } | undefined {
  const protocol = entry.protocol;
  if (protocol === undefined) {
    return { message: "protocol is missing (mqtt, mqtts, ws or wss)" };
  }
  if (!PROTOCOLS.includes(protocol as ListenerProtocol)) {
    return {
      message: `protocol must be mqtt, mqtts, ws or wss, got ${
        describeValue(protocol)
      }`,
      key: rawKeys.get("protocol")!,
    };
  }
  if (entry.port === undefined) return { message: "port is missing" };
  for (const key of KEY_NAMES) {
    const kind = KEYS[key];
    const v = entry[key];
    if (v === undefined || kind === "protocol") continue;
    const raw = rawKeys.get(key)!;
    const wrong = checkKind(kind, v);
    if (wrong !== undefined) return { message: `${raw} ${wrong}`, key: raw };
    const only = ONLY[key];
    if (only !== undefined && !only.includes(protocol as string)) {
      return {
        message: `${raw} only applies to ${only.join(" and ")} listeners`,
        key: raw,
      };
    }
  }
  const secure = protocol === "mqtts" || protocol === "wss";
  if (secure && (entry.certFile === undefined || entry.keyFile === undefined)) {
    return {
      message: `${protocol} needs certFile and keyFile (PEM files), ${
        entry.certFile === undefined ? "certFile" : "keyFile"
      } is missing`,
    };
  }
  if (entry.requireClientCertificate === true && entry.caFile === undefined) {
    const raw = rawKeys.get("requireClientCertificate")!;
    return {
      message: `${raw} needs caFile (the CA that signs client certificates)`,
      key: raw,
    };
  }
  if (
    entry.useIdentityAsUsername === true &&
    entry.requireClientCertificate !== true
  ) {
    const raw = rawKeys.get("useIdentityAsUsername")!;
    return {
      message: `${raw} needs requireClientCertificate: true`,
      key: raw,
    };
  }
  return undefined;
}
