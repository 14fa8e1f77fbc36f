/**
 * `--log-format json`: one JSON object per line, as LogTape's JSON Lines
 * formatter writes it (`@timestamp`, `level`, `message`, `logger`,
 * `properties`), except that string values appear in the message as they
 * are (LogTape quotes them): `client c1 connected from 127.0.0.1:5000`,
 * not `client "c1" connected from "127.0.0.1:5000"`. Errors become
 * `Name: message` text.
 *
 * @module
 */

import type { LogRecord } from "@logtape/logtape";

function text(v: unknown): string {
  if (typeof v === "string") return v;
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  try {
    return JSON.stringify(v, replacer) ?? String(v);
  } catch {
    return String(v);
  }
}

function replacer(_key: string, v: unknown): unknown {
  if (v instanceof Error) return `${v.name}: ${v.message}`;
  if (typeof v === "bigint") return v.toString();
  if (v instanceof Uint8Array) return `<${v.length} bytes>`;
  return v;
}

/**
 * Formats one record as a JSON line.
 *
 * @example
 * ```ts ignore
 * configure({ sinks: { console: getConsoleSink({ formatter: jsonLogFormatter }) }, ... });
 * ```
 */
export function jsonLogFormatter(record: LogRecord): string {
  let message = "";
  const parts = record.message;
  for (let i = 0; i < parts.length; i++) {
    message += i % 2 === 0 ? String(parts[i]) : text(parts[i]);
  }
  return JSON.stringify(
    {
      "@timestamp": new Date(record.timestamp).toISOString(),
      level: record.level.toUpperCase(),
      message,
      logger: record.category.join("."),
      properties: record.properties,
    },
    replacer,
  ) + "\n";
}
