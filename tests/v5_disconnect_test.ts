/**
 * The broker's own v5 DISCONNECT: one reason code per cause (a table), each
 * with a reason string for a person; and the Session Expiry Interval
 * changed at a client's DISCONNECT.
 */

import assert from "node:assert/strict";
import { encode } from "../codec/encode.ts";
import type { BrokerInit } from "../broker/mod.ts";
import type { Broker } from "../broker/broker.ts";
import type { PublishPacket, QoS } from "../codec/packet.ts";
import { ReasonCode, reasonCodeName } from "../codec/reason_code.ts";
import { publishPacket, RawClient, startBroker } from "./_helpers.ts";

function pub(
  topic: string,
  payload: string | Uint8Array,
  qos: QoS = 0,
  retain = false,
  packetId = 1,
): PublishPacket {
  return publishPacket(topic, payload, { qos, retain, packetId });
}

interface Row {
  cause: string;
  code: number;
  options?: BrokerInit;
  /** Makes the broker disconnect `c` (connected with client id "victim"). */
  act(c: RawClient, broker: Broker): Promise<void>;
}

const ROWS: Row[] = [
  {
    cause: "keep alive timeout",
    code: ReasonCode.KeepAliveTimeout,
    // 1.5 x 1 s of silence [MQTT-3.1.2-22]
    act: () => Promise.resolve(),
  },
  {
    cause: "session taken over",
    code: ReasonCode.SessionTakenOver,
    act: async (_c, broker) => {
      const other = await RawClient.connect(broker.addr.port, {
        protocolVersion: 5,
        clientId: "victim",
      });
      await other.client.disconnect();
    },
  },
  {
    cause: "server shutting down",
    code: ReasonCode.ServerShuttingDown,
    act: (_c, broker) => {
      void broker.close();
      return Promise.resolve();
    },
  },
  {
    cause: "packet too large",
    code: ReasonCode.PacketTooLarge,
    options: { maxPacketSize: 64 },
    act: (c) => c.send(pub("big", new Uint8Array(100))),
  },
  {
    cause: "topic alias invalid",
    code: ReasonCode.TopicAliasInvalid,
    act: (c) => c.send({ ...pub("t", "x"), properties: { topicAlias: 11 } }),
  },
  {
    cause: "receive maximum exceeded",
    code: ReasonCode.ReceiveMaximumExceeded,
    options: { receiveMaximum: 1 },
    act: (c) => c.send(pub("t", "1", 2, false, 1), pub("t", "2", 2, false, 2)),
  },
  {
    cause: "QoS not supported",
    code: ReasonCode.QoSNotSupported,
    options: { maxQos: 1 },
    act: (c) => c.send(pub("t", "x", 2)),
  },
  {
    cause: "retain not supported",
    code: ReasonCode.RetainNotSupported,
    options: { retainAvailable: false },
    act: (c) => c.send(pub("t", "x", 0, true)),
  },
  {
    cause: "payload format invalid",
    code: ReasonCode.PayloadFormatInvalid,
    act: (c) =>
      c.send({
        ...pub("t", new Uint8Array([0xff])),
        properties: { payloadFormatIndicator: 1 },
      }),
  },
  {
    cause: "malformed packet (QoS 3 PUBLISH)",
    code: ReasonCode.MalformedPacket,
    act: (c) => {
      const b = encode(pub("t", "x"), { version: 5 });
      b[0] = b[0]! | 0x06;
      return c.sendBytes(b);
    },
  },
  {
    cause: "protocol error (second CONNECT)",
    code: ReasonCode.ProtocolError,
    act: (c) =>
      c.send({
        type: "connect",
        protocolVersion: 5,
        clientId: "victim",
        cleanStart: true,
        keepAlive: 0,
      }),
  },
  {
    cause: "protocol error (PUBLISH with a Subscription Identifier)",
    code: ReasonCode.ProtocolError,
    act: (c) =>
      c.send({
        ...pub("t", "x"),
        properties: { subscriptionIdentifiers: [1] },
      }),
  },
  {
    cause: "protocol error (AUTH without an authentication method)",
    code: ReasonCode.ProtocolError,
    act: (c) =>
      c.send({
        type: "auth",
        reasonCode: ReasonCode.ReAuthenticate,
        properties: { authenticationMethod: "X" },
      }),
  },
  {
    cause:
      "protocol error (session expiry 0 at CONNECT, non-zero at DISCONNECT)",
    code: ReasonCode.ProtocolError,
    act: (c) =>
      c.send({
        type: "disconnect",
        reasonCode: 0,
        properties: { sessionExpiryInterval: 60 },
      }),
  },
];

for (const row of ROWS) {
  Deno.test(
    `Broker sends DISCONNECT 0x${row.code.toString(16)} (${
      reasonCodeName(row.code)
    }) with a reason string on ${row.cause}`,
    async () => {
      const broker = await startBroker(row.options);
      const keepAlive = row.code === ReasonCode.KeepAliveTimeout ? 1 : 0;
      const { client } = await RawClient.connect(broker.addr.port, {
        protocolVersion: 5,
        clientId: "victim",
        keepAlive,
        properties: { requestProblemInformation: 0 },
      });
      await row.act(client, broker);
      const d = await client.expect("disconnect", 3000);
      assert.equal(d.reasonCode, row.code);
      // Allowed on DISCONNECT even with Request Problem Information 0.
      assert.ok((d.properties?.reasonString ?? "").length > 0);
      await client.waitClosed();
      await client.close();
      await broker.close();
    },
  );
}

Deno.test("Broker takes a new Session Expiry Interval from DISCONNECT: 60 -> 0 ends the session [MQTT-3.14.2-2]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const fields = {
    protocolVersion: 5 as const,
    clientId: "sx",
    cleanStart: false,
    properties: { sessionExpiryInterval: 60 },
  };
  const a = await RawClient.connect(port, fields);
  assert.equal(a.connack.sessionPresent, false);
  await a.client.send({
    type: "disconnect",
    reasonCode: 0,
    properties: { sessionExpiryInterval: 0 },
  });
  await a.client.waitClosed();
  await a.client.close();
  const b = await RawClient.connect(port, fields);
  assert.equal(b.connack.sessionPresent, false);
  // And 60 -> 120 keeps it.
  await b.client.send({
    type: "disconnect",
    reasonCode: 0,
    properties: { sessionExpiryInterval: 120 },
  });
  await b.client.waitClosed();
  await b.client.close();
  const c = await RawClient.connect(port, fields);
  assert.equal(c.connack.sessionPresent, true);
  await c.client.disconnect();
  await broker.close();
});
