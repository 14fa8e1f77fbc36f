/**
 * A bridge's remote addresses: `mqtt://host[:port]` and `mqtts://host[:port]`
 * parsed into what the client dials (private to the bridge). Kept small on
 * purpose: once the client takes URLs itself, this only checks them.
 *
 * @module
 */

/** One remote address. */
export interface BridgeAddress {
  /** As written in the configuration, normalised: `mqtts://host:8883`. */
  url: string;
  /** Host name or address (IPv6 without brackets). */
  host: string;
  /** TCP port. */
  port: number;
  /** Whether to connect with TLS (`mqtts://`). */
  tls: boolean;
}

/**
 * Parses `mqtt://host[:port]` (port 1883 by default) or `mqtts://host[:port]`
 * (8883). Throws an `Error` saying what is wrong: another scheme, no host,
 * a user name, a path or a query (credentials and TLS have keys of their
 * own).
 *
 * @example
 * ```ts ignore
 * parseBridgeAddress("mqtts://broker.example.com");
 * // { url: "mqtts://broker.example.com:8883", host: "broker.example.com", port: 8883, tls: true }
 * ```
 */
export function parseBridgeAddress(text: string): BridgeAddress {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text)?.[1];
  if (scheme === undefined) {
    throw new Error(`must be mqtt://host[:port] or mqtts://host[:port]`);
  }
  const s = scheme.toLowerCase();
  if (s !== "mqtt" && s !== "mqtts") {
    throw new Error(`has scheme "${scheme}": use mqtt:// or mqtts://`);
  }
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    throw new Error(`is not a valid URL`);
  }
  if (u.username !== "" || u.password !== "") {
    throw new Error(`must not hold credentials: use username and password`);
  }
  if ((u.pathname !== "" && u.pathname !== "/") || u.search || u.hash) {
    throw new Error(`must not have a path or query: mqtt(s)://host[:port]`);
  }
  let host = u.hostname;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host === "") throw new Error(`has no host`);
  const tls = s === "mqtts";
  const port = u.port === "" ? (tls ? 8883 : 1883) : Number(u.port);
  if (!(port > 0 && port < 65536)) throw new Error(`has port 0`);
  const shown = host.includes(":") ? `[${host}]` : host;
  return { url: `${s}://${shown}:${port}`, host, port, tls };
}
