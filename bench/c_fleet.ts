/**
 * Issue 20's fleet scenario measured by an independent tool:
 * bench/fleet_probe.c, a one-thread C program (epoll, one write per device
 * message, each subscriber's PUBACKs written together), built here with the
 * system's C compiler. N devices publish one 200-byte QoS 1 message a
 * second each, five subscribers take `fleet/+/telemetry` and one `#`, 1% of
 * the devices reconnect each second with their persistent session. Brokers
 * are started as `deno task compare` starts them (pinned to CPU 0, the
 * probe to CPU 1) in interleaved runs; the probe reads the broker's CPU
 * (all its threads) over the measured window and its RSS at the end.
 *
 * Kite's Deno tool (`deno task compare -- --scenarios fleet`) runs out of
 * its core above about 2,000 devices; this probe, at about 10,000 here.
 *
 * The warm-up is 20 s by default, as for bench/c_latency.ts: with `--trace-opt`,
 * V8 still compiled the hot path with TurboFan 3-5 s into a 5 s warm-up's
 * measured part (the compiles run on a V8 worker thread, which shares the
 * broker's pinned CPU with its main thread).
 *
 * Needs a C compiler (`cc`) and two CPUs; prints why and exits 2 without.
 *
 * ```sh
 * deno run -A bench/c_fleet.ts --brokers kite,kite-kv,mosquitto \
 *   --devices 2000,5000 --repeat 3
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

/** The fleet probe's JSON result (times in µs). */
export interface FleetProbeResult {
  devices: number;
  subscribers: number;
  payload: number;
  warmup: number;
  duration: number;
  connectSeconds: number;
  sent: number;
  /** Sent times the subscribers. */
  expected: number;
  delivered: number;
  lost: number;
  /** Deliveries out of a device's order (or repeated) at a subscriber. */
  misordered: number;
  /** Device messages never acknowledged. */
  unacked: number;
  reconnects: number;
  reconnectFailures: number;
  /** Reconnects whose CONNACK said no session was present. */
  sessionLost: number;
  probeCpuSeconds: number;
  brokerCpuSeconds?: number;
  brokerCpuPct?: number;
  brokerRssKB?: number;
  /** Due time to the subscriber's read, every delivery in the window. */
  latency: ProbeDistribution;
  /** The probe's own lateness: written minus due. */
  sendLag: ProbeDistribution;
  /** DISCONNECT to the CONNACK of the reconnect. */
  reconnect: ProbeDistribution;
}

/** Options of one fleet probe run. */
export interface FleetProbeOptions {
  port: number;
  devices?: number;
  warmup?: number;
  duration?: number;
  payload?: number;
  /** Percent of the devices reconnecting each second. */
  reconnect?: number;
  pid?: number;
  cpu?: number;
}

/** Runs the fleet probe once against a broker on loopback. */
export function runFleetProbe(
  probe: string,
  o: FleetProbeOptions,
): Promise<FleetProbeResult> {
  return runBuiltProbe<FleetProbeResult>(probe, [
    `--port=${o.port}`,
    `--devices=${o.devices ?? 10_000}`,
    `--warmup=${o.warmup ?? 20}`,
    `--duration=${o.duration ?? 10}`,
    `--payload=${o.payload ?? 200}`,
    `--reconnect=${o.reconnect ?? 1}`,
    ...(o.pid === undefined ? [] : [`--pid=${o.pid}`]),
  ], o.cpu);
}

/**
 * The table of medians over each broker's runs (latency in ms), with each
 * one's CPU as a ratio to Mosquitto's when that ran.
 */
export function formatFleetTable(
  runs: Map<BrokerName, FleetProbeResult[]>,
): string {
  type Get = (r: FleetProbeResult) => number | undefined;
  type Cell = (rs: FleetProbeResult[]) => string;
  const ms = (us: number | undefined) =>
    us === undefined ? undefined : us / 1000;
  const medianOf = (f: Get, digits?: number): Cell => (rs) =>
    fmt(median(rs.map(f)), digits);
  const worst = (f: (r: FleetProbeResult) => number): Cell => (rs) =>
    fmt(Math.max(...rs.map(f)));
  const cpu: Get = (r) => r.brokerCpuPct;
  const mosquitto = runs.get("mosquitto");
  const mosquittoCpu = mosquitto?.length
    ? median(mosquitto.map(cpu))
    : undefined;
  const rows: [string, Cell][] = [
    ["p50 ms", medianOf((r) => ms(r.latency.p50), 2)],
    ["p90 ms", medianOf((r) => ms(r.latency.p90), 2)],
    ["p99 ms", medianOf((r) => ms(r.latency.p99), 2)],
    ["p99.9 ms", medianOf((r) => ms(r.latency.p999), 2)],
    ["max ms", medianOf((r) => ms(r.latency.max), 2)],
    ["broker CPU %", medianOf(cpu, 1)],
    [
      "broker CPU vs Mosquitto",
      (rs) => {
        const m = median(rs.map(cpu));
        return m === undefined || mosquittoCpu === undefined
          ? "-"
          : `${(m / mosquittoCpu).toFixed(2)}×`;
      },
    ],
    [
      "broker RSS MB",
      medianOf(
        (r) => r.brokerRssKB === undefined ? undefined : r.brokerRssKB / 1024,
        1,
      ),
    ],
    ["lost (worst run)", worst((r) => r.lost)],
    ["misordered (worst run)", worst((r) => r.misordered)],
    ["unacked (worst run)", worst((r) => r.unacked)],
    [
      "reconnects without their session (worst run)",
      worst((r) => r.sessionLost + r.reconnectFailures),
    ],
    ["reconnect p99 ms", medianOf((r) => ms(r.reconnect.p99), 2)],
    ["probe's send lag p99 ms", medianOf((r) => ms(r.sendLag.p99), 2)],
    [
      "probe CPU %",
      medianOf((r) => r.probeCpuSeconds / r.duration * 100, 1),
    ],
    [
      "p99 ms, runs",
      (rs) => rs.map((r) => fmt(r.latency.p99 / 1000, 2)).join(", "),
    ],
    ["broker CPU %, runs", (rs) => rs.map((r) => fmt(cpu(r), 1)).join(", ")],
  ];
  return brokerTable(runs, "median of runs", rows);
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      brokers: { type: "string", default: "kite,kite-kv,mosquitto" },
      devices: { type: "string", default: "2000,5000" },
      repeat: { type: "string", default: "3" },
      warmup: { type: "string", default: "20" },
      duration: { type: "string", default: "10" },
      json: { type: "string" },
      from: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.from !== undefined) {
    const saved = JSON.parse(Deno.readTextFileSync(values.from)) as Record<
      string,
      Record<string, FleetProbeResult[]>
    >;
    for (const [devices, byBroker] of Object.entries(saved)) {
      console.log(`\nfleet, ${devices} devices (${values.from}):\n`);
      console.log(
        formatFleetTable(
          new Map(
            Object.entries(byBroker) as [BrokerName, FleetProbeResult[]][],
          ),
        ),
      );
    }
    return 0;
  }
  if (values.help) {
    console.log(
      "usage: deno run -A bench/c_fleet.ts [--brokers kite,kite-kv,mosquitto]\n" +
        "  [--devices 2000,5000] [--repeat 3] [--warmup 20] [--duration 10]\n" +
        "  [--json out.json] [--from out.json]",
    );
    return 0;
  }
  const sizes = values.devices.split(",").map(Number);
  if (sizes.some((n) => !(Number.isInteger(n) && n > 0))) {
    console.error(`--devices: positive integers, not "${values.devices}"`);
    return 2;
  }
  const all: Record<string, Record<string, FleetProbeResult[]>> = {};
  const status = await withBuiltProbe(
    "fleet_probe.c",
    values.brokers,
    async (probe, brokers) => {
      for (const devices of sizes) {
        const runs = await interleavedRuns(
          brokers,
          Number(values.repeat),
          (broker) =>
            runFleetProbe(probe, {
              port: broker.port,
              devices,
              warmup: Number(values.warmup),
              duration: Number(values.duration),
              pid: broker.pid,
              cpu: 1,
            }),
          (r) =>
            `fleet ${devices}: p99 ${fmt(r.latency.p99)} µs, CPU ${
              fmt(r.brokerCpuPct, 1)
            }%, lost ${r.lost}`,
        );
        console.log(
          `\nfleet by bench/fleet_probe.c, ${devices} devices, ${values.repeat} interleaved runs:\n`,
        );
        console.log(formatFleetTable(runs));
        all[devices] = Object.fromEntries(runs);
      }
    },
  );
  if (status === 0 && values.json !== undefined) {
    Deno.writeTextFileSync(values.json, JSON.stringify(all, null, 1));
  }
  return status;
}

if (import.meta.main) Deno.exit(await main());
