/**
 * Dialers: how the client opens a connection to the broker. A `Dialer`
 * hands the client one `Duplex` (codec/duplex.ts) per connection, so
 * everything above it (link, state, client) is the same for every
 * transport. `TcpDialer` and `TlsDialer` use Deno's sockets and wrap them in
 * the codec's lean `ConnDuplex` (small read buffers, fast `raw` reads); this
 * is the only client module that uses the `Deno` namespace.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import { ConnDuplex } from "../codec/_conn_duplex.ts";

/**
 * Opens connections to one broker.
 *
 * @example
 * ```ts ignore
 * const dialer: Dialer = new TcpDialer({ hostname: "127.0.0.1", port: 1883 });
 * const duplex = await dialer.dial();
 * await duplex.write(connectBytes);
 * ```
 */
export interface Dialer {
  /** Where it connects (`host:port`), for messages. */
  readonly address: string;
  /** Opens a new connection; rejects when the broker cannot be reached. */
  dial(): Promise<Duplex>;
}

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
    const common: { caCerts?: string[]; alpnProtocols?: string[] } = {};
    if (o.caCerts !== undefined) common.caCerts = o.caCerts;
    if (alpn.length > 0) common.alpnProtocols = alpn;
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

/**
 * The dialer of the client's `host`, `port` and `tls` options: TCP, or TLS
 * with the given CA certificates. The `tls` option offers no ALPN, as
 * before there were dialers.
 *
 * @example
 * ```ts ignore
 * const dialer = dialerFor("127.0.0.1", 8883, { caCerts: [ca] });
 * ```
 */
export function dialerFor(
  hostname: string,
  port: number,
  tls: boolean | { caCerts?: string[] } | undefined,
): Dialer {
  if (!tls) return new TcpDialer({ hostname, port });
  return new TlsDialer({
    hostname,
    port,
    ...(typeof tls === "object" && tls.caCerts ? { caCerts: tls.caCerts } : {}),
    alpnProtocols: [],
  });
}
