/**
 * `GET /metrics`: the exposition is valid Prometheus text (checked by the
 * strict parser in _prometheus_parser.ts), names follow the rules (`kite_`
 * prefix, counters end in `_total`, units in the name), and every value
 * equals the traffic the test made and what the broker itself reports.
 */

import assert from "node:assert/strict";
import { encode } from "../codec/encode.ts";
import type { Packet, ProtocolVersion } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { METRIC_FAMILIES } from "../broker/http/prometheus.ts";
import { DROP_REASONS } from "../broker/metrics.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import { publishPacket, RawClient, subscribeOne } from "./_helpers.ts";
import { parsePrometheus } from "./_prometheus_parser.ts";
import { eventually, request, scrape, startHttpBroker } from "./_http.ts";

Deno.test("parsePrometheus() refuses what the text format forbids", () => {
  const ok = "# HELP a_total A.\n# TYPE a_total counter\na_total 1\n";
  parsePrometheus(ok);
  const bad: [string, RegExp][] = [
    ["a 1", /newline/],
    ["# TYPE a counter\n# TYPE a counter\na 1\n", /TYPE a twice/],
    ["a 1\n# TYPE a counter\n", /after its samples/],
    ['a 1\nb 1\na{x="1"} 2\n', /not one group/],
    ['a{x="\\q"} 1\n', /bad escape/],
    ["a{x=1} 1\n", /not quoted/],
    ['a{__x="1"} 1\n', /bad label name/],
    ["a 1\na 2\n", /twice/],
    ["a one\n", /bad value/],
    ["1a 1\n", /bad name/],
    ["# TYPE a counter\na -1\n", /negative/],
    [
      '# TYPE h histogram\nh_bucket{le="1"} 2\nh_bucket{le="+Inf"} 1\nh_sum 1\nh_count 1\n',
      /not cumulative/,
    ],
    [
      '# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n',
      /\+Inf/,
    ],
  ];
  for (const [text, re] of bad) {
    assert.throws(() => parsePrometheus(text), re, JSON.stringify(text));
  }
});

Deno.test("GET /metrics is Prometheus text 0.0.4: kite_ names, counters in _total, every family described", async () => {
  const broker = await startHttpBroker();
  try {
    const r = await request(broker, "/metrics");
    assert.equal(r.status, 200);
    assert.equal(
      r.headers.get("content-type"),
      "text/plain; version=0.0.4; charset=utf-8",
    );
    const families = parsePrometheus(r.text);
    assert.deepEqual(
      [...families.keys()],
      METRIC_FAMILIES.map((f) => f.name),
    );
    for (const f of families.values()) {
      assert.match(f.name, /^kite_[a-z_]+$/);
      assert.ok(f.help !== undefined && f.help.length > 0, f.name);
      if (f.type === "counter") assert.match(f.name, /_total$/);
      else assert.doesNotMatch(f.name, /_total$/);
      // Units in the name, last (before _total): what counts bytes or
      // seconds ends in _bytes or _seconds.
      for (const unit of ["bytes", "seconds"]) {
        if (new RegExp(`\\b${unit}\\b`, "i").test(f.help!)) {
          assert.match(f.name, new RegExp(`_${unit}(_total)?$`), f.name);
        }
      }
    }
    assert.equal(
      families.get("kite_store_commit_duration_seconds")!.type,
      "histogram",
    );
    // One series per drop reason.
    assert.deepEqual(
      families.get("kite_messages_dropped_total")!.samples.map((s) =>
        s.labels.reason
      ),
      DROP_REASONS,
    );
    // Only GET and HEAD.
    const post = await request(broker, "/metrics", { method: "POST" });
    assert.equal(post.status, 405);
    assert.equal(post.headers.get("allow"), "GET, HEAD");
  } finally {
    await broker.close();
  }
});

/** Encoded size of what a client sends. */
function size(p: Packet, version: ProtocolVersion): number {
  return encode(p, { version }).length;
}

Deno.test("GET /metrics counts N clients and M messages exactly, as the broker does", async () => {
  const broker = await startHttpBroker();
  const port = broker.addr.port;
  const N = 6;
  const M = 25;
  const clients: RawClient[] = [];
  try {
    let bytesIn = 0;
    for (let i = 0; i < N; i++) {
      const version: ProtocolVersion = i % 2 === 0 ? 4 : 5;
      const connect: Packet = {
        type: "connect",
        protocolVersion: version,
        clientId: `c${i}`,
        cleanStart: true,
        keepAlive: 0,
      };
      const client = await RawClient.open(port, version);
      client.recordBytes = true;
      clients.push(client);
      await client.send(connect);
      await client.expect("connack");
      bytesIn += size(connect, version);
    }
    const [sub, pub] = [clients[0]!, clients[1]!];
    await subscribeOne(sub, "t/#", 0);
    bytesIn += size({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "t/#", qos: 0 }],
    }, 4);
    let s = await scrape(broker);
    assert.equal(s.value("kite_live_connections"), N);
    assert.equal(s.value("kite_connections"), N);
    assert.equal(s.value("kite_connections_total"), N);
    assert.equal(s.value("kite_client_connected_total"), N);
    assert.equal(s.value("kite_sessions"), N);
    assert.equal(s.value("kite_session_created_total"), N);
    assert.equal(s.value("kite_subscriptions"), 1);
    assert.equal(s.value("kite_live_connections_max"), N);
    assert.equal(s.value("kite_live_connections"), broker.connectedClients);
    assert.equal(s.value("kite_sessions"), broker.sessionCount);

    for (let i = 0; i < M; i++) {
      const p = publishPacket(`t/${i}`, `m${i}`);
      bytesIn += size(p, 5);
      await pub.send(p);
    }
    for (let i = 0; i < M; i++) await sub.expectPublish(`t/${i}`);
    await eventually(async () => {
      s = await scrape(broker);
      assert.equal(s.value("kite_messages_sent_total"), M);
    });
    assert.equal(s.value("kite_messages_received_total"), M);
    assert.equal(s.value("kite_packets_received_total"), N + 1 + M);
    assert.equal(s.value("kite_packets_sent_total"), N + 1 + M);
    assert.equal(s.value("kite_received_bytes_total"), bytesIn);
    // Payload bytes only, as Mosquitto's $SYS/broker/publish/bytes/*.
    let payloads = 0;
    for (let i = 0; i < M; i++) payloads += `m${i}`.length;
    assert.equal(s.value("kite_publish_received_bytes_total"), payloads);
    assert.equal(s.value("kite_publish_sent_bytes_total"), payloads);
    // Every byte the clients read: CONNACKs, the SUBACK, the PUBLISHes.
    const read = clients.reduce(
      (n, c) => n + c.bytes.reduce((k, b) => k + b.length, 0),
      0,
    );
    assert.equal(s.value("kite_sent_bytes_total"), read);
    assert.equal(s.value("kite_sent_bytes_total"), broker.stats.bytesSent);
    assert.equal(
      s.value("kite_messages_received_total"),
      broker.stats.messagesReceived,
    );
    assert.equal(
      s.value("kite_messages_sent_total"),
      broker.stats.messagesSent,
    );

    // Disconnects: N - 2 leave, two stay.
    for (const c of clients.slice(2)) await c.disconnect();
    await eventually(async () => {
      s = await scrape(broker);
      assert.equal(s.value("kite_live_connections"), 2);
    });
    assert.equal(s.value("kite_client_disconnected_total"), N - 2);
    assert.equal(s.value("kite_live_connections_max"), N);
    assert.equal(s.value("kite_sessions"), 2); // clean sessions end
  } finally {
    for (const c of clients) await c.close();
    await broker.close();
  }
});

Deno.test("GET /metrics counts dropped messages by reason: no subscribers, refused, receive maximum, too large, queue full, expired", async () => {
  const realNow = Date.now;
  let skew = 0;
  Date.now = () => realNow() + skew;
  // A store that says it is durable: acknowledgements wait for its commits
  // (the in-memory store's own `durable: false` lets them through at once).
  const store = new class extends MemoryStore {
    override readonly durable = true;
  }();
  const broker = await startHttpBroker({
    receiveMaximum: 2,
    maxQueuedMessages: 2,
    store,
  });
  const port = broker.addr.port;
  const open: RawClient[] = [];
  const dropped = async (reason: string) =>
    (await scrape(broker)).value("kite_messages_dropped_total", { reason });
  try {
    const { client: p } = await RawClient.connect(port, {
      clientId: "p",
      protocolVersion: 5,
    });
    open.push(p);
    const ping = async (c: RawClient) => {
      await c.send({ type: "pingreq" });
      await c.expect("pingresp");
    };
    // No subscribers: 3 messages nobody subscribed to.
    for (let i = 0; i < 3; i++) await p.send(publishPacket("nobody/here", "x"));
    // Refused: a QoS 0 PUBLISH to $SYS.
    await p.send(publishPacket("$SYS/x", "x"));
    await ping(p);
    assert.equal(await dropped("no_subscribers"), 3);
    assert.equal(await dropped("refused"), 1);

    // Too large: a v5 subscriber with Maximum Packet Size 40.
    const { client: small } = await RawClient.connect(port, {
      clientId: "small",
      protocolVersion: 5,
      properties: { maximumPacketSize: 40 },
    });
    open.push(small);
    await subscribeOne(small, "big/#", 0);
    await p.send(publishPacket("big/1", "x".repeat(100)));
    await ping(p);
    assert.equal(await dropped("too_large"), 1);

    // Queue full: an offline 3.1.1 session (maxQueuedMessages 2) gets 5
    // QoS 1 messages: the 3 oldest are dropped.
    const off = await RawClient.connect(port, {
      clientId: "off",
      cleanStart: false,
    });
    await subscribeOne(off.client, "q/#", 1);
    await off.client.disconnect();
    await eventually(() => assert.equal(broker.connectedClients, 2));
    for (let i = 1; i <= 5; i++) {
      await p.send(publishPacket("q/1", `m${i}`, { qos: 1, packetId: i }));
      await p.expect("puback");
    }
    let s = await scrape(broker);
    assert.equal(
      s.value("kite_messages_dropped_total", { reason: "queue_full" }),
      3,
    );
    assert.equal(s.value("kite_queued_messages"), 2);
    assert.equal(s.value("kite_queued_bytes"), 2 * ("q/1".length + 2));
    // The QoS 1 messages queued for a persistent session were committed
    // before their PUBACKs: the commit latency histogram saw them.
    assert.ok(s.value("kite_store_commit_duration_seconds_count") >= 1);
    assert.equal(broker.stats.messagesDropped, 3 + 1);

    // Expired: a message with a 10 s expiry, queued for the offline
    // session, and the clock moved past it before the session resumes.
    await p.send(publishPacket("q/1", "soon", {
      qos: 1,
      packetId: 9,
      properties: { messageExpiryInterval: 10 },
    }));
    await p.expect("puback");
    skew += 11_000;
    const back = await RawClient.connect(port, {
      clientId: "off",
      cleanStart: false,
    });
    open.push(back.client);
    assert.equal(back.connack.sessionPresent, true);
    // The queue held m4 and m5; "soon" evicted m4 (queue full again). On
    // resuming, m5 is sent and "soon" is dropped as expired.
    const m = await back.client.expectPublish("q/1");
    assert.equal(new TextDecoder().decode(m.payload), "m5");
    await back.client.send({ type: "puback", packetId: m.packetId! });
    await eventually(async () => assert.equal(await dropped("expired"), 1));
    s = await scrape(broker);
    assert.equal(
      s.value("kite_messages_dropped_total", { reason: "queue_full" }),
      4,
    );
    assert.equal(s.value("kite_session_resumed_total"), 1);

    // Receive maximum: a third unacknowledged QoS 2 PUBLISH (maximum 2).
    for (let i = 1; i <= 3; i++) {
      await p.send(publishPacket("r/1", "x", { qos: 2, packetId: 20 + i }));
    }
    await p.expectClosedWith("disconnect", ReasonCode.ReceiveMaximumExceeded);
    assert.equal(await dropped("receive_maximum"), 1);
  } finally {
    Date.now = realNow;
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("GET /metrics counts sessions created, resumed, taken over, discarded, expired and authentication failures", async () => {
  const realNow = Date.now;
  let skew = 0;
  Date.now = () => realNow() + skew;
  const broker = await startHttpBroker({
    authenticate: (c) =>
      c.username === "alice" ? ReasonCode.Success : ReasonCode.NotAuthorized,
  });
  const port = broker.addr.port;
  const open: RawClient[] = [];
  try {
    const login = { username: "alice", password: new Uint8Array([1]) };
    // Refused: anonymous, and a user the hook refuses.
    const anon = await RawClient.connect(port, { clientId: "anon" });
    assert.equal(anon.connack.reasonCode, 0x05);
    open.push(anon.client);
    const bob = await RawClient.connect(port, {
      clientId: "bob",
      username: "bob",
      password: new Uint8Array([1]),
    });
    assert.equal(bob.connack.reasonCode, 0x05);
    open.push(bob.client);
    // Created, then taken over, then resumed, then discarded (clean start).
    const a1 = await RawClient.connect(port, {
      clientId: "a",
      cleanStart: false,
      ...login,
    });
    open.push(a1.client);
    const a2 = await RawClient.connect(port, {
      clientId: "a",
      cleanStart: false,
      ...login,
    });
    open.push(a2.client);
    await a1.client.waitClosed();
    assert.equal(a2.connack.sessionPresent, true);
    await a2.client.disconnect();
    const a3 = await RawClient.connect(port, {
      clientId: "a",
      cleanStart: true,
      ...login,
    });
    open.push(a3.client);
    await a3.client.disconnect();
    // Expired: a v5 session with a 5 s expiry, the clock moved past it.
    const e = await RawClient.connect(port, {
      clientId: "e",
      protocolVersion: 5,
      properties: { sessionExpiryInterval: 5 },
      ...login,
    });
    open.push(e.client);
    await e.client.disconnect();
    await eventually(() => assert.equal(broker.connectedClients, 0));
    skew += 6000;
    let s = await scrape(broker);
    await eventually(async () => {
      s = await scrape(broker);
      assert.equal(s.value("kite_session_expired_total"), 1);
    });
    assert.equal(s.value("kite_authentication_failures_total"), 2);
    assert.equal(s.value("kite_client_connect_refused_total"), 2);
    assert.equal(s.value("kite_client_connected_total"), 4);
    // a (new), a3's clean start (new), e (new); a2 resumed a1's.
    assert.equal(s.value("kite_session_created_total"), 3);
    assert.equal(s.value("kite_session_resumed_total"), 1);
    assert.equal(s.value("kite_session_takenover_total"), 1);
    assert.equal(s.value("kite_session_discarded_total"), 1);
    assert.equal(s.value("kite_sessions"), broker.sessionCount);
    assert.equal(s.value("kite_sessions"), 0);
  } finally {
    Date.now = realNow;
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("README's Operating Kite section lists every metric family", async () => {
  const readme = await Deno.readTextFile(
    new URL("../README.md", import.meta.url),
  );
  const section = readme.slice(readme.indexOf("## Operating Kite"));
  for (const f of METRIC_FAMILIES) {
    assert.match(section, new RegExp("`" + f.name + "[`{]"), f.name);
  }
});
