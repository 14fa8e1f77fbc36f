/**
 * The broker's own HTTP server (`Deno.serve`), on `httpHost`:`httpPort`
 * when `httpPort` is set (off by default):
 *
 * - `GET /healthz`: 200 `serving`; 503 `starting` or `closing` (load
 *   balancers, Kubernetes probes);
 * - `GET /metrics`: Prometheus text format (prometheus.ts);
 * - `/api/v1/...`: the admin API (api.ts), behind auth.ts;
 * - `GET /`: the dashboard page (dashboard.ts).
 *
 * A bad request is answered with a JSON error (`{ "status", "message" }`,
 * 4xx); nothing a request does reaches the MQTT side but through the
 * core's own methods, and an unexpected failure is a 500, logged, never a
 * crash. `Broker` starts it before loading the store (so `/healthz` says
 * `starting` meanwhile) and closes it last.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { BrokerCore } from "../core.ts";
import { checkApiAccess } from "./auth.ts";
import { API_PREFIX, handleApi } from "./api.ts";
import { DASHBOARD_HTML } from "./dashboard.ts";
import { errorResponse, HttpError, json } from "./_json.ts";
import { PROMETHEUS_CONTENT_TYPE, renderPrometheus } from "./prometheus.ts";

const log = getLogger(["kite", "broker", "http"]);

/** Where the broker is in its life, as `/healthz` says it. */
export type Health = "starting" | "serving" | "closing";

/** Options of {@linkcode HttpServer.start}. */
export interface HttpServerOptions {
  /** Interface to listen on. */
  hostname: string;
  /** Port; 0 picks a free one. */
  port: number;
  /** Bearer token of the admin API; "" for none (loopback only). */
  token: string;
}

const DASHBOARD_HEADERS = {
  "content-type": "text/html; charset=utf-8",
  "cache-control": "no-store",
  "content-security-policy":
    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
};

/**
 * The HTTP server of a broker.
 *
 * @example
 * ```ts ignore
 * const http = HttpServer.start(core, () => "serving", {
 *   hostname: "127.0.0.1",
 *   port: 0,
 *   token: "",
 * });
 * console.log(http.url); // http://127.0.0.1:PORT
 * await http.close();
 * ```
 */
export class HttpServer {
  #server: Deno.HttpServer<Deno.NetAddr>;
  #core: BrokerCore;
  #health: () => Health;
  #token: string;

  private constructor(
    core: BrokerCore,
    health: () => Health,
    options: HttpServerOptions,
  ) {
    this.#core = core;
    this.#health = health;
    this.#token = options.token;
    try {
      this.#server = Deno.serve({
        hostname: options.hostname,
        port: options.port,
        onListen: () => {},
      }, (req, info) => this.#handle(req, info));
    } catch (e) {
      const url = `http://${bracketed(options.hostname)}:${options.port}`;
      const why = e instanceof Deno.errors.AddrInUse
        ? "address already in use"
        : e instanceof Error
        ? e.message
        : String(e);
      throw new Error(`cannot listen on ${url} (httpPort): ${why}`, {
        cause: e,
      });
    }
  }

  /**
   * Listens on `options.hostname`:`options.port`; throws (naming the
   * address) when it cannot.
   */
  static start(
    core: BrokerCore,
    health: () => Health,
    options: HttpServerOptions,
  ): HttpServer {
    return new HttpServer(core, health, options);
  }

  /** The address it listens on (the real port when 0 was asked). */
  get addr(): { hostname: string; port: number } {
    const a = this.#server.addr;
    return { hostname: a.hostname, port: a.port };
  }

  /** `http://host:port`. */
  get url(): string {
    const a = this.addr;
    return `http://${bracketed(a.hostname)}:${a.port}`;
  }

  /** Stops listening; resolves once requests in progress are answered. */
  async close(): Promise<void> {
    await this.#server.shutdown();
  }

  async #handle(
    req: Request,
    info: Deno.ServeHandlerInfo<Deno.NetAddr>,
  ): Promise<Response> {
    let url: URL | undefined;
    try {
      url = new URL(req.url);
      const path = url.pathname;
      if (path.startsWith(API_PREFIX)) {
        checkApiAccess(req, info, this.#token);
        return await handleApi(
          this.#core,
          req,
          url,
          path.slice(API_PREFIX.length),
        );
      }
      switch (path) {
        case "/healthz": {
          readOnly(req);
          const h = this.#health();
          return new Response(`${h}\n`, {
            status: h === "serving" ? 200 : 503,
            headers: {
              "content-type": "text/plain; charset=utf-8",
              "cache-control": "no-store",
            },
          });
        }
        case "/metrics":
          readOnly(req);
          return new Response(renderPrometheus(this.#core.metrics), {
            headers: { "content-type": PROMETHEUS_CONTENT_TYPE },
          });
        case "/":
        case "/index.html":
          readOnly(req);
          return new Response(DASHBOARD_HTML, { headers: DASHBOARD_HEADERS });
        default:
          throw new HttpError(404, `no such resource: ${path}`);
      }
    } catch (e) {
      if (e instanceof HttpError) return errorResponse(e);
      log.error("HTTP {method} {path} failed: {error}", {
        method: req.method,
        path: url?.pathname ?? req.url,
        error: e,
      });
      return json({ status: 500, message: "internal error" }, 500);
    }
  }
}

function readOnly(req: Request): void {
  if (req.method !== "GET" && req.method !== "HEAD") {
    throw new HttpError(405, `${req.method} is not allowed here (GET)`, {
      allow: "GET, HEAD",
    });
  }
}

function bracketed(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
