/**
 * The broker's HTTP server: `/healthz` (200 serving, 503 starting and
 * closing), the admin API under `/api/v1` (every endpoint: status codes,
 * bodies, paging, filters, errors as JSON), its access rules (bearer token;
 * loopback only without one; no DNS rebinding or cross-origin calls), the
 * dashboard page, and a port in use named in the error.
 */

import assert from "node:assert/strict";
import { Broker } from "../broker/mod.ts";
import { checkApiAccess, isLoopback } from "../broker/http/auth.ts";
import { HttpError } from "../broker/http/_json.ts";
import { filterCovers } from "../broker/http/_filter.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import type { LoadedState } from "../broker/store/store.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  bytes,
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
  withTimeout,
} from "./_helpers.ts";
import {
  baseUrl,
  eventually,
  request,
  requestJson,
  startHttpBroker,
} from "./_http.ts";

interface Page<T> {
  data: T[];
  meta: { total: number; offset: number; limit: number; count: number };
}

/** Asserts an error answer: `status` and a JSON `{ status, message }`. */
function assertError(
  r: { status: number; json: unknown },
  status: number,
  message?: RegExp,
): void {
  assert.equal(r.status, status, JSON.stringify(r.json));
  const body = r.json as { status: number; message: string };
  assert.equal(body.status, status);
  assert.equal(typeof body.message, "string");
  if (message !== undefined) assert.match(body.message, message);
}

Deno.test("GET /healthz: 503 starting while the store loads, 200 serving, 503 closing while the store closes", async () => {
  const loading = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const closing = Promise.withResolvers<void>();
  const releaseClose = Promise.withResolvers<void>();
  const inner = new MemoryStore();
  const store = Object.assign(Object.create(inner) as MemoryStore, {
    load: async (): Promise<LoadedState> => {
      loading.resolve();
      await release.promise;
      return inner.load();
    },
    close: async () => {
      closing.resolve();
      await releaseClose.promise;
      await inner.close();
    },
  });
  const broker = new Broker({
    host: "127.0.0.1",
    port: 0,
    sysInterval: 0,
    httpPort: 0,
    store,
  });
  const listening = broker.listen();
  await withTimeout(loading.promise, 5000, "the store load");
  let r = await request(broker, "/healthz");
  assert.equal(r.status, 503);
  assert.equal(r.text, "starting\n");
  release.resolve();
  await listening;
  r = await request(broker, "/healthz");
  assert.equal(r.status, 200);
  assert.equal(r.text, "serving\n");
  const url = baseUrl(broker);
  const closed = broker.close();
  await withTimeout(closing.promise, 5000, "the store close");
  r = await request(broker, "/healthz");
  assert.equal(r.status, 503);
  assert.equal(r.text, "closing\n");
  releaseClose.resolve();
  await closed;
  assert.equal(broker.httpAddr, undefined);
  await assert.rejects(fetch(url + "/healthz"));
});

Deno.test("Broker.listen() names the HTTP address when its port is in use, and releases everything", async () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (taken.addr as Deno.NetAddr).port;
  try {
    const broker = new Broker({
      host: "127.0.0.1",
      port: 0,
      sysInterval: 0,
      httpPort: port,
    });
    await assert.rejects(
      broker.listen(),
      new RegExp(
        `cannot listen on http://127\\.0\\.0\\.1:${port} \\(httpPort\\): address already in use`,
      ),
    );
  } finally {
    taken.close();
  }
});

Deno.test("GET / serves the dashboard page (HTML, no third-party code, a strict CSP)", async () => {
  const broker = await startHttpBroker();
  try {
    const r = await request(broker, "/");
    assert.equal(r.status, 200);
    assert.equal(r.headers.get("content-type"), "text/html; charset=utf-8");
    assert.match(r.text, /^<!doctype html>/);
    assert.match(r.text, /id="stat-clients"/);
    assert.doesNotMatch(r.text, /<script[^>]+src=/);
    assert.match(
      r.headers.get("content-security-policy")!,
      /default-src 'none'.*connect-src 'self'/,
    );
    assertError(await request(broker, "/nothing"), 404);
  } finally {
    await broker.close();
  }
});

Deno.test("GET /api/v1/clients lists connected clients, paged and filtered by id and user prefix", async () => {
  const broker = await startHttpBroker();
  const port = broker.addr.port;
  const clients: RawClient[] = [];
  try {
    const ids = ["dev-3", "dev-1", "other/1", "dev-2", "other/2"];
    for (const [i, id] of ids.entries()) {
      const { client } = await RawClient.connect(port, {
        clientId: id,
        protocolVersion: i % 2 === 0 ? 5 : 4,
        keepAlive: 30 + i,
        ...(id.startsWith("dev") ? { username: `user-${id}` } : {}),
      });
      clients.push(client);
    }
    await subscribeOne(clients[0]!, "a/#", 1);
    let r = await requestJson(broker, "GET", "/api/v1/clients");
    assert.equal(r.status, 200);
    let page = r.json as Page<Record<string, unknown>>;
    assert.deepEqual(page.data.map((c) => c.clientId), [
      "dev-1",
      "dev-2",
      "dev-3",
      "other/1",
      "other/2",
    ]);
    assert.deepEqual(page.meta, { total: 5, offset: 0, limit: 100, count: 5 });
    const dev3 = page.data[2]!;
    assert.equal(dev3.username, "user-dev-3");
    assert.equal(dev3.protocolVersion, 5);
    assert.equal(dev3.keepAlive, 30);
    assert.equal(dev3.subscriptions, 1);
    assert.equal(dev3.inflight, 0);
    assert.equal(dev3.queued, 0);
    assert.match(dev3.address as string, /^127\.0\.0\.1:\d+$/);
    assert.ok(
      Math.abs(Date.parse(dev3.connectedAt as string) - Date.now()) < 60_000,
    );
    // Paging.
    r = await requestJson(broker, "GET", "/api/v1/clients?limit=2&offset=1");
    page = r.json as Page<Record<string, unknown>>;
    assert.deepEqual(page.data.map((c) => c.clientId), ["dev-2", "dev-3"]);
    assert.deepEqual(page.meta, { total: 5, offset: 1, limit: 2, count: 2 });
    r = await requestJson(broker, "GET", "/api/v1/clients?offset=10");
    assert.deepEqual((r.json as Page<unknown>).meta.count, 0);
    // Filters.
    r = await requestJson(broker, "GET", "/api/v1/clients?id=other");
    page = r.json as Page<Record<string, unknown>>;
    assert.deepEqual(page.data.map((c) => c.clientId), ["other/1", "other/2"]);
    r = await requestJson(broker, "GET", "/api/v1/clients?user=user-dev-1");
    page = r.json as Page<Record<string, unknown>>;
    assert.deepEqual(page.data.map((c) => c.clientId), ["dev-1"]);
    // One client; its id percent-encoded (it has a slash).
    r = await requestJson(broker, "GET", "/api/v1/clients/other%2F1");
    assert.equal(r.status, 200);
    assert.equal((r.json as { clientId: string }).clientId, "other/1");
    assertError(
      await requestJson(broker, "GET", "/api/v1/clients/nobody"),
      404,
      /no client "nobody"/,
    );
    // Bad paging.
    for (const q of ["limit=0", "limit=1001", "limit=x", "offset=-1"]) {
      assertError(
        await requestJson(broker, "GET", `/api/v1/clients?${q}`),
        400,
        /must be an integer/,
      );
    }
    // Bad methods and paths.
    const post = await requestJson(broker, "POST", "/api/v1/clients", {});
    assertError(post, 405);
    assert.equal(post.headers.get("allow"), "GET");
    assertError(await requestJson(broker, "GET", "/api/v1/nothing"), 404);
    assertError(
      await requestJson(broker, "GET", "/api/v1/clients/%E0%A4%A"),
      400,
    );
  } finally {
    for (const c of clients) await c.close();
    await broker.close();
  }
});

Deno.test("DELETE /api/v1/clients/:id kicks: v5 DISCONNECT 0x98 Administrative Action, 3.1.1 closed, the will published", async () => {
  const broker = await startHttpBroker();
  const port = broker.addr.port;
  const open: RawClient[] = [];
  try {
    const { client: watcher } = await RawClient.connect(port, {
      clientId: "watcher",
    });
    open.push(watcher);
    await subscribeOne(watcher, "wills/#", 0);
    const will = (id: string) => ({
      topic: `wills/${id}`,
      payload: bytes(`${id} gone`),
      qos: 0 as const,
      retain: false,
    });
    const { client: v5 } = await RawClient.connect(port, {
      clientId: "v5",
      protocolVersion: 5,
      will: will("v5"),
    });
    open.push(v5);
    const { client: v4 } = await RawClient.connect(port, {
      clientId: "v4",
      will: will("v4"),
    });
    open.push(v4);

    let r = await requestJson(broker, "DELETE", "/api/v1/clients/v5");
    assert.equal(r.status, 204);
    assert.equal(r.text, "");
    const d = await v5.expect("disconnect");
    assert.equal(d.reasonCode, ReasonCode.AdministrativeAction);
    await v5.waitClosed();
    // The Server closed the connection without a DISCONNECT from the
    // client: the will is published v5:[MQTT-3.1.2-8].
    assert.equal(
      text((await watcher.expectPublish("wills/v5")).payload),
      "v5 gone",
    );

    r = await requestJson(broker, "DELETE", "/api/v1/clients/v4");
    assert.equal(r.status, 204);
    await v4.waitClosed();
    assert.equal(v4.inbox.filter((p) => p.type === "disconnect").length, 0);
    assert.equal(
      text((await watcher.expectPublish("wills/v4")).payload),
      "v4 gone",
    );

    assertError(
      await requestJson(broker, "DELETE", "/api/v1/clients/v4"),
      404,
      /no client "v4"/,
    );
    await eventually(() => assert.equal(broker.connectedClients, 1));
  } finally {
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("GET /api/v1/sessions lists offline sessions too; DELETE ends one (its client kicked)", async () => {
  const broker = await startHttpBroker();
  const port = broker.addr.port;
  const open: RawClient[] = [];
  try {
    const off = await RawClient.connect(port, {
      clientId: "offline",
      cleanStart: false,
      username: "olga",
    });
    await subscribeOne(off.client, "q/#", 1);
    await off.client.disconnect();
    const { client: on } = await RawClient.connect(port, {
      clientId: "online",
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 60 },
    });
    open.push(on);
    await eventually(() => assert.equal(broker.connectedClients, 1));
    const { client: p } = await RawClient.connect(port, { clientId: "p" });
    open.push(p);
    await p.send(publishPacket("q/1", "queued", { qos: 1 }));
    await p.expect("puback");

    let r = await requestJson(broker, "GET", "/api/v1/sessions");
    assert.equal(r.status, 200);
    const page = r.json as Page<Record<string, unknown>>;
    assert.deepEqual(page.data.map((s) => s.clientId), [
      "offline",
      "online",
      "p",
    ]);
    const offline = page.data[0]!;
    assert.equal(offline.connected, false);
    assert.equal(offline.username, "olga");
    assert.equal(offline.subscriptions, 1);
    assert.equal(offline.queued, 1);
    assert.equal(offline.expiryInterval, 3600); // capped by the broker
    assert.equal(typeof offline.disconnectedAt, "string");
    assert.equal(
      Date.parse(offline.expiresAt as string) -
        Date.parse(offline.disconnectedAt as string),
      3600_000,
    );
    assert.equal(page.data[1]!.connected, true);
    assert.equal(page.data[1]!.expiryInterval, 60);
    r = await requestJson(broker, "GET", "/api/v1/sessions?connected=false");
    assert.deepEqual(
      (r.json as Page<{ clientId: string }>).data.map((s) => s.clientId),
      ["offline"],
    );
    assertError(
      await requestJson(broker, "GET", "/api/v1/sessions?connected=maybe"),
      400,
    );
    r = await requestJson(broker, "GET", "/api/v1/sessions/offline");
    assert.equal((r.json as { queued: number }).queued, 1);

    // Ending the offline session: gone, with its subscription.
    r = await requestJson(broker, "DELETE", "/api/v1/sessions/offline");
    assert.equal(r.status, 204);
    assertError(
      await requestJson(broker, "GET", "/api/v1/sessions/offline"),
      404,
    );
    const resumed = await RawClient.connect(port, {
      clientId: "offline",
      cleanStart: false,
      username: "olga",
    });
    open.push(resumed.client);
    assert.equal(resumed.connack.sessionPresent, false);
    // Ending a connected one kicks its client.
    r = await requestJson(broker, "DELETE", "/api/v1/sessions/online");
    assert.equal(r.status, 204);
    const d = await on.expect("disconnect");
    assert.equal(d.reasonCode, ReasonCode.AdministrativeAction);
    assertError(
      await requestJson(broker, "GET", "/api/v1/sessions/online"),
      404,
    );
    assertError(
      await requestJson(broker, "DELETE", "/api/v1/sessions/online"),
      404,
    );
  } finally {
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("GET /api/v1/subscriptions?filter= lists the subscriptions whose filter matches, shared ones with their group", async () => {
  const broker = await startHttpBroker();
  const port = broker.addr.port;
  const open: RawClient[] = [];
  try {
    const { client: a } = await RawClient.connect(port, {
      clientId: "a",
      protocolVersion: 5,
    });
    open.push(a);
    await a.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [
        { filter: "sensors/+/temp", qos: 1, noLocal: true },
        { filter: "$share/workers/jobs/#", qos: 2 },
        { filter: "other", qos: 0 },
      ],
      properties: { subscriptionIdentifiers: [7] },
    });
    await a.expect("suback");
    const { client: b } = await RawClient.connect(port, { clientId: "b" });
    open.push(b);
    await subscribeOne(b, "sensors/kitchen/temp", 0);

    let r = await requestJson(broker, "GET", "/api/v1/subscriptions");
    let page = r.json as Page<Record<string, unknown>>;
    assert.equal(page.meta.total, 4);
    r = await requestJson(
      broker,
      "GET",
      "/api/v1/subscriptions?filter=" + encodeURIComponent("sensors/#"),
    );
    page = r.json as Page<Record<string, unknown>>;
    assert.equal(page.meta.total, 2);
    const [sa, sb] = page.data;
    assert.equal(sa!.clientId, "a");
    assert.equal(sa!.filter, "sensors/+/temp");
    assert.equal(sa!.qos, 1);
    assert.equal(sa!.noLocal, true);
    assert.equal(sa!.subscriptionIdentifier, 7);
    assert.deepEqual(sb, {
      clientId: "b",
      filter: "sensors/kitchen/temp",
      qos: 0,
    });
    r = await requestJson(
      broker,
      "GET",
      "/api/v1/subscriptions?filter=" + encodeURIComponent("jobs/+"),
    );
    page = r.json as Page<Record<string, unknown>>;
    assert.equal(page.data.length, 1);
    assert.equal(page.data[0]!.filter, "$share/workers/jobs/#");
    assert.equal(page.data[0]!.shareGroup, "workers");
    r = await requestJson(broker, "GET", "/api/v1/subscriptions?clientId=b");
    assert.equal((r.json as Page<unknown>).meta.total, 1);
    assertError(
      await requestJson(broker, "GET", "/api/v1/subscriptions?filter=a/%23/b"),
      400,
      /bad filter/,
    );
  } finally {
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("filterCovers() matches a subscription's filter text level by level", () => {
  assert.equal(filterCovers("#", "$SYS/broker/#"), true);
  assert.equal(filterCovers("sensors/#", "sensors"), true);
  assert.equal(filterCovers("sensors/#", "sensors/+/temp"), true);
  assert.equal(filterCovers("a/+", "a/#"), true);
  assert.equal(filterCovers("a/+", "a/b/c"), false);
  assert.equal(filterCovers("a/b", "a/+"), false);
  assert.equal(filterCovers("a/b", "a/b"), true);
});

Deno.test("GET and DELETE /api/v1/retained?filter=: listed by topic (text or base64), deleted for good", async () => {
  const broker = await startHttpBroker();
  const port = broker.addr.port;
  const open: RawClient[] = [];
  try {
    const { client: p } = await RawClient.connect(port, {
      clientId: "p",
      protocolVersion: 5,
    });
    open.push(p);
    await p.send(
      publishPacket("home/b", "21.5", { retain: true }),
      publishPacket("home/a", new Uint8Array([0xff, 0x00, 0x80]), {
        retain: true,
        qos: 1,
        properties: { contentType: "application/octet-stream" },
      }),
      publishPacket("work/x", "x", { retain: true }),
    );
    await p.expect("puback");
    let r = await requestJson(
      broker,
      "GET",
      "/api/v1/retained?filter=home/%2B",
    );
    assert.equal(r.status, 200);
    assert.deepEqual((r.json as Page<unknown>).data, [
      {
        topic: "home/a",
        qos: 1,
        size: 3,
        payload: "/wCA",
        encoding: "base64",
        properties: { contentType: "application/octet-stream" },
      },
      { topic: "home/b", qos: 0, size: 4, payload: "21.5", encoding: "utf8" },
    ]);
    r = await requestJson(broker, "GET", "/api/v1/retained");
    assert.equal((r.json as Page<unknown>).meta.total, 3);
    assertError(
      await requestJson(broker, "DELETE", "/api/v1/retained"),
      400,
      /needs \?filter=/,
    );
    assertError(
      await requestJson(broker, "GET", "/api/v1/retained?filter=%2B%2B"),
      400,
    );
    r = await requestJson(broker, "DELETE", "/api/v1/retained?filter=home/%23");
    assert.deepEqual(r.json, { deleted: 2 });
    assert.equal(broker.retainedCount, 1);
    // A new subscriber gets only what is left.
    const { client: s } = await RawClient.connect(port, { clientId: "s" });
    open.push(s);
    await subscribeOne(s, "#", 0);
    assert.equal((await s.expectPublish()).topic, "work/x");
    await s.expectNothing((x) => x.type === "publish");
  } finally {
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("POST /api/v1/publish delivers {topic, payload, qos, retain, encoding}; bad input is 4xx", async () => {
  const broker = await startHttpBroker({ maxPacketSize: 1024 });
  const port = broker.addr.port;
  const open: RawClient[] = [];
  try {
    const { client: s } = await RawClient.connect(port, {
      clientId: "s",
      protocolVersion: 5,
    });
    open.push(s);
    await subscribeOne(s, "cmd/#", 1);
    let r = await requestJson(broker, "POST", "/api/v1/publish", {
      topic: "cmd/1",
      payload: "on",
      qos: 1,
      properties: { contentType: "text/plain", userProperties: { by: "api" } },
    });
    assert.equal(r.status, 200);
    assert.deepEqual(r.json, { delivered: 1 });
    let m = await s.expectPublish("cmd/1");
    assert.equal(text(m.payload), "on");
    assert.equal(m.qos, 1);
    assert.equal(m.properties?.contentType, "text/plain");
    assert.deepEqual(m.properties?.userProperties, [["by", "api"]]);
    await s.send({ type: "puback", packetId: m.packetId! });
    r = await requestJson(broker, "POST", "/api/v1/publish", {
      topic: "cmd/2",
      payload: "AAEC",
      encoding: "base64",
      retain: true,
    });
    m = await s.expectPublish("cmd/2");
    assert.deepEqual([...m.payload], [0, 1, 2]);
    assert.equal(broker.retainedCount, 1);

    const bad: [unknown, number, RegExp][] = [
      [{ topic: "cmd/+", payload: "x" }, 400, /bad topic/],
      [{ topic: "$SYS/x" }, 400, /\$SYS/],
      [{ topic: "" }, 400, /bad topic/],
      [{ payload: "x" }, 400, /topic must be a string/],
      [{ topic: "a", qos: 3 }, 400, /qos/],
      [{ topic: "a", retain: "yes" }, 400, /retain/],
      [{ topic: "a", payload: 5 }, 400, /payload/],
      [{ topic: "a", encoding: "hex" }, 400, /encoding/],
      [{ topic: "a", payload: "!!", encoding: "base64" }, 400, /base64/],
      [{ topic: "a", extra: 1 }, 400, /unknown key "extra"/],
      [{ topic: "a", properties: { topicAlias: 1 } }, 400, /unknown property/],
      [[1, 2], 400, /JSON object/],
      [{ topic: "a", payload: "x".repeat(2000) }, 413, /maxPacketSize/],
    ];
    for (const [body, status, re] of bad) {
      assertError(
        await requestJson(broker, "POST", "/api/v1/publish", body),
        status,
        re,
      );
    }
    assertError(
      await request(broker, "/api/v1/publish", {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: "{not json",
      }),
      400,
      /bad JSON/,
    );
    assertError(
      await request(broker, "/api/v1/publish", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: JSON.stringify({ topic: "a" }),
      }),
      415,
    );
    assertError(await requestJson(broker, "GET", "/api/v1/publish"), 405);
    // Still serving MQTT and HTTP.
    await s.send({ type: "pingreq" });
    await s.expect("pingresp");
    assert.equal((await request(broker, "/healthz")).status, 200);
  } finally {
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("The admin API asks for the bearer token when httpToken is set; /metrics, /healthz and / do not", async () => {
  const broker = await startHttpBroker({ httpToken: "s3cret" });
  try {
    let r = await requestJson(broker, "GET", "/api/v1/clients");
    assertError(r, 401, /bearer token is required/);
    assert.equal(r.headers.get("www-authenticate"), 'Bearer realm="kite"');
    r = await requestJson(broker, "GET", "/api/v1/clients", undefined, {
      authorization: "Bearer wrong",
    });
    assertError(r, 401, /wrong bearer token/);
    r = await requestJson(broker, "GET", "/api/v1/clients", undefined, {
      authorization: "Bearer s3cret",
    });
    assert.equal(r.status, 200);
    for (const path of ["/metrics", "/healthz", "/"]) {
      assert.equal((await request(broker, path)).status, 200, path);
    }
  } finally {
    await broker.close();
  }
});

/** One raw HTTP/1.1 request (any Host header); the status code. */
async function rawStatus(port: number, head: string): Promise<number> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(head));
    const buf = new Uint8Array(4096);
    const n = await withTimeout(conn.read(buf), 5000, "the HTTP answer");
    const line = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    return Number(/^HTTP\/1\.1 (\d+)/.exec(line)?.[1]);
  } finally {
    conn.close();
  }
}

Deno.test("Without httpToken the admin API refuses another site's page: a Host that is not loopback (DNS rebinding), a cross-origin Origin", async () => {
  const broker = await startHttpBroker();
  const port = broker.httpAddr!.port;
  try {
    const get = (headers: string) =>
      rawStatus(
        port,
        `GET /api/v1/clients HTTP/1.1\r\n${headers}Connection: close\r\n\r\n`,
      );
    assert.equal(await get(`Host: 127.0.0.1:${port}\r\n`), 200);
    assert.equal(await get(`Host: localhost:${port}\r\n`), 200);
    assert.equal(await get(`Host: evil.example:${port}\r\n`), 403);
    assert.equal(
      await get(
        `Host: 127.0.0.1:${port}\r\nOrigin: http://evil.example\r\n`,
      ),
      403,
    );
    assert.equal(
      await get(
        `Host: 127.0.0.1:${port}\r\nOrigin: http://127.0.0.1:${port}\r\n`,
      ),
      200,
    );
  } finally {
    await broker.close();
  }
});

Deno.test("checkApiAccess() without a token answers loopback peers only (403 for others)", () => {
  const req = (host: string) =>
    new Request(`http://${host}/api/v1/clients`, { headers: { host } });
  const peer = (hostname: string) => ({
    remoteAddr: { transport: "tcp" as const, hostname, port: 1234 },
  });
  checkApiAccess(req("127.0.0.1:8080"), peer("127.0.0.1"), "");
  checkApiAccess(req("[::1]:8080"), peer("::1"), "");
  checkApiAccess(req("localhost:8080"), peer("::ffff:127.0.0.1"), "");
  assert.throws(
    () => checkApiAccess(req("127.0.0.1:8080"), peer("192.0.2.7"), ""),
    (e) => e instanceof HttpError && e.status === 403,
  );
  // With a token, any peer that has it.
  const withToken = new Request("http://192.0.2.1/api/v1/clients", {
    headers: { authorization: "Bearer t" },
  });
  checkApiAccess(withToken, peer("192.0.2.7"), "t");
  assert.equal(isLoopback("127.3.2.1"), true);
  assert.equal(isLoopback("128.0.0.1"), false);
  assert.equal(isLoopback("app.localhost"), true);
});

/** A non-loopback IPv4 address of this machine, if it has one. */
function outsideAddress(): string | undefined {
  return Deno.networkInterfaces().find((i) =>
    i.family === "IPv4" && !i.address.startsWith("127.")
  )?.address;
}

Deno.test({
  name:
    "Without httpToken a peer that is not on loopback gets 403 from the admin API, and /metrics",
  ignore: outsideAddress() === undefined,
  async fn() {
    const address = outsideAddress()!;
    const broker = await startHttpBroker({ httpHost: "0.0.0.0" });
    try {
      const url = `http://${address}:${broker.httpAddr!.port}`;
      const api = await fetch(`${url}/api/v1/clients`);
      assert.equal(api.status, 403);
      assert.match(
        ((await api.json()) as { message: string }).message,
        /loopback clients only/,
      );
      const metrics = await fetch(`${url}/metrics`);
      assert.equal(metrics.status, 200);
      await metrics.body?.cancel();
    } finally {
      await broker.close();
    }
  },
});

Deno.test("A broker without httpPort has no HTTP server", async () => {
  const broker = await startBroker();
  assert.equal(broker.httpAddr, undefined);
  await broker.close();
});
