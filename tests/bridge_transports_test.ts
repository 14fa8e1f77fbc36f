/**
 * Bridges over every transport Mosquitto offers: TLS with a client
 * certificate (mutual TLS, `require_certificate true`), WebSocket
 * (`protocol websockets`) and WebSocket over TLS. Messages cross both ways
 * on each; the certificates are a throwaway CA's.
 */

import assert from "node:assert/strict";
import type { BridgeOptions } from "../broker/mod.ts";
import { checkBridges } from "../broker/mod.ts";
import { HAVE_MOSQUITTO, startMosquittoTransports } from "./_mosquitto.ts";
import { HAVE_OPENSSL, makeCerts } from "./_certs.ts";
import { startBroker } from "./_helpers.ts";
import { bridgeState, Collector } from "./_bridge.ts";

/** Sends one message each way over bridge `name` and checks both arrive. */
async function bothWays(
  name: string,
  localPort: number,
  remotePort: number,
): Promise<void> {
  await using local = await Collector.open(localPort, [`${name}/in`]);
  await using remote = await Collector.open(remotePort, [`${name}/out`]);
  await local.client.publish(`${name}/out`, "to mosquitto", { qos: 1 });
  await remote.waitFor(`${name}/out`, "to mosquitto");
  await remote.client.publish(`${name}/in`, "to kite", { qos: 1 });
  await local.waitFor(`${name}/in`, "to kite");
}

Deno.test({
  name:
    "Bridge to Mosquitto over mutual TLS (tls.certFile/keyFile), ws:// and wss://: messages cross both ways",
  ignore: !HAVE_MOSQUITTO || !HAVE_OPENSSL,
  async fn() {
    await using certs = await makeCerts();
    await using m = await startMosquittoTransports(certs);
    const bridge = (name: string, address: string, more = {}) =>
      ({
        name,
        addresses: [address],
        clientId: `kite-${name}`,
        reconnectDelay: 50,
        maxReconnectDelay: 200,
        topics: [
          { pattern: `${name}/out`, direction: "out", qos: 1 },
          { pattern: `${name}/in`, direction: "in", qos: 1 },
        ],
        ...more,
      }) as BridgeOptions;
    const broker = await startBroker({
      bridges: [
        bridge("mtls", `mqtts://127.0.0.1:${m.mqttsMutual}`, {
          tls: {
            caFile: certs.caFile,
            certFile: certs.clientCertFile,
            keyFile: certs.clientKeyFile,
          },
        }),
        bridge("ws", `ws://127.0.0.1:${m.ws}`),
        bridge("wss", `wss://localhost:${m.wss}/mqtt`, {
          tls: { caFile: certs.caFile },
        }),
      ],
    });
    try {
      for (const name of ["mtls", "ws", "wss"]) {
        await bridgeState(broker, name, "1");
        await bothWays(name, broker.addr.port, m.port);
      }
      assert.deepEqual(broker.bridges.map((b) => b.address), [
        `mqtts://127.0.0.1:${m.mqttsMutual}`,
        `ws://127.0.0.1:${m.ws}/mqtt`,
        `wss://localhost:${m.wss}/mqtt`,
      ]);
    } finally {
      await broker.close();
    }
  },
});

Deno.test("checkBridges() wants tls.certFile and tls.keyFile together", () => {
  const b = {
    name: "x",
    addresses: "mqtts://h",
    topics: [{ pattern: "a" }],
  };
  assert.throws(
    () => checkBridges([{ ...b, tls: { certFile: "c.pem" } }]),
    /\[0\] "x": tls.certFile needs tls.keyFile/,
  );
  assert.throws(
    () => checkBridges([{ ...b, tls: { key_file: "k.pem" } }]),
    /\[0\] "x": tls.keyFile needs tls.certFile/,
  );
  assert.deepEqual(
    checkBridges([{ ...b, tls: { cert_file: "c", key_file: "k" } }])[0]!.tls,
    { certFile: "c", keyFile: "k" },
  );
});
