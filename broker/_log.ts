/**
 * Cheap "is debug (info) logging on?" checks for hot paths.
 *
 * LogTape builds a whole record (message template parsed, properties
 * copied, descriptors cloned) before it checks the level, which cost about
 * 10% of the broker's CPU per connection at the default level. This asks
 * the current configuration instead, once per configuration.
 *
 * @module
 */

import {
  compareLogLevel,
  getConfig,
  type Logger,
  type LogRecord,
  type Sink,
} from "@logtape/logtape";

let seen: unknown = undefined;
let debug = true;
let info = true;

/** Whether any configured logger lets `wanted` records through. */
function lets(
  config: NonNullable<ReturnType<typeof getConfig>>,
  wanted: "debug" | "info",
): boolean {
  return config.loggers.some((l) => {
    const c = Array.isArray(l.category) ? l.category : [l.category];
    if (c[0] === "logtape" && c[1] === "meta") return false;
    const level = l.lowestLevel;
    if (level === null) return false;
    return level === undefined || compareLogLevel(level, wanted) <= 0;
  });
}

function refresh(): void {
  const config = getConfig();
  if (config === seen) return;
  seen = config;
  debug = config !== null && lets(config, "debug");
  info = config !== null && lets(config, "info");
}

/**
 * Whether a debug record could reach a sink: true when any configured
 * logger (except LogTape's meta logger) lets debug through, whatever its
 * category (conservative: a category prefix set by the application cannot
 * hide a record this way). False when LogTape is not configured.
 */
export function debugEnabled(): boolean {
  refresh();
  return debug;
}

/**
 * Whether an info record could reach a sink (as `debugEnabled`): guards
 * the per-connection lines, which a connection flood makes many.
 */
export function infoEnabled(): boolean {
  refresh();
  return info;
}

/**
 * The `kite` command's own sink (`lineSink`), set while the configuration it
 * made is the current one: per-connection info lines go to it directly, as
 * records LogTape would have built. LogTape's own path costs about 6 µs a
 * record (the record built twice, descriptors cloned, the template parsed
 * each time); two lines per connection were about a fifth of a connect.
 */
let direct: { sink: Sink; config: unknown } | undefined;

/**
 * Sends info records of the `kite` categories straight to `sink` while
 * LogTape's configuration is the current one (undefined: stop).
 */
export function setDirectSink(sink: Sink | undefined): void {
  direct = sink === undefined ? undefined : { sink, config: getConfig() };
}

/** Templates split once: text, name, text, ..., text. */
const templates = new Map<string, string[]>();

function split(template: string): string[] {
  let parts = templates.get(template);
  if (parts === undefined) {
    parts = template.split(/\{(\w+)\}/);
    if (templates.size < 256) templates.set(template, parts);
  }
  return parts;
}

/**
 * Logs `template` (`{name}` placeholders, no escapes) at info with
 * `properties` through `logger`, or through the direct sink when the
 * `kite` command set one and info is enabled (check `infoEnabled()` first).
 */
export function logInfo(
  logger: Logger,
  template: string,
  properties: Record<string, unknown>,
): void {
  const d = direct;
  if (d === undefined || d.config !== getConfig()) {
    logger.info(template, properties);
    return;
  }
  const parts = split(template);
  const message: unknown[] = parts.slice();
  for (let i = 1; i < message.length; i += 2) {
    message[i] = properties[parts[i]!];
  }
  const record: LogRecord = {
    category: logger.category,
    level: "info",
    timestamp: Date.now(),
    message,
    rawMessage: template,
    properties,
  };
  d.sink(record);
}
