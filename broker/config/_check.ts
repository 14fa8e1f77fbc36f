/**
 * Checking settings against the `SETTINGS` table, shared by
 * `validateOptions`, config files (`yaml.ts`) and flags (`argv.ts`): key
 * names in their several spellings, one value against its row, a whole
 * options object, and error messages that say where the value came from.
 *
 * @module
 */

import type { BrokerHooks } from "../hooks.ts";
import { ConfigError } from "./config_error.ts";
import { checkListeners } from "./_listeners.ts";
import { checkCluster } from "./_cluster.ts";
import { describeValue, didYouMean, toCamel } from "./_suggest.ts";
import { SETTING_KEYS, SETTINGS, type SettingSpec } from "./settings.ts";
import type { BrokerOptions, KiteSettings, MainSettings } from "./types.ts";

/**
 * The hook fields of `BrokerOptions`: `validateOptions` passes them through
 * when they are functions. A hook added to `BrokerHooks` without an entry
 * here is a type error.
 */
const HOOKS: { readonly [K in keyof BrokerHooks]-?: true } = {
  authenticate: true,
  authorizePublish: true,
  authorizeSubscribe: true,
  authorizeRead: true,
  authorizationEpoch: true,
  enhancedAuth: true,
};

/** Whether `key` (camelCase) names a row of `SETTINGS`. */
export function isSettingKey(key: string): key is keyof KiteSettings {
  return Object.hasOwn(SETTINGS, key);
}

function rangeText(spec: SettingSpec): string {
  const { min, max } = spec;
  const kind = spec.type === "integer" ? "an integer" : "a number";
  if (spec.type === "integer" && min === 1 && max === undefined) {
    return "a positive integer";
  }
  if (min !== undefined && max !== undefined) {
    return spec.minExclusive
      ? `${kind} above ${min} and at most ${max}`
      : `${kind} from ${min} to ${max}`;
  }
  if (min !== undefined) {
    return spec.minExclusive ? `${kind} above ${min}` : `${kind} >= ${min}`;
  }
  return kind;
}

/**
 * Checks one value against its spec. `fromText` allows the string forms a
 * CLI flag gives (`"1884"`, `"false"`). Returns the typed value or a
 * description of what is wrong.
 */
function checkValue(
  spec: SettingSpec,
  value: unknown,
  fromText: boolean,
): { ok: true; value: unknown } | {
  ok: false;
  error: string;
  /** The whole message (not to be put after the key's name). */
  whole?: boolean;
  /** Where in a nested value (`listeners.1.certFile`), for the line. */
  at?: string;
} {
  switch (spec.type) {
    case "listeners": {
      const r = checkListeners(value);
      if (r.ok) return r;
      return {
        ok: false,
        error: r.problem.message,
        whole: true,
        at: r.problem.at,
      };
    }
    case "list":
      if (fromText) return { ok: false, error: "is set in a config file" };
      try {
        return { ok: true, value: spec.check!(value) };
      } catch (e) {
        return { ok: false, error: (e as Error).message };
      }
    case "cluster":
      return checkCluster(value);
    case "string":
      if (typeof value !== "string") {
        return {
          ok: false,
          error: `must be a string, got ${describeValue(value)}`,
        };
      }
      if (value === "" && spec.allowEmpty !== true) {
        return { ok: false, error: "must not be empty" };
      }
      if (spec.choices !== undefined && !spec.choices.includes(value)) {
        return {
          ok: false,
          error: `must be one of ${spec.choices.join(", ")}, got ${
            describeValue(value)
          }`,
        };
      }
      return { ok: true, value };
    case "boolean":
      if (typeof value === "boolean") return { ok: true, value };
      if (fromText && typeof value === "string") {
        const v = value.toLowerCase();
        if (["true", "yes", "on", "1"].includes(v)) {
          return { ok: true, value: true };
        }
        if (["false", "no", "off", "0"].includes(v)) {
          return { ok: true, value: false };
        }
      }
      return {
        ok: false,
        error: `must be true or false, got ${describeValue(value)}`,
      };
    case "integer":
    case "number": {
      let n: number | undefined;
      if (typeof value === "number") n = value;
      else if (fromText && typeof value === "string") {
        const pattern = spec.type === "integer"
          ? /^[+-]?\d+$/
          : /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/;
        if (pattern.test(value.trim())) n = Number(value);
      }
      const wanted = rangeText(spec);
      if (n === undefined || !Number.isFinite(n)) {
        return {
          ok: false,
          error: `must be ${wanted}, got ${describeValue(value)}`,
        };
      }
      const { min, max } = spec;
      if (
        (spec.type === "integer" && !Number.isInteger(n)) ||
        (min !== undefined && (spec.minExclusive ? n <= min : n < min)) ||
        (max !== undefined && n > max) ||
        (spec.type === "integer" && !Number.isSafeInteger(n))
      ) {
        return { ok: false, error: `must be ${wanted}, got ${n}` };
      }
      return { ok: true, value: n };
    }
  }
}

/** Where a value came from, for error messages. */
export interface Origin {
  /** The name as the user wrote it (`--port`, `max_connections`). */
  label: string;
  file?: string;
  line?: number;
  /** The line of a nested key (`listeners.1.certFile`), when known. */
  lineOf?: (path: string) => number | undefined;
}

function originPrefix(origin: Origin): string {
  if (origin.file === undefined) return "";
  return origin.line === undefined
    ? `${origin.file}: `
    : `${origin.file}:${origin.line}: `;
}

/**
 * Checks `value` against the row of `key` and stores it in `out`; throws a
 * `ConfigError` naming `origin` when it does not fit.
 */
export function setSetting(
  out: Record<string, unknown>,
  key: keyof KiteSettings,
  value: unknown,
  fromText: boolean,
  origin: Origin,
): void {
  const result = checkValue(SETTINGS[key], value, fromText);
  if (!result.ok) {
    let where = origin;
    const line = result.at === undefined
      ? undefined
      : origin.lineOf?.(result.at);
    if (line !== undefined) where = { ...origin, line };
    // A list's error may start with its entry: `bridges[0] "cloud": ...`.
    const sep = result.error.startsWith("[") ? "" : " ";
    throw new ConfigError(
      `${originPrefix(where)}${
        result.whole ? "" : origin.label + sep
      }${result.error}`,
      { key, ...pick(where) },
    );
  }
  out[key] = result.value;
}

function pick(origin: Origin): { file?: string; line?: number } {
  const r: { file?: string; line?: number } = {};
  if (origin.file !== undefined) r.file = origin.file;
  if (origin.line !== undefined) r.line = origin.line;
  return r;
}

/** Resolves a config key (camelCase, snake_case or kebab-case) to a setting. */
function resolveKey(
  raw: string,
  origin: Origin,
): keyof KiteSettings {
  const key = toCamel(raw);
  if (isSettingKey(key)) return key;
  throw new ConfigError(
    `${originPrefix(origin)}unknown ${
      origin.file === undefined ? "option" : "key"
    } "${raw}"${didYouMean(raw, SETTING_KEYS)}`,
    { key: raw, ...pick(origin) },
  );
}

/**
 * Validates an options object (see `validateOptions`). `file` and `lineOf`
 * locate each key for messages when the object came from a config file.
 */
export function validateWithOrigin(
  obj: unknown,
  file: string | undefined,
  lineOf: ((rawKey: string) => number | undefined) | undefined,
  nestedLineOf?: (path: string) => number | undefined,
): BrokerOptions & MainSettings {
  if (obj === null || obj === undefined) return {};
  if (typeof obj !== "object" || Array.isArray(obj)) {
    throw new ConfigError(
      `${file === undefined ? "options" : file}: must be a mapping of ` +
        `option names to values, got ${describeValue(obj)}`,
      file === undefined ? {} : { file },
    );
  }
  const out: Record<string, unknown> = {};
  const seen = new Map<string, string>();
  for (const [raw, value] of Object.entries(obj)) {
    const origin: Origin = { label: raw };
    if (file !== undefined) origin.file = file;
    const line = lineOf?.(raw);
    if (line !== undefined) origin.line = line;
    if (nestedLineOf !== undefined) {
      // Paths from the checks start with the setting's name, not `raw`.
      origin.lineOf = (path) => nestedLineOf(path.replace(/^[^.]+/, raw));
    }
    if (Object.hasOwn(HOOKS, raw)) {
      if (typeof value !== "function") {
        throw new ConfigError(
          `${originPrefix(origin)}${raw} must be a function, got ` +
            describeValue(value),
          { key: raw, ...pick(origin) },
        );
      }
      out[raw] = value;
      continue;
    }
    const key = resolveKey(raw, origin);
    const earlier = seen.get(key);
    if (earlier !== undefined) {
      throw new ConfigError(
        `${originPrefix(origin)}${raw} repeats ${earlier}: give it once`,
        { key, ...pick(origin) },
      );
    }
    seen.set(key, raw);
    setSetting(out, key, value, false, origin);
  }
  return out as BrokerOptions & MainSettings;
}
