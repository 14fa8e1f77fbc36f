/**
 * A bridge's remote addresses (private to the bridge): `mqtt://host[:port]`,
 * `mqtts://host[:port]`, `ws://host[:port][/path]` and
 * `wss://host[:port][/path]`, checked and normalised into what the client
 * dials.
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
  /** Whether to connect with TLS (`mqtts://`, `wss://`). */
  tls: boolean;
  /** Over WebSocket (`ws://`, `wss://`): the path, `/mqtt` by default. */
  path?: string;
}

const PORTS: Readonly<Record<string, number>> = {
  mqtt: 1883,
  mqtts: 8883,
  ws: 80,
  wss: 443,
};

const SCHEMES = "mqtt://, mqtts://, ws:// or wss://";

/**
 * Parses `mqtt://host[:port]` (port 1883 by default), `mqtts://host[:port]`
 * (8883), `ws://host[:port][/path]` (80, path `/mqtt`) or
 * `wss://host[:port][/path]` (443). Throws an `Error` saying what is wrong:
 * another scheme, no host, a user name, a query, or a path on an MQTT
 * address (credentials and TLS have keys of their own).
 *
 * @example
 * ```ts ignore
 * parseBridgeAddress("mqtts://broker.example.com");
 * // { url: "mqtts://broker.example.com:8883", host: "broker.example.com", port: 8883, tls: true }
 * parseBridgeAddress("ws://127.0.0.1:8080");
 * // { url: "ws://127.0.0.1:8080/mqtt", host: "127.0.0.1", port: 8080, tls: false, path: "/mqtt" }
 * ```
 */
export function parseBridgeAddress(text: string): BridgeAddress {
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(text)?.[1];
  if (scheme === undefined) throw new Error(`must be an ${SCHEMES} URL`);
  const s = scheme.toLowerCase();
  const defaultPort = PORTS[s];
  if (defaultPort === undefined) {
    throw new Error(`has scheme "${scheme}": use ${SCHEMES}`);
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
  const ws = s === "ws" || s === "wss";
  if (u.search || u.hash) throw new Error(`must not have a query`);
  if (!ws && u.pathname !== "" && u.pathname !== "/") {
    throw new Error(`must not have a path: ${s}://host[:port]`);
  }
  let host = u.hostname;
  if (host.startsWith("[") && host.endsWith("]")) host = host.slice(1, -1);
  if (host === "") throw new Error(`has no host`);
  const tls = s === "mqtts" || s === "wss";
  const port = u.port === "" ? defaultPort : Number(u.port);
  if (!(port > 0 && port < 65536)) throw new Error(`has port 0`);
  const shown = host.includes(":") ? `[${host}]` : host;
  const a: BridgeAddress = { url: `${s}://${shown}:${port}`, host, port, tls };
  if (ws) {
    a.path = u.pathname === "" || u.pathname === "/" ? "/mqtt" : u.pathname;
    a.url += a.path;
  }
  return a;
}
