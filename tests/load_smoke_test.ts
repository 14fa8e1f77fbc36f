/**
 * Keeps the load tool (bench/load.ts) working: every scenario for about a
 * second against a Mosquitto started here, and the tool's hand-encoded
 * packets against Kite's codec.
 */
import assert from "node:assert/strict";
import { brokerAvailable, startBroker } from "../bench/_brokers.ts";
import {
  connectBytes,
  publishTemplate,
  subscribeBytes,
} from "../bench/_packets.ts";
import {
  formatResult,
  type LoadResult,
  runLoad,
  type ScenarioName,
} from "../bench/load.ts";
import { encode } from "../codec/encode.ts";

const noMosquitto = brokerAvailable("mosquitto");
if (noMosquitto) {
  console.warn(`load smoke test skipped: ${noMosquitto}`);
}

Deno.test({
  name: "runLoad() runs every scenario against Mosquitto without loss",
  ignore: noMosquitto !== undefined,
  async fn(t) {
    const broker = await startBroker("mosquitto");
    try {
      const flows: ScenarioName[] = [
        "fanin",
        "fanout",
        "qos1",
        "qos2",
        "latency",
      ];
      for (const scenario of flows) {
        await t.step(scenario, async () => {
          const r = await runLoad({
            port: broker.port,
            pid: broker.pid,
            scenario,
            warmup: 0.2,
            duration: 0.8,
          });
          const info = formatResult(r);
          assert.ok((r.delivered ?? 0) > 0, info);
          assert.ok((r.deliveredPerSec ?? 0) > 0, info);
          assert.equal(
            r.delivered,
            (r.sent ?? 0) * r.shape!.subscribers - (r.lost ?? 0),
            info,
          );
          // QoS 1 and 2 guarantee delivery [MQTT-4.3.2], [MQTT-4.3.3]; a
          // broker keeps each publisher's order on one topic [MQTT-4.6.0-6].
          if (r.shape!.qos > 0) {
            assert.equal(r.lost, 0, info);
            assert.equal(r.gaps, 0, info);
            assert.equal(r.outOfOrder, 0, info);
          }
          assert.equal(r.duplicates, 0, info);
          if (scenario === "latency") {
            assert.ok((r.latency?.samples ?? 0) > 0, info);
            assert.ok(r.latency!.p50 <= r.latency!.p99, info);
          }
        });
      }
      await t.step("conns", async () => {
        const r = await runLoad({
          port: broker.port,
          pid: broker.pid,
          scenario: "conns",
          count: 200,
          concurrency: 20,
          duration: 0.1,
        });
        const info = formatResult(r);
        assert.equal(r.conns?.connected, 200, info);
        assert.equal(r.conns?.alive, 200, info);
        assert.ok((r.conns?.connectsPerSec ?? 0) > 0, info);
      });
      // Reading another process's /proc files needs --allow-all, so the
      // broker's CPU time and RSS are checked through the CLI.
      await t.step("CLI --json reports the broker's CPU and RSS", async () => {
        const out = await new Deno.Command(Deno.execPath(), {
          args: [
            "run",
            "-A",
            new URL("../bench/load.ts", import.meta.url).pathname,
            "--json",
            `--port=${broker.port}`,
            `--pid=${broker.pid}`,
            "--scenario=qos1,conns",
            "--warmup=0.1",
            "--duration=0.5",
            "--count=100",
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stderr = new TextDecoder().decode(out.stderr);
        assert.ok(out.success, stderr);
        const [qos1, conns] = JSON.parse(
          new TextDecoder().decode(out.stdout),
        ) as LoadResult[];
        assert.equal(qos1?.lost, 0);
        assert.ok((qos1?.cpu.brokerS ?? -1) >= 0, "broker CPU read");
        assert.ok((qos1?.brokerRssKB ?? 0) > 0, "broker RSS read");
        assert.equal(conns?.conns?.connected, 100);
        assert.ok(conns?.conns?.kbPerConn !== undefined, "RSS per connection");
      });
    } finally {
      await broker.stop();
    }
  },
});

Deno.test("publishTemplate() and friends encode what encode() encodes", () => {
  assert.deepEqual(
    connectBytes("c1", 0),
    encode({
      type: "connect",
      protocolVersion: 4,
      clientId: "c1",
      cleanStart: true,
      keepAlive: 0,
    }),
  );
  assert.deepEqual(
    subscribeBytes(1, "a/+", 2),
    encode({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "a/+", qos: 2 }],
    }),
  );
  for (const qos of [0, 1, 2] as const) {
    const tpl = publishTemplate("a/b", qos, 64);
    const bytes = encode(
      qos === 0
        ? {
          type: "publish",
          topic: "a/b",
          payload: new Uint8Array(64),
          qos,
          retain: false,
          dup: false,
        }
        : {
          type: "publish",
          topic: "a/b",
          payload: new Uint8Array(64),
          qos,
          retain: false,
          dup: false,
          packetId: 1,
        },
    );
    assert.deepEqual(tpl.bytes, bytes);
    assert.equal(tpl.payloadOffset, bytes.length - 64);
    assert.equal(tpl.packetIdOffset, qos === 0 ? -1 : tpl.payloadOffset - 2);
  }
});
