/**
 * Interop of Kite's broker's MQTT 5 features with clients nobody here
 * wrote: MQTT.js v5 (topic aliases both ways, shared subscriptions, user
 * properties, request/response, message expiry) and `mosquitto_sub -V 5`
 * on a shared subscription (skipped when mosquitto_sub is absent, unless
 * KITE_REQUIRE_INTEROP=1, which makes that a failure).
 */

import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import type { Broker } from "../broker/mod.ts";
import { startBroker, withTimeout } from "./_helpers.ts";
import { hasCommand } from "./_subprocess.ts";
import {
  endMqttjs,
  type MqttjsClient,
  type MqttjsConnection,
  openMqttjs,
} from "./_mqttjs.ts";

interface Msg {
  topic: string;
  payload: string;
  qos: number;
  // deno-lint-ignore no-explicit-any
  properties: Record<string, any> | undefined;
}

function open(
  broker: Broker,
  options: Record<string, unknown> = {},
): Promise<MqttjsConnection<Msg>> {
  return openMqttjs(
    broker,
    { protocolVersion: 5, ...options },
    (topic, payload, packet) => ({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
      properties: packet.properties as Msg["properties"],
    }),
  );
}

function end(client: MqttjsClient): Promise<void> {
  return endMqttjs(client);
}

Deno.test("MQTT.js v5: topic aliases to Kite (manual and autoUseTopicAlias) and from Kite (topicAliasMaximum)", async () => {
  const broker = await startBroker();
  // The subscriber lets the broker alias (MQTT.js resolves the aliases).
  const sub = await open(broker, { properties: { topicAliasMaximum: 4 } });
  await sub.client.subscribeAsync("ta/#", { qos: 1 });
  const pub = await open(broker, { autoUseTopicAlias: true });
  const topics = ["ta/long/topic/one", "ta/long/topic/one", "ta/two"];
  for (const t of topics) await pub.client.publishAsync(t, "auto", { qos: 1 });
  // Manual: set alias 3, then only the alias.
  await pub.client.publishAsync("ta/manual", "m1", {
    qos: 1,
    properties: { topicAlias: 3 },
  });
  await pub.client.publishAsync("", "m2", {
    qos: 1,
    properties: { topicAlias: 3 },
  });
  const got: string[] = [];
  for (let i = 0; i < 5; i++) {
    const m = await sub.next();
    got.push(`${m.topic}=${m.payload}`);
  }
  assert.deepEqual(got, [
    "ta/long/topic/one=auto",
    "ta/long/topic/one=auto",
    "ta/two=auto",
    "ta/manual=m1",
    "ta/manual=m2",
  ]);
  await end(pub.client);
  await end(sub.client);
  await broker.close();
});

Deno.test("MQTT.js v5: shared subscription members get one message each, round-robin", async () => {
  const broker = await startBroker();
  const a = await open(broker);
  const b = await open(broker);
  const c = await open(broker, { protocolVersion: 4 });
  for (const m of [a, b, c]) {
    await m.client.subscribeAsync("$share/workers/jobs/#", { qos: 1 });
  }
  const pub = await open(broker);
  for (let i = 0; i < 9; i++) {
    await pub.client.publishAsync("jobs/x", String(i), { qos: 1 });
  }
  const all: string[] = [];
  for (const m of [a, b, c]) {
    for (let i = 0; i < 3; i++) all.push((await m.next()).payload);
  }
  assert.deepEqual(all.sort(), ["0", "1", "2", "3", "4", "5", "6", "7", "8"]);
  for (const m of [a, b, c, pub]) await end(m.client);
  await broker.close();
});

Deno.test("MQTT.js v5: user properties (order kept), request/response, content type and message expiry pass through", async () => {
  const broker = await startBroker();
  const responder = await open(broker);
  await responder.client.subscribeAsync("svc/req", { qos: 1 });
  const requester = await open(broker);
  await requester.client.subscribeAsync("svc/resp/me", { qos: 1 });
  await requester.client.publishAsync("svc/req", '{"n":2}', {
    qos: 1,
    properties: {
      responseTopic: "svc/resp/me",
      correlationData: Buffer.from("corr-1"),
      contentType: "application/json",
      messageExpiryInterval: 120,
      userProperties: { b: "2", a: ["x", "y"] },
    },
  });
  const req = await responder.next();
  const p = req.properties!;
  assert.equal(p.responseTopic, "svc/resp/me");
  assert.equal(new TextDecoder().decode(p.correlationData), "corr-1");
  assert.equal(p.contentType, "application/json");
  assert.ok(p.messageExpiryInterval === 120 || p.messageExpiryInterval === 119);
  assert.deepEqual({ ...p.userProperties }, { b: "2", a: ["x", "y"] });
  assert.deepEqual(Object.keys(p.userProperties), ["b", "a"]);
  // The responder answers where it was told, with the correlation data.
  await responder.client.publishAsync(p.responseTopic, "4", {
    qos: 1,
    properties: { correlationData: p.correlationData },
  });
  const resp = await requester.next();
  assert.equal(resp.topic, "svc/resp/me");
  assert.equal(resp.payload, "4");
  assert.equal(
    new TextDecoder().decode(resp.properties!.correlationData),
    "corr-1",
  );
  await end(responder.client);
  await end(requester.client);
  await broker.close();
});

const REQUIRE = Deno.env.get("KITE_REQUIRE_INTEROP") === "1";
const HAVE_SUB = hasCommand("mosquitto_sub");
if (!HAVE_SUB) {
  console.warn(
    "interop_mqttjs_v5_test: mosquitto_sub not found, skipping its shared subscription test (apt-get install mosquitto-clients)",
  );
}

Deno.test({
  name: "mosquitto_sub -V 5 on $share/g/t: two members share the messages",
  ignore: !HAVE_SUB && !REQUIRE,
  async fn() {
    assert.ok(HAVE_SUB, "KITE_REQUIRE_INTEROP=1 but mosquitto_sub is absent");
    const broker = await startBroker();
    const spawn = () =>
      new Deno.Command("mosquitto_sub", {
        args: [
          "-h",
          "127.0.0.1",
          "-p",
          String(broker.addr.port),
          "-V",
          "5",
          "-q",
          "1",
          "-t",
          "$share/g/mq/t",
          "-C",
          "2",
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    const before = broker.subscriptionCount;
    const children = [spawn(), spawn()];
    await withTimeout(
      (async () => {
        while (broker.subscriptionCount < before + 2) {
          await new Promise((r) => setTimeout(r, 10));
        }
      })(),
      3000,
      "mosquitto_sub to subscribe",
    );
    for (let i = 0; i < 4; i++) broker.publish("mq/t", `m${i}`, { qos: 1 });
    const outs = await withTimeout(
      Promise.all(children.map((c) => c.output())),
      8000,
      "mosquitto_sub output",
    );
    const lines = outs.map((o) =>
      new TextDecoder().decode(o.stdout).trim().split("\n")
    );
    for (const l of lines) assert.equal(l.length, 2);
    assert.deepEqual(lines.flat().sort(), ["m0", "m1", "m2", "m3"]);
    await broker.close();
  },
});
