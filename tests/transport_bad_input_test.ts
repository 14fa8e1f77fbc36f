/**
 * Bad input on the TLS and WebSocket listeners: each case closes (or
 * refuses) that one connection, with a log line, while a well-behaved
 * client of the same listener goes on. Also the MQTT 5.0 spec's chapter 6
 * rules (binary frames, packets across and within frames, the `mqtt`
 * subprotocol), the per-listener connection limit, and backpressure from a
 * WebSocket client that does not read.
 */

import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import type { Broker, BrokerInit } from "../broker/mod.ts";
import { TlsListener } from "../broker/listen/tls.ts";
import { WebSocketListener } from "../broker/listen/websocket.ts";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet } from "../codec/packet.ts";
import { HAVE_OPENSSL, makeCerts, type TestCerts } from "./_broker_certs.ts";
import { startBroker, withTimeout } from "./_helpers.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";

const certs: TestCerts | undefined = HAVE_OPENSSL
  ? await makeCerts()
  : undefined;
if (certs !== undefined) {
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(certs.dir, { recursive: true });
  });
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Runs `fn` with the listeners' log records captured. */
async function withLog(fn: (records: LogRecord[]) => Promise<void>) {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      {
        category: ["kite", "broker", "listen"],
        sinks: ["memory"],
        lowestLevel: "debug",
      },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
    reset: true,
  });
  try {
    await fn(records);
  } finally {
    await reset();
  }
}

/** The rendered text of each record. */
function lines(records: LogRecord[]): string[] {
  return records.map((r) =>
    r.message.map((p) => typeof p === "string" ? p : String(p)).join("")
  );
}

/** Waits (bounded) until a log line matches `re`. */
async function logged(records: LogRecord[], re: RegExp): Promise<string> {
  return await withTimeout(
    (async () => {
      while (true) {
        const hit = lines(records).find((l) => re.test(l));
        if (hit !== undefined) return hit;
        await new Promise((r) => setTimeout(r, 5));
      }
    })(),
    5000,
    `a log line matching ${re}`,
  );
}

function connectBytes(clientId: string, version: 4 | 5 = 4): Uint8Array {
  return encode({
    type: "connect",
    protocolVersion: version,
    clientId,
    cleanStart: true,
    keepAlive: 0,
  });
}

/** A client that talks MQTT over a standard WebSocket, packet by packet. */
class WsMqtt {
  readonly ws: WebSocket;
  readonly packets: Packet[] = [];
  readonly closed: Promise<CloseEvent>;
  #decoder = new PacketDecoder({ version: 4 });
  #wake: (() => void) | undefined;

  private constructor(ws: WebSocket) {
    this.ws = ws;
    ws.binaryType = "arraybuffer";
    this.closed = new Promise((r) =>
      ws.addEventListener("close", (e) => r(e), { once: true })
    );
    ws.addEventListener("message", (e) => {
      this.#decoder.push(
        new Uint8Array(e.data as ArrayBuffer),
        (p) => this.packets.push(p),
      );
      this.#wake?.();
    });
  }

  static async open(url: string, protocols = ["mqtt"]): Promise<WsMqtt> {
    const ws = new WebSocket(url, protocols);
    await withTimeout(
      new Promise<void>((resolve, reject) => {
        ws.onopen = () => resolve();
        ws.onerror = (e) => reject(new Error((e as ErrorEvent).message));
      }),
      3000,
      "WebSocket open",
    );
    return new WsMqtt(ws);
  }

  /** Waits (bounded) for the next packet of `type`. */
  async expect<T extends Packet["type"]>(type: T): Promise<Packet> {
    return await withTimeout(
      (async () => {
        while (true) {
          const i = this.packets.findIndex((p) => p.type === type);
          if (i >= 0) return this.packets.splice(i, 1)[0]!;
          await new Promise<void>((r) => this.#wake = r);
        }
      })(),
      3000,
      `a ${type} over WebSocket`,
    );
  }

  close(): void {
    this.ws.close();
  }
}

/**
 * Sends a raw HTTP request (`method` GET unless given); returns the status,
 * the headers and the body's first line. A 101 answer is read up to its
 * head; any other until the server closes.
 */
async function rawHttp(
  port: number,
  path: string,
  headers: Record<string, string>,
  method = "GET",
): Promise<{ status: number; head: string; body: string }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const head = [
      `${method} ${path} HTTP/1.1`,
      `Host: 127.0.0.1:${port}`,
      ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
      "",
      "",
    ].join("\r\n");
    await conn.write(enc.encode(head));
    let text = "";
    const buf = new Uint8Array(4096);
    await withTimeout(
      (async () => {
        while (!/^HTTP\/1\.1 101[^]*\r\n\r\n/.test(text)) {
          const n = await conn.read(buf);
          if (n === null) break;
          text += dec.decode(buf.subarray(0, n));
        }
      })(),
      3000,
      "the HTTP response",
    );
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]);
    const end = text.indexOf("\r\n\r\n");
    const body = text.slice(end + 4).split("\n")[0]!;
    return { status, head: text.slice(0, end), body };
  } finally {
    conn.close();
  }
}

/** The headers of a valid WebSocket upgrade, offering `protocol`. */
function upgradeHeaders(protocol?: string): Record<string, string> {
  const h: Record<string, string> = {
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
  };
  if (protocol !== undefined) h["Sec-WebSocket-Protocol"] = protocol;
  return h;
}

function wsPort(broker: Broker): number {
  return broker.listeners.find((l) => l.addr.protocol === "ws")!.addr.port;
}

function startWs(options: BrokerInit = {}, extra = {}): Promise<Broker> {
  return startBroker({
    listeners: [{ protocol: "ws", port: 0, ...extra }],
    ...options,
  });
}

// --- WebSocket ---------------------------------------------------------------

Deno.test("WebSocket: a text frame closes that connection (1003) with a log line; another client goes on [MQTT-6.0.0-1]", async () => {
  await withLog(async (records) => {
    const broker = await startWs();
    const url = `ws://127.0.0.1:${wsPort(broker)}/mqtt`;
    const good = await WsMqtt.open(url);
    const bad = await WsMqtt.open(url);
    try {
      good.ws.send(connectBytes("good"));
      await good.expect("connack");
      bad.ws.send(connectBytes("bad"));
      await bad.expect("connack");
      bad.ws.send("this is text");
      const e = await withTimeout(bad.closed, 3000, "the close");
      assert.equal(e.code, 1003);
      await logged(records, /closing 127\.0\.0\.1:\d+: a text frame/);
      // The other connection still works: PINGREQ -> PINGRESP.
      good.ws.send(new Uint8Array([0xc0, 0]));
      await good.expect("pingresp");
      assert.equal(broker.connectedClients, 1);
    } finally {
      good.close();
      bad.close();
      await broker.close();
    }
  });
});

Deno.test("WebSocket: packets split across frames and packed into one frame both work [MQTT-6.0.0-2]", async () => {
  const broker = await startWs();
  const c = await WsMqtt.open(`ws://127.0.0.1:${wsPort(broker)}/mqtt`);
  try {
    const connect = connectBytes("frames");
    // CONNECT in three frames, one of them a single byte.
    c.ws.send(connect.subarray(0, 1));
    c.ws.send(connect.subarray(1, 7));
    c.ws.send(connect.subarray(7));
    await c.expect("connack");
    // SUBSCRIBE and a QoS 1 PUBLISH to it in one frame.
    const sub = encode({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "f/#", qos: 1 }],
    });
    const pub = encode({
      type: "publish",
      topic: "f/x",
      payload: enc.encode("packed"),
      qos: 1,
      packetId: 2,
      retain: false,
      dup: false,
    });
    const both = new Uint8Array(sub.length + pub.length);
    both.set(sub);
    both.set(pub, sub.length);
    c.ws.send(both);
    await c.expect("suback");
    await c.expect("puback");
    const m = await c.expect("publish");
    assert.equal(
      dec.decode((m as Packet & { payload: Uint8Array }).payload),
      "packed",
    );
  } finally {
    c.close();
    await broker.close();
  }
});

Deno.test("WebSocket: the subprotocol mqtt (or mqttv3.1) is chosen and echoed [MQTT-6.0.0-3] [MQTT-6.0.0-4]", async () => {
  const broker = await startWs();
  const url = `ws://127.0.0.1:${wsPort(broker)}/mqtt`;
  try {
    for (
      const [offered, chosen] of [
        [["mqtt"], "mqtt"],
        [["mqttv3.1"], "mqttv3.1"],
        [["foo", "mqtt"], "mqtt"],
        [["mqttv3.1", "mqtt"], "mqtt"],
      ] as const
    ) {
      const c = await WsMqtt.open(url, [...offered]);
      assert.equal(c.ws.protocol, chosen, `offered ${offered}`);
      c.close();
      await withTimeout(c.closed, 3000, "close");
    }
  } finally {
    await broker.close();
  }
});

Deno.test("WebSocket: a wrong or missing subprotocol gets 400, a wrong path 404, a plain GET 426, each with a reason and a log line", async () => {
  await withLog(async (records) => {
    const broker = await startWs();
    const port = wsPort(broker);
    try {
      const wrong = await rawHttp(port, "/mqtt", upgradeHeaders("foo, bar"));
      assert.equal(wrong.status, 400);
      assert.match(
        wrong.body,
        /subprotocol must be mqtt \(offered: foo, bar\)/,
      );
      const none = await rawHttp(port, "/mqtt", upgradeHeaders());
      assert.equal(none.status, 400);
      assert.match(none.body, /offered: none/);
      const path = await rawHttp(port, "/other", upgradeHeaders("mqtt"));
      assert.equal(path.status, 404);
      assert.match(path.body, /no MQTT endpoint at \/other \(try \/mqtt\)/);
      const plain = await rawHttp(port, "/mqtt", {});
      assert.equal(plain.status, 426);
      assert.equal(
        (await rawHttp(port, "/mqtt", upgradeHeaders("mqtt"))).status,
        101,
      );
      await logged(
        records,
        /refused 127\.0\.0\.1:\d+ with 400: the WebSocket subprotocol/,
      );
      await logged(
        records,
        /refused 127\.0\.0\.1:\d+ with 404: no MQTT endpoint/,
      );
      assert.equal(broker.connectedClients, 0);
    } finally {
      await broker.close();
    }
  });
});

Deno.test("WebSocket: a custom path, and allowedOrigins refuses other browser origins with 403", async () => {
  await withLog(async (records) => {
    const broker = await startWs({}, {
      path: "/ws/mqtt",
      allowedOrigins: ["https://app.example"],
    });
    const port = wsPort(broker);
    try {
      const ok = { ...upgradeHeaders("mqtt"), Origin: "https://app.example" };
      assert.equal((await rawHttp(port, "/ws/mqtt", ok)).status, 101);
      // Not a browser (no Origin): let in.
      assert.equal(
        (await rawHttp(port, "/ws/mqtt", upgradeHeaders("mqtt"))).status,
        101,
      );
      const evil = {
        ...upgradeHeaders("mqtt"),
        Origin: "https://evil.example",
      };
      const r = await rawHttp(port, "/ws/mqtt", evil);
      assert.equal(r.status, 403);
      assert.match(r.body, /origin https:\/\/evil\.example is not allowed/);
      await logged(records, /with 403: origin https:\/\/evil\.example/);
      assert.equal((await rawHttp(port, "/mqtt", ok)).status, 404);
    } finally {
      await broker.close();
    }
  });
});

Deno.test("WebSocket: a listener's maxConnections refuses more with 503 and a log line", async () => {
  await withLog(async (records) => {
    const broker = await startWs({}, { maxConnections: 1 });
    const url = `ws://127.0.0.1:${wsPort(broker)}/mqtt`;
    const first = await WsMqtt.open(url);
    try {
      first.ws.send(connectBytes("first"));
      await first.expect("connack");
      const r = await rawHttp(wsPort(broker), "/mqtt", upgradeHeaders("mqtt"));
      assert.equal(r.status, 503);
      await logged(
        records,
        /1 connection\(s\) refused: the listener's maxConnections \(1\)/,
      );
      first.close();
      await withTimeout(first.closed, 3000, "close");
      // The place is free again.
      await withTimeout(
        (async () => {
          while (broker.connectedClients > 0) {
            await new Promise((r) => setTimeout(r, 5));
          }
        })(),
        3000,
        "the first client to be gone",
      );
      const again = await WsMqtt.open(url);
      again.ws.send(connectBytes("again"));
      await again.expect("connack");
      again.close();
    } finally {
      first.close();
      await broker.close();
    }
  });
});

/** A broker serving a WebSocket listener with a 300 ms handshake timeout. */
async function brokerWithWs(
  tls = false,
): Promise<{ broker: Broker; port: number }> {
  const broker = await startBroker();
  const listener = await WebSocketListener.open({
    hostname: "127.0.0.1",
    port: 0,
    handshakeTimeout: 300,
    ...(tls ? { certFile: certs!.serverCert, keyFile: certs!.serverKey } : {}),
  });
  broker.serve(listener);
  return { broker, port: listener.addr.port };
}

Deno.test("WebSocket: an upgrade request that never comes is closed after the handshake timeout, with a log line", async () => {
  await withLog(async (records) => {
    const { broker, port } = await brokerWithWs();
    const silent = await Deno.connect({ hostname: "127.0.0.1", port });
    // Half a request head, then nothing.
    await silent.write(enc.encode("GET /mqtt HTTP/1.1\r\nHost: x\r\n"));
    try {
      await closedByServer(silent);
      await logged(
        records,
        /refused 127\.0\.0\.1:\d+: upgrade not completed within 300 ms/,
      );
      // Others still get in.
      const ok = await rawHttp(port, "/mqtt", upgradeHeaders("mqtt"));
      assert.equal(ok.status, 101);
    } finally {
      silent.close();
      await broker.close();
    }
  });
});

Deno.test({
  name:
    "wss: a TLS handshake that never completes is closed after the handshake timeout, with a log line",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await withLog(async (records) => {
      const { broker, port } = await brokerWithWs(true);
      const silent = await Deno.connect({ hostname: "127.0.0.1", port });
      try {
        await closedByServer(silent);
        await logged(
          records,
          /wss:\/\/127\.0\.0\.1:\d+: TLS handshake with 127\.0\.0\.1:\d+ failed: not completed within 300 ms/,
        );
      } finally {
        silent.close();
        await broker.close();
      }
    });
  },
});

Deno.test("WebSocket: garbage instead of an HTTP request gets 400, a head over 8 KiB 431, a POST 405, a wrong version 426", async () => {
  await withLog(async (records) => {
    const { broker, port } = await brokerWithWs();
    try {
      const junk = await Deno.connect({ hostname: "127.0.0.1", port });
      // An MQTT CONNECT where the HTTP request belongs.
      await junk.write(connectBytes("plain"));
      await junk.write(enc.encode("\r\n\r\n"));
      let text = "";
      const buf = new Uint8Array(1024);
      while (true) {
        const n = await withTimeout(junk.read(buf), 3000, "the answer");
        if (n === null) break;
        text += dec.decode(buf.subarray(0, n));
      }
      junk.close();
      assert.match(text, /^HTTP\/1\.1 400 Bad Request/);
      await logged(records, /with 400: malformed HTTP request/);
      const big = await rawHttp(port, "/mqtt", {
        ...upgradeHeaders("mqtt"),
        "X-Filler": "x".repeat(9000),
      });
      assert.equal(big.status, 431);
      const post = await rawHttp(port, "/mqtt", upgradeHeaders("mqtt"), "POST");
      assert.equal(post.status, 405);
      const old = await rawHttp(port, "/mqtt", {
        ...upgradeHeaders("mqtt"),
        "Sec-WebSocket-Version": "8",
      });
      assert.equal(old.status, 426);
      assert.match(old.head, /Sec-WebSocket-Version: 13/);
      assert.equal(broker.connectedClients, 0);
    } finally {
      await broker.close();
    }
  });
});

/** Reads server frames from `conn` until a close frame: its code. */
async function closeCode(conn: Deno.Conn): Promise<number | undefined> {
  const buf = new Uint8Array(4096);
  let bytes = new Uint8Array(0);
  return await withTimeout(
    (async () => {
      while (true) {
        // Frames seen so far: header, then payload.
        let p = 0;
        while (bytes.length - p >= 2) {
          const op = bytes[p]! & 0x0f;
          const len = bytes[p + 1]! & 0x7f; // short frames only here
          if (bytes.length - p < 2 + len) break;
          if (op === 8) return (bytes[p + 2]! << 8) | bytes[p + 3]!;
          p += 2 + len;
        }
        const n = await conn.read(buf);
        if (n === null) return undefined;
        const next = new Uint8Array(bytes.length + n);
        next.set(bytes);
        next.set(buf.subarray(0, n), bytes.length);
        bytes = next;
      }
    })(),
    3000,
    "a close frame",
  );
}

Deno.test("WebSocket: an unmasked frame, a continuation without a message, reserved bits: close 1002 with a log line; a ping gets a pong", async () => {
  await withLog(async (records) => {
    const broker = await startWs();
    const port = wsPort(broker);
    try {
      // A ping (masked, payload "hi") is answered with a pong "hi".
      const pinger = await lazyWebSocket(port);
      const ping = clientFrame(enc.encode("hi"));
      ping[0] = 0x89;
      await pinger.write(ping);
      const pong = new Uint8Array(4);
      let got = 0;
      while (got < 4) {
        const n = await withTimeout(pinger.read(pong.subarray(got)), 3000, "");
        if (n === null) break;
        got += n;
      }
      assert.deepEqual([...pong], [0x8a, 2, 0x68, 0x69]);
      pinger.close();
      const cases: [string, Uint8Array, RegExp][] = [
        [
          "unmasked",
          new Uint8Array([0x82, 2, 0xc0, 0]),
          /an unmasked client frame/,
        ],
        [
          "continuation",
          (() => {
            const f = clientFrame(new Uint8Array([0xc0, 0]));
            f[0] = 0x80; // FIN, opcode 0
            return f;
          })(),
          /a continuation frame without a message/,
        ],
        [
          "reserved bits",
          (() => {
            const f = clientFrame(new Uint8Array([0xc0, 0]));
            f[0] = 0xc2; // RSV1
            return f;
          })(),
          /reserved bits set/,
        ],
      ];
      for (const [what, frame, re] of cases) {
        const c = await lazyWebSocket(port);
        await c.write(frame);
        assert.equal(await closeCode(c), 1002, what);
        await logged(records, re);
        c.close();
      }
    } finally {
      await broker.close();
    }
  });
});

Deno.test("WebSocket: a fragmented binary message carries MQTT packets across its frames", async () => {
  const broker = await startWs();
  const c = await lazyWebSocket(wsPort(broker));
  try {
    const connect = connectBytes("fragments");
    const first = clientFrame(connect.subarray(0, 5));
    first[0] = 0x02; // binary, not FIN
    const last = clientFrame(connect.subarray(5));
    last[0] = 0x80; // continuation, FIN
    await c.write(first);
    await c.write(last);
    // CONNACK: a binary frame [0x82, 4, 0x20, 2, 0, 0].
    const buf = new Uint8Array(6);
    let got = 0;
    while (got < 6) {
      const n = await withTimeout(c.read(buf.subarray(got)), 3000, "CONNACK");
      if (n === null) break;
      got += n;
    }
    assert.deepEqual([...buf], [0x82, 4, 0x20, 2, 0, 0]);
  } finally {
    c.close();
    await broker.close();
  }
});

/** A WebSocket client over raw TCP that reads only when asked. */
async function lazyWebSocket(port: number): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const head = [
    "GET /mqtt HTTP/1.1",
    `Host: 127.0.0.1:${port}`,
    ...Object.entries(upgradeHeaders("mqtt")).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ].join("\r\n");
  await conn.write(enc.encode(head));
  // Read the 101 response (only its head: nothing else was sent yet).
  let text = "";
  const buf = new Uint8Array(1);
  while (!text.endsWith("\r\n\r\n")) {
    const n = await withTimeout(conn.read(buf), 3000, "the 101 response");
    if (n === null) throw new Error(`closed: ${text}`);
    text += dec.decode(buf.subarray(0, n));
  }
  assert.match(text, /^HTTP\/1\.1 101/);
  return conn;
}

/** A masked binary client frame (RFC 6455 5.2), payload < 65536 bytes. */
function clientFrame(payload: Uint8Array): Uint8Array {
  const short = payload.length < 126;
  const head = short ? 2 : 4;
  const out = new Uint8Array(head + 4 + payload.length);
  out[0] = 0x82;
  if (short) out[1] = 0x80 | payload.length;
  else {
    out[1] = 0x80 | 126;
    out[2] = payload.length >> 8;
    out[3] = payload.length & 0xff;
  }
  const mask = [0x11, 0x22, 0x33, 0x44];
  out.set(mask, head);
  for (let i = 0; i < payload.length; i++) {
    out[head + 4 + i] = payload[i]! ^ mask[i & 3]!;
  }
  return out;
}

Deno.test("WebSocket: a subscriber that does not read gets socket backpressure: QoS 0 beyond outputBufferLimit is dropped, memory stays bounded", async () => {
  const broker = await startWs({ outputBufferLimit: 64 * 1024 });
  const port = wsPort(broker);
  const lazy = await lazyWebSocket(port);
  const pub = await WsMqtt.open(`ws://127.0.0.1:${port}/mqtt`);
  try {
    await lazy.write(clientFrame(connectBytes("lazy")));
    await lazy.write(clientFrame(encode({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "flood", qos: 0 }],
    })));
    await withTimeout(
      (async () => {
        while (broker.subscriptionCount === 0) {
          await new Promise((r) => setTimeout(r, 5));
        }
      })(),
      3000,
      "the subscription",
    );
    pub.ws.send(connectBytes("pub"));
    await pub.expect("connack");
    // 16 MiB of QoS 0 messages to a client that reads nothing.
    const payload = new Uint8Array(16 * 1024);
    const publish = encode({
      type: "publish",
      topic: "flood",
      payload,
      qos: 0,
      retain: false,
      dup: false,
    });
    for (let i = 0; i < 1024; i++) pub.ws.send(publish);
    pub.ws.send(new Uint8Array([0xc0, 0])); // PINGREQ: all of it was read
    await withTimeout(pub.expect("pingresp"), 10_000, "PINGRESP");
    await withTimeout(
      (async () => {
        while (broker.stats.messagesDropped === 0) {
          await new Promise((r) => setTimeout(r, 5));
        }
      })(),
      5000,
      "dropped messages",
    );
    // Without backpressure every message would have gone into the socket's
    // buffer: far fewer were sent than published.
    assert.ok(
      broker.stats.messagesSent < 900,
      `sent ${broker.stats.messagesSent} of 1024`,
    );
  } finally {
    lazy.close();
    pub.close();
    await broker.close();
  }
});

// --- TLS ---------------------------------------------------------------------

/** A broker serving `listener` (besides its TCP one). */
async function brokerWith(
  make: () => Promise<TlsListener>,
): Promise<{ broker: Broker; port: number }> {
  const broker = await startBroker();
  const listener = await make();
  broker.serve(listener);
  return { broker, port: listener.addr.port };
}

/** A TLS MQTT client that connects and gets its CONNACK. */
async function tlsConnack(
  port: number,
  client?: { cert: string; key: string },
): Promise<Deno.TlsConn> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [certs!.caPem],
    ...(client === undefined ? {} : {
      cert: Deno.readTextFileSync(client.cert),
      key: Deno.readTextFileSync(client.key),
    }),
  });
  await conn.write(connectBytes(`tls-${Math.random()}`));
  const buf = new Uint8Array(4);
  let got = 0;
  while (got < 4) {
    const n = await withTimeout(conn.read(buf.subarray(got)), 3000, "CONNACK");
    if (n === null) throw new Error("closed before CONNACK");
    got += n;
  }
  assert.deepEqual([...buf], [0x20, 2, 0, 0]);
  return conn;
}

/** Resolves when the server closed `conn` (EOF or a reset). */
async function closedByServer(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(256);
  await withTimeout(
    (async () => {
      try {
        while ((await conn.read(buf)) !== null) {
          // whatever the server sent (a TLS alert)
        }
      } catch {
        // reset
      }
    })(),
    5000,
    "the server to close the connection",
  );
}

const LISTENERS = [
  [
    "TlsListener",
    () =>
      TlsListener.open({
        hostname: "127.0.0.1",
        port: 0,
        certFile: certs!.serverCert,
        keyFile: certs!.serverKey,
        handshakeTimeout: 300,
      }),
  ],
  [
    "TlsListener (mutual TLS)",
    () =>
      TlsListener.open({
        hostname: "127.0.0.1",
        port: 0,
        certFile: certs!.serverCert,
        keyFile: certs!.serverKey,
        caFile: certs!.caCert,
        handshakeTimeout: 300,
      }),
  ],
] as const;

for (const [name, make] of LISTENERS) {
  const clientCert = () =>
    name === "TlsListener (mutual TLS)" ? certs!.client("bob") : undefined;

  Deno.test({
    name:
      `${name}: a TLS handshake that never completes is closed after handshakeTimeout, with a log line; others connect meanwhile`,
    ignore: !HAVE_OPENSSL,
    async fn() {
      await withLog(async (records) => {
        const { broker, port } = await brokerWith(make);
        const silent = await Deno.connect({ hostname: "127.0.0.1", port });
        const good = await tlsConnack(port, await clientCert());
        try {
          await closedByServer(silent);
          await logged(
            records,
            /TLS handshake with 127\.0\.0\.1:\d+ failed: .*(not completed within 300 ms|timeout|timed out)/i,
          );
          // The good client is still served.
          await good.write(new Uint8Array([0xc0, 0]));
          const buf = new Uint8Array(2);
          const n = await withTimeout(good.read(buf), 3000, "PINGRESP");
          assert.equal(n, 2);
          assert.deepEqual([...buf], [0xd0, 0]);
        } finally {
          silent.close();
          good.close();
          await broker.close();
        }
      });
    },
  });

  Deno.test({
    name:
      `${name}: garbage before the handshake closes that connection with a log line`,
    ignore: !HAVE_OPENSSL,
    async fn() {
      await withLog(async (records) => {
        const { broker, port } = await brokerWith(make);
        const junk = await Deno.connect({ hostname: "127.0.0.1", port });
        try {
          // An MQTT CONNECT in the clear, where a ClientHello belongs.
          await junk.write(connectBytes("plain"));
          await closedByServer(junk);
          await logged(records, /TLS handshake with 127\.0\.0\.1:\d+ failed/);
          const good = await tlsConnack(port, await clientCert());
          good.close();
          assert.equal(broker.connectedClients <= 1, true);
        } finally {
          junk.close();
          await broker.close();
        }
      });
    },
  });
}

Deno.test({
  name:
    "TlsListener (mutual TLS): a client without a certificate fails the handshake, with a log line",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await withLog(async (records) => {
      const { broker, port } = await brokerWith(LISTENERS[1][1]);
      try {
        await assert.rejects(tlsConnack(port));
        await logged(
          records,
          /TLS handshake with 127\.0\.0\.1:\d+ failed: .*(certificate|no certificates)/i,
        );
        assert.equal(broker.connectedClients, 0);
      } finally {
        await broker.close();
      }
    });
  },
});

Deno.test({
  name:
    "TlsListener: maxConnections closes connections past it at accept, with a log line",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await withLog(async (records) => {
      const { broker, port } = await brokerWith(() =>
        TlsListener.open({
          hostname: "127.0.0.1",
          port: 0,
          certFile: certs!.serverCert,
          keyFile: certs!.serverKey,
          maxConnections: 1,
        })
      );
      const first = await tlsConnack(port);
      try {
        await assert.rejects(tlsConnack(port));
        await logged(records, /refused: the listener's maxConnections \(1\)/);
        await first.write(new Uint8Array([0xc0, 0]));
        const buf = new Uint8Array(2);
        assert.equal(await withTimeout(first.read(buf), 3000, "PINGRESP"), 2);
      } finally {
        first.close();
        await broker.close();
      }
    });
  },
});

Deno.test({
  name:
    "MQTT.js over ws against a closed broker: the close sends v5 clients DISCONNECT 0x8B",
  async fn() {
    const broker = await startWs();
    const c = await openMqttjs(
      broker,
      {
        protocol: "ws",
        port: wsPort(broker),
        path: "/mqtt",
        protocolVersion: 5,
      },
      (t) => t,
    );
    const reason = new Promise<number | undefined>((r) =>
      c.client.once("disconnect", (p) => r(p.reasonCode))
    );
    await broker.close();
    assert.equal(await withTimeout(reason, 3000, "DISCONNECT"), 0x8b);
    await endMqttjs(c.client, true);
  },
});
