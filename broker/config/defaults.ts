/**
 * The defaults of every setting: {@linkcode DEFAULT_OPTIONS} for the library
 * (built from the `default` of each `SETTINGS` row) and
 * {@linkcode MAIN_DEFAULT_OPTIONS} for `broker/main.ts`.
 *
 * @module
 */

import { SETTING_KEYS, SETTINGS } from "./settings.ts";
import type { BrokerOptions, BrokerSettings } from "./types.ts";

/** The `default` of every row that has one: exactly the broker settings. */
function tableDefaults(): Required<BrokerSettings> {
  const out: Record<string, unknown> = {};
  for (const key of SETTING_KEYS) {
    const value = SETTINGS[key].default;
    if (value !== undefined) out[key] = value;
  }
  // The table's row type makes every BrokerSettings row carry a default of
  // the field's type, and every other row carry none.
  return out as Required<BrokerSettings>;
}

/**
 * The defaults of every option.
 *
 * @example
 * ```ts
 * import { DEFAULT_OPTIONS } from "@kite/mqtt/broker";
 * console.log(DEFAULT_OPTIONS.port); // 1883
 * ```
 */
export const DEFAULT_OPTIONS: Readonly<Required<BrokerSettings>> =
  tableDefaults();

/**
 * The defaults of `broker/main.ts`: the library defaults, except that
 * persistence is on and the broker listens on loopback only (`127.0.0.1`;
 * with a password file, `0.0.0.0` and no anonymous clients: see
 * `resolveOptions`).
 *
 * @example
 * ```ts
 * import { MAIN_DEFAULT_OPTIONS } from "@kite/mqtt/broker";
 * console.log(MAIN_DEFAULT_OPTIONS.enablePersistence); // true
 * console.log(MAIN_DEFAULT_OPTIONS.host); // 127.0.0.1
 * ```
 */
export const MAIN_DEFAULT_OPTIONS: Readonly<Required<BrokerSettings>> = {
  ...DEFAULT_OPTIONS,
  host: "127.0.0.1",
  enablePersistence: true,
};

/**
 * Whether a broker with `options` accepts clients without a user name:
 * `allowAnonymous` when given, else only when no authentication hook
 * (`authenticate`, `enhancedAuth`) is configured, as in Mosquitto 2.
 */
export function anonymousAllowed(options: BrokerOptions): boolean {
  return options.allowAnonymous ??
    (options.authenticate === undefined && options.enhancedAuth === undefined);
}
