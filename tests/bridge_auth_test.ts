/**
 * A bridge's identity on this broker (`localUsername`, as Mosquitto's
 * `local_username`): messages coming in from the remote are authorized by
 * `authorizePublish` (here an ACL file's `write` rules) as that user, and
 * messages going out by `authorizeRead` (`read` rules); without it bridged
 * messages are trusted. Against a real Mosquitto.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import type { BridgeOptions, Broker, ClientInfo } from "../broker/mod.ts";
import { fileAuth } from "../broker/mod.ts";
import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";
import { startBroker } from "./_helpers.ts";
import { bridgeState, Collector } from "./_bridge.ts";
import { within } from "./client_helpers.ts";

const ACL = [
  "# Anonymous clients (the test's own) may do anything.",
  "topic readwrite #",
  "topic read $SYS/#",
  "user edge",
  "topic write b/ok/#",
  "topic read o/pub/#",
  "",
].join("\n");

function bridge(
  name: string,
  port: number,
  more: Partial<BridgeOptions>,
): BridgeOptions {
  return {
    name,
    addresses: [`mqtt://127.0.0.1:${port}`],
    clientId: `${name}-1`,
    reconnectDelay: 50,
    maxReconnectDelay: 200,
    topics: [],
    ...more,
  };
}

Deno.test({
  name:
    "Bridge with localUsername: what comes in is authorized by the ACL as that user (refused: dropped and counted), what goes out by its read rules; a bridge without it is trusted",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kite-bridge-acl-" });
    let broker: Broker | undefined;
    try {
      await using mosq = await startMosquitto();
      const aclFile = join(dir, "kite.acl");
      await Deno.writeTextFile(aclFile, ACL);
      const auth = await fileAuth({ aclFile, allowAnonymous: true });
      const asked: ClientInfo[] = [];
      broker = await startBroker({
        ...auth,
        allowAnonymous: true,
        authorizePublish: (client, topic, qos, retain) => {
          if (client.username !== undefined) asked.push(client);
          return auth.authorizePublish(client, topic, qos, retain);
        },
        bridges: [
          bridge("checked", mosq.port, {
            localUsername: "edge",
            topics: [
              { pattern: "b/#", direction: "in", qos: 1 },
              { pattern: "o/#", direction: "out", qos: 1 },
            ],
          }),
          bridge("trusted", mosq.port, {
            topics: [{ pattern: "a/#", direction: "in", qos: 1 }],
          }),
        ],
      });
      await bridgeState(broker, "checked", "1");
      await bridgeState(broker, "trusted", "1");
      await using local = await Collector.open(broker.addr.port, ["#"]);
      await using remote = await Collector.open(mosq.port, ["o/#"]);

      // In: b/ok/# is the user's to write, b/no/# is not; a/# comes over
      // the bridge without an identity (trusted).
      const m = remote.client;
      await m.publish("b/no/1", "refused", { qos: 1 });
      await m.publish("b/ok/1", "allowed", { qos: 1 });
      await m.publish("a/no/1", "trusted", { qos: 1 });
      await m.publish("b/ok/marker", "m", { qos: 1 });
      await local.waitFor("b/ok/marker");
      await local.waitFor("a/no/1");
      assert.deepEqual(local.texts("b/no/1"), [], "a refused message came in");
      assert.deepEqual(local.texts("b/ok/1"), ["allowed"]);
      assert.deepEqual(asked[0], {
        clientId: "local.checked-1",
        username: "edge",
        protocolVersion: 5,
      });
      const [checked, trusted] = broker.bridges;
      assert.equal(checked!.received, 3);
      assert.equal(checked!.dropped, 1);
      assert.equal(trusted!.dropped, 0);

      // Out: the user reads o/pub/#, not o/secret/#.
      await local.client.publish("o/secret/1", "kept here", { qos: 1 });
      await local.client.publish("o/pub/1", "shared", { qos: 1 });
      await local.client.publish("o/pub/marker", "m", { qos: 1 });
      await remote.waitFor("o/pub/marker");
      assert.deepEqual(remote.texts("o/secret/1"), []);
      assert.deepEqual(remote.texts("o/pub/1"), ["shared"]);
    } finally {
      await broker?.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "Bridge with localUsername keeps the order of what comes in while an asynchronous authorizePublish decides",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    await using mosq = await startMosquitto();
    const slow = Promise.withResolvers<number>();
    const calls: string[] = [];
    const bothAsked = Promise.withResolvers<void>();
    const broker = await startBroker({
      allowAnonymous: true,
      authorizePublish: (client, topic) => {
        if (client.username !== "edge") return 0;
        calls.push(topic);
        if (calls.length === 2) bothAsked.resolve();
        return topic === "b/slow" ? slow.promise : 0;
      },
      bridges: [
        bridge("checked", mosq.port, {
          localUsername: "edge",
          topics: [{ pattern: "b/#", direction: "in", qos: 1 }],
        }),
      ],
    });
    try {
      await bridgeState(broker, "checked", "1");
      await using local = await Collector.open(broker.addr.port, ["b/#"]);
      await using remote = await Collector.open(mosq.port, []);
      await remote.client.publish("b/slow", "1", { qos: 1 });
      await remote.client.publish("b/fast", "2", { qos: 1 });
      await within(bothAsked.promise, 5000, "both decisions asked for");
      // b/fast is allowed at once, but waits behind b/slow.
      assert.equal(local.messages.length, 0);
      slow.resolve(0);
      await local.waitFor("b/fast");
      assert.deepEqual(local.messages.map((m) => m.topic), [
        "b/slow",
        "b/fast",
      ]);
    } finally {
      slow.resolve(0);
      await broker.close();
    }
  },
});
