/**
 * Test helper: a WebSocket `Listener` for Kite's broker, until the broker
 * has its own (the transports issue's broker half replaces this file).
 * `Deno.serve` + `Deno.upgradeWebSocket` accept MQTT over WebSocket on
 * `path` (subprotocol `mqtt` or `mqttv3.1`, echoed), and each socket goes to
 * the broker through `broker.serve(listener)` as the client's own
 * `WebSocketDuplex`, so the broker sees what any transport gives it.
 *
 * ```ts
 * const broker = await startBroker();            // TCP, port 0
 * const ws = new TestWsListener();               // ws://127.0.0.1:port/mqtt
 * broker.serve(ws);
 * const client = new Client({ url: ws.url });
 * ```
 *
 * @module
 */

import type { Duplex } from "../codec/duplex.ts";
import type { Listener, ListenerAddr } from "../broker/listen/listener.ts";
import { WebSocketDuplex } from "../client/_ws_duplex.ts";

/** Options of `TestWsListener`. */
export interface TestWsListenerOptions {
  /** Default 127.0.0.1. */
  hostname?: string;
  /** Default 0 (a free port). */
  port?: number;
  /** The MQTT path. Default `/mqtt`. */
  path?: string;
  /** A certificate and key (PEM) to listen with TLS (wss://). */
  tls?: { cert: string; key: string };
  /** Answers requests for other paths (e.g. a page); default 404. */
  fallback?: (req: Request) => Response | Promise<Response>;
}

const SUBPROTOCOLS = ["mqtt", "mqttv3.1"];

/** A `Listener` of MQTT over WebSocket for tests. */
export class TestWsListener implements Listener, AsyncDisposable {
  /** Where it listens. */
  readonly addr: ListenerAddr;
  /** The URL clients connect to, e.g. `ws://127.0.0.1:1234/mqtt`. */
  readonly url: string;
  #path: string;
  #server: Deno.HttpServer<Deno.NetAddr>;
  #accepted: Duplex[] = [];
  #live = new Set<WebSocketDuplex>();
  #waiter: ((d: Duplex | null) => void) | undefined;
  #closed = false;
  #fallback: TestWsListenerOptions["fallback"];

  /** Listens at once. */
  constructor(options: TestWsListenerOptions = {}) {
    this.#path = options.path ?? "/mqtt";
    this.#fallback = options.fallback;
    this.#server = Deno.serve({
      hostname: options.hostname ?? "127.0.0.1",
      port: options.port ?? 0,
      onListen() {},
      ...(options.tls ?? {}),
    }, (req) => this.#handle(req));
    const protocol = options.tls ? "wss" : "ws";
    this.addr = {
      protocol,
      hostname: this.#server.addr.hostname,
      port: this.#server.addr.port,
    };
    this.url =
      `${protocol}://${this.addr.hostname}:${this.addr.port}${this.#path}`;
  }

  #handle(req: Request): Response | Promise<Response> {
    const url = new URL(req.url);
    if (url.pathname !== this.#path) {
      return this.#fallback?.(req) ??
        new Response("not found", { status: 404 });
    }
    if (req.headers.get("upgrade")?.toLowerCase() !== "websocket") {
      return new Response("MQTT over WebSocket only", { status: 400 });
    }
    const offered = (req.headers.get("sec-websocket-protocol") ?? "")
      .split(",").map((s) => s.trim());
    const protocol = SUBPROTOCOLS.find((p) => offered.includes(p));
    if (protocol === undefined || this.#closed) {
      return new Response("subprotocol mqtt required", { status: 400 });
    }
    const { socket, response } = Deno.upgradeWebSocket(req, { protocol });
    const info = this.#server.addr;
    const duplex = new WebSocketDuplex(socket, {
      remoteAddress: `${info.hostname}:${info.port}`,
    });
    this.#live.add(duplex);
    socket.addEventListener("close", () => this.#live.delete(duplex));
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w) w(duplex);
    else this.#accepted.push(duplex);
    return response;
  }

  /** The accepted connections, until `close()`. */
  async *accept(): AsyncIterable<Duplex> {
    while (!this.#closed) {
      const next = this.#accepted.shift() ??
        await new Promise<Duplex | null>((r) => this.#waiter = r);
      if (next === null) return;
      yield next;
    }
  }

  /** Connections open now. */
  get connections(): number {
    return this.#live.size;
  }

  /** Closes every connection from the server side (a dropped link). */
  dropAll(): void {
    for (const d of this.#live) d.close();
  }

  /** Stops accepting (the HTTP server shuts down in the background). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(null);
    for (const d of this.#accepted) d.close();
    this.#accepted = [];
    this.finished = this.#server.shutdown();
  }

  /** Settles when the HTTP server is down (after `close()`). */
  finished: Promise<void> = Promise.resolve();

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
    await this.finished;
  }
}
