// bench/fleet_probe.c (issue 20's fleet scenario in C) and bench/c_fleet.ts,
// which builds and runs it against the brokers.

import assert from "node:assert/strict";
import {
  brokerAvailable,
  freePort,
  startBroker,
  which,
} from "../bench/_brokers.ts";
import { buildProbe, type ProbeDistribution } from "../bench/c_latency.ts";
import {
  type FleetProbeResult,
  formatFleetTable,
  runFleetProbe,
} from "../bench/c_fleet.ts";

const noCc = which("cc") === undefined ? "no C compiler" : undefined;

async function withProbe(fn: (probe: string) => Promise<void>): Promise<void> {
  const probe = await buildProbe("cc", "fleet_probe.c");
  try {
    await fn(probe);
  } finally {
    await Deno.remove(probe.replace(/\/fleet_probe$/, ""), {
      recursive: true,
    });
  }
}

function ordered(d: ProbeDistribution, info: string): void {
  const v = [d.p50, d.p90, d.p99, d.p999, d.max];
  for (let i = 1; i < v.length; i++) assert.ok(v[i - 1]! <= v[i]!, info);
}

Deno.test({
  name:
    "The C fleet probe: every QoS 1 message reaches all six subscribers in order, and reconnecting devices get their sessions back v3:[MQTT-4.6.0-6] v3:[MQTT-3.2.2-2]",
  ignore: noCc !== undefined || brokerAvailable("kite") !== undefined,
  async fn() {
    await withProbe(async (probe) => {
      const broker = await startBroker("kite");
      try {
        // 20 devices for 3 s, 10% reconnecting each second: 2 a second.
        const r = await runFleetProbe(probe, {
          port: broker.port,
          devices: 20,
          warmup: 1,
          duration: 2,
          reconnect: 10,
          pid: broker.pid,
        });
        const info = JSON.stringify(r);
        assert.equal(r.sent, 60, info);
        assert.equal(r.expected, 360, info);
        assert.equal(r.delivered, 360, info);
        assert.equal(r.lost, 0, info);
        assert.equal(r.unacked, 0, info);
        // v3:[MQTT-4.6.0-6]: each device's messages reach every subscriber
        // in the order it published them.
        assert.equal(r.misordered, 0, info);
        // Rounds at 1 s and 2 s after the start, 2 devices each.
        assert.ok(r.reconnects >= 2, info);
        assert.equal(r.reconnectFailures, 0, info);
        // v3:[MQTT-3.2.2-2]: a Clean Session 0 CONNECT for a stored session
        // gets Session Present 1.
        assert.equal(r.sessionLost, 0, info);
        ordered(r.latency, info);
        ordered(r.sendLag, info);
        assert.ok(r.brokerCpuPct !== undefined && r.brokerCpuPct > 0, info);
        assert.ok(r.brokerRssKB !== undefined && r.brokerRssKB > 0, info);
      } finally {
        await broker.stop();
      }
    });
  },
});

Deno.test({
  name: "The C fleet probe says in one line why it cannot reach a broker",
  ignore: noCc !== undefined,
  async fn() {
    await withProbe(async (probe) => {
      const port = freePort();
      await assert.rejects(
        runFleetProbe(probe, { port, devices: 1 }),
        (e: Error) => {
          assert.equal(
            e.message,
            `fleet_probe: connect to 127.0.0.1:${port}: Connection refused`,
          );
          return true;
        },
      );
    });
  },
});

Deno.test("formatFleetTable() prints medians in ms, CPU against Mosquitto's and the worst loss", () => {
  const dist = (p99: number): ProbeDistribution => ({
    p50: 100,
    p90: 200,
    p99,
    p999: p99 * 2,
    max: p99 * 4,
  });
  const run = (p99: number, cpu: number, lost = 0): FleetProbeResult => ({
    devices: 2000,
    subscribers: 6,
    payload: 200,
    warmup: 5,
    duration: 10,
    connectSeconds: 0.2,
    sent: 30_000,
    expected: 180_000,
    delivered: 180_000 - lost,
    lost,
    misordered: 0,
    unacked: 0,
    reconnects: 280,
    reconnectFailures: 0,
    sessionLost: 0,
    probeCpuSeconds: 2,
    brokerCpuSeconds: cpu / 10,
    brokerCpuPct: cpu,
    brokerRssKB: 102_400,
    latency: dist(p99),
    sendLag: dist(50),
    reconnect: dist(1000),
  });
  const table = formatFleetTable(
    new Map([
      ["kite", [run(2000, 30), run(3000, 40, 2), run(1000, 20)]],
      ["mosquitto", [run(4000, 40)]],
    ]),
  );
  const row = (label: string) =>
    table.split("\n").find((l) => l.startsWith(`| ${label} |`));
  assert.equal(row("p99 ms"), "| p99 ms | 2.00 | 4.00 |");
  assert.equal(row("broker CPU %"), "| broker CPU % | 30.0 | 40.0 |");
  assert.equal(
    row("broker CPU vs Mosquitto"),
    "| broker CPU vs Mosquitto | 0.75× | 1.00× |",
  );
  assert.equal(row("broker RSS MB"), "| broker RSS MB | 100.0 | 100.0 |");
  assert.equal(row("lost (worst run)"), "| lost (worst run) | 2 | 0 |");
  assert.equal(
    row("p99 ms, runs"),
    "| p99 ms, runs | 2.00, 3.00, 1.00 | 4.00 |",
  );
  assert.equal(row("probe CPU %"), "| probe CPU % | 20.0 | 20.0 |");
});
