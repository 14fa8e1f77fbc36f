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

import { compareLogLevel, getConfig } from "@logtape/logtape";

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
