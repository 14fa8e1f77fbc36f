/**
 * The admin API, `/api/v1/...` (JSON):
 *
 * | method | path                   | what                                              |
 * | ------ | ---------------------- | ------------------------------------------------- |
 * | GET    | `/clients`             | connected clients (`?id=` `?user=` prefixes)      |
 * | GET    | `/clients/{id}`        | one connected client                              |
 * | DELETE | `/clients/{id}`        | kick it (v5 DISCONNECT 0x98; 3.1.1: closed)       |
 * | GET    | `/sessions`            | sessions, offline too (`?id=` `?user=` `?connected=`) |
 * | GET    | `/sessions/{id}`       | one session                                       |
 * | DELETE | `/sessions/{id}`       | end it (its client kicked, its will published)    |
 * | GET    | `/subscriptions`       | subscriptions (`?filter=` covering, `?clientId=`) |
 * | GET    | `/retained`            | retained messages matching `?filter=` (default #) |
 * | DELETE | `/retained?filter=F`   | delete the retained messages matching F           |
 * | POST   | `/publish`             | publish `{topic, payload, qos, retain, encoding}` |
 *
 * Lists are paged with `?limit=` (1 to 1000, default 100) and `?offset=`,
 * sorted by client id (retained messages by topic), and answered as
 * `{ "data": [...], "meta": { "total", "offset", "limit", "count" } }`.
 * Errors are `{ "status", "message" }` with a 4xx status for bad input.
 *
 * @module
 */

import { MqttError } from "../../codec/errors.ts";
import type { Properties, QoS } from "../../codec/packet.ts";
import { validateTopicFilter, validateTopicName } from "../../codec/topic.ts";
import { Admin } from "../admin.ts";
import type { BrokerCore } from "../core.ts";
import type { StoredMessage } from "../store/store.ts";
import type { ClientView, SessionView } from "../views.ts";
import { isSysTopic, tooDeep } from "../_topic_rules.ts";
import { fromBase64, HttpError, json, toBase64 } from "./_json.ts";
import { filterCovers } from "./_filter.ts";

/** The path prefix of the API. */
export const API_PREFIX = "/api/v1/";

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;
/** Payload bytes shown per retained message in a list. */
const PAYLOAD_SHOWN = 64 * 1024;

const utf8 = new TextDecoder("utf-8", { fatal: true });

/** Answers an API request (`path`: the part after `/api/v1/`). */
export async function handleApi(
  core: BrokerCore,
  req: Request,
  url: URL,
  path: string,
): Promise<Response> {
  const slash = path.indexOf("/");
  const resource = slash < 0 ? path : path.slice(0, slash);
  const id = slash < 0 ? undefined : decodeId(path.slice(slash + 1));
  const q = url.searchParams;
  const admin = new Admin(core);
  switch (resource) {
    case "clients":
      if (id === undefined) {
        allow(req, ["GET"]);
        return list(q, filterClients(admin.clients(), q));
      }
      allow(req, ["GET", "DELETE"]);
      if (req.method === "GET") {
        return json(timesOf(found(admin.client(id), "client", id)));
      }
      if (!admin.kick(id)) notFound("client", id);
      return new Response(null, { status: 204 });
    case "sessions":
      if (id === undefined) {
        allow(req, ["GET"]);
        return list(q, filterSessions(admin.sessions(), q));
      }
      allow(req, ["GET", "DELETE"]);
      if (req.method === "GET") {
        return json(timesOf(found(admin.session(id), "session", id)));
      }
      if (!admin.endSession(id)) notFound("session", id);
      return new Response(null, { status: 204 });
    case "subscriptions": {
      noId(id);
      allow(req, ["GET"]);
      const filter = optionalFilter(q);
      const clientId = q.get("clientId");
      const subs = admin.subscriptions().filter((s) =>
        (clientId === null || s.clientId === clientId) &&
        (filter === undefined || filterCovers(filter, innerFilter(s.filter)))
      );
      return list(q, subs);
    }
    case "retained": {
      noId(id);
      allow(req, ["GET", "DELETE"]);
      if (req.method === "DELETE") {
        const filter = optionalFilter(q);
        if (filter === undefined) {
          throw new HttpError(400, "DELETE /retained needs ?filter=");
        }
        let deleted = 0;
        for (const m of admin.retainedMatching(filter)) {
          if (admin.deleteRetained(m.topic)) deleted++;
        }
        return json({ deleted });
      }
      const found = admin.retainedMatching(optionalFilter(q) ?? "#");
      found.sort((a, b) => a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0);
      return list(q, found, retainedJson);
    }
    case "publish":
      noId(id);
      allow(req, ["POST"]);
      return json({
        delivered: core.publish(await publishBody(core, req), undefined),
      });
    default:
      throw new HttpError(404, `no such resource: ${url.pathname}`);
  }
}

function decodeId(text: string): string {
  if (text === "") throw new HttpError(404, "empty client id in the path");
  try {
    return decodeURIComponent(text);
  } catch {
    throw new HttpError(400, `bad percent-encoding in ${text}`);
  }
}

function noId(id: string | undefined): void {
  if (id !== undefined) throw new HttpError(404, `no such resource: ${id}`);
}

function allow(req: Request, methods: string[]): void {
  if (!methods.includes(req.method)) {
    throw new HttpError(
      405,
      `${req.method} is not allowed here (${methods.join(", ")})`,
      { allow: methods.join(", ") },
    );
  }
}

function notFound(what: string, id: string): never {
  throw new HttpError(404, `no ${what} ${JSON.stringify(id)}`);
}

function found<T>(v: T | undefined, what: string, id: string): T {
  if (v === undefined) notFound(what, id);
  return v;
}

/** A non-negative integer query parameter, or `fallback`. */
function intParam(
  q: URLSearchParams,
  name: string,
  fallback: number,
  min: number,
  max: number,
): number {
  const text = q.get(name);
  if (text === null || text === "") return fallback;
  if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new HttpError(
      400,
      `${name} must be an integer from ${min} to ${max}`,
    );
  }
  return Number(text);
}

/** `?filter=`, checked as an MQTT topic filter. */
function optionalFilter(q: URLSearchParams): string | undefined {
  const filter = q.get("filter");
  if (filter === null || filter === "") return undefined;
  try {
    validateTopicFilter(filter);
  } catch (e) {
    if (e instanceof MqttError) {
      throw new HttpError(
        400,
        `bad filter ${JSON.stringify(filter)}: ${e.message}`,
      );
    }
    throw e;
  }
  return filter;
}

/** The filter a `$share/{group}/{filter}` subscription matches with. */
function innerFilter(filter: string): string {
  if (!filter.startsWith("$share/")) return filter;
  const slash = filter.indexOf("/", 7);
  return slash < 0 ? filter : filter.slice(slash + 1);
}

/** One page of `items` (sorted by the caller), shaped by `shape`. */
function list<T>(
  q: URLSearchParams,
  items: T[],
  shape: (item: T) => unknown = timesOf,
): Response {
  const limit = intParam(q, "limit", DEFAULT_LIMIT, 1, MAX_LIMIT);
  const offset = intParam(q, "offset", 0, 0, Number.MAX_SAFE_INTEGER);
  const page = items.slice(offset, offset + limit).map(shape);
  return json({
    data: page,
    meta: { total: items.length, offset, limit, count: page.length },
  });
}

const byId = (a: { clientId: string }, b: { clientId: string }) =>
  a.clientId < b.clientId ? -1 : a.clientId > b.clientId ? 1 : 0;

function prefixMatch(
  value: string | undefined,
  prefix: string | null,
): boolean {
  return prefix === null || (value !== undefined && value.startsWith(prefix));
}

function filterClients(all: ClientView[], q: URLSearchParams): ClientView[] {
  const id = q.get("id");
  const user = q.get("user");
  return all.filter((c) =>
    prefixMatch(c.clientId, id) && prefixMatch(c.username, user)
  ).sort(byId);
}

function filterSessions(all: SessionView[], q: URLSearchParams): SessionView[] {
  const id = q.get("id");
  const user = q.get("user");
  const connected = q.get("connected");
  if (connected !== null && connected !== "true" && connected !== "false") {
    throw new HttpError(400, "connected must be true or false");
  }
  return all.filter((s) =>
    prefixMatch(s.clientId, id) && prefixMatch(s.username, user) &&
    (connected === null || String(s.connected) === connected)
  ).sort(byId);
}

/** A view with its epoch-ms fields (`...At`) as ISO 8601 text. */
function timesOf<T>(view: T): unknown {
  const out: Record<string, unknown> = { ...view as Record<string, unknown> };
  for (const k of ["connectedAt", "disconnectedAt", "expiresAt"]) {
    const v = out[k];
    if (typeof v === "number") out[k] = new Date(v).toISOString();
  }
  return out;
}

/** A payload as UTF-8 text when it is, else base64. */
function payloadJson(p: Uint8Array): { payload: string; encoding: string } {
  try {
    return { payload: utf8.decode(p), encoding: "utf8" };
  } catch {
    return { payload: toBase64(p), encoding: "base64" };
  }
}

/** v5 properties as JSON (bytes as base64). */
function propertiesJson(props: Properties): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(props)) {
    out[k] = v instanceof Uint8Array ? toBase64(v) : v;
  }
  return out;
}

function retainedJson(m: StoredMessage): unknown {
  const shown = m.payload.length > PAYLOAD_SHOWN
    ? m.payload.subarray(0, PAYLOAD_SHOWN)
    : m.payload;
  const out: Record<string, unknown> = {
    topic: m.topic,
    qos: m.qos,
    size: m.payload.length,
    ...payloadJson(shown),
  };
  if (shown !== m.payload) out.truncated = true;
  if (m.expiresAt !== undefined) {
    out.expiresAt = new Date(m.expiresAt).toISOString();
  }
  if (m.properties !== undefined) out.properties = propertiesJson(m.properties);
  return out;
}

const PUBLISH_KEYS = new Set([
  "topic",
  "payload",
  "encoding",
  "qos",
  "retain",
  "properties",
]);
const PROPERTY_KEYS = new Set([
  "contentType",
  "responseTopic",
  "messageExpiryInterval",
  "payloadFormatIndicator",
  "userProperties",
]);

/** Reads the body of `req` as JSON, at most `max` bytes. */
async function readJson(req: Request, max: number): Promise<unknown> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    // A browser page of another site can only send a JSON body after a
    // CORS preflight (which this server never allows).
    throw new HttpError(415, "the body must be application/json");
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body !== null) {
    for await (const chunk of req.body) {
      size += chunk.length;
      if (size > max) {
        throw new HttpError(413, `the body is larger than ${max} bytes`);
      }
      chunks.push(chunk);
    }
  }
  const bytes = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    bytes.set(c, at);
    at += c.length;
  }
  try {
    return JSON.parse(new TextDecoder().decode(bytes));
  } catch (e) {
    throw new HttpError(400, `bad JSON: ${(e as Error).message}`);
  }
}

function bad(message: string): never {
  throw new HttpError(400, message);
}

/** The message a `POST /publish` body describes, checked. */
async function publishBody(
  core: BrokerCore,
  req: Request,
): Promise<StoredMessage> {
  const s = core.settings;
  const body = await readJson(req, s.maxPacketSize * 2 + 64 * 1024);
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    bad("the body must be a JSON object");
  }
  const b = body as Record<string, unknown>;
  for (const k of Object.keys(b)) {
    if (!PUBLISH_KEYS.has(k)) bad(`unknown key ${JSON.stringify(k)}`);
  }
  const topic = b.topic;
  if (typeof topic !== "string") bad("topic must be a string");
  try {
    validateTopicName(topic);
  } catch (e) {
    if (e instanceof MqttError) bad(`bad topic: ${e.message}`);
    throw e;
  }
  if (isSysTopic(topic)) bad("$SYS topics are the broker's");
  if (tooDeep(topic, s.maxTopicLevels)) {
    bad(`topic with more than ${s.maxTopicLevels} levels (maxTopicLevels)`);
  }
  const qos = b.qos ?? 0;
  if (qos !== 0 && qos !== 1 && qos !== 2) bad("qos must be 0, 1 or 2");
  if (qos > s.maxQos) bad(`qos ${qos} is above maxQos ${s.maxQos}`);
  const retain = b.retain ?? false;
  if (typeof retain !== "boolean") bad("retain must be true or false");
  if (retain && !s.retainAvailable) bad("retain is not available");
  const encoding = b.encoding ?? "utf8";
  if (encoding !== "utf8" && encoding !== "base64") {
    bad('encoding must be "utf8" or "base64"');
  }
  const text = b.payload ?? "";
  if (typeof text !== "string") bad("payload must be a string");
  const payload = encoding === "utf8"
    ? new TextEncoder().encode(text)
    : fromBase64(text) ?? bad("payload is not base64");
  if (payload.length > s.maxPacketSize) {
    throw new HttpError(
      413,
      `payload larger than maxPacketSize ${s.maxPacketSize}`,
    );
  }
  const message: StoredMessage = {
    topic,
    payload,
    qos: qos as QoS,
    retain,
  };
  if (b.properties !== undefined) {
    message.properties = publishProperties(b.properties);
    if (message.properties.payloadFormatIndicator === 1) {
      try {
        utf8.decode(payload);
      } catch {
        bad("payloadFormatIndicator 1 with a payload that is not UTF-8");
      }
    }
    const mei = message.properties.messageExpiryInterval;
    if (mei !== undefined) message.expiresAt = Date.now() + mei * 1000;
  }
  return message;
}

function publishProperties(value: unknown): Properties {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    bad("properties must be a JSON object");
  }
  const p = value as Record<string, unknown>;
  const out: Properties = {};
  for (const [k, v] of Object.entries(p)) {
    if (!PROPERTY_KEYS.has(k)) bad(`unknown property ${JSON.stringify(k)}`);
    if (k === "contentType" || k === "responseTopic") {
      if (typeof v !== "string") bad(`${k} must be a string`);
      out[k] = v;
    } else if (k === "messageExpiryInterval") {
      if (
        !Number.isInteger(v) || (v as number) < 0 || (v as number) > 0xffffffff
      ) {
        bad("messageExpiryInterval must be an integer from 0 to 4294967295");
      }
      out.messageExpiryInterval = v as number;
    } else if (k === "payloadFormatIndicator") {
      if (v !== 0 && v !== 1) bad("payloadFormatIndicator must be 0 or 1");
      out.payloadFormatIndicator = v;
    } else {
      if (typeof v !== "object" || v === null || Array.isArray(v)) {
        bad("userProperties must be an object of strings");
      }
      out.userProperties = Object.entries(v as Record<string, unknown>).map(
        ([key, val]) => {
          if (typeof val !== "string") {
            bad("userProperties must be an object of strings");
          }
          return [key, val];
        },
      );
    }
  }
  if (out.responseTopic !== undefined) {
    try {
      validateTopicName(out.responseTopic);
    } catch {
      bad("responseTopic must be a topic name");
    }
  }
  return out;
}
