/**
 * The secure defaults of `broker/main.ts`, as in Mosquitto 2:
 *
 * - with a password file, anonymous clients are refused unless
 *   `allowAnonymous` was given (flag or config file);
 * - without one (no authentication), the broker listens on loopback only
 *   (`127.0.0.1`, `MAIN_DEFAULT_OPTIONS.host`); another interface needs both
 *   an explicit `host` and an explicit `allowAnonymous: true`, else start-up
 *   stops with one line.
 *
 * `resolveOptions` applies them; the library (`new Broker()`) has its own
 * rule for `allowAnonymous` (off when an authentication hook is given, see
 * `anonymousAllowed`).
 *
 * @module
 */

import { ConfigError } from "./config_error.ts";
import { DEFAULT_OPTIONS } from "./defaults.ts";
import type { BrokerSettings, KiteSettings, MainSettings } from "./types.ts";

/**
 * Whether `host` names a loopback interface: `localhost`, `127.0.0.0/8` or
 * `::1`.
 *
 * @example
 * ```ts
 * import { isLoopbackHost } from "./secure_defaults.ts";
 * isLoopbackHost("127.0.0.1"); // true
 * isLoopbackHost("0.0.0.0"); // false
 * ```
 */
export function isLoopbackHost(host: string): boolean {
  const h = host.toLowerCase();
  return h === "localhost" || h === "::1" || h === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * Applies the secure defaults to `options` (the merged settings), knowing
 * which settings were `given` (flags and config file). Returns the options
 * to run with; throws a `ConfigError` (key `host`) for a non-loopback host
 * without authentication and without an explicit `allowAnonymous: true`.
 *
 * @example
 * ```ts
 * import { applySecureDefaults } from "./secure_defaults.ts";
 * import { MAIN_DEFAULT_OPTIONS } from "./defaults.ts";
 * const options = { ...MAIN_DEFAULT_OPTIONS, passwordFile: "kite.passwd" };
 * const out = applySecureDefaults(options, { passwordFile: "kite.passwd" });
 * console.log(out.allowAnonymous, out.host); // false 0.0.0.0
 * ```
 */
export function applySecureDefaults(
  options: Required<BrokerSettings> & MainSettings,
  given: KiteSettings,
): Required<BrokerSettings> & MainSettings {
  const out = { ...options };
  if (out.passwordFile !== undefined) {
    // Authentication configured: anonymous off unless asked for; all
    // interfaces unless a host was given.
    if (given.allowAnonymous === undefined) out.allowAnonymous = false;
    if (given.host === undefined) out.host = DEFAULT_OPTIONS.host;
    return out;
  }
  if (given.allowAnonymous === true) return out;
  if (!isLoopbackHost(out.host)) {
    throw new ConfigError(
      `host ${out.host} without authentication would let anyone connect: ` +
        "give --password-file FILE, or --allow-anonymous to allow that",
      { key: "host" },
    );
  }
  // The same for every listener: its own host, or the broker's; a listener
  // that requires a client certificate authenticates its clients.
  for (const [i, l] of (out.listeners ?? []).entries()) {
    const host = l.host ?? out.host;
    if (l.requireClientCertificate === true || isLoopbackHost(host)) continue;
    throw new ConfigError(
      `listeners[${i}] (${l.protocol} on ${host}:${l.port}) without ` +
        "authentication would let anyone connect: give --password-file " +
        "FILE, requireClientCertificate, or --allow-anonymous",
      { key: "listeners" },
    );
  }
  return out;
}
