/**
 * Cluster mode, failures: a node killed with SIGKILL (its clients' wills
 * published once by the survivors; under QoS 1 load, no acknowledged
 * message lost once its clients reconnect to another node), NATS
 * unreachable at start (a clear error) and lost while running (local
 * traffic goes on; cross-node traffic resumes when it is back).
 */

import assert from "node:assert/strict";
import mqtt from "mqtt";
import type { PublishPacket } from "../codec/packet.ts";
import { startKiteCluster } from "./_cluster.ts";
import { RawClient, subscribeOne, text } from "./_helpers.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";
import { requireNats, startNats } from "./_nats.ts";
import { DenoProcess } from "./_subprocess.ts";
import { within } from "./client_helpers.ts";

const ready = requireNats("cluster_failure_test");
const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;

Deno.test({
  name:
    "cluster: the wills of a killed node's clients are published once, by a survivor v5:[MQTT-3.1.2-8]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const [a, b, c] = cluster.nodes;
    const watchers = await Promise.all([b!, c!].map(async (n) => {
      const { client } = await RawClient.connect(n.port, {
        protocolVersion: 5,
        clientId: `watch-${n.id}`,
      });
      assert.deepEqual(await subscribeOne(client, "will/#", 1), [1]);
      return client;
    }));
    const will = (topic: string) => ({
      topic,
      payload: new TextEncoder().encode(`gone ${topic}`),
      qos: 1 as const,
      retain: false,
    });
    // A clean 3.1.1 session, a persistent v5 session: both wills.
    const { client: w1 } = await RawClient.connect(a!.port, {
      protocolVersion: 4,
      clientId: "w1",
      will: will("will/w1"),
    });
    const { client: w2 } = await RawClient.connect(a!.port, {
      protocolVersion: 5,
      clientId: "w2",
      cleanStart: false,
      properties: { sessionExpiryInterval: 3600 },
      will: will("will/w2"),
    });
    // Its SUBACK comes once the session is stored (cluster mode).
    assert.deepEqual(await subscribeOne(w2, "w2/inbox", 1), [1]);
    await cluster.kill("a");
    for (const w of watchers) {
      const got = new Set<string>();
      for (let i = 0; i < 2; i++) {
        const p = await w.expectPublish(undefined, 10_000).catch((e) => {
          if (Deno.env.get("KITE_TEST_LOGS") === "1") {
            for (const n of cluster.nodes) console.log(n.id, n.log());
          }
          throw new Error(`${(e as Error).message}; got ${[...got]}`);
        }) as PublishPacket;
        got.add(`${p.topic} ${text(p.payload)}`);
      }
      assert.deepEqual([...got].sort(), [
        "will/w1 gone will/w1",
        "will/w2 gone will/w2",
      ]);
    }
    // Once: nothing more (the other survivor published nothing).
    for (const w of watchers) {
      await w.expectNothing((p) => p.type === "publish", 1500);
    }
    await Promise.all([w1, w2].map((x) => x.close()));
    await Promise.all(watchers.map((w) => w.disconnect()));
  },
});

/** Resolves when `pred()` holds, checked each time `wake` is called. */
function until(pred: () => boolean): { wait: Promise<void>; wake(): void } {
  const { promise, resolve } = Promise.withResolvers<void>();
  const wake = () => {
    if (pred()) resolve();
  };
  wake();
  return { wait: promise, wake };
}

/** A QoS 1 publisher counting what it got PUBACKs for. */
function publisher(
  port: number,
  clientId: string,
  onAck: () => void,
): { acked: Set<string>; run(prefix: string, n: number): Promise<void> } {
  const client = mqtt.connect({
    host: "127.0.0.1",
    port,
    clientId,
    protocolVersion: 5,
    reconnectPeriod: 0,
    keepalive: 0,
  });
  client.on("error", () => {});
  const acked = new Set<string>();
  const connected = new Promise<void>((r) => client.once("connect", () => r()));
  return {
    acked,
    async run(prefix, n) {
      await within(connected, 5000, `${clientId} connect`);
      for (let i = 0; i < n; i++) {
        const id = `${prefix}-${i}`;
        try {
          await within(
            client.publishAsync("load/x", id, { qos: 1 }),
            5000,
            `${id}'s PUBACK`,
          );
        } catch {
          break; // its node died: what was acknowledged is in `acked`
        }
        acked.add(id);
        onAck();
      }
      await new Promise<void>((r) => client.end(true, {}, () => r()));
    },
  };
}

Deno.test({
  name:
    "cluster: a node killed under QoS 1 load loses no acknowledged message; its persistent subscriber resumes on another node v5:[MQTT-4.3.2-2]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const [a, b, c] = cluster.nodes;
    // S1 lives on a (to be killed), knows b too; S2 on b, S3 (clean) on c.
    const received = new Map<string, Set<string>>();
    const checks = new Set<() => void>();
    const changed = () => {
      for (const c of checks) c();
    };
    const subscriber = (id: string, ports: number[], clean: boolean) => {
      const got = new Set<string>();
      received.set(id, got);
      const client = mqtt.connect({
        servers: ports.map((port) => ({ host: "127.0.0.1", port })),
        clientId: id,
        clean,
        protocolVersion: 5,
        properties: clean ? {} : { sessionExpiryInterval: 3600 },
        reconnectPeriod: 100,
        keepalive: 0,
      });
      client.on("error", () => {});
      client.on("message", (_t, payload) => {
        got.add(payload.toString());
        changed();
      });
      return new Promise<typeof client>((resolve) => {
        client.once("connect", () => {
          client.subscribe("load/#", { qos: 1 }, () => resolve(client));
        });
      });
    };
    const s1 = await subscriber("s1", [a!.port, b!.port], false);
    const s2 = await subscriber("s2", [b!.port], false);
    const s3 = await subscriber("s3", [c!.port], true);
    const p1 = publisher(a!.port, "p1", changed);
    const p2 = publisher(b!.port, "p2", changed);
    const load1 = p1.run("p1", 100_000);
    const load2 = p2.run("p2", 400);
    // Kill a while both publish.
    const loaded = until(() => p1.acked.size >= 100 && p2.acked.size >= 50);
    checks.add(loaded.wake);
    await within(loaded.wait, 20_000, "load before the kill");
    await cluster.kill("a");
    await load1;
    await load2;
    const acked = [...p1.acked, ...p2.acked];
    assert.ok(p1.acked.size >= 100 && p2.acked.size === 400);
    // Every acknowledged message reaches every subscriber (S1 after its
    // reconnect to b: its session, adopted from the dead node).
    const all = until(() =>
      [...received.values()].every((got) => acked.every((m) => got.has(m)))
    );
    checks.add(all.wake);
    await within(
      all.wait,
      30_000,
      "every acknowledged message at every subscriber",
    ).catch((e) => {
      const report = [...received].map(([id, got]) => {
        const missing = acked.filter((m) => !got.has(m));
        return `${id} misses ${missing.length} ${missing.slice(0, 10)}`;
      });
      if (Deno.env.get("KITE_TEST_LOGS") === "1") {
        for (const n of cluster.nodes) console.log(n.id, n.log());
      }
      throw new Error(`${(e as Error).message}: ${report.join(", ")}`);
    });
    for (const client of [s1, s2, s3]) {
      await new Promise<void>((r) => client.end(true, {}, () => r()));
    }
  },
});

Deno.test({
  name: "cluster: NATS unreachable at start is one clear error, exit 1",
  ignore: !ready,
  async fn() {
    // A port nothing listens on.
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (l.addr as Deno.NetAddr).port;
    l.close();
    const p = new DenoProcess([
      MAIN,
      "--port",
      "0",
      "--sys-interval",
      "0",
      "--cluster-url",
      `nats://127.0.0.1:${port}`,
    ]);
    const { code, stdout, stderr } = await p.exit(30_000, "kite to give up");
    assert.equal(code, 1);
    assert.match(
      stdout + stderr,
      new RegExp(
        `cannot reach NATS at nats://127\\.0\\.0\\.1:${port}`,
      ),
    );
  },
});

Deno.test({
  name:
    "cluster: NATS lost while running: local traffic goes on, the log says so, cross-node traffic resumes when NATS is back",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"]);
    const [a, b] = cluster.nodes;
    type M = { topic: string; payload: string };
    const toMsg = (topic: string, p: { toString(): string }): M => ({
      topic,
      payload: p.toString(),
    });
    const subA = await openMqttjs(a!, { protocolVersion: 5 }, toMsg);
    await subA.client.subscribeAsync("o/#", { qos: 1 });
    const pubA = await openMqttjs(a!, { protocolVersion: 5 }, toMsg);
    const pubB = await openMqttjs(b!, { protocolVersion: 5 }, toMsg);
    await pubB.client.publishAsync("o/before", "cross", { qos: 1 });
    assert.equal((await subA.next()).payload, "cross");
    const logAt = a!.log().length;
    await nats.stop();
    await a!.waitForLog(/NATS connection lost/, 10_000, logAt);
    // Local: published and delivered on a, NATS or not (QoS 0 and 1).
    await pubA.client.publishAsync("o/local", "local 0", { qos: 0 });
    assert.equal((await subA.next()).payload, "local 0");
    await pubA.client.publishAsync("o/local", "local 1", { qos: 1 });
    assert.equal((await subA.next()).payload, "local 1");
    await nats.restart();
    await a!.waitForLog(/NATS connection back/, 15_000, logAt);
    await b!.waitForLog(/NATS connection back/, 15_000);
    // Cross-node again (b's route table and subscriptions resynced).
    await within(
      (async () => {
        for (let i = 0;; i++) {
          await pubB.client.publishAsync("o/after", `again ${i}`, { qos: 1 });
          const m = await subA.next().catch(() => undefined);
          if (m?.topic === "o/after") return;
        }
      })(),
      15_000,
      "a cross-node message after NATS came back",
    );
    await Promise.all([subA, pubA, pubB].map((x) => endMqttjs(x.client)));
  },
});
