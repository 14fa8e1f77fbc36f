/**
 * Deno's dialers: `TcpDialer` and `TlsDialer` use Deno's sockets and wrap
 * them in the codec's lean `ConnDuplex` (small read buffers, fast `raw`
 * reads), and `denoDialer()` picks the dialer of a `Client`'s options
 * (TCP, TLS, or WebSocket on Deno's sockets: `DenoWebSocketDialer`). These are the only client transports that use the `Deno`
 * namespace; the portable `Dialer` interface and `WebSocketDialer` are in
 * dialer.ts, which is all a browser build reaches.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import { ConnDuplex } from "../codec/_conn_duplex.ts";
import { type Dialer, webSocketDialerUrl } from "./dialer.ts";
import { webSocketClient } from "./_ws_frames.ts";
import type { ClientOptions, TlsOptions } from "./options.ts";
import { brokerTarget, webSocketUrl } from "./_broker_url.ts";

/** Options of `TcpDialer`. */
export interface TcpDialerOptions {
  /** Broker host. Default `"127.0.0.1"`. */
  hostname?: string;
  /** Broker port. Default 1883. */
  port?: number;
}

/**
 * Plain TCP (`Deno.connect`) with Nagle's algorithm off: the client already
 * coalesces its writes, one per turn of the event loop.
 *
 * @example
 * ```ts ignore
 * const duplex = await new TcpDialer({ port: 1883 }).dial();
 * ```
 */
export class TcpDialer implements Dialer {
  /** The broker host. */
  readonly hostname: string;
  /** The broker port. */
  readonly port: number;

  /** Creates a dialer; nothing is opened until `dial()`. */
  constructor(options: TcpDialerOptions = {}) {
    this.hostname = options.hostname ?? "127.0.0.1";
    this.port = options.port ?? 1883;
  }

  /** `host:port`. */
  get address(): string {
    return `${this.hostname}:${this.port}`;
  }

  /** Connects. */
  async dial(): Promise<Duplex> {
    const conn = await Deno.connect({
      hostname: this.hostname,
      port: this.port,
    });
    try {
      conn.setNoDelay(true);
    } catch { /* not a TCP socket */ }
    return new ConnDuplex(conn);
  }
}

/** Options of `TlsDialer`. */
export interface TlsDialerOptions {
  /** Broker host. Default `"127.0.0.1"`. */
  hostname?: string;
  /** Broker port. Default 8883. */
  port?: number;
  /**
   * CA certificates (PEM text) trusted besides the system's roots, e.g. a
   * private CA that signed the broker's certificate.
   */
  caCerts?: string[];
  /** Client certificate chain (PEM text), for mutual TLS; needs `key`. */
  cert?: string;
  /** The private key of `cert` (PEM text). */
  key?: string;
  /**
   * The name the broker's certificate must carry (and the SNI sent), when
   * it is not `hostname` (e.g. dialing an IP address). Deno cannot send a
   * client certificate in that case, so it cannot be combined with `cert`.
   */
  serverName?: string;
  /**
   * ALPN protocols offered. Default `["mqtt"]`; an empty list offers none.
   */
  alpnProtocols?: string[];
  /**
   * Do not check that the certificate names the host (Deno's
   * `unsafelyDisableHostnameVerification`, as `mosquitto_pub --insecure`);
   * the chain is still verified. For tests only.
   */
  insecure?: boolean;
}

/**
 * TLS (`Deno.connectTls`): the broker's certificate is verified against the
 * system's roots and `caCerts`, optionally with a client certificate, and
 * ALPN `mqtt` is offered.
 *
 * @example
 * ```ts ignore
 * const dialer = new TlsDialer({
 *   hostname: "broker.example", port: 8883,
 *   caCerts: [await Deno.readTextFile("ca.crt")],
 *   cert: await Deno.readTextFile("client.crt"),
 *   key: await Deno.readTextFile("client.key"),
 * });
 * const duplex = await dialer.dial();
 * ```
 */
export class TlsDialer implements Dialer {
  /** The broker host. */
  readonly hostname: string;
  /** The broker port. */
  readonly port: number;
  #options: TlsDialerOptions;

  /**
   * Creates a dialer; nothing is opened until `dial()`. Throws a
   * `TypeError` for `cert` without `key` (or the reverse), and for
   * `serverName` together with a client certificate.
   */
  constructor(options: TlsDialerOptions = {}) {
    if ((options.cert === undefined) !== (options.key === undefined)) {
      throw new TypeError("TLS client certificate needs both cert and key");
    }
    this.hostname = options.hostname ?? "127.0.0.1";
    this.port = options.port ?? 8883;
    if (
      options.serverName !== undefined &&
      options.serverName !== this.hostname && options.cert !== undefined
    ) {
      throw new TypeError(
        "a TLS serverName other than the hostname cannot be combined with " +
          "a client certificate (Deno.startTls sends none)",
      );
    }
    this.#options = { ...options };
  }

  /** `host:port`. */
  get address(): string {
    return `${this.hostname}:${this.port}`;
  }

  /** Connects and completes the TLS handshake. */
  async dial(): Promise<Duplex> {
    const o = this.#options;
    const alpn = o.alpnProtocols ?? ["mqtt"];
    const common: {
      caCerts?: string[];
      alpnProtocols?: string[];
      unsafelyDisableHostnameVerification?: boolean;
    } = {};
    if (o.caCerts !== undefined) common.caCerts = o.caCerts;
    if (alpn.length > 0) common.alpnProtocols = alpn;
    if (o.insecure) common.unsafelyDisableHostnameVerification = true;
    let conn: Deno.TlsConn;
    if (o.serverName !== undefined && o.serverName !== this.hostname) {
      const tcp = await Deno.connect({
        hostname: this.hostname,
        port: this.port,
      });
      try {
        tcp.setNoDelay(true);
        conn = await Deno.startTls(tcp, {
          hostname: o.serverName,
          ...common,
        });
      } catch (e) {
        try {
          tcp.close();
        } catch { /* consumed by startTls */ }
        throw e;
      }
    } else {
      const options: Deno.ConnectTlsOptions = {
        hostname: this.hostname,
        port: this.port,
        ...common,
      };
      conn = o.cert !== undefined
        ? await Deno.connectTls({ ...options, cert: o.cert, key: o.key! })
        : await Deno.connectTls(options);
    }
    try {
      // Fail here, with the TLS error, rather than on the first write.
      await conn.handshake();
    } catch (e) {
      conn.close();
      throw e;
    }
    return new ConnDuplex(conn);
  }
}

/** PEM texts of `TlsOptions`, with its files read. */
interface TlsPems {
  caCerts?: string[];
  cert?: string;
  key?: string;
}

/** Reads the files of `tls` (at each connection attempt). */
async function tlsPems(tls: TlsOptions): Promise<TlsPems> {
  const p: TlsPems = {};
  const ca = [
    ...(tls.caCerts ?? []),
    ...(typeof tls.ca === "string" ? [tls.ca] : tls.ca ?? []),
  ];
  if (tls.caFile !== undefined) ca.push(await Deno.readTextFile(tls.caFile));
  if (ca.length > 0) p.caCerts = ca;
  const cert = tls.certFile !== undefined
    ? await Deno.readTextFile(tls.certFile)
    : tls.cert;
  const key = tls.keyFile !== undefined
    ? await Deno.readTextFile(tls.keyFile)
    : tls.key;
  if (cert !== undefined) p.cert = cert;
  if (key !== undefined) p.key = key;
  return p;
}

/** A dialer that makes its real dialer at each attempt (to read files). */
class LazyDialer implements Dialer {
  readonly address: string;
  #make: () => Promise<Dialer>;

  constructor(address: string, make: () => Promise<Dialer>) {
    this.address = address;
    this.#make = make;
  }

  async dial(): Promise<Duplex> {
    return await (await this.#make()).dial();
  }
}

/** Options of `DenoWebSocketDialer`. */
export interface DenoWebSocketDialerOptions {
  /** The broker's WebSocket URL, path included: `wss://host:port/mqtt`. */
  url: string | URL;
  /** Subprotocols offered. Default `["mqtt"]` (MQTT 5.0 section 6.0). */
  protocols?: string[];
  /**
   * TLS settings of a `wss://` URL, as `TlsDialer`'s (CA certificates,
   * client certificate, server name, `insecure`). ALPN offers `http/1.1`
   * unless `alpnProtocols` says otherwise.
   */
  tls?: Omit<TlsDialerOptions, "hostname" | "port">;
}

/**
 * MQTT over WebSocket on Deno's own sockets: `TcpDialer` or `TlsDialer`
 * (TCP_NODELAY on, every TLS setting) with the RFC 6455 client of
 * `_ws_frames.ts` on top. `Client` uses it for `ws://` and `wss://`:
 * Deno's `WebSocket` class keeps Nagle's algorithm on for its client
 * sockets, which stalls MQTT's small back-to-back writes (measured here:
 * about 30 times fewer QoS 1 messages per second against Kite), and it has
 * no server name or host check setting. The portable `WebSocketDialer`
 * (the browser's) remains for code that wants the standard class.
 *
 * @example
 * ```ts ignore
 * const dialer = new DenoWebSocketDialer({
 *   url: "wss://broker.example/mqtt",
 *   tls: { caCerts: [await Deno.readTextFile("ca.crt")] },
 * });
 * const client = new Client({ dialer });
 * ```
 */
export class DenoWebSocketDialer implements Dialer {
  /** The URL it connects to. */
  readonly url: string;
  #u: URL;
  #options: DenoWebSocketDialerOptions;

  /**
   * Creates a dialer; nothing is opened until `dial()`. Throws a
   * `TypeError` for a URL that is not `ws:` or `wss:`.
   */
  constructor(options: DenoWebSocketDialerOptions) {
    const u = webSocketDialerUrl(options.url, "DenoWebSocketDialer");
    this.#u = u;
    this.url = u.href;
    this.#options = { ...options };
  }

  /** The URL. */
  get address(): string {
    return this.url;
  }

  /** Connects, then does the WebSocket handshake (subprotocol `mqtt`). */
  async dial(): Promise<Duplex> {
    const u = this.#u;
    const secure = u.protocol === "wss:";
    let hostname = u.hostname;
    if (hostname.startsWith("[")) hostname = hostname.slice(1, -1);
    const port = u.port !== "" ? Number(u.port) : secure ? 443 : 80;
    const inner = secure
      ? await new TlsDialer({
        alpnProtocols: ["http/1.1"],
        ...this.#options.tls,
        hostname,
        port,
      }).dial()
      : await new TcpDialer({ hostname, port }).dial();
    return await webSocketClient(inner, {
      host: u.host,
      path: u.pathname + u.search,
      protocols: this.#options.protocols ?? ["mqtt"],
    });
  }
}

/**
 * The dialer of a `Client`'s options (`url`, `host`, `port`, `tls`): TCP,
 * TLS with the `tls` settings (files read at each attempt), or WebSocket
 * on Deno's sockets (`DenoWebSocketDialer`, with the same TLS settings
 * over `wss://`). Throws a `TypeError` for settings that do not go
 * together.
 *
 * @example
 * ```ts ignore
 * const dialer = denoDialer({ url: "mqtts://broker.example", tls: { caFile: "ca.crt" } });
 * const duplex = await dialer.dial();
 * ```
 */
export function denoDialer(o: ClientOptions): Dialer {
  const t = brokerTarget(o);
  const tls: TlsOptions = typeof o.tls === "object" ? o.tls : {};
  const hasCert = tls.cert !== undefined || tls.certFile !== undefined;
  if (hasCert !== (tls.key !== undefined || tls.keyFile !== undefined)) {
    throw new TypeError("a TLS client certificate needs both cert and key");
  }
  switch (t.protocol) {
    case "mqtt":
      return new TcpDialer({ hostname: t.hostname, port: t.port });
    case "ws":
      return new DenoWebSocketDialer({ url: webSocketUrl(t) });
    case "wss": {
      const url = webSocketUrl(t);
      return new LazyDialer(url, async () => {
        const pems = await tlsPems(tls);
        const o: Omit<TlsDialerOptions, "hostname" | "port"> = { ...pems };
        if (tls.alpnProtocols !== undefined) {
          o.alpnProtocols = tls.alpnProtocols;
        }
        if (tls.servername !== undefined) o.serverName = tls.servername;
        if (tls.insecure) o.insecure = true;
        return new DenoWebSocketDialer({ url, tls: o });
      });
    }
    case "mqtts": {
      const address = `${t.hostname}:${t.port}`;
      return new LazyDialer(address, async () => {
        const pems = await tlsPems(tls);
        const d: TlsDialerOptions = {
          hostname: t.hostname,
          port: t.port,
          alpnProtocols: tls.alpnProtocols ?? [],
          ...pems,
        };
        if (tls.servername !== undefined) d.serverName = tls.servername;
        if (tls.insecure) d.insecure = true;
        return new TlsDialer(d);
      });
    }
  }
}
