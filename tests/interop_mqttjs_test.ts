/**
 * Interop: MQTT.js (a client nobody here wrote) against Kite's broker, for
 * protocol versions 4 and 5.
 */

import assert from "node:assert/strict";
import type { Broker } from "../broker/mod.ts";
import { startBroker } from "./_helpers.ts";
import { endMqttjs, type MqttjsConnection, openMqttjs } from "./_mqttjs.ts";

type Msg = { topic: string; payload: string; qos: number; retain: boolean };

function open(
  broker: Broker,
  version: 4 | 5,
  options: Record<string, unknown> = {},
): Promise<MqttjsConnection<Msg>> {
  return openMqttjs(
    broker,
    { protocolVersion: version, ...options },
    (topic, payload, packet) => ({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
    }),
  );
}

const end = endMqttjs;

for (const version of [4, 5] as const) {
  Deno.test(`MQTT.js v${version}: publish and subscribe at QoS 0, 1 and 2 v3:[MQTT-7.0.0-2]`, async () => {
    const broker = await startBroker();
    const sub = await open(broker, version);
    const pub = await open(broker, version);
    await sub.client.subscribeAsync("js/#", { qos: 2 });
    for (const qos of [0, 1, 2] as const) {
      await pub.client.publishAsync(`js/${qos}`, `m${qos}`, { qos });
      const m = await sub.next();
      assert.deepEqual(m, {
        topic: `js/${qos}`,
        payload: `m${qos}`,
        qos,
        retain: false,
      });
    }
    await end(pub.client);
    await end(sub.client);
    await broker.close();
  });

  Deno.test(`MQTT.js v${version}: retained message on subscribe`, async () => {
    const broker = await startBroker();
    const pub = await open(broker, version);
    await pub.client.publishAsync("js/retained", "kept", {
      qos: 1,
      retain: true,
    });
    const sub = await open(broker, version);
    await sub.client.subscribeAsync("js/+", { qos: 1 });
    const m = await sub.next();
    assert.deepEqual(m, {
      topic: "js/retained",
      payload: "kept",
      qos: 1,
      retain: true,
    });
    await end(pub.client);
    await end(sub.client);
    await broker.close();
  });

  Deno.test(`MQTT.js v${version}: will published on an ungraceful close`, async () => {
    const broker = await startBroker();
    const watcher = await open(broker, version);
    await watcher.client.subscribeAsync("js/will", { qos: 1 });
    const dying = await open(broker, version, {
      will: { topic: "js/will", payload: "bye", qos: 1, retain: false },
    });
    dying.client.stream.destroy();
    const m = await watcher.next();
    assert.equal(m.payload, "bye");
    await end(dying.client, true);
    await end(watcher.client);
    await broker.close();
  });

  Deno.test(`MQTT.js v${version}: session resumes with messages queued while offline`, async () => {
    const broker = await startBroker();
    const persistent = {
      clientId: `js-persist-${version}`,
      clean: false,
      ...(version === 5 ? { properties: { sessionExpiryInterval: 60 } } : {}),
    };
    const first = await open(broker, version, persistent);
    await first.client.subscribeAsync("js/offline", { qos: 1 });
    await end(first.client);
    const pub = await open(broker, version);
    await pub.client.publishAsync("js/offline", "while away", { qos: 1 });
    const again = await open(broker, version, persistent);
    const m = await again.next();
    assert.equal(m.payload, "while away");
    assert.equal(m.qos, 1);
    await end(pub.client);
    await end(again.client);
    await broker.close();
  });
}
