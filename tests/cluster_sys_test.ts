/**
 * Cluster mode: `$SYS` per node plus the cluster view, and a Kite cluster
 * on a three-server NATS cluster (each Kite node on its own NATS server).
 */

import assert from "node:assert/strict";
import { startKiteCluster } from "./_cluster.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";
import {
  type NatsServer,
  requireNats,
  startNats,
  startNatsCluster,
} from "./_nats.ts";
import { within } from "./client_helpers.ts";

const ready = requireNats("cluster_sys_test");

type Msg = { topic: string; payload: string };
const toMsg = (topic: string, p: { toString(): string }): Msg => ({
  topic,
  payload: p.toString(),
});

Deno.test({
  name:
    "cluster: $SYS per node, with the cluster view (nodes up, this node's id)",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"], {
      extra: ["--sys-interval", "1"],
    });
    const sub = await openMqttjs(
      cluster.node("a"),
      { protocolVersion: 5 },
      toMsg,
    );
    // The latest value of each topic, as they come.
    const latest = new Map<string, string>();
    const nodeIds = new Set<string>();
    let updates = 0;
    const waiters = new Set<() => void>();
    sub.client.on("message", (topic, payload) => {
      latest.set(topic, payload.toString());
      if (topic === "$SYS/broker/cluster/node") {
        nodeIds.add(payload.toString());
        updates++;
      }
      for (const w of waiters) w();
    });
    const until = async (pred: () => boolean, what: string) => {
      const { promise, resolve } = Promise.withResolvers<void>();
      const check = () => {
        if (pred()) resolve();
      };
      waiters.add(check);
      check();
      try {
        await within(promise, 10_000, what);
      } finally {
        waiters.delete(check);
      }
    };
    await sub.client.subscribeAsync("$SYS/broker/#", { qos: 0 });
    await until(
      () =>
        latest.get("$SYS/broker/cluster/nodes") === "2" &&
        // Node a's own count, once this subscriber is counted (b's $SYS
        // stays on b: its own count never shows here).
        latest.get("$SYS/broker/clients/connected") === "1",
      "the cluster view",
    );
    assert.equal(latest.get("$SYS/broker/cluster/node"), "a");
    assert.equal(latest.get("$SYS/broker/cluster/nodes/list"), "a,b");
    assert.equal(latest.get("$SYS/broker/cluster/connected"), "1");
    // Two more rounds: only a's $SYS reaches a's subscriber.
    const seen = updates;
    await until(() => updates >= seen + 2, "two more $SYS rounds");
    assert.deepEqual([...nodeIds], ["a"]);
    assert.equal(latest.get("$SYS/broker/clients/connected"), "1");
    await cluster.kill("b");
    await until(
      () => latest.get("$SYS/broker/cluster/nodes") === "1",
      "node b counted down",
    );
    assert.equal(latest.get("$SYS/broker/cluster/nodes/list"), "a");
    await endMqttjs(sub.client);
  },
});

Deno.test({
  name:
    "cluster: Kite nodes on a three-server NATS cluster route, share and resume sessions across NATS servers",
  ignore: !ready,
  async fn() {
    const servers: NatsServer[] = await startNatsCluster(["n1", "n2", "n3"]);
    try {
      // Each Kite node on its own NATS server (the others as fallbacks).
      const urls = servers.map((s) => s.url);
      await using cluster = await startKiteCluster(urls, ["a", "b", "c"], {
        urlsOf: (i) => [...urls.slice(i), ...urls.slice(0, i)],
      }).catch((e) => {
        throw new Error(
          `${(e as Error).message}\n${servers.map((s) => s.log()).join("\n")}`,
        );
      });
      const [a, b, c] = cluster.nodes;
      const sub = await openMqttjs(c!, {
        protocolVersion: 5,
        clientId: "far",
        clean: false,
        properties: { sessionExpiryInterval: 600 },
      }, toMsg);
      await sub.client.subscribeAsync("nc/#", { qos: 1 });
      const pub = await openMqttjs(a!, { protocolVersion: 5 }, toMsg);
      await pub.client.publishAsync("nc/1", "one", { qos: 1 });
      assert.equal((await sub.next()).payload, "one");
      await endMqttjs(sub.client);
      await pub.client.publishAsync("nc/2", "two", { qos: 1 });
      const back = await openMqttjs(b!, {
        protocolVersion: 5,
        clientId: "far",
        clean: false,
        properties: { sessionExpiryInterval: 600 },
      }, toMsg);
      assert.equal((await back.next()).payload, "two");
      // Node a's NATS server goes: a fails over to another (its URL list),
      // the streams and buckets (3 replicas) stay available.
      const logAt = a!.log().length;
      await servers[0]!.stop();
      await a!.waitForLog(/NATS connection back/, 20_000, logAt);
      await within(
        (async () => {
          for (let i = 0;; i++) {
            await pub.client.publishAsync("nc/3", `three ${i}`, { qos: 1 });
            const m = await back.next().catch(() => undefined);
            if (m !== undefined) return;
          }
        })(),
        20_000,
        "a message from a after its NATS server went",
      ).catch((e) => {
        if (Deno.env.get("KITE_TEST_LOGS") === "1") {
          for (const n of cluster.nodes) console.log(n.id, n.log());
        }
        throw e;
      });
      await endMqttjs(back.client);
      await endMqttjs(pub.client);
    } finally {
      for (const s of servers.reverse()) await s[Symbol.asyncDispose]();
    }
  },
});
