/**
 * The MQTT-over-WebSocket listener (`ws://`, and `wss://` with a
 * certificate), as the MQTT 5.0 spec's chapter 6 says: the HTTP upgrade
 * (RFC 6455 section 4) is answered on a connection of a `TcpListener` (or a
 * `TlsListener` for `wss://`), and the connection then carries binary
 * frames (`WsServerDuplex`): packets may span or share frames, a text frame
 * closes the connection.
 *
 * The upgrade request must:
 * - be a `GET` for `path` (default `/mqtt`): else 405 or 404;
 * - be a WebSocket upgrade (`Upgrade: websocket`, `Connection: Upgrade`,
 *   `Sec-WebSocket-Version: 13`, a `Sec-WebSocket-Key`): else 426 or 400;
 * - come from one of `allowedOrigins`, when that is set and the request has
 *   an `Origin` header (browsers always send one): else 403;
 * - offer the subprotocol `mqtt` (or `mqttv3.1`, which MQTT.js offers for
 *   3.1 clients) [MQTT-6.0.0-3]: else 400; the one chosen is echoed
 *   [MQTT-6.0.0-4];
 * - find a place under the listener's `maxConnections`: else 503;
 * - arrive whole within `handshakeTimeout` (and at most 8 KiB): else the
 *   connection is closed (431 when too large).
 * Each refusal is one log line naming the peer and the reason, and closes
 * that connection only.
 *
 * Why not `Deno.serve` and `Deno.upgradeWebSocket`: under Deno 2.9 the
 * server closes every socket it upgraded when it shuts down (so `close()`
 * could not leave accepted connections open, nor a certificate reload keep
 * them), it cannot swap its certificate, a `wss://` client that never
 * completes its TLS handshake can never be closed, and its WebSocket has no
 * backpressure either way (`send()` queues without bound; messages arrive
 * whether read or not). Over the broker's own listeners a WebSocket gets
 * what MQTT over TCP and TLS has: socket backpressure, the handshake
 * timeout, certificate reload in place, mutual TLS.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Duplex } from "../../codec/duplex.ts";
import { ConnectionCount, ReadyQueue } from "./_tracked.ts";
import {
  errorResponse,
  hasToken,
  readRequestHead,
  switchingResponse,
  validKey,
} from "./_ws_handshake.ts";
import { type WsOwner, WsServerDuplex } from "./_ws_server_duplex.ts";
import { acceptKey } from "../../codec/_websocket.ts";
import { type Listener, type ListenerAddr, listenerUrl } from "./listener.ts";
import { TcpListener } from "./tcp.ts";
import type { TlsListener } from "./tls.ts";

const log = getLogger(["kite", "broker", "listen"]);

/**
 * The default path of the WebSocket endpoint.
 *
 * @example
 * ```ts
 * import { DEFAULT_WS_PATH } from "@kite/mqtt/broker";
 * console.log(`ws://localhost:8080${DEFAULT_WS_PATH}`); // ws://localhost:8080/mqtt
 * ```
 */
export const DEFAULT_WS_PATH = "/mqtt";
/** The subprotocols accepted, in order of preference. */
const SUBPROTOCOLS = ["mqtt", "mqttv3.1"];
/** Default time a client has for the HTTP upgrade (after TLS, if any). */
const HANDSHAKE_TIMEOUT_MS = 10_000;
/** Upgrades in progress at once; more connections are closed at once. */
const MAX_UPGRADING = 1024;

/** Options of `WebSocketListener.open()`. */
export interface WebSocketListenOptions {
  /** The address to bind. */
  hostname: string;
  /** The port (0: any free one). */
  port: number;
  /** The path of the endpoint. Default `/mqtt`. */
  path?: string | undefined;
  /**
   * Origins (`https://example.com`) browsers may connect from; a request
   * with another `Origin` header gets 403. Absent: any origin.
   */
  allowedOrigins?: readonly string[] | undefined;
  /** Connections this listener holds at most; more get 503. */
  maxConnections?: number | undefined;
  /** For `wss://`: the certificate chain, a PEM file (with `keyFile`). */
  certFile?: string | undefined;
  /** For `wss://`: its private key, a PEM file. */
  keyFile?: string | undefined;
  /** For `wss://`: require client certificates this CA signed. */
  caFile?: string | undefined;
  /** For `wss://` with `caFile`: the certificate's CN is the user name. */
  useIdentityAsUsername?: boolean | undefined;
  /**
   * Milliseconds a client has for the TLS handshake, and again for the
   * HTTP upgrade. Default 10000.
   */
  handshakeTimeout?: number | undefined;
}

/** The first subprotocol of ours that the request offers. */
function pickSubprotocol(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const offered = header.split(",").map((s) => s.trim());
  return SUBPROTOCOLS.find((p) => offered.includes(p));
}

/** A refusal: status, reason, extra headers. */
type Refusal = [number, string, Record<string, string>?];

/**
 * A WebSocket listener (`ws://`, or `wss://` given `certFile` and
 * `keyFile`).
 *
 * @example
 * ```ts ignore
 * const l = await WebSocketListener.open({ hostname: "0.0.0.0", port: 8080 });
 * broker.serve(l); // clients connect to ws://host:8080/mqtt
 * ```
 */
export class WebSocketListener implements Listener {
  readonly addr: ListenerAddr;
  #inner: TcpListener | TlsListener;
  #url: string;
  #path: string;
  #origins: ReadonlySet<string> | undefined;
  #timeout: number;
  #count: ConnectionCount;
  #upgrading = new Set<Duplex>();
  #ready = new ReadyQueue();
  #closed = false;
  /** What the connections tell the listener (one object for all). */
  #owner: WsOwner = {
    violation: (d, reason) => {
      log.info("{url}: closing {peer}: {reason}", {
        url: this.#url,
        peer: d.remoteAddress,
        reason,
      });
    },
    closed: () => this.#count.release(),
  };

  private constructor(
    inner: TcpListener | TlsListener,
    options: WebSocketListenOptions,
  ) {
    this.#inner = inner;
    this.addr = {
      ...inner.addr,
      protocol: inner instanceof TcpListener ? "ws" : "wss",
    };
    this.#url = listenerUrl(this.addr);
    this.#path = options.path ?? DEFAULT_WS_PATH;
    this.#origins = options.allowedOrigins === undefined
      ? undefined
      : new Set(options.allowedOrigins);
    this.#timeout = options.handshakeTimeout ?? HANDSHAKE_TIMEOUT_MS;
    this.#count = new ConnectionCount(
      options.maxConnections ?? Infinity,
      log,
      this.#url,
    );
    this.#acceptLoop();
  }

  /**
   * Listens (TLS first for `wss://`: reads and checks the files); rejects
   * when a file cannot be read, the certificate or key is refused, or the
   * address cannot be bound.
   */
  static async open(
    options: WebSocketListenOptions,
  ): Promise<WebSocketListener> {
    const { hostname, port, certFile, keyFile } = options;
    let inner: TcpListener | TlsListener;
    if (certFile !== undefined || keyFile !== undefined) {
      if (certFile === undefined || keyFile === undefined) {
        throw new Error("wss needs both certFile and keyFile");
      }
      // node:tls is loaded only for a TLS listener (about 5 MB of RSS).
      const { TlsListener } = await import("./tls.ts");
      inner = await TlsListener.open({
        hostname,
        port,
        certFile,
        keyFile,
        caFile: options.caFile,
        useIdentityAsUsername: options.useIdentityAsUsername,
        handshakeTimeout: options.handshakeTimeout,
        protocol: "wss",
        alpnProtocols: ["http/1.1"],
      });
    } else {
      inner = new TcpListener({ hostname, port });
    }
    return new WebSocketListener(inner, options);
  }

  /** The URL clients connect to: the listener's URL and path. */
  get endpoint(): string {
    return this.#url + this.#path;
  }

  async #acceptLoop(): Promise<void> {
    try {
      for await (const d of this.#inner.accept()) {
        if (this.#closed) {
          d.close();
          continue;
        }
        if (this.#upgrading.size >= MAX_UPGRADING) {
          log.warn("{url}: {n} upgrades in progress: connection closed", {
            url: this.#url,
            n: this.#upgrading.size,
          });
          d.close();
          continue;
        }
        this.#upgrade(d);
      }
    } catch (e) {
      // The inner listeners retry failed accepts themselves; this is a bug.
      log.error("{url}: accepting stopped: {error}", {
        url: this.#url,
        error: String(e),
      });
    }
  }

  /** Answers the HTTP upgrade on `d`; the duplex is then ready. */
  async #upgrade(d: Duplex): Promise<void> {
    this.#upgrading.add(d);
    const peer = d.remoteAddress ?? "a client";
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      d.close();
    }, this.#timeout);
    let ok = false;
    try {
      const head = await readRequestHead(d);
      if (timedOut || this.#closed) {
        if (timedOut) {
          this.#refused(
            peer,
            `upgrade not completed within ${this.#timeout} ms`,
          );
        }
        return;
      }
      if (head === "eof") return; // gone before asking anything
      if (head === "too large" || head === "malformed") {
        const status = head === "too large" ? 431 : 400;
        const reason = head === "too large"
          ? "request head over 8 KiB"
          : "malformed HTTP request";
        await this.#refuse(d, peer, [status, reason]);
        return;
      }
      const refusal = this.#check(
        head.method,
        head.path,
        head.version,
        head.headers,
      );
      if (refusal !== undefined) {
        await this.#refuse(d, peer, refusal);
        return;
      }
      if (!this.#count.tryAcquire()) {
        await this.#refuse(d, peer, [503, "too many connections"]);
        return;
      }
      const protocol = pickSubprotocol(
        head.headers.get("sec-websocket-protocol"),
      )!;
      const accept = await acceptKey(head.headers.get("sec-websocket-key")!);
      try {
        await d.write(switchingResponse(accept, protocol));
      } catch {
        this.#count.release();
        return;
      }
      if (timedOut || this.#closed) {
        this.#count.release();
        return;
      }
      ok = true;
      this.#ready.push(new WsServerDuplex(d, this.#owner, head.rest));
    } catch (e) {
      log.info("{url}: upgrade of {peer} failed: {error}", {
        url: this.#url,
        peer,
        error: e instanceof Error ? e.message : String(e),
      });
    } finally {
      clearTimeout(timer);
      this.#upgrading.delete(d);
      if (!ok) d.close();
    }
  }

  /** What is wrong with an upgrade request, if anything. */
  #check(
    method: string,
    path: string,
    version: string,
    h: Map<string, string>,
  ): Refusal | undefined {
    if (method !== "GET") {
      return [405, `method ${method}: use GET`, { Allow: "GET" }];
    }
    if (path !== this.#path) {
      return [404, `no MQTT endpoint at ${path} (try ${this.#path})`];
    }
    if (!hasToken(h.get("upgrade"), "websocket") || version !== "HTTP/1.1") {
      return [
        426,
        "MQTT over WebSocket: connect with a WebSocket client",
        { Upgrade: "websocket" },
      ];
    }
    if (!hasToken(h.get("connection"), "upgrade")) {
      return [400, "Connection: Upgrade is missing"];
    }
    if (h.get("sec-websocket-version") !== "13") {
      return [
        426,
        "WebSocket version 13 required",
        { "Sec-WebSocket-Version": "13" },
      ];
    }
    if (!validKey(h.get("sec-websocket-key"))) {
      return [400, "missing or malformed Sec-WebSocket-Key"];
    }
    const origin = h.get("origin");
    if (
      this.#origins !== undefined && origin !== undefined &&
      !this.#origins.has(origin)
    ) {
      return [403, `origin ${origin} is not allowed`];
    }
    const offered = h.get("sec-websocket-protocol");
    if (pickSubprotocol(offered) === undefined) {
      return [
        400,
        `the WebSocket subprotocol must be mqtt (offered: ${
          offered ?? "none"
        }) [MQTT-6.0.0-3]`,
      ];
    }
    return undefined;
  }

  #refused(peer: string, reason: string): void {
    log.info("{url}: refused {peer}: {reason}", {
      url: this.#url,
      peer,
      reason,
    });
  }

  /** Answers with an HTTP error (logged); the caller closes. */
  async #refuse(d: Duplex, peer: string, r: Refusal): Promise<void> {
    const [status, reason, headers] = r;
    log.info("{url}: refused {peer} with {status}: {reason}", {
      url: this.#url,
      peer,
      status,
      reason,
    });
    try {
      await d.write(errorResponse(status, reason, headers));
    } catch {
      // gone
    }
  }

  accept(): AsyncIterable<Duplex> {
    return this.#ready.accept();
  }

  reloadCertificates(): Promise<boolean> {
    const inner = this.#inner;
    return inner instanceof TcpListener
      ? Promise.resolve(false)
      : inner.reloadCertificates();
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#inner.close();
    for (const d of this.#upgrading) d.close();
    this.#ready.end();
  }
}
