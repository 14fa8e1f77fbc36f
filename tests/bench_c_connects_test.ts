// bench/connect_probe.c (the independent C connect probe) and
// bench/c_connects.ts, which builds and runs it against the brokers.

import assert from "node:assert/strict";
import {
  brokerAvailable,
  freePort,
  startBroker as startBenchBroker,
  which,
} from "../bench/_brokers.ts";
import { buildProbe } from "../bench/c_latency.ts";
import {
  type ConnectProbeResult,
  formatConnectTable,
  runConnectProbe,
} from "../bench/c_connects.ts";
import { startBroker } from "./_helpers.ts";

const noCc = which("cc") === undefined ? "no C compiler" : undefined;

async function withProbe(fn: (probe: string) => Promise<void>): Promise<void> {
  const probe = await buildProbe("cc", "connect_probe.c");
  try {
    await fn(probe);
  } finally {
    await Deno.remove(probe.replace(/\/connect_probe$/, ""), {
      recursive: true,
    });
  }
}

Deno.test({
  name:
    "The C connect probe opens every connection to Kite, each accepted with a zero CONNACK return code, and reads the broker's CPU v3:[MQTT-3.1.4-4]",
  ignore: noCc !== undefined || brokerAvailable("kite") !== undefined,
  async fn() {
    await withProbe(async (probe) => {
      const broker = await startBenchBroker("kite");
      try {
        const r = await runConnectProbe(probe, {
          port: broker.port,
          count: 300,
          concurrency: 20,
          warmup: 50,
          pid: broker.pid,
        });
        const info = JSON.stringify(r);
        // v3:[MQTT-3.1.4-4]: a valid CONNECT is acknowledged with a CONNACK
        // whose return code is zero; the probe counts any other as refused.
        assert.equal(r.connected, 300, info);
        assert.equal(r.refused, 0, info);
        assert.equal(r.closed, 0, info);
        assert.equal(r.warmup, 50, info);
        assert.ok(r.connectsPerSec > 0, info);
        const s = r.setup;
        const v = [s.p50, s.p90, s.p99, s.p999, s.max];
        for (let i = 1; i < v.length; i++) assert.ok(v[i - 1]! <= v[i]!, info);
        assert.ok(r.brokerCpuSeconds !== undefined, info);
        assert.ok(r.brokerCpuSeconds > 0, info);
      } finally {
        await broker.stop();
      }
    });
  },
});

Deno.test({
  name:
    "The C connect probe counts the connections a broker refuses past its limit (3.1.1 CONNACK 0x03) and does not retry them",
  ignore: noCc !== undefined,
  async fn() {
    const broker = await startBroker({ maxConnections: 5 });
    try {
      await withProbe(async (probe) => {
        const r = await runConnectProbe(probe, {
          port: broker.addr.port,
          count: 8,
          concurrency: 1,
        });
        const info = JSON.stringify(r);
        assert.equal(r.connected, 5, info);
        assert.equal(r.refused + r.closed, 3, info);
      });
    } finally {
      await broker.close();
    }
  },
});

Deno.test({
  name: "The C connect probe says in one line why it cannot reach a broker",
  ignore: noCc !== undefined,
  async fn() {
    await withProbe(async (probe) => {
      const port = freePort();
      await assert.rejects(
        runConnectProbe(probe, { port, count: 1 }),
        (e: Error) => {
          assert.equal(
            e.message,
            `connect_probe: connect to 127.0.0.1:${port}: Connection refused`,
          );
          return true;
        },
      );
    });
  },
});

Deno.test("formatConnectTable() prints medians, each broker's ratio to the bare accept loop and the set-up tail", () => {
  const run = (rate: number, p99: number): ConnectProbeResult => ({
    count: 10_000,
    concurrency: 100,
    warmup: 0,
    connected: 10_000,
    refused: 0,
    closed: 0,
    seconds: 10_000 / rate,
    connectsPerSec: rate,
    probeCpuSeconds: 10_000 / rate / 2,
    setup: { p50: 100, p90: 200, p99, p999: p99 * 2, max: p99 * 3 },
    brokerCpuSeconds: 10_000 / rate * 0.9,
  });
  const table = formatConnectTable(
    new Map([
      ["kite", [run(18_000, 900), run(20_000, 1000), run(19_000, 800)]],
      ["bare", [run(20_000, 700)]],
    ]),
  );
  const row = (label: string) =>
    table.split("\n").find((l) => l.startsWith(`| ${label} |`));
  assert.equal(row("connects/s"), "| connects/s | 19,000 | 20,000 |");
  assert.equal(
    row("vs bare Deno accept loop"),
    "| vs bare Deno accept loop | 0.95× | 1.00× |",
  );
  assert.equal(
    row("connects/s, runs"),
    "| connects/s, runs | 18,000, 20,000, 19,000 | 20,000 |",
  );
  assert.equal(row("broker CPU %"), "| broker CPU % | 90.0 | 90.0 |");
  assert.equal(row("set-up p99 µs"), "| set-up p99 µs | 900 | 700 |");
  assert.equal(row("probe CPU %"), "| probe CPU % | 50.0 | 50.0 |");
});
