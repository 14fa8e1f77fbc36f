/**
 * The latency scenarios measured at the sockets: the load tool runs as in
 * `deno task compare`, and `perf` records the system calls of the broker
 * and the tool for a few seconds of the measured part (the kernel's
 * timestamps, monotonic clock). bench/_syscall_latency.ts follows each
 * message from the tool's write to the tool's read and splits the time:
 * until the broker woke up, from its wake-up to its read, inside the broker
 * (read to write), and back to the tool. The tool's own numbers (from the
 * time each message was due, and from its write) are printed beside them:
 * the difference is the tool's own scheduling and JavaScript.
 *
 * Needs `perf` with access to the syscall tracepoints (root, or
 * `kernel.perf_event_paranoid` at -1) and two CPUs; prints why and exits 2
 * without.
 *
 * ```sh
 * deno run -A bench/socket_latency.ts --brokers kite,relay,mosquitto --repeat 3
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import {
  brokerAvailable,
  type BrokerName,
  startBroker,
  which,
} from "./_brokers.ts";
import { runTool, type ToolOptions } from "./compare.ts";
import type { LoadResult, ScenarioName } from "./load.ts";
import { fmt, LABEL, median } from "./_compare_table.ts";
import { formatMachine, machineCost } from "./_machine.ts";
import {
  analyzeSocketLatency,
  parsePerfScript,
  type SocketLatency,
} from "./_syscall_latency.ts";

const EVENTS = [
  "sys_enter_recvfrom",
  "sys_exit_recvfrom",
  "sys_enter_read",
  "sys_exit_read",
  "sys_enter_sendto",
  "sys_enter_write",
  "sys_exit_epoll_wait",
].map((e) => `syscalls:${e}`).join(",");

/** Why perf cannot trace here, or undefined when it can. */
async function perfUnavailable(): Promise<string | undefined> {
  if (which("perf") === undefined) return "perf is not installed";
  const out = await new Deno.Command("perf", {
    args: [
      "record",
      "-q",
      "-k",
      "mono",
      "-o",
      "/dev/null",
      "-e",
      "syscalls:sys_enter_sendto",
      "--",
      "true",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (out.success) return undefined;
  const why = new TextDecoder().decode(out.stderr).trim().split("\n")[0];
  return `perf cannot record syscall tracepoints (${why})`;
}

/** Records `pids`' system calls for `seconds` into `file`. */
async function record(
  pids: number[],
  seconds: number,
  file: string,
): Promise<void> {
  const out = await new Deno.Command("perf", {
    args: [
      "record",
      "-k",
      "mono",
      "-m",
      "1024",
      "-o",
      file,
      "-p",
      pids.join(","),
      "-e",
      EVENTS,
      "--",
      "sleep",
      String(seconds),
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `perf record failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

async function script(file: string): Promise<string> {
  const out = await new Deno.Command("perf", {
    args: ["script", "-i", file, "-F", "pid,tid,time,event,trace"],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout);
}

/** One run: the tool's result and what the trace showed. */
export interface SocketRun {
  tool: LoadResult;
  sockets: SocketLatency;
}

/**
 * Seconds from the tool's start to the trace's: its warm-up runs after the
 * connects, which take a few seconds with 10,000 idle ones.
 */
function setupSeconds(scenario: ScenarioName, tool: ToolOptions): number {
  return 3 +
    (scenario.endsWith("-idle") ? (tool.idleConns ?? 10_000) / 2000 : 0);
}

async function runOnce(
  name: BrokerName,
  scenario: ScenarioName,
  tool: ToolOptions,
  traceSeconds: number,
): Promise<SocketRun> {
  const broker = await startBroker(name, { cpu: 0 });
  const file = await Deno.makeTempFile({ suffix: ".perf" });
  try {
    let traced: Promise<void> | undefined;
    let toolPid = 0;
    const setup = setupSeconds(scenario, tool);
    const result = await runTool(
      broker.port,
      broker.pid,
      scenario,
      tool,
      broker.loadArgs,
      (pid) => {
        toolPid = pid;
        traced = new Promise((r) =>
          setTimeout(r, (tool.latencyWarmup + setup) * 1000)
        )
          .then(() => record([broker.pid, pid], traceSeconds, file));
        traced.catch(() => {});
      },
    );
    await traced;
    const events = parsePerfScript(await script(file));
    const sockets = analyzeSocketLatency(events, broker.pid, toolPid);
    return { tool: result, sockets };
  } finally {
    await broker.stop();
    await Deno.remove(file).catch(() => {});
  }
}

/** The table of medians over the runs of each broker. */
export function formatSocketTable(
  runs: Map<BrokerName, SocketRun[]>,
): string {
  const names = [...runs.keys()];
  const med = (b: BrokerName, f: (r: SocketRun) => number | undefined) =>
    median(runs.get(b)!.map(f));
  const rows: [string, (r: SocketRun) => number | undefined][] = [
    ["at the sockets p50", (r) => r.sockets.total.p50],
    ["at the sockets p90", (r) => r.sockets.total.p90],
    ["at the sockets p99", (r) => r.sockets.total.p99],
    ["at the sockets p99.9", (r) => r.sockets.total.p999],
    ["at the sockets max", (r) => r.sockets.total.max],
    ["until the broker woke, p99", (r) => r.sockets.toBrokerWake.p99],
    ["inside the broker p50", (r) => r.sockets.inBroker.p50],
    ["inside the broker p99", (r) => r.sockets.inBroker.p99],
    ["inside the broker p99.9", (r) => r.sockets.inBroker.p999],
    ["back to the tool p99", (r) => r.sockets.toTool.p99],
    ["tool: from due p99", (r) => r.tool.latency?.p99],
    ["tool: from due p99.9", (r) => r.tool.latency?.p999],
    ["tool: from its write p99", (r) => r.tool.latencyFromWrite?.p99],
  ];
  const lines = [
    `| µs (median of runs) | ${names.map((b) => LABEL[b]).join(" | ")} |`,
    `|---|${names.map(() => "---:").join("|")}|`,
  ];
  for (const [label, f] of rows) {
    lines.push(
      `| ${label} | ${names.map((b) => fmt(med(b, f))).join(" | ")} |`,
    );
  }
  lines.push(
    `| p99 at the sockets, runs | ${
      names.map((b) =>
        runs.get(b)!.map((r) => fmt(r.sockets.total.p99)).join(", ")
      )
        .join(" | ")
    } |`,
  );
  return lines.join("\n");
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      brokers: { type: "string", default: "kite,relay,mosquitto" },
      scenario: { type: "string", default: "latency" },
      repeat: { type: "string", default: "3" },
      warmup: { type: "string", default: "10" },
      duration: { type: "string", default: "12" },
      trace: { type: "string", default: "8" },
      "idle-conns": { type: "string" },
      json: { type: "string" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/socket_latency.ts [--brokers kite,relay,mosquitto]\n" +
        "  [--scenario latency|latency50k|latency-idle|latency50k-idle] [--repeat 3]\n" +
        "  [--warmup 10] [--duration 12] [--trace 8] [--idle-conns N] [--json out.json]",
    );
    return 0;
  }
  const scenario = values.scenario as ScenarioName;
  if (!scenario.startsWith("latency")) {
    console.error(
      `--scenario: one of the latency scenarios, not "${scenario}"`,
    );
    return 2;
  }
  const why = await perfUnavailable();
  if (why !== undefined) {
    console.error(`cannot trace: ${why}`);
    return 2;
  }
  if (which("taskset") === undefined || navigator.hardwareConcurrency < 2) {
    console.error(
      "cannot trace: needs taskset and two CPUs (broker on 0, tool on 1)",
    );
    return 2;
  }
  const trace = Number(values.trace);
  const tool: ToolOptions = {
    duration: Number(values.duration),
    warmup: 1,
    latencyWarmup: Number(values.warmup),
    count: 10_000,
    toolCpu: 1,
    nice: undefined,
    idleConns: values["idle-conns"] === undefined
      ? undefined
      : Number(values["idle-conns"]),
  };
  // The trace ends before the measured part does.
  tool.duration = Math.max(
    tool.duration,
    setupSeconds(scenario, tool) + trace + 1,
  );
  const brokers = (values.brokers.split(",") as BrokerName[]).filter((b) => {
    const no = brokerAvailable(b, "tcp");
    if (no !== undefined) console.error(`skipping ${b}: ${no}`);
    return no === undefined;
  });
  const runs = new Map<BrokerName, SocketRun[]>(brokers.map((b) => [b, []]));
  for (let i = 0; i < Number(values.repeat); i++) {
    for (const b of brokers) {
      let r: SocketRun;
      try {
        r = await runOnce(b, scenario, tool, trace);
      } catch (e) {
        // One failed trace (perf could not attach) costs that run only.
        console.error(
          `${LABEL[b]} ${scenario}: run left out: ${
            (e as Error).message.trim()
          }`,
        );
        continue;
      }
      runs.get(b)!.push(r);
      console.error(
        `${LABEL[b]} ${scenario}: p99 ${
          fmt(r.sockets.total.p99)
        } µs at the sockets, ` +
          `${
            fmt(r.tool.latency?.p99)
          } µs by the tool (${r.sockets.messages} messages traced)`,
      );
    }
  }
  console.log(
    `\n${scenario}, ${Number(values.repeat)} interleaved runs; ${
      formatMachine(await machineCost())
    }:\n`,
  );
  console.log(formatSocketTable(runs));
  if (values.json !== undefined) {
    Deno.writeTextFileSync(
      values.json,
      JSON.stringify(Object.fromEntries(runs), null, 1),
    );
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
