/**
 * HTTP to MQTT: `POST /publish/<topic>` publishes the request body,
 * `GET /retained/<topic>` returns the topic's last retained value as JSON.
 * The bridge keeps retained values from a subscription to `#` made with
 * `retainAsPublished`, so it also sees retained messages published by
 * others.
 *
 * ```sh
 * deno run -A examples/http_bridge.ts          # HTTP on KITE_HTTP_PORT (8080)
 * curl -X POST 'localhost:8080/publish/home/lamp?retain=1&qos=1' -d '{"on":true}'
 * curl localhost:8080/retained/home/lamp        # {"topic":"home/lamp","value":{"on":true},...}
 * ```
 *
 * `KITE_EXAMPLE_COUNT` stops it after that many requests.
 *
 * @module
 */

import { Client, type Message } from "@kite/mqtt/client";
import { MqttError } from "@kite/mqtt/codec";

const count = Number(Deno.env.get("KITE_EXAMPLE_COUNT") ?? Infinity);
const client = new Client({
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
});
await client.connect();

interface Retained {
  payload: Uint8Array;
  contentType: string | undefined;
  at: string;
}
const retained = new Map<string, Retained>();
function remember(topic: string, payload: Uint8Array, contentType?: string) {
  if (payload.length === 0) retained.delete(topic); // an empty one clears it
  else {retained.set(topic, {
      payload,
      contentType,
      at: new Date().toISOString(),
    });}
}
await client.subscribe(
  "#",
  { qos: 1, retainAsPublished: true },
  (m: Message) => {
    if (!m.retain) return;
    remember(m.topic, m.payload, m.properties.contentType);
    console.log(`retained ${m.topic} (${m.payload.length} bytes)`);
  },
);

const json = (body: unknown, status = 200) => Response.json(body, { status });
let requests = 0;
const ac = new AbortController();

async function handle(req: Request): Promise<Response> {
  const url = new URL(req.url);
  const [, route, ...rest] = url.pathname.split("/");
  const topic = decodeURIComponent(rest.join("/"));
  if (route === "publish" && req.method === "POST" && topic) {
    const body = new Uint8Array(await req.arrayBuffer());
    const qos = Number(url.searchParams.get("qos") ?? 1);
    const retain = ["1", "true"].includes(url.searchParams.get("retain") ?? "");
    const contentType = req.headers.get("content-type") ?? undefined;
    try {
      const r = await client.publish(topic, body, {
        qos: qos === 0 || qos === 2 ? qos : 1,
        retain,
        ...(contentType ? { properties: { contentType } } : {}),
      });
      if (retain) remember(topic, body, contentType);
      return json({ topic, bytes: body.length, reasonCode: r.reasonCode });
    } catch (e) {
      const code = e instanceof MqttError ? e.reasonCode : 0x80;
      return json({ error: (e as Error).message, reasonCode: code }, 502);
    }
  }
  if (route === "retained" && req.method === "GET" && topic) {
    const r = retained.get(topic);
    if (!r) return json({ error: `no retained message on ${topic}` }, 404);
    const text = new TextDecoder().decode(r.payload);
    let value: unknown = text;
    try {
      value = JSON.parse(text);
    } catch { /* not JSON: the text */ }
    return json({
      topic,
      value,
      contentType: r.contentType ?? null,
      receivedAt: r.at,
    });
  }
  return json(
    { error: "use POST /publish/<topic> or GET /retained/<topic>" },
    404,
  );
}

const server = Deno.serve({
  hostname: "127.0.0.1",
  port: Number(Deno.env.get("KITE_HTTP_PORT") ?? 8080),
  signal: ac.signal,
  onListen: ({ port }) => console.log(`http listening on port ${port}`),
}, async (req) => {
  const res = await handle(req);
  if (++requests >= count) queueMicrotask(() => ac.abort());
  return res;
});

await server.finished;
await client.disconnect();
console.log(`served ${requests} requests`);
