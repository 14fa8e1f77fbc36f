/**
 * The blocking client: each call against Kite's broker (and Mosquitto),
 * timeouts, a refused connect, messages arriving between blocking calls,
 * reconnect events, the ring buffer under backpressure, and close().
 */

import assert from "node:assert/strict";
import { ClientOfflineError, SyncClient, TimeoutError } from "../client/mod.ts";
import { MqttError, PacketTooLargeError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { freePort } from "./_mosquitto.ts";
import {
  type BrokerTarget,
  MOSQUITTO,
  targetTest,
  type TestBroker,
  within,
} from "./client_helpers.ts";
import { startKiteProcess } from "./_kite_process.ts";
import type { Message } from "../client/message.ts";

/**
 * Kite's broker in a subprocess: these tests block the main thread, where an
 * in-process broker could not answer.
 */
const KITE: BrokerTarget = {
  name: "kite",
  available: true,
  start: (options = {}) =>
    startKiteProcess({
      ...(options.port ? { port: options.port } : {}),
      args: options.refuseAll ? ["--no-allow-anonymous"] : [],
    }),
};
const TARGETS = [MOSQUITTO, KITE];

function test(
  name: string,
  fn: (broker: TestBroker) => Promise<void> | void,
  target: BrokerTarget = KITE,
  options: Parameters<BrokerTarget["start"]>[0] = {},
): void {
  targetTest(target, name, fn, options);
}

for (const target of TARGETS) {
  for (const version of [5, 4] as const) {
    test(
      `SyncClient connect/subscribe/publish/receive/unsubscribe/disconnect (v${version})`,
      (b) => {
        using c = new SyncClient({
          port: b.port,
          protocolVersion: version,
          reconnect: false,
        });
        const connack = c.connect();
        assert.equal(connack.type, "connack");
        assert.equal(connack.reasonCode, 0);
        assert.equal(c.connected, true);
        assert.ok(c.clientId);
        assert.deepEqual(c.subscribe("sync/#", 2), [2]);
        assert.deepEqual(c.subscribe(["a/+", "b/#"], { qos: 1 }), [1, 1]);
        // QoS 1 returns after PUBACK, QoS 2 after PUBCOMP v3:[MQTT-4.3.3-1] v5:[MQTT-4.3.3-4]
        // v5:[MQTT-4.3.3-5].
        for (const qos of [0, 1, 2] as const) {
          const r = c.publish(`sync/q${qos}`, `hello ${qos}`, { qos });
          assert.equal(typeof r.reasonCode, "number");
          assert.ok(r.reasonCode < 0x80);
        }
        const got: Message[] = [];
        for (let i = 0; i < 3; i++) {
          const m = c.receive(5000);
          assert.ok(m, `message ${i} received`);
          got.push(m);
        }
        assert.deepEqual(
          got.map((m) => [m.topic, m.payloadText, m.qos]),
          [["sync/q0", "hello 0", 0], ["sync/q1", "hello 1", 1], [
            "sync/q2",
            "hello 2",
            2,
          ]],
        );
        const bin = new Uint8Array([0, 1, 254, 255]);
        c.publish("a/bin", bin, 1);
        assert.deepEqual(c.receive(5000)?.payload, bin);
        const codes = c.unsubscribe(["sync/#", "a/+", "b/#"]);
        assert.equal(codes.length, 3);
        c.publish("sync/after", "x", 1);
        assert.equal(c.receive(100), undefined);
        c.disconnect();
        assert.equal(c.connected, false);
      },
      target,
    );
  }
}

test("SyncClient.publish() carries v5 properties both ways", (b) => {
  using c = new SyncClient({ port: b.port, reconnect: false });
  c.connect();
  c.subscribe("props/t", 1);
  c.publish("props/t", "{}", {
    qos: 1,
    properties: {
      contentType: "application/json",
      correlationData: new Uint8Array([9, 8]),
      userProperties: [["k", "v"]],
    },
  });
  const m = c.receive(5000);
  assert.ok(m);
  assert.equal(m.properties.contentType, "application/json");
  assert.deepEqual(m.correlationData, new Uint8Array([9, 8]));
  assert.deepEqual(m.userProperties, [["k", "v"]]);
  c.disconnect();
});

for (const target of TARGETS) {
  for (const version of [5, 4] as const) {
    Deno.test({
      name:
        `SyncClient.connect() throws MqttError NotAuthorized when refused (v${version}) [${target.name}]`,
      ignore: !target.available,
      async fn() {
        await using b = await target.start({ refuseAll: true });
        using c = new SyncClient({
          port: b.port,
          protocolVersion: version,
          reconnect: false,
        });
        assert.throws(
          () => c.connect(),
          (e: unknown) =>
            e instanceof MqttError && !(e instanceof TimeoutError) &&
            e.reasonCode === ReasonCode.NotAuthorized,
        );
        assert.equal(c.connected, false);
      },
    });
  }
}

Deno.test("SyncClient.connect() throws MqttError 0x88 when nothing listens", () => {
  using c = new SyncClient({ port: freePort(), reconnect: false });
  assert.throws(
    () => c.connect(),
    (e: unknown) =>
      e instanceof MqttError &&
      e.reasonCode === ReasonCode.ServerUnavailable,
  );
});

Deno.test("SyncClient calls throw TimeoutError when no answer comes", async () => {
  // A listener that never answers: the kernel accepts, nobody reads.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    using c = new SyncClient({
      port: (listener.addr as Deno.NetAddr).port,
      reconnect: false,
      timeout: 5000,
    });
    const t0 = performance.now();
    assert.throws(
      () => c.connect({ timeout: 300 }),
      (e: unknown) => e instanceof TimeoutError && e.reasonCode === 0x80,
    );
    const took = performance.now() - t0;
    assert.ok(took >= 290 && took < 3000, `took ${took} ms`);
  } finally {
    listener.close();
  }
  // Let the accepted-but-unread connection be closed by the listener.
  await Promise.resolve();
});

test("SyncClient.receive() returns undefined after its timeout", (b) => {
  using c = new SyncClient({ port: b.port, reconnect: false });
  c.connect();
  c.subscribe("quiet/#");
  const t0 = performance.now();
  assert.equal(c.receive(200), undefined);
  assert.ok(performance.now() - t0 >= 190);
  assert.equal(c.receive(), undefined); // 0: does not block
  c.disconnect();
});

test("SyncClient.onMessage() gets messages that arrive between blocking calls", async (b) => {
  using sub = new SyncClient({ port: b.port, reconnect: false });
  using pub = new SyncClient({ port: b.port, reconnect: false });
  sub.connect();
  pub.connect();
  const got: string[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  sub.onMessage((m) => {
    got.push(m.payloadText);
    if (got.length === 3) resolve();
  });
  sub.subscribe("between/+", 1);
  pub.publish("between/a", "1", 1);
  pub.publish("between/b", "2", 1);
  pub.publish("between/c", "3", 1);
  // The calling thread is free from here: the worker's wake-ups deliver.
  await within(promise, 5000, "three messages on onMessage");
  assert.deepEqual(got, ["1", "2", "3"]);
  pub.disconnect();
  sub.disconnect();
});

test("SyncClient.subscribe() handler gets only its filter's messages", async (b) => {
  using c = new SyncClient({ port: b.port, reconnect: false });
  c.connect();
  const temps: string[] = [];
  const { promise, resolve } = Promise.withResolvers<void>();
  c.subscribe("h/temp", 0, (m) => {
    temps.push(m.payloadText);
    resolve();
  });
  c.subscribe("h/other", 0, () => assert.fail("no message on h/other"));
  c.publish("h/temp", "21", 1);
  await within(promise, 5000, "the handler");
  assert.deepEqual(temps, ["21"]);
  c.disconnect();
});

test("SyncClient ring buffer applies backpressure and keeps order", (b) => {
  // 600 bytes hold only a few 100-byte messages at a time: the worker waits
  // for room, the async client stops reading, nothing is lost.
  using sub = new SyncClient({
    port: b.port,
    reconnect: false,
    messageBufferBytes: 600,
  });
  using pub = new SyncClient({ port: b.port, reconnect: false });
  sub.connect();
  pub.connect();
  sub.subscribe("ring/t", 1);
  const payload = "x".repeat(100);
  for (let i = 0; i < 50; i++) pub.publish("ring/t", `${i}:${payload}`, 1);
  for (let i = 0; i < 50; i++) {
    const m = sub.receive(5000);
    assert.ok(m, `message ${i}`);
    assert.equal(m.payloadText, `${i}:${payload}`);
  }
  assert.equal(sub.droppedMessages, 0);
  // A message that can never fit is dropped, counted and reported.
  pub.publish("ring/t", "y".repeat(1000), 1);
  pub.publish("ring/t", "after", 1);
  assert.equal(sub.receive(5000)?.payloadText, "after");
  assert.equal(sub.droppedMessages, 1);
  pub.disconnect();
  sub.disconnect();
});

Deno.test({
  name:
    "SyncClient reconnects by itself and reports connect/disconnect events [kite]",
  ignore: !KITE.available,
  async fn() {
    let b = await KITE.start();
    const port = b.port;
    using c = new SyncClient({
      port,
      reconnect: { initialDelay: 20, maxDelay: 200 },
      keepAlive: 5,
    });
    const events: string[] = [];
    let connects = 0;
    const second = Promise.withResolvers<void>();
    const dropped = Promise.withResolvers<void>();
    c.on("connect", () => {
      events.push("connect");
      if (++connects === 2) second.resolve();
    });
    c.on("disconnect", (e) => {
      events.push(`disconnect:${e.willReconnect}`);
      dropped.resolve();
    });
    c.connect();
    try {
      await b.stop();
      await within(dropped.promise, 5000, "the disconnect event");
      b = await KITE.start({ port });
      await within(second.promise, 5000, "the second connect event");
      assert.equal(c.connected, true);
      assert.deepEqual(events.slice(0, 3), [
        "connect",
        "disconnect:true",
        "connect",
      ]);
      // Calls work again after the reconnect.
      assert.deepEqual(c.subscribe("again/t", 1), [1]);
      c.publish("again/t", "ok", 1);
      assert.equal(c.receive(5000)?.payloadText, "ok");
      c.disconnect();
    } finally {
      await b.stop();
    }
  },
});

Deno.test("SyncClient.close() terminates the worker; later calls throw", () => {
  const c = new SyncClient({ port: freePort(), reconnect: false });
  assert.equal(c.open, true);
  c.close();
  c.close(); // idempotent
  assert.equal(c.open, false);
  assert.throws(() => c.publish("a", "b"), ClientOfflineError);
  assert.equal(c.receive(10), undefined);
  // The test sanitizers check that no op, timer or resource is left.
});

test(
  "SyncClient.close() while connected drops the connection (will sent)",
  async (b) => {
    using watcher = new SyncClient({ port: b.port, reconnect: false });
    watcher.connect();
    watcher.subscribe("will/t", 1);
    const c = new SyncClient({
      port: b.port,
      reconnect: false,
      will: { topic: "will/t", payload: "gone", qos: 1 },
    });
    c.connect();
    c.close();
    assert.equal(watcher.receive(5000)?.payloadText, "gone");
    watcher.disconnect();
    await Promise.resolve();
  },
  KITE,
);

// Mosquitto is an independent check of the wire behaviour.
test("SyncClient QoS 2 round trip against Mosquitto", (b) => {
  using c = new SyncClient({ port: b.port, reconnect: false });
  c.connect();
  c.subscribe("m/t", 2);
  assert.equal(c.publish("m/t", "two", 2).reasonCode, 0);
  assert.equal(c.receive(5000)?.payloadText, "two");
  c.disconnect();
}, MOSQUITTO);

test("SyncClient.connect() again after disconnect() receives again", (b) => {
  using c = new SyncClient({ port: b.port, reconnect: false });
  for (let round = 1; round <= 3; round++) {
    c.connect();
    c.subscribe("again/+", 1);
    c.publish(`again/${round}`, `round ${round}`, 1);
    assert.equal(c.receive(5000)?.payloadText, `round ${round}`);
    c.disconnect();
    assert.equal(c.connected, false);
  }
});

Deno.test({
  name:
    "SyncClient throws the async client's errors: same class and reason code [kite]",
  async fn() {
    await using b = await startKiteProcess({
      args: ["--max-packet-size", "1024"],
    });
    using c = new SyncClient({ port: b.port, reconnect: false });
    c.connect();
    assert.throws(
      () => c.publish("a/#", "x"),
      (e: unknown) =>
        e instanceof MqttError && e.reasonCode === ReasonCode.TopicNameInvalid,
    );
    assert.throws(
      () => c.subscribe("a/#/b"),
      (e: unknown) =>
        e instanceof MqttError &&
        e.reasonCode === ReasonCode.TopicFilterInvalid,
    );
    // Over the broker's Maximum Packet Size (CONNACK): refused client-side.
    assert.throws(
      () => c.publish("big", new Uint8Array(2048), 1),
      (e: unknown) => e instanceof PacketTooLargeError && e.reasonCode === 0x95,
    );
    // The connection is still fine afterwards.
    assert.equal(c.publish("small", "ok", 1).reasonCode, 0x10); // no subscribers
    c.disconnect();
  },
});
