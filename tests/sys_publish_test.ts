/**
 * `$SYS` topics are the broker's (issue 19, finding 9): a client's PUBLISH
 * to them is refused like an authorization refusal (not routed, not
 * retained; v5 QoS 1/2 acknowledged with 0x87, QoS 0 dropped), a will on
 * them is refused at CONNECT; the broker's own `$SYS` publishing works.
 */

import assert from "node:assert/strict";
import { KITE_VERSION, SYS_TOPICS } from "../broker/mod.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  bytes,
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
} from "./_helpers.ts";

Deno.test("Broker refuses a v5 client's PUBLISH to $SYS: PUBACK/PUBREC 0x87, QoS 0 dropped, nothing routed or retained", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const { client: sub } = await RawClient.connect(port, { clientId: "sub" });
  await subscribeOne(sub, "$SYS/#", 0);
  const { client: c } = await RawClient.connect(port, {
    clientId: "attacker",
    protocolVersion: 5,
  });
  const hack = (
    qos: 0 | 1 | 2,
    packetId = 1,
    topic: string = SYS_TOPICS.version,
  ) => publishPacket(topic, "hacked", { qos, retain: true, packetId });
  await c.send(hack(0));
  await c.send(hack(1, 1));
  const puback = await c.expect("puback");
  assert.equal(puback.packetId, 1);
  assert.equal(puback.reasonCode, ReasonCode.NotAuthorized);
  await c.send(hack(2, 2));
  const pubrec = await c.expect("pubrec");
  assert.equal(pubrec.reasonCode, ReasonCode.NotAuthorized);
  // "$SYS" itself and deeper topics too.
  await c.send(hack(1, 3, "$SYS"), hack(1, 4, "$SYS/x/y"));
  assert.equal((await c.expect("puback")).reasonCode, 0x87);
  assert.equal((await c.expect("puback")).reasonCode, 0x87);
  // Still connected.
  await c.send({ type: "pingreq" });
  await c.expect("pingresp");
  await sub.expectNothing((p) => p.type === "publish");
  assert.equal(broker.retainedCount, 0);
  // A later subscriber gets no retained "hacked".
  const { client: late } = await RawClient.connect(port, { clientId: "late" });
  await subscribeOne(late, "$SYS/#", 0);
  await late.expectNothing((p) => p.type === "publish");
  for (const x of [sub, c, late]) await x.disconnect();
  await broker.close();
});

Deno.test("Broker drops a 3.1.1 client's PUBLISH to $SYS (PUBACK without routing) and keeps its own $SYS topics", async () => {
  const broker = await startBroker({ sysInterval: 0.05 });
  const port = broker.addr.port;
  const { client: c } = await RawClient.connect(port, { clientId: "c4" });
  await c.send(
    publishPacket(SYS_TOPICS.version, "hacked", { qos: 0, retain: true }),
    publishPacket(SYS_TOPICS.version, "hacked", { qos: 1, retain: true }),
  );
  assert.equal((await c.expect("puback")).packetId, 1);
  // The broker's own $SYS publishing (Broker.publish) keeps working.
  broker.publish("$SYS/broker/custom", "mine", { retain: true });
  const { client: sub } = await RawClient.connect(port, { clientId: "s" });
  await subscribeOne(sub, "$SYS/broker/#", 0);
  const seen = new Map<string, string>();
  while (!seen.has("$SYS/broker/custom") || !seen.has(SYS_TOPICS.version)) {
    const m = await sub.expectPublish();
    seen.set(m.topic, text(m.payload));
  }
  assert.equal(seen.get(SYS_TOPICS.version), KITE_VERSION);
  assert.equal(seen.get("$SYS/broker/custom"), "mine");
  for (const x of [c, sub]) await x.disconnect();
  await broker.close();
});

Deno.test("Broker refuses a will on $SYS at CONNECT: v5 CONNACK 0x87, 3.1.1 0x05", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const will = {
    topic: "$SYS/broker/version",
    payload: bytes("hacked"),
    qos: 0 as const,
    retain: true,
  };
  const v5 = await RawClient.connect(port, {
    clientId: "w5",
    protocolVersion: 5,
    will,
  });
  assert.equal(v5.connack.reasonCode, ReasonCode.NotAuthorized);
  await v5.client.waitClosed();
  const v4 = await RawClient.connect(port, { clientId: "w4", will });
  assert.equal(v4.connack.reasonCode, 0x05);
  await v4.client.waitClosed();
  assert.equal(broker.retainedCount, 0);
  for (const x of [v5, v4]) await x.client.close();
  await broker.close();
});
