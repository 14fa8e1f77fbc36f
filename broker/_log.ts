/**
 * A cheap "is debug logging on?" check for hot paths.
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
let enabled = true;

/**
 * Whether a debug record could reach a sink: true when any configured
 * logger (except LogTape's meta logger) lets debug through, whatever its
 * category (conservative: a category prefix set by the application cannot
 * hide a record this way). False when LogTape is not configured.
 */
export function debugEnabled(): boolean {
  const config = getConfig();
  if (config !== seen) {
    seen = config;
    enabled = config !== null && config.loggers.some((l) => {
      const c = Array.isArray(l.category) ? l.category : [l.category];
      if (c[0] === "logtape" && c[1] === "meta") return false;
      const level = l.lowestLevel;
      if (level === null) return false;
      return level === undefined || compareLogLevel(level, "debug") <= 0;
    });
  }
  return enabled;
}
