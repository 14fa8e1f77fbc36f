/**
 * Interop: MQTT.js (a client nobody here wrote) against Kite's broker, for
 * protocol versions 4 and 5.
 */

import assert from "node:assert/strict";
import mqtt from "mqtt";
import type { Broker } from "../broker/mod.ts";
import { startBroker, withTimeout } from "./_helpers.ts";

type Client = ReturnType<typeof mqtt.connect>;
type Msg = { topic: string; payload: string; qos: number; retain: boolean };

async function open(
  broker: Broker,
  version: 4 | 5,
  options: Record<string, unknown> = {},
): Promise<{ client: Client; messages: Msg[]; next: () => Promise<Msg> }> {
  const client = mqtt.connect({
    host: "127.0.0.1",
    port: broker.addr.port,
    protocolVersion: version,
    reconnectPeriod: 0,
    keepalive: 0,
    ...options,
  });
  const messages: Msg[] = [];
  let wake: (() => void) | undefined;
  client.on("message", (topic, payload, packet) => {
    messages.push({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      retain: packet.retain,
    });
    wake?.();
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    }),
    3000,
    "MQTT.js connect",
  );
  const next = () =>
    withTimeout(
      (async () => {
        while (messages.length === 0) {
          await new Promise<void>((r) => wake = r);
        }
        return messages.shift()!;
      })(),
      3000,
      "an MQTT.js message",
    );
  return { client, messages, next };
}

function end(client: Client, force = false): Promise<void> {
  return withTimeout(
    new Promise<void>((r) => client.end(force, {}, () => r())),
    3000,
    "MQTT.js end",
  );
}

for (const version of [4, 5] as const) {
  Deno.test(`MQTT.js v${version}: publish and subscribe at QoS 0, 1 and 2`, async () => {
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
