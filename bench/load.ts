/**
 * A load generator for MQTT 3.1.1 brokers (Kite, Mosquitto, Aedes, ...).
 *
 * It speaks MQTT over raw TCP sockets with packets encoded once at start-up
 * (a PUBLISH template is patched per message with its sequence number, send
 * timestamps and packet id), decodes what it receives with a zero-allocation
 * frame scanner, and coalesces each connection's writes, so that the tool is
 * not the bottleneck: it prints its own CPU time beside the broker's.
 *
 * Every payload (64 bytes by default) starts with a magic number, the
 * publisher index, a per-publisher sequence number, the time the message
 * was due and the time it was written, so each subscriber counts delivered,
 * lost, gaps (sequence jumps), duplicates and out-of-order messages, and
 * end-to-end latency over every message (p50 to p99.9 and max).
 *
 * ```sh
 * deno task load -- --port 1883 --scenario fanin --duration 5 --warmup 1
 * deno task load -- --port 1883 --scenario conns --count 10000 --pid 1234
 * deno task load -- --port 1883 --scenario latency50k --idle-conns 10000
 * deno task load -- --port 1883 --scenario fleet --devices 10000 --pid 1234
 * deno task load -- --port 1883 --scenario scatter --scatter-subs 2000
 * ```
 *
 * Scenarios: the message flows of {@link SCENARIOS} (bench/_flow.ts), conns
 * (bench/_conns.ts), fleet (bench/_fleet.ts) and scatter, scatter20k
 * (bench/_scatter.ts).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { runConns } from "./_conns.ts";
import { runFleet } from "./_fleet.ts";
import { runFlow } from "./_flow.ts";
import { formatResult } from "./_format.ts";
import { type LoadTransport, TCP } from "./_link.ts";
import {
  type FlowScenarioName,
  type LoadOptions,
  type LoadResult,
  type Pacing,
  type ScenarioName,
  SCENARIOS,
} from "./_load_types.ts";
import { runScatter } from "./_scatter.ts";

export * from "./_load_types.ts";
export { formatResult } from "./_format.ts";
export { readRssKB } from "./_proc.ts";

/**
 * Runs one scenario against a broker and returns what was measured.
 *
 * @example
 * ```ts ignore
 * const r = await runLoad({ port: 1883, scenario: "qos1", duration: 2 });
 * console.log(r.deliveredPerSec, r.lost);
 * ```
 */
export function runLoad(opts: LoadOptions): Promise<LoadResult> {
  switch (opts.scenario) {
    case "conns":
      return runConns(opts);
    case "fleet":
      return runFleet(opts);
    case "scatter":
    case "scatter20k":
      return runScatter(opts, opts.scenario);
  }
  if (!(opts.scenario in SCENARIOS)) {
    throw new TypeError(`unknown scenario ${opts.scenario}`);
  }
  return runFlow(opts, opts.scenario as FlowScenarioName);
}

const USAGE = `usage: deno task load -- [options]
  --host H          broker host (127.0.0.1)
  --port N          broker port (1883)
  --scenario S      fanin|fanout|qos1|qos2|qos1-persistent|latency|
                    latency50k|latency-idle|latency50k-idle|slow|slow-qos1|
                    conns|fleet|scatter|scatter20k, or a comma list (fanin)
  --duration S      seconds measured (5); conns: seconds idle before RSS
  --warmup S        seconds before measuring (1)
  --pid P           broker process id, for its CPU time and RSS
  --json            print JSON results (one array)
  --publishers N --subscribers N --qos Q --window N --rate N --payload B
  --pacing P        fixed rate: thread (publishers in workers that sleep
                    until each send; default at QoS 0), spin (a busy main
                    thread; default at QoS 1/2) or timer (bursts; default
                    for slow, slow-qos1)
  --idle-conns N    hold N idle connections open while measuring a flow
                    scenario (latency-idle, latency50k-idle: 10000)
  --devices N       fleet: devices, one 200-byte QoS 1 message each per
                    second (10000)
  --reconnect-pct P fleet: percent of devices reconnecting each second (1)
  --scatter-subs N  scatter: subscribers with 5 filters each (2000;
                    scatter20k: 20000)
  --seed N          scatter: seed of the random target sequence (1)
  --count N         conns: connections (10000)
  --concurrency N   conns, idle connections, fleet devices, scatter
                    subscribers: connects in flight (100)
  --keepalive S     keep alive in CONNECT (0)
  --drain S         seconds to wait for messages in flight after the run
                    (5; fleet 10)
  --sub-ports A,B   subscribers connect to these ports in turn (a cluster)
  --pub-ports A,B   publishers connect to these ports in turn
  --username U --password P
                    credentials of every CONNECT (not conns), for a broker
                    with a password file and an ACL
  --transport T     tcp (default), tls or ws: --port is then the broker's
                    TLS or WebSocket listener (not conns, fleet, scatter)
  --cafile F        tls: the CA (PEM) that signed the broker's certificate
  --ws-path P       ws: the endpoint's path (/mqtt)`;

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "1883" },
      scenario: { type: "string", default: "fanin" },
      duration: { type: "string" },
      warmup: { type: "string" },
      pid: { type: "string" },
      json: { type: "boolean", default: false },
      publishers: { type: "string" },
      subscribers: { type: "string" },
      qos: { type: "string" },
      window: { type: "string" },
      rate: { type: "string" },
      pacing: { type: "string" },
      payload: { type: "string" },
      count: { type: "string" },
      concurrency: { type: "string" },
      "idle-conns": { type: "string" },
      devices: { type: "string" },
      "reconnect-pct": { type: "string" },
      "scatter-subs": { type: "string" },
      seed: { type: "string" },
      drain: { type: "string" },
      keepalive: { type: "string" },
      username: { type: "string" },
      password: { type: "string" },
      transport: { type: "string", default: "tcp" },
      cafile: { type: "string" },
      "ws-path": { type: "string", default: "/mqtt" },
      "sub-ports": { type: "string" },
      "pub-ports": { type: "string" },
      help: { type: "boolean", short: "h", default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const num = (
    v: string | undefined,
  ) => (v === undefined ? undefined : Number(v));
  if (
    values.pacing !== undefined &&
    !["thread", "spin", "timer"].includes(values.pacing)
  ) {
    console.error(`--pacing: thread, spin or timer, not "${values.pacing}"`);
    return 2;
  }
  let transport: LoadTransport;
  switch (values.transport) {
    case "tcp":
      transport = TCP;
      break;
    case "tls":
      transport = {
        kind: "tls",
        caCerts: values.cafile === undefined
          ? []
          : [await Deno.readTextFile(values.cafile)],
      };
      break;
    case "ws":
      transport = { kind: "ws", path: values["ws-path"] };
      break;
    default:
      console.error(`--transport: tcp, tls or ws, not "${values.transport}"`);
      return 2;
  }
  const results: LoadResult[] = [];
  for (const scenario of values.scenario.split(",")) {
    const opts: LoadOptions = {
      host: values.host,
      port: Number(values.port),
      scenario: scenario as ScenarioName,
    };
    const set = <K extends keyof LoadOptions>(
      k: K,
      v: LoadOptions[K] | undefined,
    ) => {
      if (v !== undefined) opts[k] = v;
    };
    set("duration", num(values.duration));
    set("warmup", num(values.warmup));
    set("pid", num(values.pid));
    set("publishers", num(values.publishers));
    set("subscribers", num(values.subscribers));
    set("qos", num(values.qos) as 0 | 1 | 2 | undefined);
    set("window", num(values.window));
    set("rate", num(values.rate));
    set("pacing", values.pacing as Pacing | undefined);
    set("payload", num(values.payload));
    set("count", num(values.count));
    set("concurrency", num(values.concurrency));
    set("keepAlive", num(values.keepalive));
    set("idleConns", num(values["idle-conns"]));
    set("devices", num(values.devices));
    set("reconnectPercent", num(values["reconnect-pct"]));
    set("scatterSubs", num(values["scatter-subs"]));
    set("seed", num(values.seed));
    set("drainTimeout", num(values.drain));
    opts.transport = transport;
    const ports = (v: string | undefined) => v?.split(",").map(Number);
    set("subscriberPorts", ports(values["sub-ports"]));
    set("publisherPorts", ports(values["pub-ports"]));
    if (values.username !== undefined) {
      opts.login = values.password === undefined
        ? { username: values.username }
        : { username: values.username, password: values.password };
    }
    const r = await runLoad(opts);
    results.push(r);
    if (!values.json) console.log(formatResult(r));
  }
  if (values.json) console.log(JSON.stringify(results, null, 2));
  return 0;
}

if (import.meta.main) {
  // `deno task load -- --port 1883` passes the "--" through.
  const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  Deno.exit(await main(args));
}
