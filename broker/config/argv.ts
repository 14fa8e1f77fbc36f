/**
 * The command line of `broker/main.ts`: {@linkcode parseArgs} reads the
 * flags, {@linkcode resolveOptions} merges them over the `--config` file
 * and the main defaults, and picks the log level.
 *
 * @module
 */

import {
  CLI_ONLY_FLAGS,
  CLUSTER_FLAGS,
  LISTENER_FLAGS,
  type ListenerFlag,
} from "./_cli_flags.ts";
import { natsUrlProblem, tokenProblem } from "./_cluster.ts";
import { isSettingKey, type Origin, setSetting } from "./_check.ts";
import { suggest, toCamel } from "./_suggest.ts";
import { ConfigError } from "./config_error.ts";
import { MAIN_DEFAULT_OPTIONS } from "./defaults.ts";
import { applySecureDefaults } from "./secure_defaults.ts";
import { LOG_LEVELS, type LogLevel } from "./log_level.ts";
import { SETTING_KEYS, SETTINGS, toFlagName } from "./settings.ts";
import type {
  BrokerSettings,
  ClusterOptions,
  KiteSettings,
  ListenerConfig,
  MainSettings,
} from "./types.ts";

/** `--log-level` or `KITE_LOG_LEVEL` text -> a level; `label` names it in errors. */
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
 * `--no-retain-available`, `--config FILE`, `--log-level LEVEL`, `--help`,
 * and the listener shorthands (`--tls-port 8883 --cert-file C --key-file
 * K`, `--ws-port 8080`, ...), which become `options.listeners` entries.
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
  const shorthand = new Map<ListenerFlag, string>();
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
    const listenerFlag = LISTENER_FLAGS.find((f) => f.flag === name);
    if (listenerFlag !== undefined) {
      const value = takeValue();
      if (value === "") {
        throw new ConfigError(`${label} needs a value`, { key: name });
      }
      shorthand.set(listenerFlag.flag, value);
      continue;
    }
    if (name === "listeners") {
      throw new ConfigError(
        "--listeners cannot be a flag: list them in the config file, or use " +
          "--tls-port, --ws-port, --wss-port",
        { key: "listeners" },
      );
    }
    const clusterFlag = CLUSTER_FLAGS.find((f) => f.flag === name);
    if (clusterFlag !== undefined) {
      const value = takeValue();
      const cluster = (options.cluster ??= {}) as ClusterOptions;
      const problem = clusterFlag.key === "url"
        ? natsUrlProblem(value)
        : tokenProblem(value);
      if (problem !== undefined) {
        throw new ConfigError(`${label} ${problem}`, { key: "cluster" });
      }
      if (clusterFlag.key === "url") (cluster.url ??= []).push(value);
      else cluster[clusterFlag.key] = value;
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
        ...CLUSTER_FLAGS.map((f) => f.flag),
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
  const listeners = shorthandListeners(shorthand);
  if (listeners.length > 0) options.listeners = listeners;
  return result;
}

/** The `listeners` entries the shorthand flags ask for. */
function shorthandListeners(
  flags: ReadonlyMap<ListenerFlag, string>,
): ListenerConfig[] {
  const port = (flag: ListenerFlag): number | undefined => {
    const text = flags.get(flag);
    if (text === undefined) return undefined;
    const out: Record<string, unknown> = {};
    setSetting(out, "port", text, true, { label: `--${flag}` });
    return out.port as number;
  };
  const needs = (flag: ListenerFlag, ...others: ListenerFlag[]) => {
    if (flags.has(flag) && !others.some((o) => flags.has(o))) {
      throw new ConfigError(
        `--${flag} needs ${others.map((o) => `--${o}`).join(" or ")}`,
        { key: flag },
      );
    }
  };
  needs("cert-file", "tls-port", "wss-port");
  needs("key-file", "tls-port", "wss-port");
  needs("ca-file", "tls-port");
  needs("ws-path", "ws-port", "wss-port");
  const tlsPort = port("tls-port");
  const wsPort = port("ws-port");
  const wssPort = port("wss-port");
  const certFile = flags.get("cert-file");
  const keyFile = flags.get("key-file");
  const caFile = flags.get("ca-file");
  const path = flags.get("ws-path");
  if (path !== undefined && !path.startsWith("/")) {
    throw new ConfigError(
      `--ws-path must be a path starting with /, got ${JSON.stringify(path)}`,
      { key: "ws-path" },
    );
  }
  const out: ListenerConfig[] = [];
  const tlsFiles = (flag: ListenerFlag) => {
    if (certFile === undefined || keyFile === undefined) {
      throw new ConfigError(
        `--${flag} needs --cert-file and --key-file (PEM files)`,
        { key: flag },
      );
    }
    return { certFile, keyFile };
  };
  if (tlsPort !== undefined) {
    const l: ListenerConfig = {
      protocol: "mqtts",
      port: tlsPort,
      ...tlsFiles("tls-port"),
    };
    if (caFile !== undefined) {
      l.caFile = caFile;
      l.requireClientCertificate = true;
    }
    out.push(l);
  }
  if (wsPort !== undefined) {
    const l: ListenerConfig = { protocol: "ws", port: wsPort };
    if (path !== undefined) l.path = path;
    out.push(l);
  }
  if (wssPort !== undefined) {
    const l: ListenerConfig = {
      protocol: "wss",
      port: wssPort,
      ...tlsFiles("wss-port"),
    };
    if (path !== undefined) l.path = path;
    out.push(l);
  }
  return out;
}

/** The outcome of `resolveOptions`: what `broker/main.ts` runs with. */
export interface ResolvedOptions {
  /**
   * Every setting: flags over the config file over the main defaults
   * (`listeners`: the file's, then those of the shorthand flags).
   */
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
 * (persistence on, loopback only). Then the secure defaults (see
 * `secure_defaults.ts`): with a password file, anonymous clients are
 * refused and every interface is served unless `allowAnonymous` or `host`
 * was given; without one, a non-loopback `host` needs an explicit
 * `allowAnonymous: true` (else a `ConfigError`). `env` supplies
 * `KITE_LOG_LEVEL`.
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
    // The YAML parser is loaded only for a config file (about 5 MB of RSS).
    : await (await import("./yaml.ts")).loadConfigFile(parsed.configPath);
  const given = {
    ...fromFile,
    ...parsed.options,
    // The shorthand flags add listeners to those of the file.
    listeners: [
      ...(fromFile.listeners ?? []),
      ...(parsed.options.listeners ?? []),
    ],
  };
  if (fromFile.cluster !== undefined && parsed.options.cluster !== undefined) {
    // The cluster flags override the file's `cluster` keys one by one.
    given.cluster = { ...fromFile.cluster, ...parsed.options.cluster };
  }
  const result: ResolvedOptions = {
    options: parsed.help
      ? { ...MAIN_DEFAULT_OPTIONS, ...given }
      : applySecureDefaults({ ...MAIN_DEFAULT_OPTIONS, ...given }, given),
    help: parsed.help,
    logLevel,
  };
  if (parsed.configPath !== undefined) result.configPath = parsed.configPath;
  return result;
}
