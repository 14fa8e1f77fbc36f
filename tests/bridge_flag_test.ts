/**
 * Kite as the remote of a bridge: Mosquitto's bridge flag (3.1.1 CONNECT
 * with protocol level 0x84, `try_private`) makes a client's subscriptions
 * No Local and Retain As Published, as Mosquitto does; and a client may
 * publish (and leave as its will) its own connection state,
 * `$SYS/broker/connection/<client id>/state`, and no other `$SYS` topic.
 */

import assert from "node:assert/strict";
import { Client } from "../client/mod.ts";
import { MqttError } from "../codec/mod.ts";
import { startBroker } from "./_helpers.ts";
import { bridgeState, Collector } from "./_bridge.ts";
import { FakeBroker, within } from "./client_helpers.ts";
import type { ConnectPacket } from "../codec/mod.ts";

Deno.test("Broker gives a 3.1.1 client with the bridge flag (level 0x84) No Local and Retain As Published, and no other client", async () => {
  const broker = await startBroker();
  try {
    const port = broker.addr.port;
    const v4 = { protocolVersion: 4 } as const;
    await using bridge = await Collector.open(port, ["t/#"], { qos: 1 }, {
      ...v4,
      bridge: true,
    });
    await using plain = await Collector.open(port, ["t/#"], { qos: 1 }, v4);
    // Its own message does not come back to the bridge (the plain client
    // gets it, and its own too).
    await bridge.client.publish("t/own", "b", { qos: 1 });
    await plain.client.publish("t/own2", "p", { qos: 1 });
    await plain.client.publish("t/marker", "m", { qos: 1 });
    await bridge.waitFor("t/marker");
    await plain.waitFor("t/marker");
    assert.deepEqual(bridge.texts("t/own"), [], "echoed to the bridge");
    assert.deepEqual(plain.texts("t/own"), ["b"]);
    assert.deepEqual(plain.texts("t/own2"), ["p"], "plain client: echoed");
    // A retained message keeps its retain flag for the bridge only
    // [MQTT-3.3.1-9] for the plain 3.1.1 client.
    await plain.client.publish("t/r", "kept", { qos: 1, retain: true });
    assert.equal((await bridge.waitFor("t/r")).retain, true);
    assert.equal((await plain.waitFor("t/r")).retain, false);
  } finally {
    await broker.close();
  }
});

Deno.test("Broker lets a client publish and leave as its will its own $SYS/broker/connection/<id>/state only", async () => {
  const broker = await startBroker();
  try {
    const port = broker.addr.port;
    await using sys = await Collector.open(port, ["$SYS/broker/connection/#"]);
    const own = "$SYS/broker/connection/b1/state";
    const b1 = new Client({
      port,
      clientId: "b1",
      will: { topic: own, payload: "0", qos: 1, retain: true },
    });
    await b1.connect();
    assert.equal(
      (await b1.publish(own, "1", { qos: 1, retain: true })).reasonCode,
      0,
    );
    await assert.rejects(
      b1.publish("$SYS/broker/connection/b2/state", "1", { qos: 1 }),
      (e) => e instanceof MqttError && e.reasonCode === 0x87,
    );
    await assert.rejects(
      b1.publish("$SYS/broker/uptime", "1", { qos: 1 }),
      (e) => e instanceof MqttError && e.reasonCode === 0x87,
    );
    // Another client's state, as a will: refused at CONNECT.
    const b2 = new Client({
      port,
      clientId: "b2",
      will: { topic: own, payload: "0", qos: 1, retain: true },
    });
    await assert.rejects(
      b2.connect(),
      (e) => e instanceof MqttError && e.reasonCode === 0x87,
    );
    await sys.waitFor(own, "1");
    await b1.close(); // no DISCONNECT: the will
    await sys.wait(
      (m) => m.topic === own && m.payloadText === "0",
      "the will",
    );
    assert.deepEqual(sys.messages.map((m) => `${m.topic} ${m.payloadText}`), [
      `${own} 1`,
      `${own} 0`,
    ]);
  } finally {
    await broker.close();
  }
});

Deno.test("Client with reconnect.retryRefusals reconnects after a refusal a retry does not fix by itself (0x8E session taken over)", async () => {
  const broker = await startBroker();
  const a = new Client({
    port: broker.addr.port,
    clientId: "same",
    reconnect: { initialDelay: 10, maxDelay: 20, retryRefusals: true },
  });
  const b = new Client({ port: broker.addr.port, clientId: "same" });
  b.on("error", () => {});
  try {
    let connects = 0;
    const again = Promise.withResolvers<void>();
    a.on("connect", () => {
      if (++connects === 2) again.resolve();
    });
    const taken = Promise.withResolvers<number>();
    a.on("disconnect", (e) => taken.resolve(e.reasonCode));
    await a.connect();
    await b.connect(); // takes the session over: a gets 0x8E
    assert.equal(await within(taken.promise, 5000, "the takeover"), 0x8e);
    // And a comes back (taking it over in turn; b gives up).
    await within(again.promise, 5000, "a's reconnect");
    assert.equal(a.connected, true);
  } finally {
    await a.disconnect();
    await b.close();
    await broker.close();
  }
});

Deno.test("Bridge (3.1.1) connects without the bridge flag to a remote that refuses it (CONNACK 1), as Mosquitto's try_private", async () => {
  const connects: ConnectPacket[] = [];
  await using remote = new FakeBroker(async (c) => {
    const p = await c.next("connect", 5000);
    connects.push(p);
    // A 3.1.1 broker that does not know the flag: unacceptable protocol
    // version [MQTT-3.1.2-2].
    await c.send({
      type: "connack",
      sessionPresent: false,
      reasonCode: p.bridge ? 1 : 0,
    });
    if (p.bridge) c.close();
  }, 4);
  const broker = await startBroker({
    bridges: [{
      name: "old",
      addresses: [`mqtt://127.0.0.1:${remote.port}`],
      protocolVersion: 4,
      notificationsLocalOnly: true,
      topics: [{ pattern: "a/#", direction: "out" }],
    }],
  });
  try {
    await bridgeState(broker, "old", "1");
    assert.deepEqual(connects.map((p) => p.bridge === true), [true, false]);
    assert.equal(connects[1]!.protocolVersion, 4);
  } finally {
    await broker.close();
  }
});

Deno.test("Broker keeps the bridge flag of a stored session across a restart: messages queued for it before it reconnects keep their retain flag", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite-flag-" });
  const options = { enablePersistence: true, persistencePath: dir };
  try {
    // A 3.1.1 bridge (Mosquitto's flag) with a persistent session leaves.
    let broker = await startBroker(options);
    const port = broker.addr.port;
    const bridge = {
      port,
      clientId: "mosq-bridge",
      protocolVersion: 4,
      bridge: true,
      cleanStart: false,
    } as const;
    {
      await using b = await Collector.open(port, ["t/#"], { qos: 1 }, bridge);
      assert.equal(b.client.connack?.sessionPresent, false);
    }
    await broker.close();
    // Restarted: the stored session is offline; a retained message is
    // queued for it before it comes back.
    broker = await startBroker({ ...options, port });
    try {
      await using pub = await Collector.open(port, []);
      await pub.client.publish("t/r", "kept", { qos: 1, retain: true });
      await pub.client.publish("t/plain", "p", { qos: 1 });
      await using b = await Collector.open(port, [], { qos: 1 }, bridge);
      assert.equal(b.client.connack?.sessionPresent, true);
      await b.waitFor("t/plain");
      // Retain As Published for a bridge, as when it was connected
      // (without the flag kept, a 3.1.1 session gets it cleared
      // v3:[MQTT-3.3.1-9]).
      assert.equal((await b.waitFor("t/r")).retain, true);
    } finally {
      await broker.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
