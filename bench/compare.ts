/**
 * Runs every load scenario against Kite, Mosquitto and Aedes and prints one
 * table with Kite's ratio to each.
 *
 * Each broker is started fresh for each scenario (and each repeat) on a free
 * loopback port, pinned to CPU 0; the load tool (bench/load.ts) runs as its
 * own process pinned to CPU 1. With `--repeat N` each cell is the median of
 * the N runs (losses: the worst run). Throughput is also shown per CPU second
 * the broker used, which stays steady when other processes share its core.
 *
 * With `--transport tls` or `--transport ws` the brokers (Kite and
 * Mosquitto) also listen for MQTT over TLS (a throwaway certificate made
 * with openssl) or over WebSocket, and the load tool connects over that;
 * the default scenarios are then fanin and qos1.
 *
 * ```sh
 * deno task compare
 * deno task compare -- --scenarios fanin,qos1 --brokers mosquitto,aedes --duration 3
 * deno task compare -- --transport tls --repeat 3
 * deno task compare -- --brokers kite --scenarios fanin --scrape-interval 1 --repeat 3
 * ```
 *
 * Scenarios with company: `qos1-persistent` and `fleet` also run Kite with
 * Deno KV persistence on ("Kite (KV)"); `conns` also runs a bare Deno
 * accept loop (bench/bare_accept.ts), the platform's ceiling, and prints
 * each broker's ratio to it; the latency scenarios also run a bare Deno
 * relay (bench/bare_relay.ts), their ceiling. `--brokers kite-plain` adds
 * Kite started as the README's first command starts it (every default).
 *
 * Every process (brokers and tool) may open as many files as the hard
 * limit allows (`ulimit -n`), for the 10,000-connection scenarios.
 *
 * With `--scrape-interval N`, Kite also runs as "Kite (scraped)": with its
 * HTTP server on, `/metrics` fetched every N seconds during the whole run
 * (as Prometheus would), and the column Kite/Kite (scraped) is the cost of
 * being scraped. Repeats run interleaved (each broker once, then again), so
 * a change in the machine's load falls on both alike.
 *
 * @module
 */

import { fileURLToPath as fromFileUrl } from "node:url";
import { parseArgs } from "node:util";
import {
  type BenchCerts,
  type BenchTransport,
  brokerAvailable,
  type BrokerName,
  startBroker,
  which,
  withFileLimit,
} from "./_brokers.ts";
import {
  cpuColumns,
  fmt,
  formatCeiling,
  formatCpu,
  formatTable,
  LABEL,
  mainMetric,
} from "./_compare_table.ts";
import { makeCerts, type TestCerts } from "../tests/_broker_certs.ts";
import type { LoadResult, ScenarioName } from "./load.ts";
import { formatMachine, machineCost } from "./_machine.ts";

export { formatCpu, formatTable } from "./_compare_table.ts";

const LOAD = fromFileUrl(new URL("./load.ts", import.meta.url));
const ALL_SCENARIOS: ScenarioName[] = [
  "fanin",
  "fanout",
  "qos1",
  "qos2",
  "qos1-persistent",
  "latency",
  "latency50k",
  "latency-idle",
  "latency50k-idle",
  "slow",
  "slow-qos1",
  "conns",
  "fleet",
  "scatter",
  "scatter20k",
];
const ALL_BROKERS: BrokerName[] = ["kite", "mosquitto", "aedes"];
/**
 * Fetches `/metrics` of a broker every `seconds` until stopped, as a
 * Prometheus server would; a failed scrape throws at `stop()`.
 */
class Scraper {
  #timer: ReturnType<typeof setInterval>;
  #inFlight: Promise<void> | undefined;
  #error: unknown;
  count = 0;
  bytes = 0;
  slowestMs = 0;

  constructor(port: number, seconds: number) {
    const url = `http://127.0.0.1:${port}/metrics`;
    this.#timer = setInterval(() => {
      if (this.#inFlight !== undefined) return; // slower than the interval
      const t0 = performance.now();
      this.#inFlight = fetch(url).then(async (r) => {
        const text = await r.text();
        if (r.status !== 200) throw new Error(`/metrics: ${r.status}`);
        this.count++;
        this.bytes += text.length;
        this.slowestMs = Math.max(this.slowestMs, performance.now() - t0);
      }).catch((e) => {
        this.#error ??= e;
      }).finally(() => this.#inFlight = undefined);
    }, seconds * 1000);
  }

  /** Stops scraping; resolves with the counts (rejects if a scrape failed). */
  async stop(): Promise<{ count: number; bytes: number; slowestMs: number }> {
    clearInterval(this.#timer);
    await this.#inFlight;
    if (this.#error !== undefined) throw this.#error;
    return { count: this.count, bytes: this.bytes, slowestMs: this.slowestMs };
  }
}

/** How {@linkcode runTool} runs the load tool. */
export interface ToolOptions {
  duration: number;
  warmup: number;
  /**
   * The latency scenarios' (and fleet's) warm-up: a fresh Deno process
   * compiles its hot paths over the first seconds (Kite's p99 was about
   * 1.1 ms in seconds 1-6 of a run, 0.34 ms in 6-12 and 0.25 ms after), so
   * its steady state needs longer than the throughput scenarios, whose
   * first second is a small share of a large count.
   */
  latencyWarmup: number;
  count: number;
  toolCpu: number | undefined;
  nice: number | undefined;
  /** latency-idle, latency50k-idle: idle connections (default 10,000). */
  idleConns?: number | undefined;
  /** fleet: devices (default 10,000). */
  devices?: number | undefined;
  /** scatter (not scatter20k): subscribers (default 2,000). */
  scatterSubs?: number | undefined;
}

/** Seconds of warm-up for a scenario. */
export function warmupFor(scenario: ScenarioName, o: ToolOptions): number {
  return scenario.startsWith("latency") || scenario === "fleet"
    ? o.latencyWarmup
    : o.warmup;
}

/** The load tool's flags for what `o` sets for this scenario. */
function scenarioArgs(scenario: ScenarioName, o: ToolOptions): string[] {
  const args: string[] = [];
  if (scenario.endsWith("-idle") && o.idleConns !== undefined) {
    args.push("--idle-conns", String(o.idleConns));
  }
  if (scenario === "fleet" && o.devices !== undefined) {
    args.push("--devices", String(o.devices));
  }
  if (scenario === "scatter" && o.scatterSubs !== undefined) {
    args.push("--scatter-subs", String(o.scatterSubs));
  }
  return args;
}

/**
 * V8 flags of the tool's process for this scenario. The fleet scenario holds
 * a pending read on every device's socket for about a second, so with V8's
 * default young generation (growing to 16 MB) each scavenge copies 4 MB of
 * live read state and stops the tool's main thread for about 20 ms every
 * 600 ms: sends then go out late by up to that much, which made the tool's
 * send lag p99 7-9 ms. A 1 MB semi-space makes it a 1-2 ms pause every few
 * tens of ms (send lag p99 2.2-2.6 ms, measured against Mosquitto).
 */
export function toolV8Flags(scenario: ScenarioName): string[] {
  return scenario === "fleet" ? ["--v8-flags=--max-semi-space-size=1"] : [];
}

/**
 * Runs bench/load.ts in its own process (pinned) and parses its JSON;
 * `extraArgs` are the broker's `loadArgs` (credentials); `onSpawn` is told
 * the tool's pid once it started (bench/socket_latency.ts traces it).
 */
export async function runTool(
  port: number,
  pid: number,
  scenario: ScenarioName,
  o: ToolOptions,
  extraArgs: string[] = [],
  onSpawn?: (toolPid: number) => void,
): Promise<LoadResult> {
  const warmup = warmupFor(scenario, o);
  let cmd = [
    Deno.execPath(),
    "run",
    "-A",
    ...toolV8Flags(scenario),
    LOAD,
    "--json",
    "--port",
    String(port),
    "--pid",
    String(pid),
    "--scenario",
    scenario,
    "--warmup",
    String(warmup),
    "--duration",
    String(scenario === "conns" ? Math.min(o.duration, 2) : o.duration),
    "--count",
    String(o.count),
    ...scenarioArgs(scenario, o),
    ...extraArgs,
  ];
  if (o.toolCpu !== undefined) {
    cmd = ["taskset", "-c", String(o.toolCpu), ...cmd];
  }
  if (o.nice !== undefined) {
    cmd = ["nice", "-n", String(o.nice), ...cmd];
  }
  cmd = withFileLimit(cmd);
  // A run normally takes warm-up + duration + a few seconds; a hung tool is
  // killed rather than hanging the comparison.
  const limitMs = (warmup + o.duration) * 1000 + 120_000;
  // taskset, nice and sh exec the tool: the child's pid is the tool's.
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(limitMs),
  }).spawn();
  onSpawn?.(child.pid);
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(
      `load.ts failed (${out.code}): ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  const [result] = JSON.parse(text) as LoadResult[];
  if (!result) throw new Error("load.ts printed no result");
  return result;
}

/** The 1-minute load average, from /proc/loadavg. */
function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
}

/** The comparison, the CPU table and the connects/s ceiling. */
function printTables(
  results: Map<string, LoadResult[]>,
  brokers: BrokerName[],
  scenarios: ScenarioName[],
): void {
  // The bare relay has a column when it ran (the latency scenarios).
  const shown = brokers.filter((b) => b !== "bare");
  const relayRan = [...results.keys()].some((k) => k.startsWith("relay/"));
  if (relayRan && !shown.includes("relay")) shown.push("relay");
  console.log(formatTable(results, shown));
  console.log();
  console.log(formatCpu(results, cpuColumns(results, brokers), scenarios));
  const ceiling = formatCeiling(results, brokers);
  if (ceiling) {
    console.log();
    console.log(ceiling);
  }
}

function optionalNumber(v: string | undefined): number | undefined {
  return v === undefined ? undefined : Number(v);
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      brokers: { type: "string", default: ALL_BROKERS.join(",") },
      scenarios: { type: "string" },
      transport: { type: "string", default: "tcp" },
      duration: { type: "string", default: "5" },
      warmup: { type: "string", default: "1" },
      "latency-warmup": { type: "string", default: "10" },
      count: { type: "string", default: "10000" },
      repeat: { type: "string", default: "1" },
      json: { type: "string" },
      from: { type: "string" },
      nice: { type: "string" },
      "scrape-interval": { type: "string" },
      "idle-conns": { type: "string" },
      devices: { type: "string" },
      "scatter-subs": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(`usage: deno task compare -- [--brokers kite,mosquitto,aedes]
  [--brokers ...]         also: kite-plain (the README's plain
                          \`deno run -A broker/main.ts\`: every default, KV
                          persistence on), kite-kv, kite-acl, kite-base
                          (KITE_BASE=checkout), bare (bench/bare_accept.ts),
                          relay (bench/bare_relay.ts)
  [--scenarios S,...]     default all: fanin, fanout, qos1, qos2,
                          qos1-persistent (+ Kite with Deno KV),
                          latency (1 -> 1 at 10,000 msg/s; + a bare Deno
                          relay, the ceiling), latency50k
                          (50,000 msg/s), latency-idle, latency50k-idle (the
                          same with 10,000 idle connections held open),
                          slow, slow-qos1, conns (+ a bare Deno accept loop,
                          the ceiling), fleet (10,000 devices, 1 QoS 1 msg/s
                          each, 6 subscribers, 1%/s reconnecting; + Kite
                          with Deno KV), scatter (2,000 subscribers x 5
                          filters, each message to one), scatter20k (20,000)
  [--duration 5]
  [--transport tcp|tls|ws]  MQTT over TLS or WebSocket (Kite and Mosquitto;
                          default scenarios fanin,qos1)
  [--warmup 1]
  [--latency-warmup 10]   warm-up of the latency scenarios and fleet
  [--count 10000]         conns: connections
  [--idle-conns 10000]    latency-idle, latency50k-idle: idle connections
  [--devices 10000]       fleet: devices
  [--scatter-subs 2000]   scatter: subscribers (scatter20k: 20,000)
  [--repeat 1]
  [--json results.json]
  [--from results.json]   print the tables of a saved --json run
  [--nice=N]              run brokers and tool under nice -n N (e.g. -10 as
                          root, when other jobs share the machine)
  [--scrape-interval N]   also run Kite with its HTTP server, /metrics
                          fetched every N s during the run ("Kite (scraped)")`);
    return 0;
  }
  if (values.from) {
    const saved = JSON.parse(await Deno.readTextFile(values.from)) as Record<
      string,
      LoadResult[]
    >;
    const results = new Map(Object.entries(saved));
    const names = [...new Set([...results.keys()].map((k) => k.split("/")[0]))];
    const brokers = ([
      "kite",
      "kite-scraped",
      "kite-plain",
      "kite-base",
      "kite-acl",
      "mosquitto",
      "aedes",
    ] as const).filter((b) => names.includes(b)) as BrokerName[];
    const scenarios = ALL_SCENARIOS.filter((s) =>
      [...results.keys()].some((k) => k.endsWith(`/${s}`))
    );
    printTables(results, brokers, scenarios);
    return 0;
  }
  // Pinning needs taskset and two CPUs (broker on 0, tool on 1).
  const hasTaskset = which("taskset") !== undefined &&
    navigator.hardwareConcurrency >= 2;
  if (!hasTaskset) {
    console.error("warning: no taskset or a single CPU: nothing is pinned");
  }
  const transport = values.transport as BenchTransport;
  if (!["tcp", "tls", "ws"].includes(transport)) {
    console.error(`--transport: tcp, tls or ws, not "${transport}"`);
    return 2;
  }
  const requested = values.brokers.split(",") as BrokerName[];
  const scrapeEvery = values["scrape-interval"] === undefined
    ? undefined
    : Number(values["scrape-interval"]);
  if (
    scrapeEvery !== undefined && requested.includes("kite") &&
    !requested.includes("kite-scraped")
  ) {
    requested.splice(requested.indexOf("kite") + 1, 0, "kite-scraped");
  }
  const brokers: BrokerName[] = [];
  for (const b of requested) {
    const why = brokerAvailable(b, transport);
    if (why) console.error(`skipping ${b}: ${why}`);
    else brokers.push(b);
  }
  const scenarios = (values.scenarios ??
    (transport === "tcp" ? ALL_SCENARIOS : ["fanin", "qos1"]).join(","))
    .split(",") as ScenarioName[];
  let testCerts: TestCerts | undefined;
  let certs: BenchCerts | undefined;
  if (transport === "tls") {
    testCerts = await makeCerts();
    certs = {
      caFile: testCerts.caCert,
      certFile: testCerts.serverCert,
      keyFile: testCerts.serverKey,
    };
  }
  const tool: ToolOptions = {
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    latencyWarmup: Number(values["latency-warmup"]),
    count: Number(values.count),
    toolCpu: hasTaskset ? 1 : undefined,
    nice: values.nice === undefined ? undefined : Number(values.nice),
    idleConns: optionalNumber(values["idle-conns"]),
    devices: optionalNumber(values.devices),
    scatterSubs: optionalNumber(values["scatter-subs"]),
  };
  const repeat = Math.max(1, Number(values.repeat));
  // Other work on the machine skews every number: say how busy it was.
  const load0 = loadAverage();
  if (load0 > 0.5) {
    console.error(
      `warning: load average ${load0} before starting: other processes compete for the CPUs`,
    );
  }
  const results = new Map<string, LoadResult[]>();
  const all: Record<string, LoadResult[]> = {};
  for (const scenario of scenarios) {
    const names = [...brokers];
    // The persistent-session scenarios also run Kite with Deno KV on, conns
    // the bare accept loop (the ceiling).
    if (
      (scenario === "qos1-persistent" || scenario === "fleet") &&
      brokers.includes("kite") && !brokers.includes("kite-kv")
    ) names.push("kite-kv");
    if (
      scenario === "conns" && !brokers.includes("bare") &&
      brokerAvailable("bare", transport) === undefined
    ) names.push("bare");
    // The latency scenarios (QoS 0) also run the bare relay (their ceiling).
    if (
      scenario.startsWith("latency") && !brokers.includes("relay") &&
      brokerAvailable("relay", transport) === undefined
    ) names.push("relay");
    const runs = new Map<BrokerName, LoadResult[]>(names.map((n) => [n, []]));
    // Interleaved: every broker once, then again.
    for (let i = 0; i < repeat; i++) {
      for (const name of names) {
        const broker = await startBroker(name, {
          transport,
          ...(certs ? { certs } : {}),
          ...(hasTaskset ? { cpu: 0 } : {}),
          ...(tool.nice !== undefined ? { nice: tool.nice } : {}),
        });
        const scraper = broker.httpPort !== undefined
          ? new Scraper(broker.httpPort, scrapeEvery ?? 1)
          : undefined;
        try {
          const r = await runTool(
            broker.port,
            broker.pid,
            scenario,
            tool,
            broker.loadArgs,
          );
          const scraped = await scraper?.stop();
          runs.get(name)!.push(r);
          console.error(
            `${LABEL[name]} ${scenario}: ${fmt(mainMetric(r))}` +
              ` (broker ${fmt(r.cpu.brokerPct)}% / tool ${
                fmt(r.cpu.toolPct)
              }% CPU)` +
              (scraped === undefined
                ? ""
                : ` /metrics scraped ${scraped.count} times, ${
                  fmt(scraped.bytes / Math.max(1, scraped.count))
                } bytes each, slowest ${fmt(scraped.slowestMs, 1)} ms`) +
              (r.warnings.length ? ` warnings: ${r.warnings.join("; ")}` : ""),
          );
        } catch (e) {
          await scraper?.stop().catch(() => {});
          console.error(
            `${LABEL[name]} ${scenario} failed: ${(e as Error).message}`,
          );
          console.error(broker.output());
        } finally {
          await broker.stop();
        }
      }
    }
    for (const [name, r] of runs) {
      all[`${name}/${scenario}`] = r;
      if (r.length > 0) results.set(`${name}/${scenario}`, r);
    }
  }
  await testCerts?.remove();
  const over = transport === "tcp"
    ? ""
    : transport === "tls"
    ? " over TLS"
    : " over WebSocket";
  console.log(
    `MQTT 3.1.1${over}, ${tool.duration} s per scenario after ${tool.warmup} s warm-up ` +
      `(latency and fleet: ${tool.latencyWarmup} s), ` +
      `brokers on CPU 0, load tool on CPU 1${
        hasTaskset ? "" : " (not pinned)"
      }, ` +
      (tool.nice !== undefined ? `nice ${tool.nice}, ` : "") +
      `load average ${load0} before / ${loadAverage()} after\n` +
      `${formatMachine(await machineCost())}\n`,
  );
  printTables(results, brokers, scenarios);
  if (values.json) {
    await Deno.writeTextFile(values.json, JSON.stringify(all, null, 2));
  }
  return 0;
}

if (import.meta.main) {
  // `deno task load -- --port 1883` passes the "--" through.
  const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  Deno.exit(await main(args));
}
