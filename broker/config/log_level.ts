/**
 * Log levels of `broker/main.ts` (`--log-level`, `KITE_LOG_LEVEL`): the
 * {@linkcode LogLevel} type and the {@linkcode LOG_LEVELS} accepted.
 *
 * @module
 */

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
