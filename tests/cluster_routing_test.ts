/**
 * Cluster mode, routing: three Kite nodes (`broker/main.ts` subprocesses)
 * on one nats-server with JetStream; MQTT.js and mosquitto_sub/pub on
 * different nodes. A message published on any node reaches every matching
 * subscriber on every node, at the granted QoS, with the v5 options as on
 * one node; plain NATS clients read and feed the same subjects.
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import { startKiteCluster } from "./_cluster.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";
import { mosquittoSub } from "./_mosquitto_sub.ts";
import { requireNats, startNats } from "./_nats.ts";
import { hasCommand } from "./_subprocess.ts";

const ready = requireNats("cluster_routing_test");
const mosquitto = hasCommand("mosquitto_sub") && hasCommand("mosquitto_pub");
if (!mosquitto && Deno.env.get("KITE_REQUIRE_INTEROP") === "1") {
  throw new Error(
    "mosquitto_sub/mosquitto_pub not found (KITE_REQUIRE_INTEROP=1)",
  );
}

type Msg = {
  topic: string;
  payload: string;
  qos: number;
  retain: boolean;
  props: Record<string, unknown> | undefined;
};

function open(node: { addr: { hostname: string; port: number } }, opts = {}) {
  return openMqttjs(
    node,
    { protocolVersion: 5, ...opts },
    (topic, payload, packet): Msg => ({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
      props: packet.properties as Record<string, unknown> | undefined,
    }),
  );
}

async function pub(port: number, args: string[]): Promise<void> {
  const out = await new Deno.Command("mosquitto_pub", {
    args: ["-h", "127.0.0.1", "-p", String(port), ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(new TextDecoder().decode(out.stderr));
  }
}

Deno.test({
  name:
    "cluster: MQTT.js and mosquitto on different nodes get each other's messages at the granted QoS, both ways",
  ignore: !ready || !mosquitto,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const [a, b, c] = cluster.nodes;
    // Subscribers on a (MQTT.js, QoS 2 grant) and b (mosquitto_sub, QoS 1).
    const js = await open(a!);
    await js.client.subscribeAsync("t/#", { qos: 2 });
    await using ms = await mosquittoSub(b!.port, [
      "-V",
      "5",
      "-q",
      "1",
      "-t",
      "t/#",
    ]);
    // From c (MQTT.js) and from a (mosquitto_pub, next to the subscriber).
    const p = await open(c!);
    for (const qos of [0, 1, 2] as const) {
      await p.client.publishAsync(`t/c/${qos}`, `from c ${qos}`, { qos });
    }
    await pub(a!.port, ["-V", "5", "-q", "1", "-t", "t/a", "-m", "from a"]);
    const got: Msg[] = [];
    for (let i = 0; i < 4; i++) got.push(await js.next());
    // MQTT.js emits a QoS 2 message at its PUBREL: compare in topic order.
    got.sort((x, y) => x.topic.localeCompare(y.topic));
    assert.deepEqual(
      got.map((m) => [m.topic, m.payload, m.qos]),
      [
        ["t/a", "from a", 1],
        ["t/c/0", "from c 0", 0],
        ["t/c/1", "from c 1", 1],
        ["t/c/2", "from c 2", 2],
      ],
    );
    // mosquitto_sub's grant is QoS 1 [MQTT-3.8.4-8]: it prints topic and
    // payload; the order per publisher is kept.
    const lines = await ms.take(4);
    assert.deepEqual(lines.filter((l) => l.startsWith("t/c")), [
      "t/c/0 from c 0",
      "t/c/1 from c 1",
      "t/c/2 from c 2",
    ]);
    assert.ok(lines.includes("t/a from a"), lines.join());
    // And the other way: the subscriber on a publishes, b and c's get it.
    const onC = await open(c!);
    await onC.client.subscribeAsync("back/+", { qos: 1 });
    await js.client.publishAsync("back/x", "from a", { qos: 1 });
    assert.equal((await onC.next()).payload, "from a");
    await Promise.all([js, p, onC].map((x) => endMqttjs(x.client)));
  },
});

Deno.test({
  name:
    "cluster: v5 properties, Retain As Published, No Local and subscription identifiers cross nodes as on one node [MQTT-3.3.1-9] [MQTT-3.8.3-3] [MQTT-3.3.4-3]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"]);
    const [a, b] = cluster.nodes;
    const sub = await open(a!);
    await sub.client.subscribeAsync("p/#", {
      qos: 1,
      rap: true,
      properties: { subscriptionIdentifier: 7 },
    });
    await sub.client.subscribeAsync("p/+", {
      qos: 0,
      properties: { subscriptionIdentifier: 9 },
    });
    const p = await open(b!, { clientId: "pub-b" });
    await p.client.publishAsync("p/x", "props", {
      qos: 1,
      retain: true,
      properties: {
        contentType: "text/plain",
        userProperties: { k: "v" },
        correlationData: new Uint8Array([1, 2, 3]) as never,
        responseTopic: "reply/here",
        payloadFormatIndicator: true,
        messageExpiryInterval: 60,
      },
    });
    const m = await sub.next();
    assert.equal(m.topic, "p/x");
    assert.equal(m.qos, 1, "one delivery at the highest grant");
    assert.equal(m.retain, true, "Retain As Published");
    const props = m.props!;
    assert.equal(props.contentType, "text/plain");
    assert.deepEqual({ ...props.userProperties as object }, { k: "v" });
    assert.deepEqual([...(props.correlationData as Uint8Array)], [1, 2, 3]);
    assert.equal(props.responseTopic, "reply/here");
    assert.equal(props.payloadFormatIndicator, true);
    assert.ok((props.messageExpiryInterval as number) <= 60);
    assert.deepEqual(
      [...(props.subscriptionIdentifier as number[])].sort(),
      [7, 9],
    );
    // No Local: a client with the same id cannot be on two nodes, but the
    // publisher's id travels: its own No Local subscription on b skips it.
    const self = await open(b!, { clientId: "self" });
    await self.client.subscribeAsync("nl/t", { qos: 1, nl: true });
    const other = await open(a!);
    await other.client.subscribeAsync("nl/t", { qos: 1 });
    await self.client.publishAsync("nl/t", "own", { qos: 1 });
    assert.equal((await other.next()).payload, "own");
    await p.client.publishAsync("nl/t", "not own", { qos: 1 });
    assert.equal((await self.next()).payload, "not own");
    assert.equal(self.messages.length, 0);
    await Promise.all([sub, p, self, other].map((x) => endMqttjs(x.client)));
  },
});

Deno.test({
  name:
    "cluster: a plain NATS client reads MQTT messages on mapped subjects and publishes to MQTT subscribers",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"], {
      name: "interop",
    });
    const [a, b] = cluster.nodes;
    const nc = await connect({ servers: nats.url });
    try {
      // NATS -> MQTT: Kite subscribes in NATS per filter.
      const sub = await open(b!);
      await sub.client.subscribeAsync("n/#", { qos: 0 });
      for (
        const [subject, topic] of [
          ["interop.n.x", "n/x"],
          ["interop.n./", "n/"], // an empty last level
          ["interop.n./.y", "n//y"], // an empty level inside
          ["interop.n", "n"], // "#" matches the parent level
        ]
      ) {
        nc.publish(subject!, `to ${topic}`);
        const m = await sub.next();
        assert.deepEqual([m.topic, m.payload, m.qos], [
          topic,
          `to ${topic}`,
          0,
        ]);
      }
      // Overlapping filters: NATS sends b a copy per matching subject
      // ("n.>" and "n.*"); the subscriber gets the message once, as one
      // PUBLISH for both of its subscriptions [MQTT-3.3.4-2].
      await sub.client.subscribeAsync("n/+", { qos: 0 });
      nc.publish("interop.n.once", "once");
      nc.publish("interop.n.once", "once"); // a second, equal message
      const twice = [await sub.next(), await sub.next()];
      assert.deepEqual(twice.map((m) => m.payload), ["once", "once"]);
      // MQTT -> NATS: a message node a sends to b is on the subject
      // nats-server would use (a node sends only what another routes to).
      const { promise, resolve } = Promise.withResolvers<string>();
      const s = nc.subscribe("interop.n.>", {
        callback: (_e, msg) => resolve(`${msg.subject} ${msg.string()}`),
      });
      await nc.flush();
      const p = await open(a!);
      await p.client.publishAsync("n//z", "from mqtt", { qos: 0 });
      assert.equal((await sub.next()).payload, "from mqtt");
      // From a Kite node too (two of b's subjects match).
      await p.client.publishAsync("n/zz", "both", { qos: 0 });
      assert.equal((await sub.next()).payload, "both");
      // Nothing doubled: the next message is the next one.
      nc.publish("interop.n.last", "last");
      assert.equal((await sub.next()).payload, "last");
      assert.equal(sub.messages.length, 0);
      assert.equal(await promise, "interop.n./.z from mqtt");
      s.unsubscribe();
      await endMqttjs(p.client);
      await endMqttjs(sub.client);
    } finally {
      await nc.close();
    }
  },
});
