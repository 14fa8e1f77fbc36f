/**
 * The client over each transport: `url` with `mqtt://`, `mqtts://`, `ws://`
 * and `wss://`, against Kite (its WebSocket side through the test listener
 * of tests/_ws_listener.ts) and against Mosquitto's TLS and websockets
 * listeners, with certificates from a throwaway CA (tests/_certs.ts). The
 * same features (QoS 0/1/2, retained, will, reconnect with resubscribe)
 * run over every transport; a scripted WebSocket broker checks frames that
 * split or pack packets.
 */

import assert from "node:assert/strict";
import { Client, type Message } from "../client/mod.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { ConnectPacket, Packet } from "../codec/packet.ts";
import type { Broker } from "../broker/mod.ts";
import { startBroker } from "./_helpers.ts";
import { within } from "./client_helpers.ts";
import { HAVE_OPENSSL, makeCerts, type TestCerts } from "./_certs.ts";
import { TrackedWsListener } from "./_ws_listener.ts";
import {
  HAVE_MOSQUITTO,
  type MosquittoTransports,
  startMosquittoTransports,
} from "./_mosquitto.ts";

const certs: TestCerts | undefined = HAVE_OPENSSL
  ? await makeCerts({ clientCn: "kite-device" })
  : undefined;
globalThis.addEventListener("unload", () => {
  if (certs) Deno.removeSync(certs.dir, { recursive: true });
});

/** Subscribes; `next` is `client`'s next message on `filter`. */
async function nextMessage(
  client: Client,
  filter: string,
  qos: 0 | 1 | 2 = 1,
): Promise<{ next: Promise<Message> }> {
  const got = Promise.withResolvers<Message>();
  await client.subscribe(filter, qos, (m) => got.resolve(m));
  return { next: got.promise };
}

/** Kite on TCP plus the test WebSocket listener (wss:// with `tls`). */
async function startKite(
  tls = false,
): Promise<
  { broker: Broker; ws: TrackedWsListener; close(): Promise<void> }
> {
  const broker = await startBroker();
  // The broker's own WebSocket listener (ws://, or wss:// with the test CA).
  const ws = await TrackedWsListener.open({
    hostname: "127.0.0.1",
    port: 0,
    ...(tls
      ? { certFile: certs!.serverCertFile, keyFile: certs!.serverKeyFile }
      : {}),
  });
  broker.serve(ws);
  return {
    broker,
    ws,
    async close() {
      await broker.close(); // closes its listeners too
    },
  };
}

/** Publish QoS 0/1/2 and a retained message, and have a will sent. */
async function exerciseFeatures(
  make: (extra: Partial<ConstructorParameters<typeof Client>[0]>) => Client,
  observer: Client,
): Promise<void> {
  const c = make({
    clientId: "features",
    will: { topic: "t/will", payload: "gone" },
  });
  await c.connect();
  const seen: string[] = [];
  const three = Promise.withResolvers<void>();
  await c.subscribe("t/q/#", 2, (m) => {
    seen.push(`${m.topic}=${m.payloadText}@${m.qos}`);
    if (seen.length === 3) three.resolve();
  });
  for (const qos of [0, 1, 2] as const) {
    const r = await c.publish(`t/q/${qos}`, `m${qos}`, qos);
    assert.equal(r.reasonCode, 0);
  }
  await within(three.promise, 5000, "QoS 0/1/2 echoes");
  assert.deepEqual(seen.sort(), ["t/q/0=m0@0", "t/q/1=m1@1", "t/q/2=m2@2"]);
  // Retained: a later subscription gets it.
  await c.publish("t/r", "kept", { qos: 1, retain: true });
  const retained = await nextMessage(c, "t/r");
  const m = await within(retained.next, 5000, "retained message");
  assert.equal(m.payloadText, "kept");
  assert.equal(m.retain, true);
  await c.publish("t/r", "", { qos: 1, retain: true }); // clear it
  // Will: closing without DISCONNECT has it published.
  const will = await nextMessage(observer, "t/will");
  await c.close();
  assert.equal((await within(will.next, 5000, "will")).payloadText, "gone");
}

// ----------------------------------------------------------------- Kite

Deno.test("Client over ws:// exchanges QoS 1 messages with a TCP client through Kite", async () => {
  const kite = await startKite();
  const wsClient = new Client({ url: kite.ws.url, reconnect: false });
  const tcpClient = new Client({
    url: `mqtt://127.0.0.1:${kite.broker.addr.port}`,
    reconnect: false,
  });
  try {
    await wsClient.connect();
    await tcpClient.connect();
    const atTcp = await nextMessage(tcpClient, "up/#");
    const atWs = await nextMessage(wsClient, "down/#");
    await wsClient.publish("up/1", "from ws", 1);
    await tcpClient.publish("down/1", "from tcp", 1);
    const a = await within(atTcp.next, 5000, "ws -> tcp");
    const b = await within(atWs.next, 5000, "tcp -> ws");
    assert.deepEqual([a.payloadText, a.qos], ["from ws", 1]);
    assert.deepEqual([b.payloadText, b.qos], ["from tcp", 1]);
    // A payload bigger than any frame buffer, both ways.
    const big = new Uint8Array(200_000).map((_, i) => (i * 7) & 0xff);
    const bigAtWs = await nextMessage(wsClient, "big");
    await tcpClient.publish("big", big, 1);
    assert.deepEqual((await within(bigAtWs.next, 5000, "big")).payload, big);
  } finally {
    await wsClient.close();
    await tcpClient.close();
    await kite.close();
  }
});

Deno.test("Client features (QoS 0/1/2, retained, will) over ws:// and mqtt:// against Kite", async () => {
  const kite = await startKite();
  const observer = new Client({
    port: kite.broker.addr.port,
    reconnect: false,
  });
  try {
    await observer.connect();
    for (
      const url of [kite.ws.url, `mqtt://127.0.0.1:${kite.broker.addr.port}`]
    ) {
      await exerciseFeatures(
        (extra) => new Client({ url, reconnect: false, ...extra }),
        observer,
      );
    }
  } finally {
    await observer.close();
    await kite.close();
  }
});

Deno.test("Client over ws:// reconnects and resubscribes when the connection drops", async () => {
  const kite = await startKite();
  const client = new Client({
    url: kite.ws.url,
    reconnect: { initialDelay: 10, maxDelay: 50 },
  });
  const publisher = new Client({
    port: kite.broker.addr.port,
    reconnect: false,
  });
  try {
    await client.connect();
    await publisher.connect();
    const got: string[] = [];
    let arrived = Promise.withResolvers<void>();
    await client.subscribe("r/#", 1, (m) => {
      got.push(m.payloadText);
      arrived.resolve();
    });
    const reconnected = Promise.withResolvers<void>();
    let connects = 0;
    client.on("connect", () => {
      if (++connects === 1) reconnected.resolve();
    });
    kite.ws.dropAll();
    await within(reconnected.promise, 5000, "reconnect over ws://");
    // The broker kept no session (clean start): the client subscribed again
    // (its SUBSCRIBE goes before this PUBLISH on the new connection).
    await client.publish("r/1", "after", 1);
    await within(arrived.promise, 5000, "message after the reconnect");
    arrived = Promise.withResolvers();
    assert.deepEqual(got, ["after"]);
  } finally {
    await client.disconnect();
    await publisher.close();
    await kite.close();
  }
});

Deno.test({
  name:
    "Client over wss:// with tls.caFile against Kite; refused without the CA",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const kite = await startKite(true);
    const url = kite.ws.url.replace("127.0.0.1", "localhost");
    assert.ok(url.startsWith("wss://localhost:"));
    const client = new Client({
      url,
      tls: { caFile: certs!.caFile },
      reconnect: false,
    });
    try {
      await client.connect();
      const got = await nextMessage(client, "s/#");
      await client.publish("s/1", "secret", 1);
      assert.equal(
        (await within(got.next, 5000, "over wss")).payloadText,
        "secret",
      );
      const untrusted = new Client({
        url,
        reconnect: false,
        connectTimeout: 5000,
      });
      await assert.rejects(untrusted.connect(), (e: unknown) => {
        assert.ok(e instanceof MqttError);
        assert.equal(e.reasonCode, ReasonCode.ServerUnavailable);
        assert.match(e.message, /cannot connect to wss:\/\/localhost/);
        return true;
      });
      await untrusted.close();
    } finally {
      await client.close();
      await kite.close();
    }
  },
});

/**
 * A scripted broker over WebSocket: answers CONNECT with CONNACK and a
 * PUBLISH in one frame, then sends a second PUBLISH split over three
 * frames; records the CONNECT.
 */
Deno.test("Client reads packets packed into one frame and split across frames [MQTT-6.0.0-2]", async () => {
  const connect = Promise.withResolvers<ConnectPacket>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (req) => {
      const { socket, response } = Deno.upgradeWebSocket(req, {
        protocol: "mqtt",
      });
      socket.binaryType = "arraybuffer";
      const decoder = new PacketDecoder({ version: 5 });
      socket.onmessage = (e) => {
        decoder.push(new Uint8Array(e.data as ArrayBuffer), (p: Packet) => {
          if (p.type !== "connect") return;
          connect.resolve(p);
          const connack = encode({
            type: "connack",
            sessionPresent: false,
            reasonCode: 0,
          }, { version: 5 });
          const first = encode({
            type: "publish",
            topic: "f/1",
            payload: new TextEncoder().encode("packed"),
            qos: 0,
            retain: false,
            dup: false,
          }, { version: 5 });
          socket.send(new Uint8Array([...connack, ...first]));
          const second = encode({
            type: "publish",
            topic: "f/2",
            payload: new Uint8Array(1000).fill(65),
            qos: 0,
            retain: false,
            dup: false,
          }, { version: 5 });
          socket.send(second.subarray(0, 1));
          socket.send(second.subarray(1, 500));
          socket.send(second.subarray(500));
        });
      };
      return response;
    },
  );
  const got: Message[] = [];
  const two = Promise.withResolvers<void>();
  const client = new Client({
    url: `ws://alice:s%40cret@127.0.0.1:${server.addr.port}/mqtt?x=1`,
    reconnect: false,
  });
  client.onMessage((m) => {
    got.push(m);
    if (got.length === 2) two.resolve();
  });
  try {
    await client.connect();
    const c = await within(connect.promise, 5000, "CONNECT");
    // The URL's user and password go into the CONNECT.
    assert.equal(c.username, "alice");
    assert.equal(new TextDecoder().decode(c.password), "s@cret");
    await within(two.promise, 5000, "both publishes");
    assert.equal(got[0]!.payloadText, "packed");
    assert.equal(got[1]!.topic, "f/2");
    assert.equal(got[1]!.payload.length, 1000);
  } finally {
    await client.close();
    await server.shutdown();
  }
});

// ------------------------------------------------------------- Mosquitto

const mosquittoTest = (
  name: string,
  fn: (m: MosquittoTransports) => Promise<void>,
) =>
  Deno.test({
    name: `${name} [mosquitto]`,
    ignore: !HAVE_MOSQUITTO || !HAVE_OPENSSL,
    async fn() {
      await using m = await startMosquittoTransports(certs!);
      await fn(m);
    },
  });

mosquittoTest(
  "Client over ws://, wss:// and mqtts:// exchanges QoS 1 messages with a TCP client",
  async (m) => {
    const observer = new Client({ port: m.port, reconnect: false });
    await observer.connect();
    try {
      for (
        const url of [
          `ws://127.0.0.1:${m.ws}/mqtt`,
          `wss://localhost:${m.wss}/mqtt`,
          `mqtts://localhost:${m.mqtts}`,
        ]
      ) {
        const client = new Client({
          url,
          tls: { ca: certs!.ca },
          reconnect: false,
        });
        try {
          await client.connect();
          const atClient = await nextMessage(client, "m/down");
          const atObserver = await nextMessage(observer, "m/up");
          await client.publish("m/up", url, 1);
          await observer.publish("m/down", "back", 1);
          assert.equal(
            (await within(atObserver.next, 5000, url)).payloadText,
            url,
          );
          assert.equal(
            (await within(atClient.next, 5000, url)).payloadText,
            "back",
          );
          await observer.unsubscribe("m/up");
        } finally {
          await client.disconnect();
        }
      }
    } finally {
      await observer.disconnect();
    }
  },
);

mosquittoTest(
  "Client features (QoS 0/1/2, retained, will) over ws:// and mqtts://",
  async (m) => {
    const observer = new Client({ port: m.port, reconnect: false });
    await observer.connect();
    try {
      for (
        const url of [
          `ws://127.0.0.1:${m.ws}/mqtt`,
          `mqtts://127.0.0.1:${m.mqtts}`,
        ]
      ) {
        await exerciseFeatures(
          (extra) =>
            new Client({
              url,
              tls: { caFile: certs!.caFile },
              reconnect: false,
              ...extra,
            }),
          observer,
        );
      }
    } finally {
      await observer.disconnect();
    }
  },
);

mosquittoTest(
  "Client with a client certificate passes mutual TLS; without one it is refused",
  async (m) => {
    const url = `mqtts://127.0.0.1:${m.mqttsMutual}`;
    const client = new Client({
      url,
      tls: {
        caFile: certs!.caFile,
        certFile: certs!.clientCertFile,
        keyFile: certs!.clientKeyFile,
      },
      reconnect: false,
    });
    await client.connect();
    const got = await nextMessage(client, "mtls");
    await client.publish("mtls", "hi", 1);
    assert.equal(
      (await within(got.next, 5000, "over mutual TLS")).payloadText,
      "hi",
    );
    await client.disconnect();
    // PEM text works as well as files.
    const pem = new Client({
      url,
      tls: { ca: certs!.ca, cert: certs!.clientCert, key: certs!.clientKey },
      reconnect: false,
    });
    await pem.connect();
    await pem.disconnect();
    // Without a certificate: the handshake (or the first read, TLS 1.3) fails.
    const anonymous = new Client({
      url,
      tls: { caFile: certs!.caFile },
      reconnect: false,
      connectTimeout: 5000,
    });
    await assert.rejects(anonymous.connect(), (e: unknown) => {
      assert.ok(e instanceof MqttError);
      assert.notEqual(e.reasonCode, 0);
      return true;
    });
    await anonymous.close();
  },
);

Deno.test("Client reports a bad URL or an unreachable transport as 0x88 with the reason", async () => {
  for (
    const [url, re] of [
      ["gopher://127.0.0.1", /unsupported broker URL scheme "gopher:"/],
      ["mqtt://", /bad broker URL|has no host/],
    ] as const
  ) {
    const c = new Client({ url, reconnect: false });
    await assert.rejects(c.connect(), (e: unknown) => {
      assert.ok(e instanceof MqttError);
      assert.equal(e.reasonCode, ReasonCode.ServerUnavailable);
      assert.match(e.message, re);
      return true;
    });
    await c.close();
  }
});

Deno.test("WebClient (the browser build's client) speaks ws:// in Deno, refuses mqtt:// and TLS files; options.dialer wins", async () => {
  const { WebClient, WebSocketDialer } = await import("../client/mod.ts");
  const kite = await startKite();
  try {
    const web = new WebClient({ url: kite.ws.url, reconnect: false });
    await web.connect();
    const got = Promise.withResolvers<Message>();
    await web.subscribe("w/#", 1, (m) => got.resolve(m));
    await web.publish("w/1", "web", 1);
    assert.equal(
      (await within(got.promise, 5000, "WebClient")).payloadText,
      "web",
    );
    await web.disconnect();
    for (
      const [options, re] of [
        [
          { url: `mqtt://127.0.0.1:${kite.broker.addr.port}` },
          /needs TCP sockets/,
        ],
        [{ port: kite.broker.addr.port }, /needs TCP sockets/],
        [
          { url: kite.ws.url, tls: { caFile: "ca.crt" } },
          /TLS options need Client/,
        ],
      ] as const
    ) {
      const c = new WebClient({ ...options, reconnect: false });
      await assert.rejects(c.connect(), (e: unknown) => {
        assert.ok(e instanceof MqttError);
        assert.equal(e.reasonCode, ReasonCode.ServerUnavailable);
        assert.match(e.message, re);
        return true;
      });
      await c.close();
    }
    // A dialer in the options replaces the one of url/host/port.
    const viaDialer = new Client({
      url: "mqtt://192.0.2.1:1", // never dialed
      dialer: new WebSocketDialer({ url: kite.ws.url }),
      reconnect: false,
    });
    await viaDialer.connect();
    await viaDialer.disconnect();
  } finally {
    await kite.close();
  }
});
