/**
 * Cluster mode, QoS 2 through a crash: a node killed after it stored a QoS
 * 2 delivery from its JetStream inbox, and before it acknowledged the inbox
 * message, gets that message again through the node that adopts its
 * sessions; the session does not take it twice. The node is killed at that
 * point by its test-only fault (`KITE_CLUSTER_FAULT=inbox-ack`). Nor does
 * a node that gets an inbox message again because its acknowledgement came
 * after the ack wait (`inbox-ack-late`) deliver it twice.
 */

import assert from "node:assert/strict";
import type { PublishPacket } from "../codec/packet.ts";
import { startKiteCluster } from "./_cluster.ts";
import { publishPacket, RawClient, subscribeOne, text } from "./_helpers.ts";
import { requireNats, startNats } from "./_nats.ts";

const ready = requireNats("cluster_exactly_once_test");

/** Publishes QoS 2 from `p` and completes the flow. */
async function publish2(
  p: RawClient,
  topic: string,
  payload: string,
  packetId: number,
): Promise<void> {
  await p.send(publishPacket(topic, payload, { qos: 2, packetId }));
  assert.equal((await p.expect("pubrec", 5000)).packetId, packetId);
  await p.send({ type: "pubrel", packetId });
  await p.expect("pubcomp", 5000);
}

/** Takes the next PUBLISH at `s` and completes its QoS 2 flow. */
async function receive2(s: RawClient, ms: number): Promise<PublishPacket> {
  const m = await s.expectPublish(undefined, ms);
  assert.equal(m.qos, 2);
  await s.send({ type: "pubrec", packetId: m.packetId! });
  assert.equal((await s.expect("pubrel", 5000)).packetId, m.packetId);
  await s.send({ type: "pubcomp", packetId: m.packetId! });
  return m;
}

Deno.test({
  name:
    "cluster: a QoS 2 message stored for a session on a node killed before its inbox acknowledgement reaches the client once, resent with its packet id on the adopting node v5:[MQTT-4.4.0-1] [MQTT-3.3.1-1]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"], {
      envOf: (i) => i === 0 ? { KITE_CLUSTER_FAULT: "inbox-ack" } : {},
    });
    const [a, b] = cluster.nodes;
    const session = {
      protocolVersion: 5 as const,
      clientId: "eo-sub",
      cleanStart: false,
      keepAlive: 0,
      properties: { sessionExpiryInterval: 3600 },
    };
    const { client: s1 } = await RawClient.connect(a!.port, session);
    // Its SUBACK comes once every node routes QoS 1/2 to a's inbox.
    assert.deepEqual(await subscribeOne(s1, "eo/#", 2), [2]);
    const { client: p } = await RawClient.connect(b!.port, {
      protocolVersion: 5,
      clientId: "eo-pub",
    });
    // b's PUBREC comes once the message is in a's inbox.
    await publish2(p, "eo/1", "once", 1);
    // a stores the delivery, then dies before acknowledging the inbox
    // message; the PUBLISH, held until that commit, never left it.
    const { code } = await a!.broker.process.exit(10_000, "a to die");
    assert.equal(code, 137, "killed at the fault point");
    await cluster.kill("a");
    await s1.waitClosed();
    assert.deepEqual(s1.inbox.filter((x) => x.type === "publish"), []);
    await s1.close();
    // Back on b: the CONNACK comes once a's sessions are adopted and its
    // inbox drained (the message comes again after its ack wait, 3 s).
    const s2 = await RawClient.open(b!.port, 5);
    await s2.send({ type: "connect", ...session });
    const connack = await s2.expect("connack", 20_000);
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.sessionPresent, true);
    const first = await receive2(s2, 5000);
    assert.equal(first.topic, "eo/1");
    assert.equal(text(first.payload), "once");
    assert.equal(first.dup, true, "resent, as stored on a");
    // A marker after it: nothing else came before.
    await publish2(p, "eo/marker", "end", 2);
    const next = await receive2(s2, 5000);
    assert.equal(next.topic, "eo/marker", "eo/1 was delivered twice");
    await s2.expectNothing((x) => x.type === "publish", 200);
    await s2.disconnect();
    await p.disconnect();
  },
});

Deno.test({
  name:
    "cluster: an inbox message delivered again to its node (acknowledged after the ack wait) does not deliver its QoS 2 message twice",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"], {
      envOf: (i) => i === 0 ? { KITE_CLUSTER_FAULT: "inbox-ack-late" } : {},
    });
    const [a, b] = cluster.nodes;
    const { client: s } = await RawClient.connect(a!.port, {
      protocolVersion: 5,
      clientId: "eo-late",
      cleanStart: false,
      properties: { sessionExpiryInterval: 3600 },
    });
    assert.deepEqual(await subscribeOne(s, "late/#", 2), [2]);
    const { client: p } = await RawClient.connect(b!.port, {
      protocolVersion: 5,
      clientId: "eo-late-pub",
    });
    await publish2(p, "late/1", "once", 1);
    // Held until a's commit confirms the inbox acknowledgement (4 s, the
    // message comes again to a after 3 s).
    const first = await receive2(s, 10_000);
    assert.equal(first.topic, "late/1");
    assert.equal(first.dup, false);
    await publish2(p, "late/marker", "end", 2);
    const next = await receive2(s, 10_000);
    assert.equal(next.topic, "late/marker", "late/1 was delivered twice");
    await s.expectNothing((x) => x.type === "publish", 200);
    await s.disconnect();
    await p.disconnect();
  },
});
