/**
 * Keep alive: `maxKeepAlive` (Mosquitto's `max_keepalive`), `serverKeepAlive`
 * and enforcement at one and a half times the keep alive. Includes the
 * Eclipse Paho MQTT 5.0 interoperability suite's `test_server_keep_alive`
 * and `test_keepalive` expectations, with the maximum of Paho's test broker
 * (60 s), and a comparison with Mosquitto's `max_keepalive`.
 */

import assert from "node:assert/strict";
import type { ProtocolVersion } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { RawClient, startBroker, text } from "./_helpers.ts";
import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";

async function connack(
  port: number,
  version: ProtocolVersion,
  keepAlive: number,
  clientId = `ka-${version}-${keepAlive}`,
) {
  const { client, connack } = await RawClient.connect(port, {
    protocolVersion: version,
    keepAlive,
    clientId,
  });
  await client.disconnect();
  return connack;
}

Deno.test("maxKeepAlive: a v5 client asking more, or 0, gets CONNACK Server Keep Alive = the maximum; one asking less keeps its own [MQTT-3.2.2-22]", async () => {
  const broker = await startBroker({ maxKeepAlive: 60 });
  const port = broker.addr.port;
  try {
    // Paho test_server_keep_alive: keepalive=120 against a maximum of 60.
    const over = await connack(port, 5, 120);
    assert.equal(over.reasonCode, ReasonCode.Success);
    assert.equal(over.properties?.serverKeepAlive, 60);
    assert.equal((await connack(port, 5, 0)).properties?.serverKeepAlive, 60);
    for (const asked of [5, 59, 60]) {
      const c = await connack(port, 5, asked);
      assert.equal(c.reasonCode, ReasonCode.Success);
      assert.equal(c.properties?.serverKeepAlive, undefined, `asked ${asked}`);
    }
  } finally {
    await broker.close();
  }
});

Deno.test("maxKeepAlive: a 3.1.1 client asking more, or 0, gets CONNACK 0x02 and is closed; one asking less is accepted [MQTT-3.2.2-5]", async () => {
  const broker = await startBroker({ maxKeepAlive: 60 });
  const port = broker.addr.port;
  try {
    for (const asked of [61, 120, 0]) {
      const { client, connack } = await RawClient.connect(port, {
        protocolVersion: 4,
        keepAlive: asked,
        clientId: `ka4-${asked}`,
      });
      assert.equal(connack.reasonCode, 0x02, `asked ${asked}`);
      await client.waitClosed();
      await client.close();
    }
    assert.equal((await connack(port, 4, 60)).reasonCode, 0);
    assert.equal((await connack(port, 4, 5)).reasonCode, 0);
  } finally {
    await broker.close();
  }
});

Deno.test("maxKeepAlive: the default (65535) caps nothing; serverKeepAlive is capped by it", async () => {
  const plain = await startBroker();
  try {
    const v5 = await connack(plain.addr.port, 5, 0);
    assert.equal(v5.properties?.serverKeepAlive, undefined);
    assert.equal((await connack(plain.addr.port, 4, 0)).reasonCode, 0);
    assert.equal((await connack(plain.addr.port, 4, 65535)).reasonCode, 0);
  } finally {
    await plain.close();
  }
  const both = await startBroker({ serverKeepAlive: 100, maxKeepAlive: 60 });
  try {
    const c = await connack(both.addr.port, 5, 10);
    assert.equal(c.properties?.serverKeepAlive, 60);
  } finally {
    await both.close();
  }
  const forced = await startBroker({ serverKeepAlive: 30, maxKeepAlive: 60 });
  try {
    const c = await connack(forced.addr.port, 5, 0);
    assert.equal(c.properties?.serverKeepAlive, 30);
  } finally {
    await forced.close();
  }
});

Deno.test("Keep alive: a client asking 5 s under a 60 s maximum is dropped after 7.5 s of silence and its will published; a subscriber that asked 0 stays v5:[MQTT-3.1.2-22]", async () => {
  // Paho test_keepalive: aclient keepalive=5 with a will, bclient
  // keepalive=0 subscribed to the will topic.
  const broker = await startBroker({ maxKeepAlive: 60 });
  const port = broker.addr.port;
  const b = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "bclient",
    keepAlive: 0,
  });
  try {
    assert.equal(b.connack.properties?.serverKeepAlive, 60);
    await b.client.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "ka/will", qos: 2 }],
    });
    await b.client.expect("suback");
    const a = await RawClient.connect(port, {
      protocolVersion: 5,
      clientId: "aclient",
      keepAlive: 5,
      will: {
        topic: "ka/will",
        payload: new TextEncoder().encode("keepalive expiry"),
        qos: 0,
        retain: false,
      },
    });
    const t0 = Date.now();
    assert.equal(a.connack.properties?.serverKeepAlive, undefined);
    const d = await a.client.expect("disconnect", 12_000);
    const after = Date.now() - t0;
    assert.equal(d.reasonCode, ReasonCode.KeepAliveTimeout);
    assert.ok(after >= 7400, `dropped after ${after} ms, not 7.5 s`);
    const will = await b.client.expectPublish("ka/will", 3000);
    assert.equal(text(will.payload), "keepalive expiry");
    await a.client.waitClosed();
    await a.client.close();
    assert.equal(b.client.isClosed, false);
  } finally {
    await b.client.disconnect();
    await broker.close();
  }
});

Deno.test({
  name:
    "maxKeepAlive: the Server Keep Alive a v5 client gets matches Mosquitto's max_keepalive",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    await using mosquitto = await startMosquitto({
      extraConfig: "max_keepalive 60",
    });
    const kite = await startBroker({ maxKeepAlive: 60 });
    try {
      for (const asked of [0, 5, 60, 61, 120, 65535]) {
        const theirs = await connack(mosquitto.port, 5, asked);
        const ours = await connack(kite.addr.port, 5, asked);
        assert.equal(ours.reasonCode, theirs.reasonCode, `asked ${asked}`);
        assert.equal(
          ours.properties?.serverKeepAlive,
          theirs.properties?.serverKeepAlive,
          `asked ${asked}`,
        );
      }
    } finally {
      await kite.close();
    }
  },
});
