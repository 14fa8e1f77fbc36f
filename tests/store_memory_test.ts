import assert from "node:assert/strict";
import { Client } from "../client/mod.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import { storeSuite } from "./store_suite.ts";
import { startBroker } from "./_helpers.ts";

storeSuite({
  name: "MemoryStore",
  open() {
    const store = new MemoryStore();
    return Promise.resolve({
      store,
      reopen: () => Promise.resolve(store),
      dispose: () => store.close(),
    });
  },
});

Deno.test("MemoryStore({ keepOutgoing: false }) keeps sessions and retained messages, not outgoing ones", async () => {
  const store = new MemoryStore({ keepOutgoing: false });
  const message = {
    topic: "t",
    payload: new Uint8Array([1]),
    qos: 1 as const,
    retain: false,
  };
  store.putSession({
    clientId: "c",
    protocolVersion: 5,
    expiryInterval: 60,
    subscriptions: [],
  });
  store.putRetained("r", { ...message, topic: "r", retain: true });
  store.putOutgoing("c", { seq: 1, state: "queued", qos: 1, message });
  store.deleteOutgoing("c", 1);
  await store.commit();
  const loaded = await store.load();
  assert.equal(loaded.retained.length, 1);
  assert.equal(loaded.sessions.length, 1);
  assert.equal(loaded.sessions[0]!.record.clientId, "c");
  assert.deepEqual(loaded.sessions[0]!.outgoing, []);
  await store.close();
});

Deno.test("Broker with persistence off still delivers a persistent session's queued QoS 1 messages after it reconnects v5:[MQTT-3.1.2-5]", async () => {
  const broker = await startBroker({ enablePersistence: false });
  const port = broker.addr.port;
  try {
    const sub = new Client({
      port,
      clientId: "keeper",
      cleanStart: false,
      sessionExpiryInterval: 300,
      reconnect: false,
    });
    await sub.connect();
    await sub.subscribe("q/#", 1);
    await sub.disconnect();
    const pub = new Client({ port, reconnect: false });
    await pub.connect();
    for (let i = 0; i < 3; i++) {
      await pub.publish(`q/${i}`, `m${i}`, { qos: 1 });
    }
    await pub.disconnect();
    const again = new Client({
      port,
      clientId: "keeper",
      cleanStart: false,
      sessionExpiryInterval: 300,
      reconnect: false,
    });
    const got: string[] = [];
    const all = Promise.withResolvers<void>();
    again.onMessage((m) => {
      got.push(m.payloadText);
      if (got.length === 3) all.resolve();
    });
    const connack = await again.connect();
    assert.equal(connack.sessionPresent, true);
    await all.promise;
    assert.deepEqual(got, ["m0", "m1", "m2"]);
    await again.disconnect();
  } finally {
    await broker.close();
  }
});
