/**
 * Dialers: how the client opens a connection to the broker. A `Dialer`
 * hands the client one `Duplex` (codec/duplex.ts) per connection, so
 * everything above it (link, state, client) is the same for every
 * transport.
 *
 * This module is portable (no `Deno` namespace): the `Dialer` interface and
 * `WebSocketDialer`, over the web platform's `WebSocket`, which the browser
 * build uses. Deno's TCP and TLS dialers live apart, in socket_dialer.ts,
 * so that a browser bundle never reaches them.
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import { WebSocketDuplex } from "./_ws_duplex.ts";

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
  /** Where it connects (`host:port` or a URL), for messages. */
  readonly address: string;
  /** Opens a new connection; rejects when the broker cannot be reached. */
  dial(): Promise<Duplex>;
}

/** Options of `WebSocketDialer`. */
export interface WebSocketDialerOptions {
  /** The broker's WebSocket URL, path included: `ws://host:port/mqtt`. */
  url: string | URL;
  /** Subprotocols offered. Default `["mqtt"]` (MQTT 5.0 section 6.0). */
  protocols?: string[];
  /**
   * `write()` of a connection waits while the socket buffers more than this
   * many bytes (`WebSocket.send` has no backpressure). Default 1 MiB.
   */
  maxBufferedAmount?: number;
  /**
   * Received bytes that may wait to be read (a WebSocket cannot be paused:
   * while the client does not read, e.g. a full `messages()` iterator,
   * frames pile up). Above it the connection is closed with an error (and
   * reconnected; QoS 1/2 messages come again). Default 16 MiB.
   */
  maxReadBuffer?: number;
  /**
   * Makes the socket, e.g. with Deno's `client` option for private CA
   * certificates. Default `new WebSocket(url, protocols)`.
   */
  createWebSocket?: (url: string, protocols: string[]) => WebSocket;
}

/**
 * MQTT over WebSocket (MQTT 5.0 chapter 6) with the standard `WebSocket`
 * class, in Deno and in browsers: binary frames, subprotocol `mqtt`
 * (the connection fails when the server does not accept it), writes that
 * wait while `bufferedAmount` is above a bound. Packets split across frames
 * or packed into one are both read correctly.
 *
 * @example
 * ```ts ignore
 * const dialer = new WebSocketDialer({ url: "wss://broker.example/mqtt" });
 * const client = new WebClient({ dialer });
 * await client.connect();
 * ```
 */
export class WebSocketDialer implements Dialer {
  /** The URL it connects to. */
  readonly url: string;
  #options: WebSocketDialerOptions;

  /**
   * Creates a dialer; nothing is opened until `dial()`. Throws a
   * `TypeError` for a URL that is not `ws:` or `wss:`.
   */
  constructor(options: WebSocketDialerOptions) {
    this.url = webSocketDialerUrl(options.url, "WebSocketDialer").href;
    this.#options = { ...options };
  }

  /** The URL. */
  get address(): string {
    return this.url;
  }

  /** Opens the WebSocket; resolves once it is open with subprotocol `mqtt`. */
  async dial(): Promise<Duplex> {
    const o = this.#options;
    const protocols = o.protocols ?? ["mqtt"];
    const ws = o.createWebSocket
      ? o.createWebSocket(this.url, protocols)
      : new WebSocket(this.url, protocols);
    const duplexOptions: ConstructorParameters<typeof WebSocketDuplex>[1] = {
      remoteAddress: new URL(this.url).host,
    };
    if (o.maxBufferedAmount !== undefined) {
      duplexOptions.maxBufferedAmount = o.maxBufferedAmount;
    }
    if (o.maxReadBuffer !== undefined) {
      duplexOptions.maxReadBuffer = o.maxReadBuffer;
    }
    const duplex = new WebSocketDuplex(ws, duplexOptions);
    await duplex.opened;
    if (protocols.length > 0 && !protocols.includes(duplex.protocol)) {
      duplex.close();
      throw subprotocolRefused(protocols, duplex.protocol);
    }
    return duplex;
  }
}

/**
 * `url` parsed, for a WebSocket dialer's constructor (`dialer` names it):
 * a `TypeError` when it is not `ws:` or `wss:`.
 */
export function webSocketDialerUrl(url: string | URL, dialer: string): URL {
  const u = new URL(url);
  if (u.protocol !== "ws:" && u.protocol !== "wss:") {
    throw new TypeError(
      `${dialer} needs a ws:// or wss:// URL, not ${u.protocol}//`,
    );
  }
  return u;
}

/** The error of a WebSocket handshake whose server picked none of `offered`. */
export function subprotocolRefused(
  offered: readonly string[],
  got: string,
): Error {
  return new Error(
    `the server did not accept the WebSocket subprotocol ${
      offered.join(", ")
    } (got "${got}")`,
  );
}
