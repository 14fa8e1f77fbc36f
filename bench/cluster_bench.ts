/**
 * Cluster mode against one node, with bench/load.ts: a nats-server with
 * JetStream and Kite nodes (`broker/main.ts --cluster-url ...`) on free
 * loopback ports, each scenario run on a single Kite (no cluster) and on
 * the cluster, in the same run:
 *
 * - fan-out 1 -> 50: one publisher on node 1, 50 subscribers spread over
 *   the nodes (QoS 0);
 * - fan-in 8 -> 1 across nodes: 8 publishers on node 1, the subscriber on
 *   node 2 (QoS 0, then QoS 1; every message crosses);
 * - fan-in 8 -> 1 local on a cluster node: publishers and subscriber on
 *   node 1 (what a node costs when nothing crosses);
 * - QoS 1 fan-in 8 -> 1 to a persistent session across nodes (the
 *   receiving node's JetStream inbox and store), against one node with
 *   Deno KV persistence.
 *
 * Prints delivered msg/s, the ratio to the single node, and the CPU
 * seconds each process used per million deliveries.
 *
 * ```sh
 * deno run -A bench/cluster_bench.ts [--nodes 2] [--duration 5] [--scenarios fanout,fanin]
 * ```
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import { parseArgs } from "node:util";
import type { LoadResult } from "./load.ts";

const ROOT = fromFileUrl(new URL("../", import.meta.url));
const MAIN = `${ROOT}broker/main.ts`;
const LOAD = `${ROOT}bench/load.ts`;

interface Proc {
  pid: number;
  port: number;
  stop(): Promise<void>;
}

function cpuSeconds(pid: number): number {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) / 100; // utime + stime, ticks
  } catch {
    return 0;
  }
}

/** Spawns `cmd`, resolves once its output matches `ready`. */
async function spawn(
  cmd: string,
  args: string[],
  ready: RegExp,
): Promise<{ child: Deno.ChildProcess; match: RegExpMatchArray }> {
  const child = new Deno.Command(cmd, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let text = "";
  const { promise, resolve, reject } = Promise.withResolvers<
    RegExpMatchArray
  >();
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      if (text.length < 100_000) text += chunk;
      const m = text.match(ready);
      if (m) resolve(m);
    }
  };
  void Promise.all([read(child.stdout), read(child.stderr)]).then(() =>
    reject(new Error(`${cmd} exited:\n${text}`))
  );
  const timer = setTimeout(
    () => reject(new Error(`${cmd} not ready:\n${text}`)),
    30_000,
  );
  try {
    return { child, match: await promise };
  } finally {
    clearTimeout(timer);
  }
}

function stopper(child: Deno.ChildProcess): () => Promise<void> {
  return async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
  };
}

async function startNats(dir: string): Promise<Proc> {
  const { child, match } = await spawn("nats-server", [
    "-a",
    "127.0.0.1",
    "-p",
    "-1",
    "-js",
    "-sd",
    dir,
  ], /Listening for client connections on [\d.]+:(\d+)[\s\S]*Server is ready/);
  return { pid: child.pid, port: Number(match[1]), stop: stopper(child) };
}

async function startKite(extra: string[]): Promise<Proc> {
  const { child, match } = await spawn(Deno.execPath(), [
    "run",
    "-A",
    "--v8-flags=--max-semi-space-size=4",
    MAIN,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--sys-interval",
    "0",
    ...(extra.some((a) => a.startsWith("--enable-persistence"))
      ? []
      : ["--enable-persistence=false"]),
    ...extra,
  ], /listening on mqtt:\/\/\S+:(\d+)/);
  return { pid: child.pid, port: Number(match[1]), stop: stopper(child) };
}

async function load(args: string[]): Promise<LoadResult> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", LOAD, "--json", ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (out.code !== 0) {
    throw new Error(new TextDecoder().decode(out.stderr));
  }
  return (JSON.parse(new TextDecoder().decode(out.stdout)) as LoadResult[])[0]!;
}

interface Row {
  name: string;
  setup: string;
  perSec: number;
  lost: number;
  cpu: Record<string, number>;
  delivered: number;
}

async function measure(
  name: string,
  setup: string,
  procs: Record<string, Proc>,
  args: string[],
): Promise<Row> {
  const before = Object.fromEntries(
    Object.entries(procs).map(([k, p]) => [k, cpuSeconds(p.pid)]),
  );
  const r = await load(args);
  const cpu = Object.fromEntries(
    Object.entries(procs).map(([k, p]) => [k, cpuSeconds(p.pid) - before[k]!]),
  );
  return {
    name,
    setup,
    perSec: r.deliveredPerSec ?? 0,
    lost: r.lost ?? 0,
    cpu,
    delivered: r.delivered ?? 0,
  };
}

function fmt(n: number): string {
  return Math.round(n).toLocaleString("en-US");
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
    options: {
      nodes: { type: "string", default: "2" },
      duration: { type: "string", default: "5" },
      scenarios: {
        type: "string",
        default: "fanout,fanin,fanin-qos1,local,persistent",
      },
    },
  });
  const n = Math.max(2, Number(values.nodes));
  const duration = values.duration;
  const scenarios = values.scenarios.split(",");
  const rows: Row[] = [];
  const dir = await Deno.makeTempDir({ prefix: "kite-cluster-bench-" });
  const common = ["--duration", duration, "--warmup", "1"];
  try {
    // One node, no cluster.
    const single = await startKite([]);
    try {
      const p = String(single.port);
      if (scenarios.includes("fanout")) {
        rows.push(
          await measure("fanout 1->50", "1 node", { kite: single }, [
            ...common,
            "--scenario",
            "fanout",
            "--port",
            p,
          ]),
        );
      }
      for (const [s, qos] of [["fanin", "0"], ["fanin-qos1", "1"]]) {
        if (!scenarios.includes(s!)) continue;
        rows.push(
          await measure(`${s} 8->1`, "1 node", { kite: single }, [
            ...common,
            "--scenario",
            qos === "0" ? "fanin" : "qos1",
            "--port",
            p,
          ]),
        );
      }
    } finally {
      await single.stop();
    }
    if (scenarios.includes("persistent")) {
      const kv = await startKite([
        "--enable-persistence=true",
        "--persistence-path",
        `${dir}/kv`,
      ]);
      try {
        rows.push(
          await measure("qos1-persistent 8->1", "1 node", { kite: kv }, [
            ...common,
            "--scenario",
            "qos1-persistent",
            "--port",
            String(kv.port),
          ]),
        );
      } finally {
        await kv.stop();
      }
    }
    // The cluster.
    const nats = await startNats(`${dir}/js`);
    const nodes: Proc[] = [];
    try {
      for (let i = 0; i < n; i++) {
        nodes.push(
          await startKite([
            "--cluster-url",
            `nats://127.0.0.1:${nats.port}`,
            "--node-id",
            `bench${i + 1}`,
          ]),
        );
      }
      const procs: Record<string, Proc> = { nats };
      nodes.forEach((p, i) => procs[`node${i + 1}`] = p);
      const ports = nodes.map((x) => x.port);
      if (scenarios.includes("fanout")) {
        rows.push(
          await measure("fanout 1->50", `${n} nodes`, procs, [
            ...common,
            "--scenario",
            "fanout",
            "--port",
            String(ports[0]),
            "--pub-ports",
            String(ports[0]),
            "--sub-ports",
            ports.join(","),
          ]),
        );
      }
      for (
        const [s, scenario] of [["fanin", "fanin"], ["fanin-qos1", "qos1"]]
      ) {
        if (!scenarios.includes(s!)) continue;
        rows.push(
          await measure(`${s} 8->1`, "across nodes", procs, [
            ...common,
            "--scenario",
            scenario!,
            "--port",
            String(ports[0]),
            "--pub-ports",
            String(ports[0]),
            "--sub-ports",
            String(ports[1]),
          ]),
        );
      }
      if (scenarios.includes("persistent")) {
        rows.push(
          await measure("qos1-persistent 8->1", "across nodes", procs, [
            ...common,
            "--scenario",
            "qos1-persistent",
            "--port",
            String(ports[0]),
            "--pub-ports",
            String(ports[0]),
            "--sub-ports",
            String(ports[1]),
          ]),
        );
      }
      if (scenarios.includes("local")) {
        rows.push(
          await measure("fanin 8->1", "on a cluster node", procs, [
            ...common,
            "--scenario",
            "fanin",
            "--port",
            String(ports[0]),
          ]),
        );
      }
    } finally {
      for (const p of nodes) await p.stop();
      await nats.stop();
    }
  } finally {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  }
  const base = new Map(
    rows.filter((r) => r.setup === "1 node").map((r) => [r.name, r.perSec]),
  );
  console.log(
    "| scenario | setup | delivered msg/s | vs 1 node | lost | CPU s per 1M deliveries |",
  );
  console.log("|---|---|---:|---:|---:|---|");
  for (const r of rows) {
    const b = base.get(r.name);
    const ratio = b === undefined || b === 0 ? "" : (r.perSec / b).toFixed(2);
    const per = Object.entries(r.cpu).map(([k, s]) =>
      `${k} ${(s / Math.max(1, r.delivered) * 1e6).toFixed(1)}`
    ).join(", ");
    console.log(
      `| ${r.name} | ${r.setup} | ${
        fmt(r.perSec)
      } | ${ratio} | ${r.lost} | ${per} |`,
    );
  }
}

if (import.meta.main) await main();
