/**
 * v5 flow control: Receive Maximum both ways, and the client's Maximum
 * Packet Size.
 */

import assert from "node:assert/strict";
import type { PublishPacket, QoS } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne as subscribe,
  text,
} from "./_helpers.ts";

function pub(
  topic: string,
  payload: string | Uint8Array,
  qos: QoS,
  packetId = 1,
): PublishPacket {
  return publishPacket(topic, payload, { qos, packetId });
}

Deno.test("Broker never has more unacknowledged QoS 1/2 messages to a client than its Receive Maximum [MQTT-3.3.4-9]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, {
    protocolVersion: 5,
    properties: { receiveMaximum: 2 },
  });
  await subscribe(sub.client, "rm/#", 2);
  for (let i = 0; i < 6; i++) {
    broker.publish("rm/x", String(i), { qos: i % 2 === 0 ? 1 : 2 });
  }
  const got: string[] = [];
  while (got.length < 6) {
    const a = await sub.client.expectPublish();
    const b = await sub.client.expectPublish();
    got.push(text(a.payload), text(b.payload));
    // Two outstanding: nothing more until one is acknowledged.
    await sub.client.expectNothing((x) => x.type === "publish", 60);
    for (const m of [a, b]) {
      if (m.qos === 1) {
        await sub.client.send({ type: "puback", packetId: m.packetId! });
      } else {
        // QoS 2 counts until PUBCOMP.
        await sub.client.send({ type: "pubrec", packetId: m.packetId! });
        await sub.client.expect("pubrel");
        await sub.client.send({ type: "pubcomp", packetId: m.packetId! });
      }
    }
  }
  assert.deepEqual(got, ["0", "1", "2", "3", "4", "5"]);
  await sub.client.disconnect();
  await broker.close();
});

Deno.test("Broker answers a client exceeding its Receive Maximum with DISCONNECT 0x93 [MQTT-3.3.4-7]", async () => {
  const broker = await startBroker({ receiveMaximum: 2 });
  const port = broker.addr.port;
  const c = await RawClient.connect(port, { protocolVersion: 5 });
  assert.equal(c.connack.properties?.receiveMaximum, 2);
  // QoS 2 messages stay unacknowledged (for the quota) until PUBREL/PUBCOMP.
  await c.client.send(pub("t", "1", 2, 1), pub("t", "2", 2, 2));
  await c.client.expect("pubrec");
  await c.client.expect("pubrec");
  await c.client.send(pub("t", "3", 1, 3));
  const d = await c.client.expect("disconnect");
  assert.equal(d.reasonCode, ReasonCode.ReceiveMaximumExceeded);
  assert.match(d.properties?.reasonString ?? "", /Receive Maximum/);
  await c.client.waitClosed();
  await c.client.close();
  // Within the quota (released in time) all is well.
  const ok = await RawClient.connect(port, { protocolVersion: 5 });
  for (let i = 1; i <= 5; i++) {
    await ok.client.send(pub("t", String(i), 2, i));
    await ok.client.expect("pubrec");
    await ok.client.send({ type: "pubrel", packetId: i });
    await ok.client.expect("pubcomp");
  }
  await ok.client.disconnect();
  await broker.close();
});

Deno.test("Broker never sends a packet above the client's Maximum Packet Size: that message is dropped and counted [MQTT-3.1.2-24]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, {
    protocolVersion: 5,
    properties: { maximumPacketSize: 100 },
  });
  await subscribe(sub.client, "mps/#", 1);
  const big = new Uint8Array(200);
  broker.publish("mps/big", big, { qos: 1 });
  broker.publish("mps/big0", big, { qos: 0 });
  broker.publish("mps/small", "ok", { qos: 1 });
  const m = await sub.client.expectPublish();
  assert.equal(m.topic, "mps/small");
  await sub.client.send({ type: "puback", packetId: m.packetId! });
  await sub.client.expectNothing((x) => x.type === "publish");
  assert.equal(broker.stats.messagesDropped, 2);
  await sub.client.disconnect();
  await broker.close();
});
