/**
 * compare.ts's tables: one row per scenario and metric (the median of the
 * runs, the worst run for losses), a column per broker and Kite's ratio to
 * each; the CPU each used; and the conns scenario against a bare Deno
 * accept loop.
 *
 * @module
 */

import type { BrokerName } from "./_brokers.ts";
import type { LatencyResult, LoadResult, ScenarioName } from "./_load_types.ts";

/** Column titles. */
export const LABEL: Record<BrokerName, string> = {
  kite: "Kite",
  "kite-kv": "Kite (KV)",
  "kite-base": "Kite (base)",
  "kite-acl": "Kite (ACL)",
  "kite-scraped": "Kite (scraped)",
  "kite-plain": "Kite (plain)",
  bare: "bare Deno accept loop",
  relay: "bare Deno relay",
  "relay-handles": "bare relay (handles)",
  mosquitto: "Mosquitto",
  aedes: "Aedes",
};

/** The number a scenario is judged by (progress lines). */
export function mainMetric(r: LoadResult): number {
  if (r.scenario.startsWith("latency") || r.scenario === "fleet") {
    return r.latency?.p99 ?? Infinity;
  }
  if (r.scenario.startsWith("scatter")) return r.brokerUsPerMessage ?? NaN;
  if (r.scenario === "conns") return r.conns?.connectsPerSec ?? 0;
  return r.deliveredPerSec ?? 0;
}

/** The median of the defined values (the lower middle one for an even count). */
export function median(values: (number | undefined)[]): number | undefined {
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

/** The fixed-rate latency scenarios. */
export const LATENCY_SCENARIOS: ScenarioName[] = [
  "latency",
  "latency50k",
  "latency-idle",
  "latency50k-idle",
];

/**
 * Latency rows: p50 to p99.9 and max from the time each message was due,
 * then p99 and p99.9 from the time it was written (the difference is the
 * tool's own lateness; see bench/README.md).
 */
function latencyRows(scenario: ScenarioName): Row[] {
  const q = (
    name: string,
    pick: (l: LatencyResult) => number | undefined,
    from: "latency" | "latencyFromWrite" = "latency",
  ): Row => ({
    scenario,
    metric: from === "latency" ? `${name} µs` : `${name} µs from the write`,
    get: (r) => (r[from] ? pick(r[from]) : undefined),
    lowerIsBetter: true,
  });
  return [
    q("p50", (l) => l.p50),
    q("p90", (l) => l.p90),
    q("p99", (l) => l.p99),
    q("p99.9", (l) => l.p999),
    q("max", (l) => l.max),
    q("p99", (l) => l.p99, "latencyFromWrite"),
    q("p99.9", (l) => l.p999, "latencyFromWrite"),
    {
      scenario,
      metric: "idle connections held",
      get: (r) => r.idle?.connected,
      skipIfZero: true,
    },
  ];
}

/** Fleet rows, each also for Kite with Deno KV. */
function fleetRows(): Row[] {
  const rows: Row[] = [
    {
      scenario: "fleet",
      metric: "p99 µs",
      get: (r) => r.latency?.p99,
      lowerIsBetter: true,
    },
    {
      scenario: "fleet",
      metric: "p99.9 µs",
      get: (r) => r.latency?.p999,
      lowerIsBetter: true,
    },
    {
      scenario: "fleet",
      metric: "lost",
      get: (r) => r.lost,
      worst: true,
    },
    {
      scenario: "fleet",
      metric: "broker CPU % of a core",
      get: (r) => r.cpu.brokerPct,
      lowerIsBetter: true,
      digits: 1,
    },
    {
      scenario: "fleet",
      metric: "broker RSS MB",
      get: (r) =>
        r.brokerRssKB === undefined ? undefined : r.brokerRssKB / 1024,
      lowerIsBetter: true,
      digits: 1,
    },
  ];
  return [
    ...rows,
    ...rows.map((r) => ({
      ...r,
      metric: `${r.metric}, Kite with Deno KV`,
      kiteFrom: "kite-kv" as const,
    })),
    {
      scenario: "fleet",
      metric: "reconnects without their session",
      get: (r) => r.fleet?.sessionLost,
      skipIfZero: true,
      worst: true,
    },
  ];
}

/** Scatter rows. */
function scatterRows(scenario: ScenarioName): Row[] {
  return [
    {
      scenario,
      metric: "broker CPU µs per message",
      get: (r) => r.brokerUsPerMessage,
      lowerIsBetter: true,
      digits: 2,
    },
    { scenario, metric: "msg/s", get: (r) => r.deliveredPerSec },
    {
      scenario,
      metric: "p99 µs",
      get: (r) => r.latency?.p99,
      lowerIsBetter: true,
    },
    { scenario, metric: "lost", get: (r) => r.lost, worst: true },
    { scenario, metric: "subscribers", get: (r) => r.scatter?.subscribers },
  ];
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
  ...LATENCY_SCENARIOS.flatMap(latencyRows),
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
  {
    scenario: "conns",
    metric: "KB per idle connection, second half",
    get: (r) => r.conns?.kbPerConnSecondHalf,
    lowerIsBetter: true,
    digits: 2,
  },
  ...fleetRows(),
  ...(["scatter", "scatter20k"] as const).flatMap(scatterRows),
];

/** A number with thousands separators, or "-". */
export const fmt = (n: number | undefined, digits = 0): string =>
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
            /^(lost|unacked|dropped|reconnects|idle|subscribers)/.test(
              row.metric,
            )
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

/** The brokers, and Kite with Deno KV and the bare loop when they ran. */
export function cpuColumns(
  results: Map<string, LoadResult[]>,
  brokers: BrokerName[],
): BrokerName[] {
  const extra = (["kite-kv", "bare"] as const).filter((b) =>
    !brokers.includes(b) &&
    [...results.keys()].some((k) => k.startsWith(`${b}/`))
  );
  return [...brokers, ...extra];
}

/**
 * The conns scenario against the platform's ceiling: each broker's
 * connects/s and the bare Deno accept loop's (bench/bare_accept.ts), run
 * in the same compare, and each one's ratio to it; empty when the bare
 * loop did not run.
 */
export function formatCeiling(
  results: Map<string, LoadResult[]>,
  brokers: BrokerName[],
): string {
  const runs = (b: BrokerName) => results.get(`${b}/conns`) ?? [];
  const bare = median(runs("bare").map((r) => r.conns?.connectsPerSec));
  if (bare === undefined) return "";
  const bareKb = median(runs("bare").map((r) => r.conns?.kbPerConn));
  const bareKb2 = median(
    runs("bare").map((r) => r.conns?.kbPerConnSecondHalf),
  );
  const lines = [
    "| conns | connects/s | connects per broker CPU-s | broker / tool CPU | connects/s vs bare Deno | KB per idle connection | KB vs bare Deno | KB, second half | vs bare Deno |",
    "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
  ];
  for (const b of [...brokers.filter((b) => b !== "bare"), "bare" as const]) {
    const r = runs(b);
    if (r.length === 0) continue;
    const cps = median(r.map((x) => x.conns?.connectsPerSec));
    const perCpu = median(r.map((x) => x.perBrokerCpuSecond));
    const cpu = `${fmt(median(r.map((x) => x.cpu.brokerPct)))}% / ${
      fmt(median(r.map((x) => x.cpu.toolPct)))
    }%`;
    const ratio = cps === undefined ? "-" : `${(cps / bare).toFixed(2)}×`;
    const kb = median(r.map((x) => x.conns?.kbPerConn));
    const kbRatio = kb === undefined || bareKb === undefined
      ? "-"
      : `${(kb / bareKb).toFixed(2)}×`;
    const kb2 = median(r.map((x) => x.conns?.kbPerConnSecondHalf));
    const kb2Ratio = kb2 === undefined || bareKb2 === undefined
      ? "-"
      : `${(kb2 / bareKb2).toFixed(2)}×`;
    lines.push(
      `| ${LABEL[b]} | ${fmt(cps)} | ${fmt(perCpu)} | ${cpu} | ${ratio} | ${
        kb === undefined ? "-" : kb.toFixed(2)
      } | ${kbRatio} | ${
        kb2 === undefined ? "-" : kb2.toFixed(2)
      } | ${kb2Ratio} |`,
    );
  }
  return lines.join("\n");
}
