/**
 * Keeps the load tool (bench/load.ts) working: every scenario for about a
 * second against a Mosquitto started here, and the tool's hand-encoded
 * packets against Kite's codec.
 */
import assert from "node:assert/strict";
import { brokerAvailable, startBroker } from "../bench/_brokers.ts";
import { Link } from "../bench/_link.ts";
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
import { Histogram } from "../bench/_latency.ts";
import { encode } from "../codec/encode.ts";
import { REQUIRE_INTEROP } from "./_mosquitto.ts";

/**
 * Runs each scenario (0.1 s warm-up, 0.5 s) as a step against the broker at
 * `target` and checks what every run must show: messages delivered, no
 * duplicates and, at QoS 1 and 2, none lost or unacknowledged and each
 * publisher's order kept (QoS 1 and 2 guarantee delivery [MQTT-4.3.2],
 * [MQTT-4.3.3]; a broker keeps each publisher's order on one topic
 * (4.6)); then `more(result, info, scenario)`.
 */
async function scenarioSteps(
  t: Deno.TestContext,
  target: { port: number; pid?: number },
  flows: ScenarioName[],
  more: (r: LoadResult, info: string, scenario: ScenarioName) => void =
    () => {},
): Promise<void> {
  for (const scenario of flows) {
    await t.step(scenario, async () => {
      const r = await runLoad({
        ...target,
        scenario,
        warmup: 0.1,
        duration: 0.5,
      });
      const info = formatResult(r);
      assert.ok((r.deliveredPerSec ?? 0) > 0, info);
      if (r.shape!.qos > 0) {
        assert.equal(r.lost, 0, info);
        assert.equal(r.unacked, 0, info);
        assert.equal(r.outOfOrder, 0, info);
      }
      assert.equal(r.duplicates, 0, info);
      more(r, info, scenario);
    });
  }
}

const noMosquitto = brokerAvailable("mosquitto");
if (noMosquitto && REQUIRE_INTEROP) {
  throw new Error(`KITE_REQUIRE_INTEROP=1 but ${noMosquitto}`);
}
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
        "qos1-persistent",
        "latency",
        "slow",
      ];
      await scenarioSteps(
        t,
        { port: broker.port, pid: broker.pid },
        flows,
        (r, info, scenario) => {
          assert.ok((r.delivered ?? 0) > 0, info);
          if (r.shape!.qos > 0) assert.equal(r.gaps, 0, info);
          if (scenario === "latency") {
            assert.ok((r.latency?.samples ?? 0) > 0, info);
            assert.ok(r.latency!.p50 <= r.latency!.p99, info);
          }
        },
      );
      await t.step("latency with each pacing", async () => {
        for (const pacing of ["thread", "spin", "timer"] as const) {
          const r = await runLoad({
            port: broker.port,
            scenario: "latency",
            pacing,
            warmup: 0.1,
            duration: 0.3,
          });
          const info = `${pacing}: ${formatResult(r)}`;
          assert.ok((r.latency?.samples ?? 0) > 0, info);
          assert.equal(r.duplicates, 0, info);
          assert.equal(r.outOfOrder, 0, info);
        }
        // A publisher thread only sends QoS 0 at a fixed rate.
        await assert.rejects(
          runLoad({ port: broker.port, scenario: "qos1", pacing: "thread" }),
          /pacing thread needs a fixed rate \(--rate\) and QoS 0/,
        );
      });
      await t.step("latency-idle, fleet and scatter, small", async () => {
        const idle = await runLoad({
          port: broker.port,
          scenario: "latency-idle",
          idleConns: 50,
          warmup: 0.1,
          duration: 0.5,
        });
        let info = formatResult(idle);
        assert.equal(idle.idle?.connected, 50, info);
        assert.ok((idle.latency?.p999 ?? 0) >= idle.latency!.p99, info);
        assert.ok((idle.sendLag?.samples ?? 0) > 0, info);
        const fleet = await runLoad({
          port: broker.port,
          pid: broker.pid,
          scenario: "fleet",
          devices: 100,
          reconnectPercent: 10,
          warmup: 0.5,
          duration: 1.5,
        });
        info = formatResult(fleet);
        assert.equal(fleet.lost, 0, info);
        assert.equal(fleet.unacked, 0, info);
        assert.equal(fleet.duplicates, 0, info);
        assert.ok((fleet.fleet?.reconnects ?? 0) > 0, info);
        assert.equal(fleet.fleet?.sessionLost, 0, info);
        assert.equal(fleet.fleet?.reconnectFailures, 0, info);
        const scatter = await runLoad({
          port: broker.port,
          pid: broker.pid,
          scenario: "scatter",
          scatterSubs: 40,
          rate: 2000,
          warmup: 0.1,
          duration: 0.5,
        });
        info = formatResult(scatter);
        assert.ok((scatter.delivered ?? 0) > 0, info);
        assert.equal(scatter.scatter?.misrouted, 0, info);
        assert.equal(scatter.scatter?.subscriptions, 200, info);
        assert.equal(scatter.duplicates, 0, info);
      });
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
            "--duration=0.3",
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
        assert.ok(
          conns?.conns?.kbPerConnSecondHalf !== undefined,
          "RSS per connection over the second half",
        );
      });
    } finally {
      await broker.stop();
    }
  },
});

const noKite = brokerAvailable("kite");

Deno.test({
  name: "runLoad() loses nothing at QoS 1 and 2 through Kite's broker",
  ignore: noKite !== undefined,
  async fn(t) {
    const broker = await startBroker("kite");
    try {
      const flows: ScenarioName[] = [
        "qos1",
        "qos2",
        "qos1-persistent",
        "fanin",
      ];
      await scenarioSteps(t, { port: broker.port }, flows);
    } finally {
      await broker.stop();
    }
    // Persistent sessions with Deno KV: PUBACKs wait for the group commit.
    await t.step("qos1-persistent with Deno KV", async () => {
      const kv = await startBroker("kite-kv");
      try {
        const r = await runLoad({
          port: kv.port,
          scenario: "qos1-persistent",
          warmup: 0.1,
          duration: 0.5,
        });
        const info = formatResult(r);
        assert.ok((r.deliveredPerSec ?? 0) > 0, info);
        assert.equal(r.lost, 0, info);
        assert.equal(r.unacked, 0, info);
      } finally {
        await kv.stop();
      }
    });
  },
});

for (const name of ["relay", "relay-handles"] as const) {
  Deno.test(`The bare relay (${name}, the latency ceiling) passes every QoS 0 message, in order, also with idle connections open`, async () => {
    const relay = await startBroker(name);
    try {
      for (const scenario of ["latency", "latency-idle"] as const) {
        const r = await runLoad({
          port: relay.port,
          scenario,
          warmup: 0.1,
          duration: 0.3,
          idleConns: 50,
        });
        const info = formatResult(r);
        assert.ok((r.latency?.samples ?? 0) > 0, info);
        assert.equal(r.lost, 0, info);
        assert.equal(r.duplicates, 0, info);
        assert.equal(r.outOfOrder, 0, info);
      }
    } finally {
      await relay.stop();
    }
  });
}

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
    connectBytes("c2", 30, false, { username: "u", password: "pw" }),
    encode({
      type: "connect",
      protocolVersion: 4,
      clientId: "c2",
      cleanStart: false,
      keepAlive: 30,
      username: "u",
      password: new TextEncoder().encode("pw"),
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

/** A Deno.TcpConn stand-in whose reads return the given chunks in order. */
function fakeConn(chunks: Uint8Array[]): Deno.TcpConn {
  let i = 0;
  let rest: Uint8Array | undefined;
  const fake = {
    read(buf: Uint8Array): Promise<number | null> {
      const chunk = rest ?? chunks[i++];
      rest = undefined;
      if (chunk === undefined) return Promise.resolve(null);
      const n = Math.min(buf.length, chunk.length);
      buf.set(chunk.subarray(0, n));
      if (n < chunk.length) rest = chunk.subarray(n);
      return Promise.resolve(n);
    },
    write: (b: Uint8Array) => Promise.resolve(b.length),
    close() {},
    setNoDelay() {},
  };
  return fake as unknown as Deno.TcpConn;
}

Deno.test("Link scans frames split across and packed into reads", async () => {
  // A QoS 0 PUBLISH, a PUBACK, and a 100,000-byte PUBLISH (3-byte remaining
  // length [MQTT-2.2.3]) that outgrows the 1 KiB read buffer.
  const small = publishTemplate("a/b", 0, 16).bytes;
  const puback = Uint8Array.of(0x40, 0x02, 0x12, 0x34);
  const big = publishTemplate("a/big", 1, 100_000).bytes;
  big[big.length - 1] = 0x7e;
  const stream = new Uint8Array(small.length + puback.length + big.length);
  stream.set(small, 0);
  stream.set(puback, small.length);
  stream.set(big, small.length + puback.length);
  const expected = [
    [0x30, small.length - 2, 0],
    [0x40, 2, 0x34],
    [0x32, big.length - 4, 0x7e],
  ];
  const cuts: [string, Uint8Array[]][] = [
    ["one chunk", [stream]],
    ["byte by byte", Array.from(stream, (b) => Uint8Array.of(b))],
    [
      "7-byte chunks",
      Array.from(
        { length: Math.ceil(stream.length / 7) },
        (_, i) => stream.subarray(i * 7, i * 7 + 7),
      ),
    ],
  ];
  for (const [how, chunks] of cuts) {
    const seen: number[][] = [];
    const link = new Link(fakeConn(chunks), (first, buf, body, length) => {
      seen.push([first, length, buf[body + length - 1]!]);
    }, 1024);
    link.start();
    await link.close();
    assert.deepEqual(seen, expected, how);
  }
});

Deno.test("Histogram counts every value: exact below 1 ms, within 0.2% above", () => {
  const h = new Histogram();
  for (let v = 1; v <= 1000; v++) h.record(v); // 1..1000 µs
  assert.equal(h.count, 1000);
  assert.equal(Math.floor(h.quantile(0.5)), 500);
  assert.equal(Math.floor(h.quantile(0.99)), 990);
  assert.equal(Math.floor(h.quantile(0.999)), 999);
  assert.equal(h.max, 1000);
  // One pause among many fast messages shows in p99.9 and max.
  const tail = new Histogram();
  for (let i = 0; i < 9_990; i++) tail.record(80);
  for (let i = 0; i < 10; i++) tail.record(4_321);
  assert.equal(Math.floor(tail.quantile(0.99)), 80);
  assert.ok(Math.abs(tail.quantile(0.9995) - 4_321) / 4_321 < 0.002);
  assert.equal(tail.max, 4_321);
  for (const v of [1_500, 77_777, 3_000_000]) {
    const one = new Histogram();
    one.record(v);
    assert.ok(Math.abs(one.quantile(0.5) - v) / v <= 0.002, `${v}`);
  }
});
