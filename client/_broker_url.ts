/**
 * Where the client connects: a broker URL (`mqtt://`, `mqtts://`, `ws://`,
 * `wss://`, and MQTT.js's aliases `tcp://`, `ssl://`, `tls://`) merged with
 * the `host`, `port` and `tls` options into one `BrokerTarget` (private).
 * Default ports follow MQTT.js: 1883 (mqtt), 8883 (mqtts), 80 (ws), 443
 * (wss); a WebSocket path defaults to `/`. Options given beside the URL win
 * over the URL's parts, as in MQTT.js.
 *
 * @module
 */

import type { ClientOptions } from "./options.ts";

/** The transport of a broker URL. */
export type BrokerProtocol = "mqtt" | "mqtts" | "ws" | "wss";

/** A broker address with its transport. */
export interface BrokerTarget {
  /** The transport. */
  protocol: BrokerProtocol;
  /** Host name or address (an IPv6 address without brackets). */
  hostname: string;
  /** Port. */
  port: number;
  /** WebSocket path with the query string (`/` by default). */
  path: string;
  /** User name from the URL (percent-decoded), if any. */
  username?: string;
  /** Password from the URL (percent-decoded), if any. */
  password?: string;
}

const SCHEMES: Readonly<Record<string, BrokerProtocol>> = {
  mqtt: "mqtt",
  tcp: "mqtt",
  mqtts: "mqtts",
  ssl: "mqtts",
  tls: "mqtts",
  ws: "ws",
  wss: "wss",
};

/** The port of each transport when none is given (as MQTT.js). */
export const DEFAULT_PORTS: Readonly<Record<BrokerProtocol, number>> = {
  mqtt: 1883,
  mqtts: 8883,
  ws: 80,
  wss: 443,
};

/**
 * Parses a broker URL; throws a `TypeError` with a one-line message for a
 * bad one.
 *
 * @example
 * ```ts ignore
 * parseBrokerUrl("wss://user:pw@broker.example/mqtt");
 * // { protocol: "wss", hostname: "broker.example", port: 443, path: "/mqtt", username: "user", password: "pw" }
 * ```
 */
export function parseBrokerUrl(url: string): BrokerTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new TypeError(
      `bad broker URL "${url}" (expected mqtt://, mqtts://, ws:// or wss://host[:port])`,
    );
  }
  const scheme = u.protocol.slice(0, -1).toLowerCase();
  const protocol = SCHEMES[scheme];
  if (protocol === undefined) {
    throw new TypeError(
      `unsupported broker URL scheme "${scheme}:" (use mqtt, mqtts, ws or wss)`,
    );
  }
  let hostname = u.hostname;
  if (hostname.startsWith("[") && hostname.endsWith("]")) {
    hostname = hostname.slice(1, -1);
  }
  if (hostname === "") {
    throw new TypeError(`broker URL "${url}" has no host`);
  }
  const t: BrokerTarget = {
    protocol,
    hostname,
    port: u.port === "" ? DEFAULT_PORTS[protocol] : Number(u.port),
    path: (u.pathname === "" ? "/" : u.pathname) + u.search,
  };
  if (u.username !== "") t.username = decodeURIComponent(u.username);
  if (u.password !== "") t.password = decodeURIComponent(u.password);
  return t;
}

/**
 * The target of a client's options: `url` if given (its `host`/`port`
 * overridden by the options'), else `host`, `port` and `tls`.
 */
export function brokerTarget(o: ClientOptions): BrokerTarget {
  if (o.url !== undefined) {
    const t = parseBrokerUrl(o.url);
    if (o.host !== undefined) t.hostname = o.host;
    if (o.port !== undefined) t.port = o.port;
    return t;
  }
  const protocol: BrokerProtocol = o.tls ? "mqtts" : "mqtt";
  return {
    protocol,
    hostname: o.host ?? "127.0.0.1",
    port: o.port ?? DEFAULT_PORTS[protocol],
    path: "/",
  };
}

/** The URL of a WebSocket target (`ws://host:port/path`). */
export function webSocketUrl(t: BrokerTarget): string {
  const host = t.hostname.includes(":") ? `[${t.hostname}]` : t.hostname;
  const path = t.path.startsWith("/") ? t.path : `/${t.path}`;
  return `${t.protocol}://${host}:${t.port}${path}`;
}
