import assert from "node:assert/strict";
import type { Broker } from "../broker/mod.ts";
import type { ConnectPacket, ProtocolVersion } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { bytes, RawClient, startBroker, text } from "./_helpers.ts";

async function watcher(broker: Broker, filter = "will/#"): Promise<RawClient> {
  const { client } = await RawClient.connect(broker.addr.port, {
    clientId: `watch-${crypto.randomUUID()}`,
  });
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter, qos: 2 }],
  });
  await client.expect("suback");
  return client;
}

function withWill(
  clientId: string,
  version: ProtocolVersion = 4,
  extra: Partial<ConnectPacket> = {},
): Partial<ConnectPacket> & { protocolVersion: ProtocolVersion } {
  return {
    protocolVersion: version,
    clientId,
    will: {
      topic: `will/${clientId}`,
      payload: bytes(`${clientId} is gone`),
      qos: 1,
      retain: true,
    },
    ...extra,
  };
}

Deno.test("Broker publishes the will when the socket closes without DISCONNECT, with its QoS and retain", async () => {
  const broker = await startBroker();
  const w = await watcher(broker);
  const { client } = await RawClient.connect(broker.addr.port, withWill("w1"));
  await client.close();
  const m = await w.expectPublish("will/w1");
  assert.equal(text(m.payload), "w1 is gone");
  assert.equal(m.qos, 1);
  assert.equal(broker.retainedCount, 1); // will retain honoured
  const w2 = await watcher(broker);
  assert.equal((await w2.expectPublish("will/w1")).retain, true);
  await w.disconnect();
  await w2.disconnect();
  await broker.close();
});

Deno.test("Broker discards the will on DISCONNECT v3:[MQTT-3.1.2-10]", async () => {
  const broker = await startBroker();
  const w = await watcher(broker);
  const { client } = await RawClient.connect(broker.addr.port, withWill("w2"));
  await client.disconnect();
  // A later message proves the will would have been delivered before it.
  broker.publish("will/marker", "m");
  assert.equal((await w.expectPublish()).topic, "will/marker");
  await w.disconnect();
  await broker.close();
});

Deno.test("Broker publishes the will after a protocol error", async () => {
  const broker = await startBroker();
  const w = await watcher(broker);
  const { client } = await RawClient.connect(broker.addr.port, withWill("w3"));
  await client.sendBytes(new Uint8Array([0x00, 0x00])); // reserved type 0
  await client.waitClosed();
  assert.equal((await w.expectPublish()).topic, "will/w3");
  await client.close();
  await w.disconnect();
  await broker.close();
});

Deno.test("Broker publishes the will of a connection that is taken over", async () => {
  const broker = await startBroker();
  const w = await watcher(broker);
  const old = await RawClient.connect(broker.addr.port, withWill("w4"));
  const neu = await RawClient.connect(broker.addr.port, { clientId: "w4" });
  assert.equal((await w.expectPublish()).topic, "will/w4");
  await old.client.waitClosed();
  await old.client.close();
  await neu.client.disconnect();
  await w.disconnect();
  await broker.close();
});

Deno.test("Broker publishes the will after DISCONNECT 0x04 (v5)", async () => {
  const broker = await startBroker();
  const w = await watcher(broker);
  const { client } = await RawClient.connect(
    broker.addr.port,
    withWill("w5", 5),
  );
  await client.send({
    type: "disconnect",
    reasonCode: ReasonCode.DisconnectWithWillMessage,
  });
  assert.equal((await w.expectPublish()).topic, "will/w5");
  await client.close();
  await w.disconnect();
  await broker.close();
});

Deno.test("Broker publishes the will after a keep alive timeout", async () => {
  const broker = await startBroker();
  const w = await watcher(broker);
  const { client } = await RawClient.connect(
    broker.addr.port,
    withWill("w6", 4, { keepAlive: 1 }),
  );
  assert.equal((await w.expectPublish("will/w6", 3000)).topic, "will/w6");
  await client.waitClosed();
  await client.close();
  await w.disconnect();
  await broker.close();
});

Deno.test("Broker delays a v5 will by its Will Delay Interval and cancels it on reconnect", async () => {
  const broker = await startBroker();
  const w = await watcher(broker);
  const delayed = (id: string) => {
    const c = withWill(id, 5, {
      cleanStart: false,
      properties: { sessionExpiryInterval: 60 },
    });
    c.will!.properties = { willDelayInterval: 1 };
    return c;
  };
  // Reconnects in time: no will.
  const a = await RawClient.connect(broker.addr.port, delayed("wd1"));
  await a.client.close();
  const a2 = await RawClient.connect(broker.addr.port, delayed("wd1"));
  assert.equal(a2.connack.sessionPresent, true);
  // Does not reconnect: the will comes about a second later.
  const b = await RawClient.connect(broker.addr.port, delayed("wd2"));
  const t0 = Date.now();
  await b.client.close();
  const m = await w.expectPublish(undefined, 3000);
  assert.equal(m.topic, "will/wd2");
  assert.ok(Date.now() - t0 >= 900, "will not delayed");
  await w.expectNothing((x) => x.type === "publish", 100);
  await a2.client.disconnect();
  await w.disconnect();
  await broker.close();
});

Deno.test("Broker refuses a v5 will above maxQos (0x9B) or retained without retain available (0x9A) [MQTT-3.2.2-12] [MQTT-3.2.2-13]", async () => {
  const b1 = await startBroker({ maxQos: 0 });
  const r1 = await RawClient.connect(b1.addr.port, withWill("wq", 5));
  assert.equal(r1.connack.reasonCode, ReasonCode.QoSNotSupported);
  await r1.client.close();
  await b1.close();
  const b2 = await startBroker({ retainAvailable: false });
  const r2 = await RawClient.connect(b2.addr.port, withWill("wr", 5));
  assert.equal(r2.connack.reasonCode, ReasonCode.RetainNotSupported);
  await r2.client.close();
  await b2.close();
});
