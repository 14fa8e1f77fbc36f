/**
 * The connects scenario measured by an independent tool:
 * bench/connect_probe.c, a one-thread C program (epoll, non-blocking
 * connects, `--concurrency` connections being set up at a time, each one's
 * set-up time kept), built here with the system's C compiler. Brokers are
 * started as `deno task compare` starts them (pinned to CPU 0, the probe to
 * CPU 1), with a bare Deno accept loop (bench/bare_accept.ts) as the
 * platform's ceiling, in interleaved runs. Each run is a fresh broker that
 * first takes `--warmup` connections unmeasured (then reset), then
 * `--count` measured ones held open until the last is in; the broker's CPU
 * is read over the measured part only.
 *
 * Kite's Deno tool (`deno task compare -- --scenarios conns`) spends most
 * of a core itself at this rate; this probe, about half of one.
 *
 * Needs a C compiler (`cc`) and two CPUs; prints why and exits 2 without.
 *
 * ```sh
 * deno run -A bench/c_connects.ts --brokers kite,kite-plain,bare,mosquitto \
 *   --repeat 5
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import type { BrokerName } from "./_brokers.ts";
import { fmt, median } from "./_compare_table.ts";
import {
  brokerTable,
  interleavedRuns,
  type ProbeDistribution,
  runBuiltProbe,
  withBuiltProbe,
} from "./c_latency.ts";

/** The connect probe's JSON result. */
export interface ConnectProbeResult {
  count: number;
  concurrency: number;
  warmup: number;
  connected: number;
  /** CONNACKs with a non-zero return code. */
  refused: number;
  /** Connections the broker closed before its CONNACK. */
  closed: number;
  seconds: number;
  connectsPerSec: number;
  probeCpuSeconds: number;
  /** socket() to the CONNACK's read, µs. */
  setup: ProbeDistribution;
  /** The broker's CPU over the measured connections (all its threads). */
  brokerCpuSeconds?: number;
}

/** Options of one connect probe run. */
export interface ConnectProbeOptions {
  port: number;
  count?: number;
  concurrency?: number;
  warmup?: number;
  /** The broker's pid, for its CPU time. */
  pid?: number;
  /** Pin the probe to this CPU with taskset. */
  cpu?: number;
}

/** Runs the connect probe once against a broker on loopback. */
export function runConnectProbe(
  probe: string,
  o: ConnectProbeOptions,
): Promise<ConnectProbeResult> {
  return runBuiltProbe<ConnectProbeResult>(probe, [
    `--port=${o.port}`,
    `--count=${o.count ?? 10_000}`,
    `--concurrency=${o.concurrency ?? 100}`,
    `--warmup=${o.warmup ?? 0}`,
    ...(o.pid === undefined ? [] : [`--pid=${o.pid}`]),
  ], o.cpu);
}

/**
 * The table of medians over each broker's runs, with each one's ratio to
 * the bare accept loop (`bare`) when that ran.
 */
export function formatConnectTable(
  runs: Map<BrokerName, ConnectProbeResult[]>,
): string {
  type Get = (r: ConnectProbeResult) => number | undefined;
  const rate: Get = (r) => r.connectsPerSec;
  const bare = runs.get("bare");
  const bareRate = bare?.length ? median(bare.map(rate)) : undefined;
  const medianOf = (f: Get, digits?: number) => (rs: ConnectProbeResult[]) =>
    fmt(median(rs.map(f)), digits);
  const cpuPct: Get = (r) =>
    r.brokerCpuSeconds === undefined
      ? undefined
      : r.brokerCpuSeconds / r.seconds * 100;
  const rows: [string, (rs: ConnectProbeResult[]) => string][] = [
    ["connects/s", medianOf(rate)],
    [
      "vs bare Deno accept loop",
      (rs) => {
        const m = median(rs.map(rate));
        return bareRate === undefined || m === undefined
          ? "-"
          : `${(m / bareRate).toFixed(2)}×`;
      },
    ],
    ["connects/s, runs", (rs) => rs.map((r) => fmt(rate(r))).join(", ")],
    ["broker CPU %", medianOf(cpuPct, 1)],
    [
      "broker CPU µs per connect",
      medianOf((r) =>
        r.brokerCpuSeconds === undefined || r.connected === 0
          ? undefined
          : r.brokerCpuSeconds / r.connected * 1e6
      ),
    ],
    ["probe CPU %", medianOf((r) => r.probeCpuSeconds / r.seconds * 100, 1)],
    ["set-up p50 µs", medianOf((r) => r.setup.p50)],
    ["set-up p99 µs", medianOf((r) => r.setup.p99)],
    ["set-up p99.9 µs", medianOf((r) => r.setup.p999)],
    ["set-up max µs", medianOf((r) => r.setup.max)],
    [
      "refused or closed (worst run)",
      (rs) => fmt(Math.max(...rs.map((r) => r.refused + r.closed))),
    ],
  ];
  return brokerTable(runs, "median of runs", rows);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      brokers: { type: "string", default: "kite,kite-plain,bare,mosquitto" },
      repeat: { type: "string", default: "5" },
      count: { type: "string", default: "10000" },
      concurrency: { type: "string", default: "100" },
      warmup: { type: "string", default: "5000" },
      json: { type: "string" },
      from: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.from !== undefined) {
    const saved = JSON.parse(Deno.readTextFileSync(values.from)) as Record<
      string,
      ConnectProbeResult[]
    >;
    console.log(
      formatConnectTable(
        new Map(Object.entries(saved) as [BrokerName, ConnectProbeResult[]][]),
      ),
    );
    return 0;
  }
  if (values.help) {
    console.log(
      "usage: deno run -A bench/c_connects.ts [--brokers kite,kite-plain,bare,mosquitto]\n" +
        "  [--repeat 5] [--count 10000] [--concurrency 100] [--warmup 5000]\n" +
        "  [--json out.json] [--from out.json]",
    );
    return 0;
  }
  return await withBuiltProbe(
    "connect_probe.c",
    values.brokers,
    async (probe, brokers) => {
      const runs = await interleavedRuns(
        brokers,
        Number(values.repeat),
        (broker) =>
          runConnectProbe(probe, {
            port: broker.port,
            count: Number(values.count),
            concurrency: Number(values.concurrency),
            warmup: Number(values.warmup),
            pid: broker.pid,
            cpu: 1,
          }),
        (r) =>
          `${fmt(r.connectsPerSec)} connects/s, set-up p99 ${
            fmt(r.setup.p99)
          } µs` +
          (r.refused + r.closed > 0
            ? `; ${r.refused} refused, ${r.closed} closed`
            : ""),
      );
      console.log(
        `\nconns by bench/connect_probe.c, ${values.repeat} interleaved runs, ` +
          `${values.count} connections ${values.concurrency} at a time ` +
          `after ${values.warmup} unmeasured:\n`,
      );
      console.log(formatConnectTable(runs));
      if (values.json !== undefined) {
        Deno.writeTextFileSync(
          values.json,
          JSON.stringify(Object.fromEntries(runs), null, 1),
        );
      }
    },
  );
}

if (import.meta.main) Deno.exit(await main());
