/**
 * The latency scenarios measured by an independent tool: bench/latency_probe.c,
 * a one-thread C program (timerfd and epoll, one write per message, every
 * measured message kept), built here with the system's C compiler. Brokers
 * are started as `deno task compare` starts them (pinned to CPU 0, the probe
 * to CPU 1) and measured in interleaved runs; the table has the median of
 * the runs and each run's p99 and p99.9.
 *
 * The warm-up is 20 s by default: with `--trace-opt`, V8's last TurboFan
 * compiles of Kite's hot path (about 20 ms of compiling on the broker's
 * pinned CPU) come 12-15 s after the traffic starts, so with a 10 s
 * warm-up they fall in the measured part (`--warmup 10` shows it).
 *
 * Needs a C compiler (`cc`) and two CPUs; prints why and exits 2 without.
 *
 * ```sh
 * deno run -A bench/c_latency.ts --brokers kite,kite-plain,relay,mosquitto \
 *   --scenarios latency,latency50k,latency-idle,latency50k-idle --repeat 3
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import {
  brokerAvailable,
  type BrokerName,
  type RunningBroker,
  startBroker,
  which,
  withFileLimit,
} from "./_brokers.ts";
import { fmt, LABEL, median } from "./_compare_table.ts";
import { formatMachine, machineCost } from "./_machine.ts";
import { readProcCpuSeconds } from "./_proc.ts";

/** Percentiles as the probe prints them, µs. */
export interface ProbeDistribution {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
}

/** The probe's JSON result. */
export interface ProbeResult {
  rate: number;
  size: number;
  /** Idle connections held open while measuring. */
  idle: number;
  /** Idle connections the broker refused (its connection limit). */
  idleRefused: number;
  sent: number;
  measured: number;
  received: number;
  lost: number;
  misordered: number;
  probeCpuSeconds: number;
  /** From the time each message was due. */
  latency: ProbeDistribution;
  /** From the probe's write. */
  fromWrite: ProbeDistribution;
  /** The probe's own lateness: written minus due. */
  sendLag: ProbeDistribution;
}

/** One run: the probe's result and the broker's CPU share over it. */
export interface ProbeRun {
  probe: ProbeResult;
  brokerCpu?: number | undefined;
}

/** The probe's scenarios: rate and idle connections. */
export const PROBE_SCENARIOS: Record<string, { rate: number; idle: number }> = {
  latency: { rate: 10_000, idle: 0 },
  latency50k: { rate: 50_000, idle: 0 },
  "latency-idle": { rate: 10_000, idle: 10_000 },
  "latency50k-idle": { rate: 50_000, idle: 10_000 },
};

/**
 * Builds a probe of bench/ (`latency_probe.c` unless `source` names another)
 * into a temporary directory; returns its path, or throws with the
 * compiler's first lines.
 */
export async function buildProbe(
  cc = "cc",
  source = "latency_probe.c",
): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kite-probe-" });
  const out = join(dir, source.replace(/\.c$/, ""));
  const path = fileURLToPath(new URL(`./${source}`, import.meta.url));
  const r = await new Deno.Command(cc, {
    args: ["-O2", "-o", out, path],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) {
    await Deno.remove(dir, { recursive: true });
    const why = new TextDecoder().decode(r.stderr).trim().split("\n")
      .slice(0, 3).join(" ");
    throw new Error(`cannot build bench/${source}: ${why}`);
  }
  return out;
}

/** Options of one probe run. */
export interface ProbeOptions {
  port: number;
  rate: number;
  warmup: number;
  duration: number;
  idle?: number;
  size?: number;
  /** Pin the probe to this CPU with taskset. */
  cpu?: number;
  /**
   * Write every measured message's latencies to this file (the probe's
   * `--dump`; bench/latency_episodes.ts reads it).
   */
  dump?: string;
}

/**
 * Runs a probe built by `buildProbe` with `args` (with the open file limit
 * raised, pinned to `cpu` when given) and parses the JSON it prints; throws
 * with its one-line message when it fails.
 */
export async function runBuiltProbe<T>(
  probe: string,
  args: string[],
  cpu?: number,
): Promise<T> {
  let cmd = withFileLimit([probe, ...args]);
  if (cpu !== undefined && which("taskset") !== undefined) {
    cmd = ["taskset", "-c", String(cpu), ...cmd];
  }
  const r = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(r.stdout).trim();
  if (!r.success || text === "") {
    throw new Error(
      new TextDecoder().decode(r.stderr).trim() ||
        `${probe.split("/").pop()} exited with ${r.code}`,
    );
  }
  return JSON.parse(text) as T;
}

/**
 * The order of the brokers in round `round` of interleaved runs: each round
 * starts one broker further on, so no broker always runs first (in this
 * VM's series the first run of a series was often the slowest).
 *
 * @example
 * ```ts
 * roundOrder(["kite", "mosquitto"], 1); // ["mosquitto", "kite"]
 * ```
 */
export function roundOrder<T>(brokers: readonly T[], round: number): T[] {
  const n = brokers.length;
  if (n === 0) return [];
  const at = round % n;
  return [...brokers.slice(at), ...brokers.slice(0, at)];
}

/**
 * Runs `run` against each broker in turn, `repeat` times over (interleaved,
 * each round starting one broker further on: `roundOrder`), each run on a
 * fresh broker pinned to CPU 0; prints `describe`'s line for each result,
 * or why a run was left out. Returns each broker's results, in round order.
 */
export async function interleavedRuns<T>(
  brokers: BrokerName[],
  repeat: number,
  run: (broker: RunningBroker) => Promise<T>,
  describe: (r: T) => string,
): Promise<Map<BrokerName, T[]>> {
  const runs = new Map<BrokerName, T[]>(brokers.map((b) => [b, []]));
  for (let i = 0; i < repeat; i++) {
    for (const b of roundOrder(brokers, i)) {
      const broker = await startBroker(b, { cpu: 0 });
      try {
        const r = await run(broker);
        runs.get(b)!.push(r);
        console.error(`${LABEL[b]}: ${describe(r)}`);
      } catch (e) {
        console.error(`${LABEL[b]}: run left out: ${(e as Error).message}`);
      } finally {
        await broker.stop();
      }
    }
  }
  return runs;
}

/**
 * Builds `source` (a probe of bench/) and runs `measure` with it and those
 * of the comma-separated `brokers` that can run here (each one left out
 * says why), after a line about the machine; removes the probe after.
 * Returns the exit status: 2, with why, without a C compiler, taskset or
 * two CPUs.
 */
export async function withBuiltProbe(
  source: string,
  brokers: string,
  measure: (probe: string, brokers: BrokerName[]) => Promise<void>,
): Promise<number> {
  if (which("cc") === undefined) {
    console.error("cannot measure: no C compiler (cc) to build the probe");
    return 2;
  }
  if (which("taskset") === undefined || navigator.hardwareConcurrency < 2) {
    console.error("cannot measure: needs taskset and two CPUs");
    return 2;
  }
  const probe = await buildProbe("cc", source);
  const available = (brokers.split(",") as BrokerName[]).filter((b) => {
    const no = brokerAvailable(b, "tcp");
    if (no !== undefined) console.error(`skipping ${b}: ${no}`);
    return no === undefined;
  });
  try {
    console.log(formatMachine(await machineCost()));
    await measure(probe, available);
  } finally {
    await Deno.remove(join(probe, ".."), { recursive: true });
  }
  return 0;
}

/**
 * A Markdown table with a column for each broker of `runs` and a row for
 * each `[label, cell]`, the cell made from that broker's runs.
 */
export function brokerTable<R>(
  runs: Map<BrokerName, R[]>,
  corner: string,
  rows: [string, (rs: R[]) => string][],
): string {
  const names = [...runs.keys()];
  const lines = [
    `| ${corner} | ${names.map((b) => LABEL[b]).join(" | ")} |`,
    `|---|${names.map(() => "---:").join("|")}|`,
  ];
  for (const [label, cell] of rows) {
    lines.push(
      `| ${label} | ${names.map((b) => cell(runs.get(b)!)).join(" | ")} |`,
    );
  }
  return lines.join("\n");
}

/** Runs the latency probe once against a broker on loopback. */
export function runProbe(
  probe: string,
  o: ProbeOptions,
): Promise<ProbeResult> {
  return runBuiltProbe<ProbeResult>(probe, [
    `--port=${o.port}`,
    `--rate=${o.rate}`,
    `--warmup=${o.warmup}`,
    `--duration=${o.duration}`,
    `--idle=${o.idle ?? 0}`,
    `--size=${o.size ?? 64}`,
    ...(o.dump !== undefined ? [`--dump=${o.dump}`] : []),
  ], o.cpu);
}

/**
 * A run whose slowest message took this long (µs) had a stall: this VM
 * stops now and then for up to about 100 ms, with any broker, and the
 * probe cannot tell whose it was.
 */
export const STALL_US = 50_000;

/** The table of medians over the runs of each broker, µs unless noted. */
export function formatProbeTable(runs: Map<BrokerName, ProbeRun[]>): string {
  type Get = (r: ProbeRun) => number | undefined;
  const p99: Get = (r) => r.probe.latency.p99;
  const p999: Get = (r) => r.probe.latency.p999;
  const calm = (rs: ProbeRun[]) =>
    rs.filter((r) => r.probe.latency.max < STALL_US);
  const medianOf = (f: Get, digits?: number) => (rs: ProbeRun[]) =>
    fmt(median(rs.map(f)), digits);
  // One row: its label and its cell for one broker's runs.
  const rows: [string, (rs: ProbeRun[]) => string][] = [
    ["p50", medianOf((r) => r.probe.latency.p50)],
    ["p90", medianOf((r) => r.probe.latency.p90)],
    ["p99", medianOf(p99)],
    ["p99.9", medianOf(p999)],
    ["max", medianOf((r) => r.probe.latency.max)],
    ["p99 from the write", medianOf((r) => r.probe.fromWrite.p99)],
    ["probe's send lag p99", medianOf((r) => r.probe.sendLag.p99)],
    ["broker CPU %", medianOf((r) => r.brokerCpu, 1)],
    ["lost (worst run)", (rs) => fmt(Math.max(...rs.map((r) => r.probe.lost)))],
    [
      `runs with a stall (max ≥ ${STALL_US / 1000} ms)`,
      (rs) => `${rs.length - calm(rs).length} of ${rs.length}`,
    ],
    ["p99, runs without a stall", (rs) => medianOf(p99)(calm(rs))],
    ["p99.9, runs without a stall", (rs) => medianOf(p999)(calm(rs))],
    ["p99, runs", (rs) => rs.map((r) => fmt(p99(r))).join(", ")],
    ["p99.9, runs", (rs) => rs.map((r) => fmt(p999(r))).join(", ")],
  ];
  return brokerTable(runs, "µs, median of runs", rows);
}

async function runOnce(
  probe: string,
  broker: RunningBroker,
  scenario: { rate: number; idle: number },
  warmup: number,
  duration: number,
  dump: string | undefined,
): Promise<ProbeRun> {
  const cpu0 = readProcCpuSeconds(broker.pid);
  const t0 = performance.now();
  const result = await runProbe(probe, {
    port: broker.port,
    rate: scenario.rate,
    idle: scenario.idle,
    warmup,
    duration,
    cpu: 1,
    ...(dump !== undefined ? { dump } : {}),
  });
  const cpu1 = readProcCpuSeconds(broker.pid);
  const seconds = (performance.now() - t0) / 1000;
  return {
    probe: result,
    brokerCpu: cpu0 === undefined || cpu1 === undefined
      ? undefined
      : (cpu1 - cpu0) / seconds * 100,
  };
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      brokers: { type: "string", default: "kite,kite-plain,relay,mosquitto" },
      scenarios: { type: "string", default: "latency" },
      repeat: { type: "string", default: "3" },
      warmup: { type: "string", default: "20" },
      duration: { type: "string", default: "5" },
      json: { type: "string" },
      from: { type: "string" },
      "dump-dir": { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.from !== undefined) {
    // Print the tables of an earlier run's --json again.
    const saved = JSON.parse(Deno.readTextFileSync(values.from)) as Record<
      string,
      Record<string, ProbeRun[]>
    >;
    for (const [s, byBroker] of Object.entries(saved)) {
      console.log(`\n${s} by bench/latency_probe.c (${values.from}):\n`);
      console.log(
        formatProbeTable(
          new Map(Object.entries(byBroker) as [BrokerName, ProbeRun[]][]),
        ),
      );
    }
    return 0;
  }
  if (values.help) {
    console.log(
      "usage: deno run -A bench/c_latency.ts [--brokers kite,kite-plain,relay,mosquitto]\n" +
        "  [--scenarios latency,latency50k,latency-idle,latency50k-idle] [--repeat 3]\n" +
        "  [--warmup 20] [--duration 5] [--json out.json] [--from out.json]\n" +
        "  [--dump-dir DIR: each run's latencies, DIR/<scenario>-<broker>-<run>.txt]",
    );
    return 0;
  }
  const scenarios = values.scenarios.split(",");
  for (const s of scenarios) {
    if (!(s in PROBE_SCENARIOS)) {
      console.error(
        `--scenarios: "${s}" is not one of ${
          Object.keys(PROBE_SCENARIOS).join(", ")
        }`,
      );
      return 2;
    }
  }
  const warmup = Number(values.warmup);
  const duration = Number(values.duration);
  const all: Record<string, Record<string, ProbeRun[]>> = {};
  const dumpDir = values["dump-dir"];
  if (dumpDir !== undefined) Deno.mkdirSync(dumpDir, { recursive: true });
  const runsSoFar = new Map<string, number>();
  // Where one run's latencies go with --dump-dir: <scenario>-<broker>-<n>.txt.
  const dumpFile = (s: string, broker: RunningBroker) => {
    if (dumpDir === undefined) return undefined;
    const key = `${s}-${broker.name}`;
    const n = (runsSoFar.get(key) ?? 0) + 1;
    runsSoFar.set(key, n);
    return join(dumpDir, `${key}-${n}.txt`);
  };
  const status = await withBuiltProbe(
    "latency_probe.c",
    values.brokers,
    async (probe, brokers) => {
      for (const s of scenarios) {
        const runs = await interleavedRuns(
          brokers,
          Number(values.repeat),
          (broker) =>
            runOnce(
              probe,
              broker,
              PROBE_SCENARIOS[s]!,
              warmup,
              duration,
              dumpFile(s, broker),
            ),
          (r) =>
            `${s}: p50 ${fmt(r.probe.latency.p50)} p99 ${
              fmt(r.probe.latency.p99)
            } p99.9 ${fmt(r.probe.latency.p999)} max ${
              fmt(r.probe.latency.max)
            } µs, lost ${r.probe.lost}` +
            (r.probe.idleRefused > 0
              ? `; ${r.probe.idleRefused} idle connections refused`
              : ""),
        );
        console.log(
          `\n${s} by bench/latency_probe.c, ${values.repeat} interleaved runs:\n`,
        );
        console.log(formatProbeTable(runs));
        all[s] = Object.fromEntries(runs);
      }
    },
  );
  if (status === 0 && values.json !== undefined) {
    Deno.writeTextFileSync(values.json, JSON.stringify(all, null, 1));
  }
  return status;
}

if (import.meta.main) Deno.exit(await main());
