/**
 * {@linkcode validateOptions}: checks an options object from code, JSON or
 * any other source against the `SETTINGS` table.
 *
 * @module
 */

import { validateWithOrigin } from "./_check.ts";
import type { BrokerOptions, MainSettings } from "./types.ts";

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
