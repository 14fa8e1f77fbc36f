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
} from "./_brokers.ts";
import { makeCerts, type TestCerts } from "../tests/_broker_certs.ts";
import type { LoadResult, ScenarioName } from "./load.ts";

const LOAD = fromFileUrl(new URL("./load.ts", import.meta.url));
const ALL_SCENARIOS: ScenarioName[] = [
  "fanin",
  "fanout",
  "qos1",
  "qos2",
  "qos1-persistent",
  "latency",
  "slow",
  "slow-qos1",
  "conns",
];
const ALL_BROKERS: BrokerName[] = ["kite", "mosquitto", "aedes"];
const LABEL: Record<BrokerName, string> = {
  kite: "Kite",
  "kite-kv": "Kite (KV)",
  "kite-base": "Kite (base)",
  "kite-acl": "Kite (ACL)",
  "kite-scraped": "Kite (scraped)",
  mosquitto: "Mosquitto",
  aedes: "Aedes",
};

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
   * The latency scenario's warm-up: a fresh Deno process compiles its hot
   * paths over the first seconds (Kite's p99 was about 1.1 ms in seconds
   * 1-6 of a run, 0.34 ms in 6-12 and 0.25 ms after), so its steady state
   * needs longer than the throughput scenarios, whose first second is a
   * small share of a large count.
   */
  latencyWarmup: number;
  count: number;
  toolCpu: number | undefined;
  nice: number | undefined;
}

/**
 * Runs bench/load.ts in its own process (pinned) and parses its JSON;
 * `extraArgs` are the broker's `loadArgs` (credentials).
 */
export async function runTool(
  port: number,
  pid: number,
  scenario: ScenarioName,
  o: ToolOptions,
  extraArgs: string[] = [],
): Promise<LoadResult> {
  const warmup = scenario === "latency" ? o.latencyWarmup : o.warmup;
  let cmd = [
    Deno.execPath(),
    "run",
    "-A",
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
    ...extraArgs,
  ];
  if (o.toolCpu !== undefined) {
    cmd = ["taskset", "-c", String(o.toolCpu), ...cmd];
  }
  if (o.nice !== undefined) {
    cmd = ["nice", "-n", String(o.nice), ...cmd];
  }
  // A run normally takes warm-up + duration + a few seconds; a hung tool is
  // killed rather than hanging the comparison.
  const limitMs = (warmup + o.duration) * 1000 + 120_000;
  const out = await new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(limitMs),
  }).output();
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

/** The number a scenario is judged by, and whether higher is better. */
function mainMetric(r: LoadResult): number {
  if (r.scenario === "latency") return r.latency?.p99 ?? Infinity;
  if (r.scenario === "conns") return r.conns?.connectsPerSec ?? 0;
  return r.deliveredPerSec ?? 0;
}

/** The median of the defined values (the lower middle one for an even count). */
function median(values: (number | undefined)[]): number | undefined {
  const v = values.filter((x): x is number => x !== undefined).sort((a, b) =>
    a - b
  );
  return v.length ? v[Math.floor((v.length - 1) / 2)] : undefined;
}

/** The largest defined value. */
function max(values: (number | undefined)[]): number | undefined {
  const v = values.filter((x): x is number => x !== undefined);
  return v.length ? Math.max(...v) : undefined;
}

interface Row {
  scenario: ScenarioName;
  metric: string;
  get: (r: LoadResult) => number | undefined;
  lowerIsBetter?: boolean;
  digits?: number;
  /** Take Kite's value from this broker's run (Kite with persistence on). */
  kiteFrom?: BrokerName;
  /** Leave the row out when every value is 0. */
  skipIfZero?: boolean;
  /** How repeats combine: the median (default) or the worst (losses). */
  worst?: boolean;
}

/** QoS 1/2 rows: messages lost, and publishes never acknowledged (worst run). */
const lossRows = (scenario: ScenarioName): Row[] => [
  { scenario, metric: "lost", get: (r) => r.lost, worst: true },
  {
    scenario,
    metric: "unacked",
    get: (r) => r.unacked,
    lowerIsBetter: true,
    skipIfZero: true,
    worst: true,
  },
];

const perCpu = (scenario: ScenarioName): Row => ({
  scenario,
  metric: scenario === "conns"
    ? "connects per broker CPU-s"
    : "msg per broker CPU-s",
  // (Results saved before perBrokerCpuSecond existed: from the CPU share.)
  get: (r) => {
    if (r.perBrokerCpuSecond !== undefined) return r.perBrokerCpuSecond;
    const rate = r.conns?.connectsPerSec ?? r.deliveredPerSec;
    const pct = r.cpu.brokerPct;
    return rate !== undefined && pct ? (rate * 100) / pct : undefined;
  },
});

const ROWS: Row[] = [
  { scenario: "fanin", metric: "msg/s", get: (r) => r.deliveredPerSec },
  perCpu("fanin"),
  { scenario: "fanout", metric: "msg/s", get: (r) => r.deliveredPerSec },
  perCpu("fanout"),
  { scenario: "qos1", metric: "msg/s", get: (r) => r.deliveredPerSec },
  perCpu("qos1"),
  ...lossRows("qos1"),
  { scenario: "qos2", metric: "msg/s", get: (r) => r.deliveredPerSec },
  perCpu("qos2"),
  ...lossRows("qos2"),
  {
    scenario: "qos1-persistent",
    metric: "msg/s",
    get: (r) => r.deliveredPerSec,
  },
  perCpu("qos1-persistent"),
  {
    scenario: "qos1-persistent",
    metric: "msg/s, Kite with Deno KV",
    get: (r) => r.deliveredPerSec,
    kiteFrom: "kite-kv",
  },
  {
    scenario: "qos1-persistent",
    metric: "lost",
    get: (r) => r.lost,
    worst: true,
  },
  {
    scenario: "qos1-persistent",
    metric: "lost, Kite with Deno KV",
    get: (r) => r.lost,
    kiteFrom: "kite-kv",
    worst: true,
  },
  {
    scenario: "qos1-persistent",
    metric: "unacked",
    get: (r) => r.unacked,
    lowerIsBetter: true,
    skipIfZero: true,
    worst: true,
  },
  {
    scenario: "qos1-persistent",
    metric: "unacked, Kite with Deno KV",
    get: (r) => r.unacked,
    lowerIsBetter: true,
    kiteFrom: "kite-kv",
    skipIfZero: true,
  },
  {
    scenario: "latency",
    metric: "p50 µs",
    get: (r) => r.latency?.p50,
    lowerIsBetter: true,
  },
  {
    scenario: "latency",
    metric: "p99 µs",
    get: (r) => r.latency?.p99,
    lowerIsBetter: true,
  },
  {
    scenario: "latency",
    metric: "max µs",
    get: (r) => r.latency?.max,
    lowerIsBetter: true,
  },
  ...(["slow", "slow-qos1"] as const).flatMap((scenario): Row[] => [
    {
      scenario,
      metric: "delivered msg/s",
      get: (r) => r.deliveredPerSec,
    },
    {
      scenario,
      metric: "broker RSS MB at the end",
      get: (r) => (r.brokerRssKB ?? 0) / 1024,
      lowerIsBetter: true,
      digits: 1,
    },
    {
      scenario,
      metric: "RSS growth MB in the last 3 s",
      get: (r) => {
        const s = r.rssPerSecond ?? [];
        return s.length >= 4 ? (s.at(-1)! - s.at(-4)!) / 1024 : undefined;
      },
      lowerIsBetter: true,
      digits: 1,
    },
    {
      scenario,
      metric: "dropped (seen as gaps)",
      get: (r) => r.dropped,
    },
  ]),
  {
    scenario: "conns",
    metric: "connects/s",
    get: (r) => r.conns?.connectsPerSec,
  },
  perCpu("conns"),
  {
    scenario: "conns",
    metric: "KB per idle connection",
    get: (r) => r.conns?.kbPerConn,
    lowerIsBetter: true,
    digits: 2,
  },
];

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || !Number.isFinite(n) ? "-" : n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });

/** The markdown comparison table. */
export function formatTable(
  results: Map<string, LoadResult[]>,
  brokers: BrokerName[],
): string {
  const others = brokers.filter((b) => b !== "kite");
  const hasKite = brokers.includes("kite");
  const head = [
    "scenario",
    "metric",
    ...brokers.map((b) => LABEL[b]),
    ...(hasKite ? others.map((b) => `Kite/${LABEL[b]}`) : []),
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map((_, i) => (i < 2 ? "---" : "---:")).join("|")}|`,
  ];
  for (const row of ROWS) {
    const vals = brokers.map((b) => {
      const from = b === "kite" && row.kiteFrom ? row.kiteFrom : b;
      const runs = (results.get(`${from}/${row.scenario}`) ?? []).map(row.get);
      return row.worst ? max(runs) : median(runs);
    });
    if (vals.every((v) => v === undefined)) continue;
    if (row.skipIfZero && vals.every((v) => !v)) continue;
    const cells = vals.map((v) => fmt(v, row.digits ?? 0));
    if (hasKite) {
      const kite = vals[brokers.indexOf("kite")];
      for (const b of others) {
        const v = vals[brokers.indexOf(b)];
        cells.push(
          kite === undefined || v === undefined || v === 0 ||
            /^(lost|unacked|dropped)/.test(row.metric)
            ? "-"
            : `${(kite / v).toFixed(2)}×${
              row.lowerIsBetter ? " (lower is better)" : ""
            }`,
        );
      }
    }
    lines.push(`| ${row.scenario} | ${row.metric} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** CPU use per run: broker % / tool % of one core during the measurement. */
export function formatCpu(
  results: Map<string, LoadResult[]>,
  brokers: BrokerName[],
  scenarios: ScenarioName[],
): string {
  const head = [
    "scenario",
    ...brokers.map((b) => `${LABEL[b]} broker/tool CPU`),
  ];
  const lines = [
    `| ${head.join(" | ")} |`,
    `|${head.map(() => "---").join("|")}|`,
  ];
  for (const s of scenarios) {
    const cells = brokers.map((b) => {
      const runs = results.get(`${b}/${s}`);
      if (!runs?.length) return "-";
      const broker = median(runs.map((r) => r.cpu.brokerPct));
      const tool = median(runs.map((r) => r.cpu.toolPct));
      return `${fmt(broker)}% / ${fmt(tool)}%`;
    });
    lines.push(`| ${s} | ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

/** The brokers, and Kite with Deno KV when it ran. */
function cpuColumns(
  results: Map<string, LoadResult[]>,
  brokers: BrokerName[],
): BrokerName[] {
  return [...results.keys()].some((k) => k.startsWith("kite-kv/"))
    ? [...brokers, "kite-kv"]
    : brokers;
}

/** The 1-minute load average, from /proc/loadavg. */
function loadAverage(): number {
  try {
    return Number(Deno.readTextFileSync("/proc/loadavg").split(" ")[0]);
  } catch {
    return NaN;
  }
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
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(`usage: deno task compare -- [--brokers kite,mosquitto,aedes]
  [--scenarios fanin,fanout,qos1,qos2,latency,conns] [--duration 5]
  [--transport tcp|tls|ws]  MQTT over TLS or WebSocket (Kite and Mosquitto;
                          default scenarios fanin,qos1)
  [--warmup 1] [--latency-warmup 10] [--count 10000] [--repeat 1]
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
    const brokers = (["kite", "kite-scraped", "mosquitto", "aedes"] as const)
      .filter((b) => names.includes(b)) as BrokerName[];
    const scenarios = ALL_SCENARIOS.filter((s) =>
      [...results.keys()].some((k) => k.endsWith(`/${s}`))
    );
    console.log(formatTable(results, brokers));
    console.log();
    console.log(formatCpu(results, cpuColumns(results, brokers), scenarios));
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
    // The persistent-session scenario also runs Kite with Deno KV on.
    const extra: BrokerName[] =
      scenario === "qos1-persistent" && brokers.includes("kite")
        ? ["kite-kv"]
        : [];
    const names = [...brokers, ...extra];
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
      `(latency: ${tool.latencyWarmup} s), ` +
      `brokers on CPU 0, load tool on CPU 1${
        hasTaskset ? "" : " (not pinned)"
      }, ` +
      (tool.nice !== undefined ? `nice ${tool.nice}, ` : "") +
      `load average ${load0} before / ${loadAverage()} after\n`,
  );
  console.log(formatTable(results, brokers));
  console.log();
  console.log(formatCpu(results, cpuColumns(results, brokers), scenarios));
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
