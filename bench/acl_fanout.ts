/**
 * Fan-out with an ACL against fan-out without: issue 19 asks that Kite with
 * a password file and an ACL file (every delivery authorized against the
 * subscriber's read rules) keeps at least 0.8x the fan-out throughput of
 * Kite without them.
 *
 * Runs the `fanout` scenario of bench/load.ts (1 publisher, 50
 * subscribers, QoS 0) against `kite` and `kite-acl` (bench/_brokers.ts),
 * interleaved in one run: each round starts both brokers fresh in turn (the
 * order alternating between rounds, so drift of the machine's load hits
 * both alike), broker pinned to CPU 0 and the tool to CPU 1 as in
 * compare.ts. Prints every run, the medians and the ratio.
 *
 * ```sh
 * deno run -A bench/acl_fanout.ts [--rounds 3] [--duration 5] [--warmup 1]
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type BrokerName, startBroker, which } from "./_brokers.ts";
import { runTool, type ToolOptions } from "./compare.ts";
import type { LoadResult } from "./load.ts";

const BROKERS: BrokerName[] = ["kite", "kite-acl"];

function median(values: number[]): number {
  const v = values.toSorted((a, b) => a - b);
  return v[Math.floor((v.length - 1) / 2)] ?? NaN;
}

function fmt(n: number | undefined, digits = 0): string {
  return n === undefined || Number.isNaN(n) ? "-" : n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      rounds: { type: "string", default: "3" },
      duration: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(
      "usage: deno run -A bench/acl_fanout.ts [--rounds 3] [--duration 5] [--warmup 1]",
    );
    return 0;
  }
  const pinned = which("taskset") !== undefined &&
    navigator.hardwareConcurrency >= 2;
  const tool: ToolOptions = {
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    latencyWarmup: 0,
    count: 0,
    toolCpu: pinned ? 1 : undefined,
    nice: undefined,
  };
  const rounds = Math.max(1, Number(values.rounds));
  const load0 = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  const runs = new Map<BrokerName, LoadResult[]>(BROKERS.map((b) => [b, []]));
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? BROKERS : BROKERS.toReversed();
    for (const name of order) {
      const broker = await startBroker(name, pinned ? { cpu: 0 } : {});
      try {
        const r = await runTool(
          broker.port,
          broker.pid,
          "fanout",
          tool,
          broker.loadArgs,
        );
        if ((r.lost ?? 0) > 0 || (r.deliveredPerSec ?? 0) === 0) {
          throw new Error(`bad run: ${JSON.stringify(r).slice(0, 400)}`);
        }
        runs.get(name)!.push(r);
        console.error(
          `round ${i + 1} ${name}: ${fmt(r.deliveredPerSec)} msg/s, ` +
            `${fmt(r.perBrokerCpuSecond)} per broker CPU-s, p99 ${
              fmt(r.latency?.p99)
            } µs`,
        );
      } finally {
        await broker.stop();
      }
    }
  }
  const load1 = Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
  const med = (name: BrokerName, f: (r: LoadResult) => number | undefined) =>
    median(runs.get(name)!.map((r) => f(r) ?? NaN));
  const rows: [string, (r: LoadResult) => number | undefined, boolean][] = [
    ["msg/s", (r) => r.deliveredPerSec, true],
    ["msg per broker CPU-s", (r) => r.perBrokerCpuSecond, true],
    ["latency p50 µs", (r) => r.latency?.p50, false],
    ["latency p99 µs", (r) => r.latency?.p99, false],
  ];
  console.log(
    `fanout (1 -> 50, QoS 0, 64 B), ${rounds} interleaved rounds of ` +
      `${tool.duration} s after ${tool.warmup} s warm-up, ` +
      `${pinned ? "broker on CPU 0, tool on CPU 1" : "not pinned"}, ` +
      `load average ${load0} before / ${load1} after\n`,
  );
  console.log(
    "| metric | Kite, no ACL (runs) | median | Kite, ACL (runs) | median | ACL / no ACL |",
  );
  console.log("| --- | --- | ---: | --- | ---: | ---: |");
  for (const [label, f] of rows) {
    const each = (name: BrokerName) =>
      runs.get(name)!.map((r) => fmt(f(r))).join(" / ");
    const a = med("kite", f);
    const b = med("kite-acl", f);
    console.log(
      `| ${label} | ${each("kite")} | ${fmt(a)} | ${each("kite-acl")} | ${
        fmt(b)
      } | ${fmt(b / a, 2)}× |`,
    );
  }
  return 0;
}

if (import.meta.main) {
  const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  Deno.exit(await main(args));
}
