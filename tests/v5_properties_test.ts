/**
 * v5 PUBLISH properties through the broker (payload format indicator,
 * request/response, content type, user properties), and the broker's own
 * reason strings with Request Problem Information.
 */

import assert from "node:assert/strict";
import { encode } from "../codec/encode.ts";
import type { Properties, PublishPacket, QoS } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  bytes,
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne as subscribe,
  text,
} from "./_helpers.ts";

function pub(
  topic: string,
  payload: Uint8Array,
  qos: QoS,
  properties?: Properties,
): PublishPacket {
  return publishPacket(topic, payload, { qos, packetId: 7, properties });
}

function concat(chunks: Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

const NOT_UTF8 = new Uint8Array([0x68, 0xc3, 0x28, 0xff]);

Deno.test("Broker refuses payload format indicator 1 with a non-UTF-8 payload: PUBACK/PUBREC 0x99, QoS 0 DISCONNECT 0x99 [MQTT-3.3.2-4]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(sub.client, "pf/#", 1);
  const p = await RawClient.connect(port, { protocolVersion: 5 });
  const bad = { payloadFormatIndicator: 1 };
  await p.client.send(pub("pf/1", NOT_UTF8, 1, bad));
  const ack = await p.client.expect("puback");
  assert.equal(ack.reasonCode, ReasonCode.PayloadFormatInvalid);
  assert.match(ack.properties?.reasonString ?? "", /UTF-8/);
  await p.client.send(pub("pf/2", NOT_UTF8, 2, bad));
  const rec = await p.client.expect("pubrec");
  assert.equal(rec.reasonCode, ReasonCode.PayloadFormatInvalid);
  // Valid UTF-8 with the indicator passes, indicator kept.
  await p.client.send(pub("pf/3", bytes("héllo"), 1, bad));
  assert.equal(
    (await p.client.expect("puback")).reasonCode,
    undefined,
  );
  const m = await sub.client.expectPublish();
  assert.equal(m.topic, "pf/3");
  assert.equal(m.properties?.payloadFormatIndicator, 1);
  await sub.client.send({ type: "puback", packetId: m.packetId! });
  // Neither refused message was routed.
  await sub.client.expectNothing((x) => x.type === "publish");
  await p.client.send(pub("pf/4", NOT_UTF8, 0, bad));
  await p.client.expectClosedWith(
    "disconnect",
    ReasonCode.PayloadFormatInvalid,
  );
  await p.client.close();
  await sub.client.disconnect();
  await broker.close();
});

Deno.test("Broker passes request/response, content type and user properties through unchanged, in order (exact bytes) [MQTT-3.3.2-15] [MQTT-3.3.2-16] [MQTT-3.3.2-17] [MQTT-3.3.2-18] [MQTT-3.3.2-20]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, { protocolVersion: 5 });
  await subscribe(sub.client, "rr/#", 0);
  sub.client.recordBytes = true;
  const properties: Properties = {
    payloadFormatIndicator: 1,
    contentType: "application/json",
    responseTopic: "rr/reply/42",
    correlationData: new Uint8Array([0, 1, 2, 0xfe, 0xff]),
    userProperties: [
      ["z", "last-alphabetically-first"],
      ["a", "1"],
      ["a", "2"],
      ["ünï", "çødé"],
      ["a", "1"],
    ],
  };
  const packet = pub("rr/req", bytes('{"q":1}'), 0, properties);
  const p = await RawClient.connect(port, { protocolVersion: 5 });
  await p.client.send(packet);
  const m = await sub.client.expectPublish("rr/req");
  assert.deepEqual(m.properties, properties);
  // A QoS 0, non-retained delivery is the very bytes the publisher sent.
  const wire = concat(sub.client.bytes);
  assert.deepEqual(wire, encode(packet, { version: 5 }));
  // The responder answers on the response topic with the correlation data.
  await subscribe(p.client, "rr/reply/#", 0);
  await sub.client.send(
    pub(m.properties!.responseTopic!, bytes("answer"), 0, {
      correlationData: m.properties!.correlationData!,
    }),
  );
  const reply = await p.client.expectPublish("rr/reply/42");
  assert.equal(text(reply.payload), "answer");
  assert.deepEqual(
    reply.properties?.correlationData,
    new Uint8Array([0, 1, 2, 0xfe, 0xff]),
  );
  await p.client.disconnect();
  await sub.client.disconnect();
  await broker.close();
});

Deno.test("Broker puts reason strings on refusals, none on PUBACK/SUBACK when Request Problem Information is 0 [MQTT-3.1.2-29]", async () => {
  const broker = await startBroker({
    sharedSubscriptionAvailable: false,
    authorizePublish: (_c, topic) =>
      topic.startsWith("deny/") ? ReasonCode.NotAuthorized : 0,
  });
  const port = broker.addr.port;
  for (const problemInfo of [1, 0]) {
    const c = await RawClient.connect(port, {
      protocolVersion: 5,
      properties: { requestProblemInformation: problemInfo },
    });
    await c.client.send(pub("deny/x", bytes("x"), 1));
    const ack = await c.client.expect("puback");
    assert.equal(ack.reasonCode, ReasonCode.NotAuthorized);
    await c.client.send({
      type: "subscribe",
      packetId: 2,
      subscriptions: [{ filter: "$share/g/t", qos: 1 }, {
        filter: "ok",
        qos: 1,
      }],
    });
    const suback = await c.client.expect("suback");
    assert.deepEqual(suback.reasonCodes, [
      ReasonCode.SharedSubscriptionsNotSupported,
      1,
    ]);
    if (problemInfo === 1) {
      assert.match(
        ack.properties?.reasonString ?? "",
        /publish refused: NotAuthorized/,
      );
      assert.match(
        suback.properties?.reasonString ?? "",
        /\$share\/g\/t: SharedSubscriptionsNotSupported/,
      );
    } else {
      assert.equal(ack.properties, undefined);
      assert.equal(suback.properties, undefined);
    }
    await c.client.disconnect();
  }
  await broker.close();
});

Deno.test("Broker puts a reason string on a refusing CONNACK even when Request Problem Information is 0", async () => {
  const broker = await startBroker({ allowAnonymous: false });
  const r = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    properties: { requestProblemInformation: 0 },
  });
  assert.equal(r.connack.reasonCode, ReasonCode.NotAuthorized);
  assert.match(r.connack.properties?.reasonString ?? "", /anonymous/);
  await r.client.waitClosed();
  await r.client.close();
  await broker.close();
});

Deno.test("Broker leaves the reason string out when it would pass the client's Maximum Packet Size [MQTT-3.9.2-1]", async () => {
  const broker = await startBroker({ sharedSubscriptionAvailable: false });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    // A client id: an assigned one would take the CONNACK past 40 bytes.
    clientId: "mps",
    properties: { maximumPacketSize: 40 },
  });
  await client.send({
    type: "subscribe",
    packetId: 2,
    subscriptions: [{ filter: "$share/group/some/long/filter/#", qos: 1 }],
  });
  const suback = await client.expect("suback");
  assert.deepEqual(suback.reasonCodes, [
    ReasonCode.SharedSubscriptionsNotSupported,
  ]);
  assert.equal(suback.properties?.reasonString, undefined);
  await client.disconnect();
  await broker.close();
});
