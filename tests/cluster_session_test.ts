/**
 * Cluster mode, sessions: a client id belongs to one node at a time (the
 * session registry, compare-and-set in JetStream KV). A client that
 * reconnects to another node resumes its session there: subscriptions,
 * queued and in-flight QoS 1/2 messages, QoS 2 state; connecting on
 * another node while connected closes the old connection (0x8E).
 */

import assert from "node:assert/strict";
import type { PublishPacket } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { startKiteCluster } from "./_cluster.ts";
import { publishPacket, RawClient, subscribeOne, text } from "./_helpers.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";
import { requireNats, startNats } from "./_nats.ts";

const ready = requireNats("cluster_session_test");

type Msg = { topic: string; payload: string; qos: number };

function open(node: { addr: { hostname: string; port: number } }, opts = {}) {
  return openMqttjs(
    node,
    { protocolVersion: 5, ...opts },
    (topic, payload, packet): Msg => ({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
    }),
  );
}

const persistent = (clientId: string) => ({
  clientId,
  clean: false,
  properties: { sessionExpiryInterval: 3600 },
});

Deno.test({
  name:
    "cluster: a client resumes its session on another node: subscriptions and the QoS 1/2 messages queued while it was away v5:[MQTT-3.1.2-4] [MQTT-4.5.0-1]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const [a, b, c] = cluster.nodes;
    const first = await open(a!, persistent("roamer"));
    await first.client.subscribeAsync("s/#", { qos: 2 });
    await endMqttjs(first.client);
    // Published on b while the session is offline on a.
    const p = await open(b!);
    for (let i = 0; i < 5; i++) {
      await p.client.publishAsync(`s/${i}`, `m${i}`, {
        qos: (i % 2 + 1) as 1 | 2,
      });
    }
    await p.client.publishAsync("s/q0", "not kept", { qos: 0 });
    // Back on c.
    const again = await open(c!, persistent("roamer"));
    const got: Msg[] = [];
    for (let i = 0; i < 5; i++) got.push(await again.next());
    // MQTT.js emits a QoS 2 message at its PUBREL: compare in topic order.
    got.sort((x, y) => x.topic.localeCompare(y.topic));
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload, m.qos]),
      [0, 1, 2, 3, 4].map((i) => [`s/${i}`, `m${i}`, i % 2 + 1]),
    );
    // The subscription came along: live messages from a reach c now.
    const p2 = await open(a!);
    await p2.client.publishAsync("s/live", "live", { qos: 1 });
    assert.equal((await again.next()).payload, "live");
    assert.equal(again.messages.length, 0, "the QoS 0 one was not queued");
    await Promise.all([p, p2, again].map((x) => endMqttjs(x.client)));
  },
});

Deno.test({
  name:
    "cluster: QoS 2 state moves with the session: PUBREL resent on the new node v5:[MQTT-4.4.0-1], and a QoS 2 message received before the move is not delivered twice [MQTT-4.3.3-10]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"]);
    const [a, b] = cluster.nodes;
    const connect = (port: number) =>
      RawClient.connect(port, {
        protocolVersion: 5,
        clientId: "q2",
        cleanStart: false,
        properties: { sessionExpiryInterval: 3600 },
      });
    // Outgoing: a QoS 2 message to the client, PUBREC sent, PUBREL not yet
    // acknowledged with PUBCOMP.
    const { client: s1 } = await connect(a!.port);
    assert.deepEqual(await subscribeOne(s1, "q2/out", 2), [2]);
    const { client: p } = await RawClient.connect(a!.port, {
      protocolVersion: 5,
      clientId: "q2-pub",
    });
    await p.send(publishPacket("q2/out", "once", { qos: 2, packetId: 7 }));
    await p.expect("pubrec");
    await p.send({ type: "pubrel", packetId: 7 });
    await p.expect("pubcomp");
    const pub = await s1.expectPublish("q2/out") as PublishPacket;
    await s1.send({ type: "pubrec", packetId: pub.packetId! });
    const rel = await s1.expect("pubrel");
    assert.equal(rel.packetId, pub.packetId);
    // Incoming: a QoS 2 PUBLISH from the client, PUBREC received, no
    // PUBREL yet.
    const { client: watcher } = await RawClient.connect(b!.port, {
      protocolVersion: 5,
      clientId: "q2-watch",
    });
    assert.deepEqual(await subscribeOne(watcher, "q2/in", 2), [2]);
    await s1.send(publishPacket("q2/in", "in once", { qos: 2, packetId: 9 }));
    await s1.expect("pubrec");
    await s1.close();
    // Resumed on b.
    const { client: s2, connack } = await connect(b!.port);
    assert.equal(connack.sessionPresent, true);
    const resent = await s2.expect("pubrel");
    assert.equal(resent.packetId, pub.packetId, "PUBREL again, same id");
    await s2.send({ type: "pubcomp", packetId: pub.packetId! });
    await s2.send({ type: "pubrel", packetId: 9 });
    const comp = await s2.expect("pubcomp");
    assert.equal(comp.reasonCode ?? 0, 0, "the packet id was known");
    // "in once" was delivered when first received (on a), not again.
    const seen = await watcher.expectPublish("q2/in") as PublishPacket;
    assert.equal(text(seen.payload), "in once");
    await watcher.expectNothing((x) => x.type === "publish", 300);
    await s2.expectNothing((x) => x.type === "publish", 100);
    await Promise.all([s2, p, watcher].map((x) => x.disconnect()));
  },
});

Deno.test({
  name:
    "cluster: connecting with a client id connected on another node closes the old connection with DISCONNECT 0x8E v5:[MQTT-3.1.4-3]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"]);
    const [a, b] = cluster.nodes;
    const { client: old } = await RawClient.connect(a!.port, {
      protocolVersion: 5,
      clientId: "twice",
    });
    const { client: fresh, connack } = await RawClient.connect(b!.port, {
      protocolVersion: 5,
      clientId: "twice",
    });
    assert.equal(connack.reasonCode, 0);
    await old.expectClosedWith("disconnect", ReasonCode.SessionTakenOver);
    // And back again, a 3.1.1 client this time: its old one is closed.
    const { client: back } = await RawClient.connect(a!.port, {
      protocolVersion: 4,
      clientId: "twice",
    });
    await fresh.expectClosedWith("disconnect", ReasonCode.SessionTakenOver);
    await back.disconnect();
  },
});

Deno.test({
  name:
    "cluster: a session belongs to its user on every node: another identity is refused and the connection on the other node stays",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"]);
    const [a, b] = cluster.nodes;
    const { client: alice } = await RawClient.connect(a!.port, {
      protocolVersion: 5,
      clientId: "owned",
      username: "alice",
    });
    const { client: bob, connack } = await RawClient.connect(b!.port, {
      protocolVersion: 5,
      clientId: "owned",
      username: "bob",
    });
    assert.equal(connack.reasonCode, ReasonCode.NotAuthorized);
    await bob.waitClosed();
    await alice.send({ type: "pingreq" });
    await alice.expect("pingresp");
    await alice.disconnect();
  },
});
