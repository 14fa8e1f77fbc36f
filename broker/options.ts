/**
 * Broker options: the `BrokerOptions` type and its defaults. Parsing of CLI
 * flags and YAML config files, and validation, live here too.
 *
 * @module
 */

import type { QoS } from "../codec/packet.ts";
import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import type { BrokerHooks } from "./hooks.ts";

export type {
  AuthenticateContext,
  AuthenticateHook,
  AuthorizePublishHook,
  AuthorizeSubscribeHook,
  BrokerHooks,
  ClientInfo,
} from "./hooks.ts";

/** Options of a `Broker`. Every field is optional; see `DEFAULT_OPTIONS`. */
export interface BrokerOptions extends BrokerHooks {
  /** Interface to listen on. Default `0.0.0.0`. */
  host?: string;
  /** TCP port; 0 picks a free port. Default 1883. */
  port?: number;
  /** Connections past this are refused. Default 10000. */
  maxConnections?: number;
  /** Largest packet accepted and advertised, in bytes. Default 256 KiB. */
  maxPacketSize?: number;
  /** Keep state in Deno KV at `persistencePath`. Default false for the library, true for `broker/main.ts`. */
  enablePersistence?: boolean;
  /** Directory of the Deno KV file. Default `./mqtt_data`. */
  persistencePath?: string;
  /** Cap on the session expiry interval clients ask for, in seconds. Default 3600. */
  sessionExpiryInterval?: number;
  /** Highest QoS granted and accepted. Default 2. */
  maxQos?: QoS;
  /** Whether retained messages are supported. Default true. */
  retainAvailable?: boolean;
  /** Whether `+`/`#` filters are supported. Default true. */
  wildcardSubscriptionAvailable?: boolean;
  /** Whether `$share/...` filters are supported. Default true. */
  sharedSubscriptionAvailable?: boolean;
  /** v5 Receive Maximum the broker allows each client. Default 65535. */
  receiveMaximum?: number;
  /**
   * v5 Topic Alias Maximum the broker accepts from each client (0 turns
   * client aliases off). Default 10, like Mosquitto: each alias holds a
   * topic string per connection.
   */
  topicAliasMaximum?: number;
  /** v5 Server Keep Alive in seconds; 0 leaves the client's. Default 0. */
  serverKeepAlive?: number;
  /** Unacknowledged QoS 1/2 messages to a client at once. Default 1000. */
  maxInflightMessages?: number;
  /** Messages queued per session beyond in-flight ones. Default 1000. */
  maxQueuedMessages?: number;
  /** Allow clients without a username. Default true. */
  allowAnonymous?: boolean;
  /** Interval of `$SYS/broker/...` publications in seconds; 0 turns them off. Default 10. */
  sysInterval?: number;
  /** Seconds a new connection has to send its CONNECT. Default 10. */
  connectTimeout?: number;
  /** Queue QoS 0 messages for offline sessions too. Default false. */
  queueQos0Messages?: boolean;
}

/** The options that are plain settings (flags, YAML keys): all but hooks. */
export type BrokerSettings = Omit<BrokerOptions, keyof BrokerHooks>;

/** The defaults of every option. */
export const DEFAULT_OPTIONS: Readonly<Required<BrokerSettings>> = {
  host: "0.0.0.0",
  port: 1883,
  maxConnections: 10000,
  maxPacketSize: 256 * 1024,
  enablePersistence: false,
  persistencePath: "./mqtt_data",
  sessionExpiryInterval: 3600,
  maxQos: 2,
  retainAvailable: true,
  wildcardSubscriptionAvailable: true,
  sharedSubscriptionAvailable: true,
  receiveMaximum: 65535,
  topicAliasMaximum: 10,
  serverKeepAlive: 0,
  maxInflightMessages: 1000,
  maxQueuedMessages: 1000,
  allowAnonymous: true,
  sysInterval: 10,
  connectTimeout: 10,
  queueQos0Messages: false,
};

// ---------------------------------------------------------------------------
// Settings table, validation, CLI flags and YAML config files.
// One table (`SETTINGS`) drives parsing, validation and `--help`.
// ---------------------------------------------------------------------------

/** The kind of value a setting takes. `number` allows fractions. */
export type SettingType = "string" | "integer" | "number" | "boolean";

/** How one setting is parsed, checked and described. */
export interface SettingSpec {
  /** The value kind. */
  readonly type: SettingType;
  /** Smallest allowed value (numbers). */
  readonly min?: number;
  /** Whether `min` itself is excluded (numbers). */
  readonly minExclusive?: boolean;
  /** Largest allowed value (numbers). */
  readonly max?: number;
  /** One line for `--help`. */
  readonly description: string;
}

/**
 * Settings of `broker/main.ts` that are not `Broker` options: files that
 * main.ts turns into hooks with `fileAuth()` from `auth.ts` (and reloads on
 * SIGHUP). A library user calls `fileAuth()` and spreads its hooks instead.
 */
export interface MainSettings {
  /** Password file written by `kite passwd`; enables password checks. */
  passwordFile?: string;
  /** ACL file (Mosquitto-style `user`/`topic`/`pattern` lines). */
  aclFile?: string;
}

/** Every setting of the `SETTINGS` table: broker options and main's. */
export type KiteSettings = BrokerSettings & MainSettings;

const UINT16 = 65535;
const UINT32 = 4294967295;

/**
 * Every plain setting of `BrokerOptions` (and `MainSettings`), keyed by its
 * camelCase name (the YAML key; the CLI flag is its kebab-case form). Adding
 * a field to `BrokerSettings` without a row here is a type error, so the
 * flags, the config file keys, the validation and `--help` cannot drift
 * apart.
 */
export const SETTINGS: { readonly [K in keyof KiteSettings]-?: SettingSpec } = {
  host: { type: "string", description: "Interface to listen on." },
  port: {
    type: "integer",
    min: 0,
    max: UINT16,
    description: "TCP port; 0 picks a free port.",
  },
  maxConnections: {
    type: "integer",
    min: 1,
    description: "Connections past this are refused (v5 0x97, 3.1.1 0x03).",
  },
  maxPacketSize: {
    type: "integer",
    min: 1,
    max: 268435455,
    description: "Largest packet accepted and advertised, in bytes.",
  },
  enablePersistence: {
    type: "boolean",
    description: "Keep sessions and retained messages in Deno KV.",
  },
  persistencePath: {
    type: "string",
    description: "Directory of the Deno KV file.",
  },
  sessionExpiryInterval: {
    type: "integer",
    min: 0,
    max: UINT32,
    description: "Cap on the session expiry clients ask for, in seconds.",
  },
  maxQos: {
    type: "integer",
    min: 0,
    max: 2,
    description: "Highest QoS granted and accepted.",
  },
  retainAvailable: {
    type: "boolean",
    description: "Support retained messages.",
  },
  wildcardSubscriptionAvailable: {
    type: "boolean",
    description: "Support `+` and `#` in topic filters.",
  },
  sharedSubscriptionAvailable: {
    type: "boolean",
    description: "Support `$share/GROUP/FILTER` subscriptions.",
  },
  receiveMaximum: {
    type: "integer",
    min: 1,
    max: UINT16,
    description: "v5 Receive Maximum allowed to each client.",
  },
  topicAliasMaximum: {
    type: "integer",
    min: 0,
    max: UINT16,
    description: "v5 Topic Alias Maximum accepted from each client; 0: none.",
  },
  serverKeepAlive: {
    type: "integer",
    min: 0,
    max: UINT16,
    description: "v5 Server Keep Alive in seconds; 0 keeps the client's.",
  },
  maxInflightMessages: {
    type: "integer",
    min: 1,
    max: UINT16,
    description: "Unacknowledged QoS 1/2 messages to a client at once.",
  },
  maxQueuedMessages: {
    type: "integer",
    min: 1,
    description: "Messages queued per session beyond in-flight ones.",
  },
  allowAnonymous: {
    type: "boolean",
    description: "Allow clients that send no username.",
  },
  sysInterval: {
    type: "number",
    min: 0,
    description: "Seconds between $SYS/broker/... updates; 0 turns them off.",
  },
  connectTimeout: {
    type: "number",
    min: 0,
    minExclusive: true,
    max: UINT16,
    description: "Seconds a new connection has to send its CONNECT.",
  },
  queueQos0Messages: {
    type: "boolean",
    description: "Queue QoS 0 messages for offline sessions too.",
  },
  passwordFile: {
    type: "string",
    description: "Password file (kite passwd) checked at CONNECT.",
  },
  aclFile: {
    type: "string",
    description: "ACL file: who may publish/subscribe where.",
  },
};

/** The names of all settings, in table order. */
export const SETTING_KEYS: readonly (keyof KiteSettings)[] = Object.keys(
  SETTINGS,
) as (keyof KiteSettings)[];

const HOOK_KEYS: readonly (keyof BrokerHooks)[] = [
  "authenticate",
  "authorizePublish",
  "authorizeSubscribe",
  "enhancedAuth",
];

/**
 * The defaults of `broker/main.ts`: the library defaults, except that
 * persistence is on.
 */
export const MAIN_DEFAULT_OPTIONS: Readonly<Required<BrokerSettings>> = {
  ...DEFAULT_OPTIONS,
  enablePersistence: true,
};

/**
 * A bad option, flag or config file. `key` names the option (camelCase) when
 * it is known, or the unknown name as written; `file` and `line` locate the
 * problem in a config file.
 *
 * @example
 * ```ts
 * import { ConfigError, validateOptions } from "@kite/mqtt/broker";
 * try {
 *   validateOptions({ port: 70000 });
 * } catch (e) {
 *   if (e instanceof ConfigError) console.log(e.key); // "port"
 * }
 * ```
 */
export class ConfigError extends Error {
  /** The option concerned, if any. */
  readonly key: string | undefined;
  /** The config file concerned, if any. */
  readonly file: string | undefined;
  /** The 1-based line in `file`, if known. */
  readonly line: number | undefined;

  /** Creates a config error; `message` is shown to the user as is. */
  constructor(
    message: string,
    details: { key?: string; file?: string; line?: number } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConfigError";
    this.key = details.key;
    this.file = details.file;
    this.line = details.line;
  }
}

/** `maxConnections` -> `max-connections`. */
export function toFlagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

/** `max_connections` or `max-connections` -> `maxConnections`. */
function toCamel(name: string): string {
  return name.replace(/[_-]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

function isSettingKey(key: string): key is keyof KiteSettings {
  return Object.hasOwn(SETTINGS, key);
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known name closest to `name`, if it is close enough to be a typo. */
function suggest(
  name: string,
  candidates: readonly string[],
): string | undefined {
  const wanted = name.toLowerCase().replace(/[_-]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase().replace(/[_-]/g, "");
    const d = c.startsWith(wanted) && wanted.length >= 3
      ? 1
      : levenshtein(wanted, c);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(wanted.length / 3))
    ? best
    : undefined;
}

function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
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
): { ok: true; value: string | number | boolean } | {
  ok: false;
  error: string;
} {
  switch (spec.type) {
    case "string":
      if (typeof value !== "string") {
        return {
          ok: false,
          error: `must be a string, got ${describeValue(value)}`,
        };
      }
      if (value === "") return { ok: false, error: "must not be empty" };
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
interface Origin {
  /** The name as the user wrote it (`--port`, `max_connections`). */
  label: string;
  file?: string;
  line?: number;
}

function originPrefix(origin: Origin): string {
  if (origin.file === undefined) return "";
  return origin.line === undefined
    ? `${origin.file}: `
    : `${origin.file}:${origin.line}: `;
}

function setSetting(
  out: Record<string, unknown>,
  key: keyof KiteSettings,
  value: unknown,
  fromText: boolean,
  origin: Origin,
): void {
  const result = checkValue(SETTINGS[key], value, fromText);
  if (!result.ok) {
    throw new ConfigError(
      `${originPrefix(origin)}${origin.label} ${result.error}`,
      { key, ...pick(origin) },
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
  const hint = suggest(raw, SETTING_KEYS);
  throw new ConfigError(
    `${originPrefix(origin)}unknown ${
      origin.file === undefined ? "option" : "key"
    } "${raw}"` +
      (hint === undefined ? "" : ` (did you mean "${hint}"?)`),
    { key: raw, ...pick(origin) },
  );
}

/**
 * Validates an options object (from a config file, JSON or code) and returns
 * it as typed `BrokerOptions`. Keys may be camelCase, snake_case or
 * kebab-case; hook fields must be functions. Throws a `ConfigError` naming
 * the key and what is wrong: an unknown key (with a suggestion), a wrong
 * type or a value out of range.
 *
 * @example
 * ```ts
 * import { validateOptions } from "@kite/mqtt/broker";
 * const options = validateOptions({ port: 1884, max_connections: 5000 });
 * console.log(options.maxConnections); // 5000
 * ```
 */
export function validateOptions(obj: unknown): BrokerOptions & MainSettings {
  return validateWithOrigin(obj, undefined, undefined);
}

function validateWithOrigin(
  obj: unknown,
  file: string | undefined,
  lineOf: ((rawKey: string) => number | undefined) | undefined,
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
    if ((HOOK_KEYS as readonly string[]).includes(raw)) {
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

/**
 * Parses the text of a YAML config file (a mapping of option names to
 * values; camelCase or snake_case keys). `fileName` is used in messages.
 * Throws a `ConfigError` with the file name and line on invalid YAML or a
 * bad option.
 *
 * @example
 * ```ts
 * import { parseConfigText } from "@kite/mqtt/broker";
 * const options = parseConfigText("port: 1884\nmax_connections: 100\n", "kite.yaml");
 * console.log(options.port); // 1884
 * ```
 */
export function parseConfigText(
  text: string,
  fileName: string,
): KiteSettings {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    const pos = error.linePos?.[0];
    const where = pos === undefined ? fileName : `${fileName}:${pos.line}`;
    const reason = error.message.split("\n")[0]!.replace(/ at line \d+.*$/, "");
    throw new ConfigError(`${where}: invalid YAML: ${reason}`, {
      file: fileName,
      ...(pos === undefined ? {} : { line: pos.line }),
    });
  }
  const lines = new Map<string, number>();
  if (isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      if (isScalar(pair.key) && pair.key.range) {
        lines.set(
          String(pair.key.value),
          lineCounter.linePos(pair.key.range[0]).line,
        );
      }
    }
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (e) {
    throw new ConfigError(
      `${fileName}: invalid YAML: ${(e as Error).message}`,
      { file: fileName },
      { cause: e },
    );
  }
  for (const [key, v] of Object.entries(value ?? {})) {
    if (typeof v === "function") {
      throw new ConfigError(`${fileName}: ${key} cannot be set in a file`, {
        key,
        file: fileName,
      });
    }
  }
  return validateWithOrigin(value, fileName, (k) => lines.get(k));
}

/**
 * Reads and validates a YAML config file. Throws a `ConfigError` naming the
 * file (and line) when it cannot be read, is not valid YAML or holds a bad
 * option.
 *
 * @example
 * ```ts ignore
 * import { loadConfigFile } from "@kite/mqtt/broker";
 * const options = await loadConfigFile("kite.yaml");
 * ```
 */
export async function loadConfigFile(path: string): Promise<KiteSettings> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : e instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : (e as Error).message;
    throw new ConfigError(`cannot read config file ${path}: ${reason}`, {
      key: "config",
      file: path,
    }, { cause: e });
  }
  return parseConfigText(text, path);
}

/** A LogTape log level (the same strings as `@logtape/logtape`'s). */
export type LogLevel =
  | "trace"
  | "debug"
  | "info"
  | "warning"
  | "error"
  | "fatal";

/** The log levels `--log-level` accepts (`warn` is taken for `warning`). */
export const LOG_LEVELS: readonly LogLevel[] = [
  "trace",
  "debug",
  "info",
  "warning",
  "error",
  "fatal",
];

function parseLogLevelText(text: string, label: string): LogLevel {
  const v = text.toLowerCase() === "warn" ? "warning" : text.toLowerCase();
  const level = LOG_LEVELS.find((l) => l === v);
  if (level === undefined) {
    throw new ConfigError(
      `${label} must be one of ${LOG_LEVELS.join(", ")}, got ${
        JSON.stringify(text)
      }`,
      { key: "logLevel" },
    );
  }
  return level;
}

/** Flags of `broker/main.ts` that are not broker settings. */
const CLI_ONLY_FLAGS = [
  {
    flag: "config",
    placeholder: "<file>",
    description: "YAML config file (camelCase or snake_case keys).",
  },
  {
    flag: "log-level",
    placeholder: "<level>",
    description: `${LOG_LEVELS.join("|")}; default info, env KITE_LOG_LEVEL.`,
  },
  { flag: "help", placeholder: "", description: "Show this help (also -h)." },
] as const;

/** What `parseArgs` found on the command line. */
export interface ParsedArgs {
  /** The settings given as flags (only those). */
  options: KiteSettings;
  /** The `--config` file, if given. */
  configPath?: string;
  /** Whether `--help` or `-h` was given. */
  help: boolean;
  /** The `--log-level`, if given. */
  logLevel?: LogLevel;
}

/**
 * Parses `broker/main.ts` flags: `--port 1884`, `--port=1884`,
 * `--enable-persistence=false`, bare `--retain-available`,
 * `--no-retain-available`, `--config FILE`, `--log-level LEVEL`, `--help`.
 * Does not read any file. Throws a `ConfigError` on an unknown flag (with a
 * suggestion), a missing value, a bad value or a stray argument.
 *
 * @example
 * ```ts
 * import { parseArgs } from "@kite/mqtt/broker";
 * const { options } = parseArgs(["--port", "1884", "--no-retain-available"]);
 * console.log(options); // { port: 1884, retainAvailable: false }
 * ```
 */
export function parseArgs(argv: readonly string[]): ParsedArgs {
  const options: Record<string, unknown> = {};
  const result: ParsedArgs = { options, help: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "-h" || arg === "--help") {
      result.help = true;
      continue;
    }
    if (!arg.startsWith("--") || arg === "--") {
      throw new ConfigError(
        `unexpected argument ${
          JSON.stringify(arg)
        } (options are --name value;` +
          " see --help)",
      );
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const inline = eq === -1 ? undefined : arg.slice(eq + 1);
    const label = `--${name}`;
    // Takes the flag's value: inline, or the next argument.
    const takeValue = (): string => {
      if (inline !== undefined) return inline;
      const next = argv[i + 1];
      if (next === undefined || next.startsWith("--")) {
        throw new ConfigError(`${label} needs a value`, {
          key: toCamel(name),
        });
      }
      i++;
      return next;
    };
    if (name === "config") {
      const path = takeValue();
      if (path === "") {
        throw new ConfigError(`${label} needs a file name`, { key: "config" });
      }
      result.configPath = path;
      continue;
    }
    if (name === "log-level") {
      result.logLevel = parseLogLevelText(takeValue(), label);
      continue;
    }
    let key = toCamel(name);
    let negated = false;
    if (
      !isSettingKey(key) && name.startsWith("no-") &&
      isSettingKey(toCamel(name.slice(3)))
    ) {
      key = toCamel(name.slice(3));
      negated = true;
    }
    if (!isSettingKey(key) || name !== name.toLowerCase()) {
      const flags = [
        ...SETTING_KEYS.map(toFlagName),
        ...CLI_ONLY_FLAGS.map((f) => f.flag),
      ];
      const hint = suggest(name, flags);
      throw new ConfigError(
        `unknown option ${label}` +
          (hint === undefined ? "" : ` (did you mean --${hint}?)`),
        { key: name },
      );
    }
    const spec = SETTINGS[key];
    const origin: Origin = { label };
    if (negated) {
      if (spec.type !== "boolean" || inline !== undefined) {
        throw new ConfigError(
          spec.type === "boolean"
            ? `${label} takes no value`
            : `${label}: --no- only applies to true/false options`,
          { key },
        );
      }
      options[key] = false;
      continue;
    }
    if (spec.type === "boolean" && inline === undefined) {
      // Bare `--flag` means true; `--flag false` is taken as well.
      const next = argv[i + 1]?.toLowerCase();
      if (next === "true" || next === "false") {
        i++;
        options[key] = next === "true";
      } else {
        options[key] = true;
      }
      continue;
    }
    setSetting(options, key, takeValue(), true, origin);
  }
  return result;
}

/** The outcome of `resolveOptions`: what `broker/main.ts` runs with. */
export interface ResolvedOptions {
  /** Every setting: flags over the config file over the main defaults. */
  options: Required<BrokerSettings> & MainSettings;
  /** The `--config` file, if given. */
  configPath?: string;
  /** Whether help was asked for (the config file is then not read). */
  help: boolean;
  /** `--log-level`, else `KITE_LOG_LEVEL`, else `info`. */
  logLevel: LogLevel;
}

/**
 * Resolves `broker/main.ts` arguments into the options to run with: flags
 * override the `--config` file, which overrides `MAIN_DEFAULT_OPTIONS`
 * (persistence on). `env` supplies `KITE_LOG_LEVEL`.
 *
 * @example
 * ```ts
 * import { resolveOptions } from "@kite/mqtt/broker";
 * const { options } = await resolveOptions(["--port", "0"], new Map());
 * console.log(options.port, options.enablePersistence); // 0 true
 * ```
 */
export async function resolveOptions(
  argv: readonly string[],
  env: { get(name: string): string | undefined } = { get: () => undefined },
): Promise<ResolvedOptions> {
  const parsed = parseArgs(argv);
  const envLevel = env.get("KITE_LOG_LEVEL");
  const logLevel = parsed.logLevel ??
    (envLevel === undefined || envLevel === ""
      ? "info"
      : parseLogLevelText(envLevel, "KITE_LOG_LEVEL"));
  const fromFile = parsed.configPath === undefined || parsed.help
    ? {}
    : await loadConfigFile(parsed.configPath);
  const result: ResolvedOptions = {
    options: { ...MAIN_DEFAULT_OPTIONS, ...fromFile, ...parsed.options },
    help: parsed.help,
    logLevel,
  };
  if (parsed.configPath !== undefined) result.configPath = parsed.configPath;
  return result;
}

function typeLabel(spec: SettingSpec): string {
  if (spec.type === "boolean") return "boolean";
  if (spec.type === "string") return "string";
  const kind = spec.type === "integer" ? "integer" : "number";
  if (spec.min !== undefined && spec.max !== undefined) {
    return `${kind} ${spec.minExclusive ? ">" : ""}${spec.min}..${spec.max}`;
  }
  if (spec.min !== undefined) {
    return `${kind} ${spec.minExclusive ? ">" : ">="}${spec.min}`;
  }
  return kind;
}

/**
 * The `--help` text of `broker/main.ts`, generated from `SETTINGS`: every
 * option with its flag, type, default (`defaults`, by default
 * `MAIN_DEFAULT_OPTIONS`) and description.
 *
 * @example
 * ```ts
 * import { helpText } from "@kite/mqtt/broker";
 * console.log(helpText().includes("--max-connections")); // true
 * ```
 */
export function helpText(
  defaults: Readonly<Required<BrokerSettings> & MainSettings> =
    MAIN_DEFAULT_OPTIONS,
): string {
  const rows: [string, string, string][] = [];
  for (const f of CLI_ONLY_FLAGS) {
    rows.push([
      `--${f.flag}${f.placeholder ? " " + f.placeholder : ""}`,
      "",
      f.description,
    ]);
  }
  for (const key of SETTING_KEYS) {
    const spec = SETTINGS[key];
    const flag = spec.type === "boolean"
      ? `--[no-]${toFlagName(key)}`
      : `--${toFlagName(key)} <${spec.type === "string" ? "string" : "n"}>`;
    const value = defaults[key];
    rows.push([
      flag,
      `${typeLabel(spec)}, default ${
        value === undefined ? "none" : JSON.stringify(value)
      }; YAML key ${key}`,
      spec.description,
    ]);
  }
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const lines = [
    "Kite MQTT broker (MQTT 3.1.1 and 5.0)",
    "",
    "Usage:",
    "  deno run -A broker/main.ts [options]",
    "  deno run -A broker/main.ts passwd [-c] [-D] FILE USER",
    "",
    "Options: flags override the --config file, which overrides defaults.",
    "Each option is also a YAML key: its camelCase name (maxConnections) or",
    "snake_case (max_connections). Booleans: --flag, --no-flag, --flag=false.",
    "",
  ];
  for (const [flag, type, description] of rows) {
    lines.push(`  ${flag.padEnd(w0)}  ${description}`);
    if (type !== "") lines.push(`  ${"".padEnd(w0)}    (${type})`);
  }
  return lines.join("\n") + "\n";
}
