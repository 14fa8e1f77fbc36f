/**
 * Cluster mode: shared subscriptions (`$share/g/f`) are cluster-wide, and
 * retained messages are the cluster's. Three Kite nodes on one nats-server.
 */

import assert from "node:assert/strict";
import type { PublishPacket } from "../codec/packet.ts";
import { startKiteCluster } from "./_cluster.ts";
import { publishPacket, RawClient, subscribeOne, text } from "./_helpers.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";
import { mosquittoSub } from "./_mosquitto_sub.ts";
import { requireNats, startNats } from "./_nats.ts";
import { hasCommand } from "./_subprocess.ts";
import { within } from "./client_helpers.ts";

const ready = requireNats("cluster_shared_test");
const mosquitto = hasCommand("mosquitto_sub") && hasCommand("mosquitto_pub");

type Msg = { topic: string; payload: string; retain: boolean };

function open(node: { addr: { hostname: string; port: number } }, opts = {}) {
  return openMqttjs(
    node,
    { protocolVersion: 5, ...opts },
    (topic, payload, packet): Msg => ({
      topic,
      payload: payload.toString(),
      retain: packet.retain,
    }),
  );
}

/**
 * Waits (bounded) until `members` received `n` messages in all; returns how
 * many each got.
 */
async function collect(
  members: {
    client: { on(e: "message", f: () => void): unknown };
    messages: unknown[];
  }[],
  n: number,
  ms = 10_000,
): Promise<number[]> {
  const total = () => members.reduce((t, m) => t + m.messages.length, 0);
  const { promise, resolve } = Promise.withResolvers<void>();
  const check = () => {
    if (total() >= n) resolve();
  };
  for (const m of members) m.client.on("message", check);
  check();
  await within(promise, ms, `${n} messages (got ${total()})`);
  return members.map((m) => m.messages.length);
}

Deno.test({
  name:
    "cluster: each message of a shared subscription goes to exactly one member in the whole cluster (4.8.2)",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const members = await Promise.all(cluster.nodes.map((n) => open(n)));
    for (const m of members) {
      await m.client.subscribeAsync("$share/g/jobs/#", { qos: 1 });
    }
    // A second group on the same filter gets every message too.
    const other = await open(cluster.node("b"));
    await other.client.subscribeAsync("$share/h/jobs/#", { qos: 1 });
    const pubA = await open(cluster.node("a"));
    const pubC = await open(cluster.node("c"));
    const n = 60;
    for (let i = 0; i < n; i++) {
      await (i % 2 === 0 ? pubA : pubC).client.publishAsync(
        `jobs/${i}`,
        String(i),
        { qos: 1 },
      );
    }
    const perNode = await collect(members, n);
    const got = members.flatMap((m) => m.messages.map((x) => x.payload));
    assert.equal(got.length, n, `got ${got.length} of ${n}`);
    assert.deepEqual(
      got.map(Number).sort((x, y) => x - y),
      Array.from({ length: n }, (_, i) => i),
      "each message once",
    );
    assert.ok(
      perNode.filter((c) => c > 0).length >= 2,
      `spread over nodes: ${perNode}`,
    );
    assert.deepEqual(await collect([other], n), [n]);
    await Promise.all(
      [...members, other, pubA, pubC].map((m) => endMqttjs(m.client)),
    );
  },
});

Deno.test({
  name:
    "cluster: a leaving shared member's unacknowledged QoS 1 messages go to a member on another node [MQTT-4.8.2-4]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"]);
    const [a, b] = cluster.nodes;
    // The member on a takes one message at a time and never acknowledges.
    const { client: slow } = await RawClient.connect(a!.port, {
      protocolVersion: 5,
      clientId: "slow",
      properties: { receiveMaximum: 1 },
    });
    assert.deepEqual(await subscribeOne(slow, "$share/g/work", 1), [1]);
    const { client: p } = await RawClient.connect(a!.port, {
      protocolVersion: 5,
      clientId: "pub",
    });
    for (let i = 1; i <= 5; i++) {
      await p.send(publishPacket("work", `m${i}`, { qos: 1, packetId: i }));
      await p.expect("puback");
    }
    const first = await slow.expectPublish("work") as PublishPacket;
    assert.equal(text(first.payload), "m1", "one in flight, four queued");
    // Another member joins on b; then the slow one goes.
    const fast = await open(b!);
    await fast.client.subscribeAsync("$share/g/work", { qos: 1 });
    await slow.close();
    const moved: string[] = [];
    for (let i = 0; i < 5; i++) moved.push((await fast.next()).payload);
    assert.deepEqual(moved.sort(), ["m1", "m2", "m3", "m4", "m5"]);
    await p.disconnect();
    await endMqttjs(fast.client);
  },
});

Deno.test({
  name:
    "cluster: a retained message set on one node is sent to subscribers on the others, and deleting it works cluster-wide v5:[MQTT-3.3.1-6] v5:[MQTT-3.3.1-10]",
  ignore: !ready || !mosquitto,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const [a, b, c] = cluster.nodes;
    const p = await open(a!);
    await p.client.publishAsync("r/one", "kept", { qos: 1, retain: true });
    await p.client.publishAsync("r/two", "kept too", { qos: 1, retain: true });
    // A QoS 1 retained message is acknowledged once every node has it: a
    // new subscriber on b gets both, on subscribe.
    await using onB = await mosquittoSub(b!.port, ["-V", "5", "-t", "r/#"]);
    const lines = await onB.take(2);
    assert.deepEqual(lines.sort(), ["r/one kept", "r/two kept too"]);
    // Cleared from c: nobody gets it any more.
    const q = await open(c!);
    await q.client.publishAsync("r/one", "", { qos: 1, retain: true });
    const late = await open(a!);
    await late.client.subscribeAsync("r/#", { qos: 1 });
    const m = await late.next();
    assert.deepEqual([m.topic, m.payload, m.retain], [
      "r/two",
      "kept too",
      true,
    ]);
    assert.equal(late.messages.length, 0);
    await Promise.all([p, q, late].map((x) => endMqttjs(x.client)));
  },
});
