// bench/latency_probe.c (the independent C latency probe) and
// bench/c_latency.ts, which builds and runs it against the brokers.

import assert from "node:assert/strict";
import {
  brokerAvailable,
  freePort,
  startBroker,
  which,
} from "../bench/_brokers.ts";
import {
  buildProbe,
  formatProbeTable,
  type ProbeDistribution,
  type ProbeRun,
  roundOrder,
  runProbe,
} from "../bench/c_latency.ts";
import { countOver, episodes, parseDump } from "../bench/latency_episodes.ts";

const noCc = which("cc") === undefined ? "no C compiler" : undefined;
const noKite = brokerAvailable("kite");

function ordered(d: ProbeDistribution, what: string): void {
  const v = [d.p50, d.p90, d.p99, d.p999, d.max];
  for (let i = 1; i < v.length; i++) {
    assert.ok(v[i - 1]! <= v[i]!, `${what}: ${JSON.stringify(d)}`);
  }
}

Deno.test({
  name:
    "The C probe times every measured QoS 0 message through Kite, in order, with idle connections held open v3:[MQTT-4.6.0-6]",
  ignore: noCc !== undefined || noKite !== undefined,
  async fn() {
    const probe = await buildProbe();
    const broker = await startBroker("kite");
    const dump = probe.replace(/\/latency_probe$/, "/latencies.txt");
    try {
      const r = await runProbe(probe, {
        port: broker.port,
        rate: 2000,
        warmup: 0.2,
        duration: 0.5,
        idle: 50,
        dump,
      });
      const info = JSON.stringify(r);
      assert.equal(r.measured, 1000, info);
      assert.equal(r.sent, 1400, info);
      assert.equal(r.received, r.measured, info);
      assert.equal(r.lost, 0, info);
      // v3:[MQTT-4.6.0-6]: each topic is ordered by default: a subscriber gets
      // one publisher's messages in the order they were published.
      assert.equal(r.misordered, 0, info);
      assert.equal(r.idle, 50, info);
      assert.equal(r.idleRefused, 0, info);
      ordered(r.latency, "latency");
      ordered(r.fromWrite, "fromWrite");
      ordered(r.sendLag, "sendLag");
      // Each message was written at or after its due time.
      assert.ok(r.latency.p50 >= r.fromWrite.p50, info);
      assert.ok(r.latency.max >= r.fromWrite.max, info);
      // --dump: every measured message once, in order, with its latencies.
      const dumped = parseDump(await Deno.readTextFile(dump));
      assert.deepEqual(
        dumped.map((m) => m.seq),
        Array.from({ length: 1000 }, (_, i) => 400 + i),
      );
      const maxNs = Math.max(...dumped.map((m) => m.latencyNs));
      assert.ok(Math.abs(maxNs / 1000 - r.latency.max) < 1, info);
      assert.ok(dumped.every((m) => m.latencyNs >= m.fromWriteNs));
    } finally {
      await broker.stop();
      await Deno.remove(probe.replace(/\/latency_probe$/, ""), {
        recursive: true,
      });
    }
  },
});

Deno.test({
  name: "The C probe says in one line why it cannot reach a broker",
  ignore: noCc !== undefined,
  async fn() {
    const probe = await buildProbe();
    try {
      const port = freePort();
      await assert.rejects(
        runProbe(probe, { port, rate: 100, warmup: 0, duration: 0.1 }),
        (e: Error) => {
          assert.equal(
            e.message,
            `latency_probe: connect to 127.0.0.1:${port}: Connection refused`,
          );
          return true;
        },
      );
    } finally {
      await Deno.remove(probe.replace(/\/latency_probe$/, ""), {
        recursive: true,
      });
    }
  },
});

Deno.test("formatProbeTable() prints medians of the runs, the worst loss and each run's tail", () => {
  const dist = (p99: number): ProbeDistribution => ({
    p50: 50,
    p90: 70,
    p99,
    p999: p99 * 4,
    max: p99 * 10,
  });
  const run = (p99: number, lost: number): ProbeRun => ({
    probe: {
      rate: 10_000,
      size: 64,
      idle: 0,
      sent: 150_000,
      measured: 50_000,
      received: 50_000 - lost,
      lost,
      misordered: 0,
      idleRefused: 0,
      probeCpuSeconds: 1,
      latency: dist(p99),
      fromWrite: dist(p99 - 20),
      sendLag: dist(30),
    },
    brokerCpu: 20,
  });
  const table = formatProbeTable(
    new Map([
      ["kite", [run(100, 0), run(300, 2), run(200, 0)]],
      ["mosquitto", [run(150, 0)]],
    ]),
  );
  const row = (label: string) =>
    table.split("\n").find((l) => l.startsWith(`| ${label} |`));
  assert.equal(row("p99"), "| p99 | 200 | 150 |");
  assert.equal(row("p99.9"), "| p99.9 | 800 | 600 |");
  assert.equal(row("lost (worst run)"), "| lost (worst run) | 2 | 0 |");
  assert.equal(row("p99, runs"), "| p99, runs | 100, 300, 200 | 150 |");
  assert.equal(row("broker CPU %"), "| broker CPU % | 20.0 | 20.0 |");
  // A stalled run (max 50 ms or more) is counted, and left out of the
  // "without a stall" medians.
  const stalled = run(60_000, 0);
  const t2 = formatProbeTable(
    new Map([["kite", [run(100, 0), stalled, run(200, 0)]]]),
  );
  const row2 = (label: string) =>
    t2.split("\n").find((l) => l.startsWith(`| ${label} |`));
  assert.equal(
    row2("runs with a stall (max ≥ 50 ms)"),
    "| runs with a stall (max ≥ 50 ms) | 1 of 3 |",
  );
  assert.equal(
    row2("p99, runs without a stall"),
    "| p99, runs without a stall | 100 |",
  );
  assert.equal(row2("p99"), "| p99 | 200 |");
});

Deno.test("roundOrder() starts each round of interleaved runs one broker further on", () => {
  const brokers = ["kite", "kite-base", "mosquitto"];
  assert.deepEqual(roundOrder(brokers, 0), ["kite", "kite-base", "mosquitto"]);
  assert.deepEqual(roundOrder(brokers, 1), ["kite-base", "mosquitto", "kite"]);
  assert.deepEqual(roundOrder(brokers, 2), ["mosquitto", "kite", "kite-base"]);
  assert.deepEqual(roundOrder(brokers, 3), brokers);
  // Over as many rounds as brokers, each broker runs first once.
  const firsts = [0, 1, 2].map((r) => roundOrder(brokers, r)[0]);
  assert.deepEqual([...firsts].sort(), [...brokers].sort());
  assert.deepEqual(roundOrder([], 4), []);
});

Deno.test("episodes() groups slow messages closer than the gap; countOver() counts each threshold", () => {
  // 10,000 msg/s: message i is due at i / 10 ms.
  const lat = new Map<number, number>([
    [100, 1500], // 10.0 ms
    [101, 2500], // 10.1 ms: same episode
    [140, 1200], // 14.0 ms: 3.9 ms after the last, same episode
    [200, 1100], // 20.0 ms: 6 ms after: a new one
    [300, 900], // under the threshold
  ]);
  const msgs = Array.from({ length: 400 }, (_, i) => ({
    seq: 50 + i,
    latencyNs: (lat.get(50 + i) ?? 60) * 1000,
    fromWriteNs: 40_000,
  }));
  const eps = episodes(msgs, { rate: 10_000, overUs: 1000, gapMs: 5 });
  assert.equal(eps.length, 2);
  assert.deepEqual(eps[0], {
    startMs: 5,
    lengthMs: 4,
    messages: 3,
    maxUs: 2500,
  });
  assert.deepEqual(eps[1], {
    startMs: 15,
    lengthMs: 0,
    messages: 1,
    maxUs: 1100,
  });
  assert.deepEqual(countOver(msgs, [500, 1000, 2000]), [5, 4, 1]);
  assert.throws(() => parseDump("1 2\n"), /not a latency dump line/);
});
