/**
 * Test helpers for the broker's HTTP server: a broker with `httpPort: 0`,
 * requests to it, a scrape of `/metrics` through the strict parser, and a
 * bounded wait for a condition that the broker reaches asynchronously
 * (counters bumped when a socket write completes).
 *
 * @module
 */

import type { Broker, BrokerInit } from "../broker/mod.ts";
import { startBroker } from "./_helpers.ts";
import {
  parsePrometheus,
  type PromFamily,
  sampleValue,
} from "./_prometheus_parser.ts";

/** Starts a broker (127.0.0.1, port 0, no $SYS) with its HTTP server on a free port. */
export function startHttpBroker(options: BrokerInit = {}): Promise<Broker> {
  return startBroker({ httpPort: 0, ...options });
}

/** `http://127.0.0.1:PORT` of the broker's HTTP server. */
export function baseUrl(broker: Broker): string {
  const a = broker.httpAddr;
  if (a === undefined) throw new Error("the broker has no HTTP server");
  return `http://127.0.0.1:${a.port}`;
}

/** A request to the broker's HTTP server; the body is read (as text). */
export async function request(
  broker: Broker,
  path: string,
  init: RequestInit = {},
): Promise<{ status: number; headers: Headers; text: string; json: unknown }> {
  const r = await fetch(baseUrl(broker) + path, init);
  const text = await r.text();
  let json: unknown = undefined;
  if ((r.headers.get("content-type") ?? "").startsWith("application/json")) {
    json = JSON.parse(text);
  }
  return { status: r.status, headers: r.headers, text, json };
}

/** A JSON request (method, body as JSON). */
export function requestJson(
  broker: Broker,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): ReturnType<typeof request> {
  const init: RequestInit = { method, headers: { ...headers } };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] =
      "application/json";
  }
  return request(broker, path, init);
}

/** A parsed scrape of `/metrics`, with a reader of one sample. */
export interface Scrape {
  families: Map<string, PromFamily>;
  value(name: string, labels?: Record<string, string>): number;
}

/** Scrapes `/metrics` and parses it strictly. */
export async function scrape(broker: Broker): Promise<Scrape> {
  const r = await request(broker, "/metrics");
  if (r.status !== 200) throw new Error(`/metrics: ${r.status} ${r.text}`);
  const families = parsePrometheus(r.text);
  return {
    families,
    value: (name, labels = {}) => sampleValue(families, name, labels),
  };
}

/**
 * Resolves once `check` returns without throwing; retries on the next
 * macrotask until `ms` have passed, then rethrows its last error.
 */
export async function eventually(
  check: () => void | Promise<void>,
  ms = 3000,
): Promise<void> {
  const deadline = performance.now() + ms;
  while (true) {
    try {
      await check();
      return;
    } catch (e) {
      if (performance.now() > deadline) throw e;
      // Let the broker's pending writes and timers run, then look again.
      await new Promise((r) => setTimeout(r, 10));
    }
  }
}
