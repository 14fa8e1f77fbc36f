/**
 * Kite bridged to Kite: both ways on `#` with a prefix over MQTT 5 and
 * 3.1.1 (the bridge flag: Kite as the remote keeps retain flags and does
 * not echo), the state on the remote, and failover between addresses
 * (back to the first, or round robin).
 */

import assert from "node:assert/strict";
import type { BridgeOptions, Broker } from "../broker/mod.ts";
import { startBroker } from "./_helpers.ts";
import { freePort } from "./_mosquitto.ts";
import { bridgeState, Collector } from "./_bridge.ts";

for (const version of [5, 4] as const) {
  Deno.test(`Bridge Kite to Kite (MQTT ${version}): both ways with a remote prefix, retain flags kept, no echo, the state on the remote`, async () => {
    const cloud = await startBroker();
    const edge = await startBroker({
      bridges: [{
        name: "cloud",
        addresses: [`mqtt://127.0.0.1:${cloud.addr.port}`],
        clientId: "edge-1",
        protocolVersion: version,
        topics: [{
          pattern: "#",
          direction: "both",
          qos: 1,
          remotePrefix: "edge-1/",
        }],
      }],
    });
    try {
      await bridgeState(edge, "cloud", "1");
      const rap = { qos: 1, retainAsPublished: true } as const;
      await using cloudSub = await Collector.open(cloud.addr.port, [
        "#",
        "$SYS/broker/connection/+/state",
      ], rap);
      await using edgeSub = await Collector.open(edge.addr.port, ["#"], rap);
      await cloudSub.waitFor("$SYS/broker/connection/edge-1/state", "1");

      await edgeSub.client.publish("s/1", "up", { qos: 1, retain: true });
      const up = await cloudSub.waitFor("edge-1/s/1", "up");
      assert.equal(up.retain, true, "retain flag as published");
      await cloudSub.client.publish("edge-1/c/1", "down", { qos: 1 });
      await edgeSub.waitFor("c/1", "down");
      // Markers the other way: an echo would have come before them.
      await cloudSub.client.publish("edge-1/c/marker", "m", { qos: 1 });
      await edgeSub.waitFor("c/marker");
      await edgeSub.client.publish("s/marker", "m", { qos: 1 });
      await cloudSub.waitFor("edge-1/s/marker");
      assert.deepEqual(edgeSub.texts("s/1"), ["up"], "echoed back to the edge");
      assert.deepEqual(cloudSub.texts("edge-1/c/1"), ["down"], "echoed back");
      // The cloud kept it retained.
      await using late = await Collector.open(cloud.addr.port, ["edge-1/s/1"]);
      assert.equal((await late.waitFor("edge-1/s/1", "up")).retain, true);
    } finally {
      await edge.close();
      await cloud.close();
    }
  });
}

/** A bridge over `ports` (in order), `# both`. */
function failover(ports: number[], roundRobin: boolean): BridgeOptions {
  return {
    name: "f",
    addresses: ports.map((p) => `mqtt://127.0.0.1:${p}`),
    roundRobin,
    reconnectDelay: 20,
    maxReconnectDelay: 100,
    topics: [{ pattern: "#", direction: "both", qos: 1 }],
  };
}

for (const roundRobin of [false, true]) {
  Deno.test(
    `Bridge fails over between addresses (roundRobin ${roundRobin}): ${
      roundRobin ? "on to the next one" : "back to the first one first"
    } when the connection is lost`,
    async () => {
      const [p0, p1, p2] = [freePort(), freePort(), freePort()];
      const b1 = await startBroker({ port: p1 });
      const b2 = await startBroker({ port: p2 });
      let b0: Broker | undefined;
      const edge = await startBroker({
        bridges: [failover([p0, p1, p2], roundRobin)],
      });
      try {
        // p0 is down: the bridge goes on to p1.
        await bridgeState(edge, "f", "1");
        assert.equal(edge.bridges[0]!.address, `mqtt://127.0.0.1:${p1}`);
        b0 = await startBroker({ port: p0 });
        await using subs = await Promise.all(
          [b0, b2].map((b) => Collector.open(b.addr.port, ["t/#"])),
        ).then((list) => ({
          list,
          async [Symbol.asyncDispose]() {
            for (const c of list) await c.client.disconnect();
          },
        }));
        const state = "$SYS/broker/connection/f/state";
        await using st = await Collector.open(edge.addr.port, [state]);
        await st.waitFor(state, "1");
        const from = st.messages.length;
        await b1.close();
        await st.waitSequence(state, from, "0", "1");
        const want = roundRobin ? p2 : p0;
        assert.equal(edge.bridges[0]!.address, `mqtt://127.0.0.1:${want}`);
        // And messages flow there.
        await using pub = await Collector.open(edge.addr.port, []);
        await pub.client.publish("t/1", "here", { qos: 1 });
        const [on0, on2] = subs.list;
        await (roundRobin ? on2! : on0!).waitFor("t/1", "here");
      } finally {
        await edge.close();
        await b0?.close();
        await b1.close();
        await b2.close();
      }
    },
  );
}
