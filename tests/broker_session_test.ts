import assert from "node:assert/strict";
import { Broker, MemoryStore } from "../broker/mod.ts";
import type { ConnectPacket, ProtocolVersion } from "../codec/packet.ts";
import { RawClient, startBroker, text, waitFor } from "./_helpers.ts";

function conn(
  clientId: string,
  cleanStart: boolean,
  version: ProtocolVersion = 4,
  expiry?: number,
): Partial<ConnectPacket> & { protocolVersion: ProtocolVersion } {
  const c: Partial<ConnectPacket> & { protocolVersion: ProtocolVersion } = {
    protocolVersion: version,
    clientId,
    cleanStart,
  };
  if (expiry !== undefined) c.properties = { sessionExpiryInterval: expiry };
  return c;
}

Deno.test("Broker reports sessionPresent right for every 3.1.1 clean session case [MQTT-3.2.2-1] [MQTT-3.2.2-2]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const steps: [boolean, boolean][] = [
    // [cleanSession, expected sessionPresent]
    [true, false], // clean: never present
    [false, false], // first persistent connect: new session
    [false, true], // resumes
    [true, false], // clean discards the session
    [false, false], // so a new one starts
  ];
  for (const [clean, present] of steps) {
    const { client, connack } = await RawClient.connect(
      port,
      conn("sp", clean),
    );
    assert.equal(connack.sessionPresent, present, `clean=${clean}`);
    await client.disconnect();
  }
  await broker.close();
});

Deno.test("Broker sends MQTT 3.1 (MQIsdp) clients a CONNACK without Session Present, also on resuming a session (the byte is reserved in 3.1)", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await RawClient.connect(port, conn("sp31", false, 3));
  assert.equal(a.connack.sessionPresent, false);
  await a.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "t31", qos: 1 }],
  });
  await a.client.expect("suback");
  await a.client.disconnect();
  await waitFor(() => broker.connectedClients === 0, 2000, "the disconnect");
  broker.publish("t31", "queued", { qos: 1 });
  const b = await RawClient.connect(port, conn("sp31", false, 3));
  assert.equal(b.connack.sessionPresent, false);
  // The session was resumed all the same: the queued message arrives.
  const m = await b.client.expectPublish("t31");
  assert.equal(text(m.payload), "queued");
  await b.client.send({ type: "puback", packetId: m.packetId! });
  await b.client.disconnect();
  await broker.close();
});

Deno.test("Broker reports sessionPresent right for v5 clean start and session expiry", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const steps: [boolean, number | undefined, boolean][] = [
    [false, undefined, false], // expiry 0: the session ends at disconnect
    [false, 60, false], // no session left from the last one
    [false, 60, true], // resumes
    [true, 60, false], // clean start discards it [MQTT-3.1.2-4]
  ];
  for (const [clean, expiry, present] of steps) {
    const { client, connack } = await RawClient.connect(
      port,
      conn("sp5", clean, 5, expiry),
    );
    assert.equal(connack.sessionPresent, present, `clean=${clean} ${expiry}`);
    await client.disconnect();
  }
  await broker.close();
});

Deno.test("Broker queues QoS 1/2 (not QoS 0) for an offline session and delivers them in order on resume", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const first = await RawClient.connect(port, conn("off", false));
  await first.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "off/#", qos: 2 }],
  });
  await first.client.expect("suback");
  await first.client.disconnect();
  await waitFor(() => broker.connectedClients === 0, 2000, "the disconnect");
  broker.publish("off/a", "1", { qos: 1 });
  broker.publish("off/a", "zero", { qos: 0 });
  broker.publish("off/a", "2", { qos: 2 });
  broker.publish("off/a", "3", { qos: 1 });
  const again = await RawClient.connect(port, conn("off", false));
  assert.equal(again.connack.sessionPresent, true);
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    const m = await again.client.expectPublish("off/a");
    got.push(`${text(m.payload)}@${m.qos}`);
  }
  assert.deepEqual(got, ["1@1", "2@2", "3@1"]);
  await again.client.expectNothing((x) => x.type === "publish", 100);
  await again.client.disconnect();
  await broker.close();
});

Deno.test("Broker resends unacknowledged PUBLISH with DUP and PUBREL for PUBREC'd ones on resume v3:[MQTT-4.4.0-1]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await RawClient.connect(port, conn("rs", false));
  await a.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "rs", qos: 2 }],
  });
  await a.client.expect("suback");
  broker.publish("rs", "q1", { qos: 1 });
  broker.publish("rs", "q2", { qos: 2 });
  const m1 = await a.client.expectPublish("rs");
  const m2 = await a.client.expectPublish("rs");
  await a.client.send({ type: "pubrec", packetId: m2.packetId! });
  await a.client.expect("pubrel");
  await a.client.close(); // no PUBACK for m1, no PUBCOMP for m2
  const b = await RawClient.connect(port, conn("rs", false));
  assert.equal(b.connack.sessionPresent, true);
  const again = await b.client.expectPublish("rs");
  assert.equal(again.dup, true);
  assert.equal(again.packetId, m1.packetId);
  assert.equal(text(again.payload), "q1");
  const rel = await b.client.expect("pubrel");
  assert.equal(rel.packetId, m2.packetId);
  await b.client.send({ type: "puback", packetId: m1.packetId! });
  await b.client.send({ type: "pubcomp", packetId: m2.packetId! });
  await b.client.expectNothing(() => true, 100);
  await b.client.disconnect();
  // Completed: nothing is resent next time.
  const c = await RawClient.connect(port, conn("rs", false));
  await c.client.expectNothing(() => true, 100);
  await c.client.disconnect();
  await broker.close();
});

Deno.test("Broker expires an offline v5 session after its Session Expiry Interval [MQTT-4.1.0-2]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await RawClient.connect(port, conn("exp", false, 5, 1));
  await a.client.disconnect();
  assert.equal(broker.sessionCount, 1);
  await waitFor(() => broker.sessionCount === 0, 3000, "session expiry");
  const b = await RawClient.connect(port, conn("exp", false, 5, 1));
  assert.equal(b.connack.sessionPresent, false);
  await b.client.disconnect();
  await broker.close();
});

Deno.test("Broker bounds an offline queue by maxQueuedMessages, dropping the oldest", async () => {
  const broker = await startBroker({ maxQueuedMessages: 3 });
  const port = broker.addr.port;
  const a = await RawClient.connect(port, conn("bq", false));
  await a.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "bq", qos: 1 }],
  });
  await a.client.expect("suback");
  await a.client.disconnect();
  await waitFor(() => broker.connectedClients === 0, 2000, "the disconnect");
  for (let i = 1; i <= 5; i++) broker.publish("bq", String(i), { qos: 1 });
  const b = await RawClient.connect(port, conn("bq", false));
  const got: string[] = [];
  for (let i = 0; i < 3; i++) {
    got.push(text((await b.client.expectPublish("bq")).payload));
  }
  assert.deepEqual(got, ["3", "4", "5"]);
  await b.client.disconnect();
  await broker.close();
});

Deno.test("Broker rebuilds sessions, subscriptions, queues and retained messages from its store", async () => {
  const store = new MemoryStore();
  const b1 = await startBroker({ store });
  const a = await RawClient.connect(b1.addr.port, conn("durable", false));
  await a.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "d/#", qos: 1 }],
  });
  await a.client.expect("suback");
  await a.client.disconnect();
  await waitFor(() => b1.connectedClients === 0, 2000, "the disconnect");
  const { client: p } = await RawClient.connect(b1.addr.port, {
    clientId: "dp",
  });
  await p.send({
    type: "publish",
    topic: "d/1",
    payload: new TextEncoder().encode("kept"),
    qos: 1,
    retain: true,
    dup: false,
    packetId: 5,
  });
  await p.expect("puback"); // acknowledged after the store commit
  await p.disconnect();
  await b1.close();

  const b2 = await startBroker({ store });
  assert.equal(b2.retainedCount, 1);
  const r = await RawClient.connect(b2.addr.port, conn("durable", false));
  assert.equal(r.connack.sessionPresent, true);
  const m = await r.client.expectPublish("d/1");
  assert.equal(text(m.payload), "kept");
  assert.equal(m.retain, false);
  await r.client.send({ type: "puback", packetId: m.packetId! });
  // The subscription survived: new messages arrive.
  b2.publish("d/2", "new", { qos: 1 });
  assert.equal((await r.client.expectPublish("d/2")).topic, "d/2");
  await r.client.disconnect();
  await b2.close();
});

Deno.test("Broker with enablePersistence keeps sessions and retained messages in Deno KV across restarts", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite-broker-kv-" });
  try {
    const options = {
      host: "127.0.0.1",
      port: 0,
      sysInterval: 0,
      enablePersistence: true,
      persistencePath: dir,
    };
    const b1 = new Broker(options);
    await b1.listen();
    const a = await RawClient.connect(b1.addr.port, conn("kv", false, 5, 300));
    await a.client.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "kv/#", qos: 2 }],
    });
    await a.client.expect("suback");
    await a.client.disconnect();
    await waitFor(() => b1.connectedClients === 0, 2000, "the disconnect");
    const { client: p } = await RawClient.connect(b1.addr.port, {
      clientId: "kvp",
    });
    for (let i = 1; i <= 20; i++) {
      await p.send({
        type: "publish",
        topic: `kv/${i}`,
        payload: new TextEncoder().encode(String(i)),
        qos: 1,
        retain: i === 20,
        dup: false,
        packetId: i,
      });
    }
    for (let i = 1; i <= 20; i++) await p.expect("puback");
    await p.disconnect();
    await b1.close();

    const b2 = new Broker(options);
    await b2.listen();
    assert.equal(b2.retainedCount, 1);
    const r = await RawClient.connect(b2.addr.port, conn("kv", false, 5, 300));
    assert.equal(r.connack.sessionPresent, true);
    for (let i = 1; i <= 20; i++) {
      const m = await r.client.expectPublish(`kv/${i}`);
      assert.equal(text(m.payload), String(i));
      await r.client.send({ type: "puback", packetId: m.packetId! });
    }
    await r.client.disconnect();
    await b2.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Broker hands a persistent session over on takeover with sessionPresent 1 and its subscriptions", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const a = await RawClient.connect(port, conn("to", false));
  await a.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "to/#", qos: 1 }],
  });
  await a.client.expect("suback");
  const b = await RawClient.connect(port, conn("to", false));
  assert.equal(b.connack.sessionPresent, true);
  await a.client.waitClosed();
  broker.publish("to/x", "after takeover", { qos: 1 });
  assert.equal(
    text((await b.client.expectPublish("to/x")).payload),
    "after takeover",
  );
  await a.client.close();
  await b.client.disconnect();
  await broker.close();
});
