/**
 * Flag values of `kite pub|sub`: integers in a range, QoS, protocol
 * version, `KEY=VALUE` user properties, `-F` escapes, and the wrapper that
 * turns any error of checking a value into a one-line `UsageError`.
 *
 * @module
 */

import type { QoS, UserProperty } from "../codec/packet.ts";
import { UsageError } from "./_cli_options.ts";

/** A `UsageError` "`prefix`: what `e` says". */
export function usageError(prefix: string, e: unknown): UsageError {
  return new UsageError(`${prefix}: ${e instanceof Error ? e.message : e}`);
}

/** Runs `fn`; an error it throws becomes a `UsageError` led by `prefix`. */
export function asUsage<T>(prefix: string, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw usageError(prefix, e);
  }
}

/** `value` as an integer `min..max`, else a `UsageError` naming `flag`. */
export function intArg(
  flag: string,
  value: string,
  min: number,
  max: number,
): number {
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`${flag} needs an integer, not "${value}"`);
  }
  const n = Number(value);
  if (n < min || n > max) {
    throw new UsageError(`${flag} must be ${min}..${max}, not ${n}`);
  }
  return n;
}

/** `value` as a QoS (0, 1 or 2). */
export function qosArg(flag: string, value: string): QoS {
  return intArg(flag, value, 0, 2) as QoS;
}

/** `-V`: 5 or 311 (also mqttv5, mqttv311) as the protocol level. */
export function versionArg(value: string): 4 | 5 {
  switch (value.toLowerCase()) {
    case "5":
    case "mqttv5":
      return 5;
    case "311":
    case "mqttv311":
      return 4;
    case "31":
    case "mqttv31":
      throw new UsageError("MQTT 3.1 is not supported: use -V 311 or -V 5");
  }
  throw new UsageError(
    `-V must be 5 or 311 (mqttv5, mqttv311), not "${value}"`,
  );
}

/** `--user-property KEY=VALUE` as a user property pair. */
export function splitUserProperty(value: string): UserProperty {
  const i = value.indexOf("=");
  if (i <= 0) {
    throw new UsageError(`--user-property needs KEY=VALUE, not "${value}"`);
  }
  return [value.slice(0, i), value.slice(i + 1)];
}

const ESCAPES: Record<string, string> = {
  n: "\n",
  t: "\t",
  r: "\r",
  "\\": "\\",
  "0": "\0",
  a: "\x07",
  e: "\x1b",
};

/** `-F`: the backslash escapes `\n \t \r \\ \0 \a \e` replaced. */
export function unescape(s: string): string {
  return s.replace(/\\([ntr\\0ae])/g, (_, c: string) => ESCAPES[c] ?? c);
}
