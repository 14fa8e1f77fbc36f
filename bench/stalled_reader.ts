/**
 * A subscriber that never reads, a publisher flooding it with 1 KB QoS 0
 * messages, and a QoS 1 canary beside them: the broker must stay bounded
 * (memory), and the canary's latency must not suffer. Runs Kite and
 * Mosquitto in turn (interleaved with `--repeat`), each started fresh on a
 * free loopback port pinned to CPU 0.
 *
 * ```sh
 * deno run -A bench/stalled_reader.ts [--seconds 10] [--repeat 3] [--brokers kite,mosquitto] [--canary process|inline|both]
 * ```
 *
 * The canary runs in a process of its own (bench/_canary.ts, pinned to CPU
 * 1) by default: in this process, whose event loop writes the flood as fast
 * as the broker reads it, its latency included this loop's own delays
 * (Deno reads and writes a socket that stays ready without polling the
 * others). `--canary inline` runs it here as before; `--canary both` runs
 * both and reports the one here as "in-tool canary p99".
 *
 * Reports per broker: the canary's round-trip latency (p50, p99, p99.9,
 * max), canary messages lost, flood messages sent, and the broker's RSS at
 * the start and end of the flood and its peak.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encode } from "../codec/encode.ts";
import { type BrokerName, startBroker } from "./_brokers.ts";
import { type CanaryResult, rawClient, runCanary } from "./_canary.ts";

const { values } = parseArgs({
  args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
  options: {
    seconds: { type: "string", default: "10" },
    repeat: { type: "string", default: "1" },
    brokers: { type: "string", default: "kite,mosquitto" },
    "canary-interval": { type: "string", default: "10" },
    canary: { type: "string", default: "process" },
    port: { type: "string" },
    pid: { type: "string" },
  },
});
const SECONDS = Number(values.seconds);
const REPEAT = Number(values.repeat);
const CANARY_MS = Number(values["canary-interval"]);
const CANARY = values.canary;
if (!["process", "inline", "both"].includes(CANARY)) {
  throw new Error(`--canary: process, inline or both, not ${CANARY}`);
}

function rssKB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(
      Deno.readTextFileSync(`/proc/${pid}/status`),
    );
    return m ? Number(m[1]) : NaN;
  } catch {
    return NaN;
  }
}

async function subscribe(conn: Deno.TcpConn, filter: string, qos: 0 | 1) {
  await conn.write(
    encode(
      { type: "subscribe", packetId: 1, subscriptions: [{ filter, qos }] },
      { version: 4 },
    ),
  );
}

/**
 * The canary in a process of its own (bench/_canary.ts), pinned to CPU 1
 * when taskset exists: resolves `ready` once it is subscribed, `result`
 * when it is done.
 */
function canaryProcess(port: number): {
  ready: Promise<void>;
  result: Promise<CanaryResult>;
} {
  let cmd = [
    Deno.execPath(),
    "run",
    "-A",
    new URL("./_canary.ts", import.meta.url).pathname,
    "--port",
    String(port),
    "--seconds",
    String(SECONDS),
    "--interval",
    String(CANARY_MS),
  ];
  if (which("taskset")) cmd = ["taskset", "-c", "1", ...cmd];
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const ready = Promise.withResolvers<void>();
  const result = (async () => {
    let text = "";
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      text += dec.decode(chunk, { stream: true });
      if (text.startsWith("ready\n")) ready.resolve();
    }
    const status = await child.status;
    const last = text.trim().split("\n").at(-1) ?? "";
    if (!status.success || !last.startsWith("{")) {
      const e = new Error(`canary process failed (${status.code})`);
      ready.reject(e);
      throw e;
    }
    return JSON.parse(last) as CanaryResult;
  })();
  return { ready: ready.promise, result };
}

function which(cmd: string): boolean {
  try {
    return new Deno.Command("sh", {
      args: ["-c", `command -v ${cmd}`],
      stdout: "null",
      stderr: "null",
    }).outputSync().success;
  } catch {
    return false;
  }
}

interface Result {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  lost: number;
  /** With `--canary both`: the p99 the canary in this process saw. */
  inlineP99: number;
  flood: number;
  rssStart: number;
  rssEnd: number;
  rssPeak: number;
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))] ??
    NaN;
}

/** A broker started by the caller (`--port`, `--pid`): nothing to stop. */
function external(): { port: number; pid: number; stop(): Promise<void> } {
  return {
    port: Number(values.port),
    pid: Number(values.pid ?? 0),
    stop: () => Promise.resolve(),
  };
}

async function run(name: BrokerName): Promise<Result> {
  const broker = values.port !== undefined
    ? external()
    : await startBroker(name, { cpu: 0 });
  const port = broker.port;
  const conns: Deno.TcpConn[] = [];
  let stop = false;
  let flooding: Promise<void> = Promise.resolve();
  try {
    // The stalled subscriber: subscribes, then never reads again.
    const stalled = await rawClient(port, "stalled", () => {}, false);
    conns.push(stalled);
    await subscribe(stalled, "flood", 0);
    const separate = CANARY !== "inline" ? canaryProcess(port) : undefined;
    await separate?.ready;
    const flooder = await rawClient(port, "flooder");
    conns.push(flooder);
    // The flood: 1 KB QoS 0 PUBLISHes, 64 per write, as fast as the socket takes them.
    const one = encode({
      type: "publish",
      topic: "flood",
      payload: new Uint8Array(1024),
      qos: 0,
      retain: false,
      dup: false,
    }, { version: 4 });
    const batch = new Uint8Array(one.length * 64);
    for (let i = 0; i < 64; i++) batch.set(one, i * one.length);
    let flood = 0;
    flooding = (async () => {
      while (!stop) {
        // conn.write() may take only part of the buffer.
        for (let off = 0; off < batch.length;) {
          off += await flooder.write(off === 0 ? batch : batch.subarray(off));
        }
        flood += 64;
      }
    })().catch(() => {});
    const rssStart = rssKB(broker.pid);
    let rssPeak = rssStart;
    const sample = () => rssPeak = Math.max(rssPeak, rssKB(broker.pid));
    const inline = CANARY !== "process"
      ? runCanary(port, SECONDS, CANARY_MS, "canary-inline", () => {}, sample)
      : undefined;
    // Without an inline canary, the RSS is sampled every 100 ms.
    const sampler = inline === undefined ? setInterval(sample, 100) : 0;
    const [own, sep] = await Promise.all([inline, separate?.result]);
    clearInterval(sampler);
    stop = true;
    const rssEnd = rssKB(broker.pid);
    const r = (sep ?? own)!;
    return {
      p50: pct(r.lat, 0.5),
      p99: pct(r.lat, 0.99),
      p999: pct(r.lat, 0.999),
      max: r.lat.at(-1) ?? NaN,
      lost: r.lost,
      inlineP99: own !== undefined && sep !== undefined
        ? pct(own.lat, 0.99)
        : NaN,
      flood,
      rssStart,
      rssEnd,
      rssPeak,
    };
  } finally {
    stop = true;
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await flooding;
    await broker.stop();
  }
}

const brokers = (values.port !== undefined ? "kite" : values.brokers)
  .split(",") as BrokerName[];
const results = new Map<BrokerName, Result[]>();
for (let r = 0; r < REPEAT; r++) {
  for (const b of brokers) {
    const res = await run(b);
    (results.get(b) ?? results.set(b, []).get(b)!).push(res);
    console.error(
      `${b}: canary p50 ${res.p50.toFixed(2)} ms, p99 ${res.p99.toFixed(2)} ms${
        Number.isNaN(res.inlineP99)
          ? ""
          : ` (in-tool canary p99 ${res.inlineP99.toFixed(2)} ms)`
      }, max ${
        res.max.toFixed(1)
      } ms, lost ${res.lost}, flood ${res.flood}, RSS ${
        Math.round(res.rssStart / 1024)
      } -> peak ${Math.round(res.rssPeak / 1024)} MB`,
    );
  }
}
const med = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(
  `\nstalled subscriber + 1 KB QoS 0 flood for ${SECONDS} s; QoS 1 canary every ${CANARY_MS} ms; median of ${REPEAT}\n`,
);
const both = CANARY === "both";
console.log(
  `| broker | canary p50 ms | p99 ms | p99.9 ms | max ms |${
    both ? " in-tool canary p99 ms |" : ""
  } canary lost | flood msgs | RSS start MB | RSS peak MB | RSS end MB |`,
);
console.log(
  `|---|---:|---:|---:|---:|${both ? "---:|" : ""}---:|---:|---:|---:|---:|`,
);
for (const [b, rs] of results) {
  const f = (k: keyof Result, d = 2) => med(rs.map((r) => r[k])).toFixed(d);
  const mb = (k: keyof Result) => (med(rs.map((r) => r[k])) / 1024).toFixed(0);
  console.log(
    `| ${b} | ${f("p50")} | ${f("p99")} | ${f("p999")} | ${f("max", 1)} | ${
      both ? `${f("inlineP99")} | ` : ""
    }${Math.max(...rs.map((r) => r.lost))} | ${f("flood", 0)} | ${
      mb("rssStart")
    } | ${mb("rssPeak")} | ${mb("rssEnd")} |`,
  );
}
