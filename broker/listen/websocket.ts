/**
 * The MQTT-over-WebSocket listener (`ws://`, and `wss://` with a
 * certificate), as the MQTT 5.0 spec's chapter 6 says: `Deno.serve` answers
 * the HTTP upgrade, `Deno.upgradeWebSocket` makes the socket, and each one
 * is a `WebSocketDuplex` (binary frames only; packets may span or share
 * frames).
 *
 * The upgrade request must:
 * - ask for `path` (default `/mqtt`): else 404;
 * - be a WebSocket upgrade: else 426;
 * - come from one of `allowedOrigins`, when that is set and the request has
 *   an `Origin` header (browsers always send one): else 403;
 * - offer the subprotocol `mqtt` (or `mqttv3.1`, which MQTT.js offers for
 *   3.1 clients) [MQTT-6.0.0-3]: else 400; the one chosen is echoed
 *   [MQTT-6.0.0-4];
 * - find a place under the listener's `maxConnections`: else 503.
 * Each refusal is one log line naming the peer and the reason.
 *
 * `close()` stops accepting at once (new upgrades get 503), but the HTTP
 * server closes every socket it upgraded when it shuts down, so it is shut
 * down only once the last accepted connection has closed (`finished`
 * resolves then); until then the port stays bound.
 *
 * Certificates of a `wss://` listener are read at start. `Deno.serve` has
 * no way to swap them, and restarting it would close every WebSocket, so
 * `reloadCertificates()` restarts it only while it has no connection, and
 * otherwise rejects with a message saying so.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Duplex } from "../../codec/duplex.ts";
import {
  badCertificate,
  readTlsFiles,
  sameMaterial,
  type TlsMaterial,
} from "./_tls_files.ts";
import { isBindError } from "./listen_error.ts";
import { ConnectionCount, ReadyQueue } from "./_tracked.ts";
import { WebSocketDuplex, type WebSocketOwner } from "./_ws_duplex.ts";
import { type Listener, type ListenerAddr, listenerUrl } from "./listener.ts";

const log = getLogger(["kite", "broker", "listen"]);

/** The default path of the WebSocket endpoint. */
export const DEFAULT_WS_PATH = "/mqtt";
/** The subprotocols accepted, in order of preference. */
const SUBPROTOCOLS = ["mqtt", "mqttv3.1"];
/** Default bound on input sent and not read yet, per connection. */
const INPUT_LIMIT = 8 * 1024 * 1024;

/** Options of a `WebSocketListener`. */
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
  /**
   * Bytes a client may have sent and the broker not read yet (a WebSocket
   * cannot be paused); past it the connection is closed. Default 8 MiB.
   */
  inputLimit?: number | undefined;
}

/** A refusal: the HTTP status, and the reason (logged and sent as the body). */
function refuse(status: number, reason: string): Response {
  return new Response(reason + "\n", {
    status,
    headers: { "content-type": "text/plain; charset=utf-8" },
  });
}

/** The first subprotocol of ours that the request offers. */
function pickSubprotocol(header: string | null): string | undefined {
  if (header === null) return undefined;
  const offered = header.split(",").map((s) => s.trim());
  return SUBPROTOCOLS.find((p) => offered.includes(p));
}

/**
 * A WebSocket listener (`ws://`, or `wss://` given `certFile` and
 * `keyFile`).
 *
 * @example
 * ```ts ignore
 * const l = new WebSocketListener({ hostname: "0.0.0.0", port: 8080 });
 * broker.serve(l); // clients connect to ws://host:8080/mqtt
 * ```
 */
export class WebSocketListener implements Listener, WebSocketOwner {
  readonly addr: ListenerAddr;
  #options: WebSocketListenOptions;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #material: TlsMaterial | undefined;
  #url: string;
  #path: string;
  #origins: ReadonlySet<string> | undefined;
  #count: ConnectionCount;
  #ready = new ReadyQueue();
  #live = new Set<WebSocketDuplex>();
  #closed = false;
  #finished = Promise.withResolvers<void>();
  #shutdown = false;

  /**
   * Reads the files (`wss://`) and binds at once; throws when a file cannot
   * be read, the certificate is refused, or the address cannot be bound.
   */
  constructor(options: WebSocketListenOptions) {
    this.#options = options;
    const secure = options.certFile !== undefined ||
      options.keyFile !== undefined;
    if (secure) {
      if (options.certFile === undefined || options.keyFile === undefined) {
        throw new Error("wss needs both certFile and keyFile");
      }
      this.#material = readTlsFiles({
        certFile: options.certFile,
        keyFile: options.keyFile,
      });
    }
    this.#path = options.path ?? DEFAULT_WS_PATH;
    this.#origins = options.allowedOrigins === undefined
      ? undefined
      : new Set(options.allowedOrigins);
    this.#server = this.#serve(options.port);
    const a = this.#server.addr;
    this.addr = {
      protocol: secure ? "wss" : "ws",
      hostname: a.hostname,
      port: a.port,
    };
    this.#url = listenerUrl(this.addr);
    this.#count = new ConnectionCount(
      options.maxConnections ?? Infinity,
      log,
      this.#url,
    );
  }

  /** The URL clients connect to: the listener's URL and path. */
  get endpoint(): string {
    return this.#url + this.#path;
  }

  #serve(port: number): Deno.HttpServer<Deno.NetAddr> {
    const handler = (req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) =>
      this.#handle(req, info);
    const base = {
      hostname: this.#options.hostname,
      port,
      onListen() {},
      onError: (e: unknown) => {
        log.error("{url}: {error}", { url: this.#url, error: String(e) });
        return refuse(500, "internal error");
      },
    };
    const m = this.#material;
    if (m === undefined) return Deno.serve(base, handler);
    try {
      return Deno.serve({ ...base, cert: m.cert, key: m.key }, handler);
    } catch (e) {
      if (isBindError(e)) throw e;
      throw new Error(badCertificate(e), { cause: e });
    }
  }

  #handle(req: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>): Response {
    // Read before upgrading: the address is gone afterwards.
    const peer = `${info.remoteAddr.hostname}:${info.remoteAddr.port}`;
    const no = (status: number, reason: string): Response => {
      log.info("{url}: refused {peer} with {status}: {reason}", {
        url: this.#url,
        peer,
        status,
        reason,
      });
      return refuse(status, reason);
    };
    if (this.#closed) return no(503, "the broker is closing");
    const path = new URL(req.url).pathname;
    if (path !== this.#path) {
      return no(404, `no MQTT endpoint at ${path} (try ${this.#path})`);
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return no(426, "MQTT over WebSocket: connect with a WebSocket client");
    }
    const origin = req.headers.get("origin");
    if (
      this.#origins !== undefined && origin !== null &&
      !this.#origins.has(origin)
    ) {
      return no(403, `origin ${origin} is not allowed`);
    }
    const offered = req.headers.get("sec-websocket-protocol");
    const protocol = pickSubprotocol(offered);
    if (protocol === undefined) {
      return no(
        400,
        `the WebSocket subprotocol must be mqtt (offered: ${
          offered ?? "none"
        }) [MQTT-6.0.0-3]`,
      );
    }
    if (!this.#count.tryAcquire()) {
      return refuse(503, "too many connections");
    }
    let upgrade: Deno.WebSocketUpgrade;
    try {
      // idleTimeout 0: MQTT's keep alive watches the connection.
      upgrade = Deno.upgradeWebSocket(req, { protocol, idleTimeout: 0 });
    } catch (e) {
      this.#count.release();
      return no(400, e instanceof Error ? e.message : String(e));
    }
    const d = new WebSocketDuplex(upgrade.socket, {
      remoteAddress: peer,
      owner: this,
      inputLimit: this.#options.inputLimit ?? INPUT_LIMIT,
    });
    this.#live.add(d);
    return upgrade.response;
  }

  /** `WebSocketOwner`: a socket opened. */
  opened(d: WebSocketDuplex): void {
    this.#ready.push(d);
  }

  /** `WebSocketOwner`: a duplex is done. */
  closed(d: WebSocketDuplex): void {
    if (!this.#live.delete(d)) return;
    this.#count.release();
    if (this.#closed && this.#live.size === 0) this.#stopServer();
  }

  /** `WebSocketOwner`: a peer broke a rule. */
  violation(d: WebSocketDuplex, reason: string): void {
    log.info("{url}: closing {peer}: {reason}", {
      url: this.#url,
      peer: d.remoteAddress,
      reason,
    });
  }

  async *accept(): AsyncIterable<Duplex> {
    while (true) {
      const d = await this.#ready.next();
      if (d === undefined) return;
      yield d;
    }
  }

  reloadCertificates(): Promise<boolean> {
    try {
      const m = this.#material;
      if (this.#closed || m === undefined) return Promise.resolve(false);
      const next = readTlsFiles({
        certFile: this.#options.certFile!,
        keyFile: this.#options.keyFile!,
      });
      if (sameMaterial(next, m)) return Promise.resolve(false);
      if (this.#live.size > 0) {
        throw new Error(
          `${this.#url}: the new certificate is served after a restart ` +
            `(Deno.serve cannot swap it without closing the ${this.#live.size} WebSocket connection(s))`,
        );
      }
      return this.#restart(next);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  async #restart(next: TlsMaterial): Promise<boolean> {
    const old = this.#server;
    const previous = this.#material;
    await old.shutdown();
    this.#material = next;
    try {
      this.#server = this.#serve(this.addr.port);
    } catch (e) {
      this.#material = previous;
      this.#server = this.#serve(this.addr.port);
      throw e;
    }
    return true;
  }

  /** Resolves once the HTTP server is shut down (see the module doc). */
  get finished(): Promise<void> {
    return this.#finished.promise;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#ready.end();
    if (this.#live.size === 0) this.#stopServer();
  }

  #stopServer(): void {
    if (this.#shutdown) return;
    this.#shutdown = true;
    this.#server.shutdown().then(
      () => this.#finished.resolve(),
      () => this.#finished.resolve(),
    );
  }
}
