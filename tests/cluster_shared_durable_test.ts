/**
 * Cluster mode: shared subscriptions with persistent members. Their QoS 1/2
 * messages go through the JetStream inbox of a node the publishing node
 * picks, so each still reaches exactly one member, and one acknowledged to
 * its publisher outlives the death of the node it was sent to (the node
 * that adopts its sessions delivers it), as a single broker keeps queuing
 * for an offline persistent member.
 */

import assert from "node:assert/strict";
import { startKiteCluster } from "./_cluster.ts";
import { publishPacket, RawClient, subscribeOne, text } from "./_helpers.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";
import { requireNats, startNats } from "./_nats.ts";
import { within } from "./client_helpers.ts";

const ready = requireNats("cluster_shared_durable_test");

const persistent = (clientId: string) => ({
  protocolVersion: 5,
  clientId,
  clean: false,
  properties: { sessionExpiryInterval: 3600 },
});

Deno.test({
  name:
    "cluster: each QoS 1 message of a shared subscription with persistent members goes to exactly one member, on any node v5:[MQTT-4.8.2-2]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const toMsg = (_t: string, p: { toString(): string }) => p.toString();
    const members = await Promise.all(
      cluster.nodes.map((n) => openMqttjs(n, persistent(`dm-${n.id}`), toMsg)),
    );
    for (const m of members) {
      await m.client.subscribeAsync("$share/d/djobs/#", { qos: 1 });
    }
    const pubA = await openMqttjs(cluster.node("a"), {}, toMsg);
    const pubC = await openMqttjs(cluster.node("c"), {}, toMsg);
    const n = 60;
    for (let i = 0; i < n; i++) {
      await (i % 2 === 0 ? pubA : pubC).client.publishAsync(
        `djobs/${i}`,
        String(i),
        { qos: 1 },
      );
    }
    const total = () => members.reduce((t, m) => t + m.messages.length, 0);
    const { promise, resolve } = Promise.withResolvers<void>();
    const check = () => {
      if (total() >= n) resolve();
    };
    for (const m of members) m.client.on("message", check);
    check();
    await within(promise, 10_000, `${n} messages (got ${total()})`);
    const got = members.flatMap((m) => m.messages.map(Number));
    assert.deepEqual(
      got.sort((x, y) => x - y),
      Array.from({ length: n }, (_, i) => i),
      "each message once",
    );
    const perNode = members.map((m) => m.messages.length);
    assert.ok(
      perNode.filter((c) => c > 0).length >= 2,
      `spread over nodes: ${perNode}`,
    );
    await Promise.all([...members, pubA, pubC].map((m) => endMqttjs(m.client)));
  },
});

Deno.test({
  name:
    "cluster: QoS 1/2 messages acknowledged for a persistent shared member whose node was killed reach it on another node v5:[MQTT-4.8.2-2] [MQTT-3.1.2-4]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const [a, b] = cluster.nodes;
    const session = {
      protocolVersion: 5 as const,
      clientId: "dm-only",
      cleanStart: false,
      keepAlive: 0,
      properties: { sessionExpiryInterval: 3600 },
    };
    // The group's only member is on a.
    const { client: m1 } = await RawClient.connect(a!.port, session);
    assert.deepEqual(await subscribeOne(m1, "$share/g/d/#", 2), [2]);
    const { client: p } = await RawClient.connect(b!.port, {
      protocolVersion: 5,
      clientId: "dm-pub",
    });
    await cluster.kill("a");
    await m1.close();
    // Published on b while a is dead (found so or not yet): all
    // acknowledged.
    const sent: string[] = [];
    for (let i = 1; i <= 20; i++) {
      const qos = i % 5 === 0 ? 2 : 1;
      await p.send(publishPacket("d/x", `m${i}`, { qos, packetId: i }));
      if (qos === 1) await p.expect("puback", 5000);
      else {
        await p.expect("pubrec", 5000);
        await p.send({ type: "pubrel", packetId: i });
        await p.expect("pubcomp", 5000);
      }
      sent.push(`m${i}`);
    }
    // Back on b: its session, adopted, with all of them.
    const m2 = await RawClient.open(b!.port, 5);
    await m2.send({ type: "connect", ...session });
    const connack = await m2.expect("connack", 20_000);
    assert.equal(connack.sessionPresent, true);
    const got: string[] = [];
    while (got.length < sent.length) {
      const x = await m2.expectPublish(undefined, 10_000);
      got.push(text(x.payload));
      if (x.qos === 1) await m2.send({ type: "puback", packetId: x.packetId! });
      else if (x.qos === 2) {
        await m2.send({ type: "pubrec", packetId: x.packetId! });
        await m2.expect("pubrel");
        await m2.send({ type: "pubcomp", packetId: x.packetId! });
      }
    }
    assert.deepEqual([...got].sort(), [...sent].sort());
    await m2.expectNothing((x) => x.type === "publish", 300);
    await m2.disconnect();
    await p.disconnect();
  },
});
