/**
 * Messages per second across a bridge: Kite -> Mosquitto against Mosquitto
 * -> Mosquitto, in the same run.
 *
 * ```sh
 * deno run -A bench/bridge.ts [--messages 50000] [--runs 3]
 * ```
 *
 * For each run, QoS (0, 1) and edge (Kite over MQTT 3.1.1, Kite over 5.0,
 * Mosquitto over 3.1.1): a fresh remote Mosquitto and a fresh edge broker
 * (its own process) with a bridge `b/# out <qos>` to it. Once the bridge
 * says it is connected (its state topic on the remote), a client publishes
 * `--messages` 64-byte messages to the edge as fast as the edge takes them,
 * and a client on the remote counts what arrives. The rate is messages
 * received over the time from the first publish to the last arrival.
 *
 * Queues are unbounded (Kite `maxQueued` 10 M, Mosquitto
 * `max_queued_messages 0`, also for the subscriber on the remote) so a
 * burst measures how fast the bridge drains, not what it drops; otherwise
 * the remote keeps Mosquitto's defaults (Receive Maximum 20), which bounds
 * both bridges' QoS 1 messages in flight alike. Prints the median rate of
 * the runs and the most messages lost in a run (a run ends 5 s after the
 * last arrival).
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Client } from "../client/mod.ts";
import { freePort, MOSQUITTO } from "./_brokers.ts";
import { Link } from "./_link.ts";
import { connectBytes, PUBACK, subscribeBytes } from "./_packets.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    messages: { type: "string", default: "50000" },
    runs: { type: "string", default: "3" },
  },
});
const N = Number(values.messages);
const RUNS = Number(values.runs);
const ROOT = fileURLToPath(new URL("../", import.meta.url));
const PAYLOAD = new Uint8Array(64 - 2 - "b/0000000".length - 2).fill(0x61);

type Edge = "kite-311" | "kite-5" | "mosquitto";

interface Proc {
  stop(): Promise<void>;
}

async function waitPort(port: number, what: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${what} did not start`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }
}

async function spawn(
  cmd: string,
  args: string[],
  port: number,
  what: string,
): Promise<Proc> {
  const child = new Deno.Command(cmd, {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  await waitPort(port, what);
  return {
    async stop() {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
    },
  };
}

async function mosquitto(port: number, lines: string[]): Promise<Proc> {
  const dir = await Deno.makeTempDir({ prefix: "kite-bridge-bench-" });
  await Deno.chmod(dir, 0o777);
  const conf = `${dir}/m.conf`;
  await Deno.writeTextFile(
    conf,
    [
      `listener ${port} 127.0.0.1`,
      "allow_anonymous true",
      "persistence false",
      ...lines,
      "",
    ].join("\n"),
  );
  const p = await spawn(MOSQUITTO, ["-c", conf], port, "mosquitto");
  return {
    async stop() {
      await p.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function kite(
  port: number,
  remote: number,
  qos: number,
  version: string,
): Promise<Proc> {
  const dir = await Deno.makeTempDir({ prefix: "kite-bridge-bench-" });
  const yaml = `${dir}/kite.yaml`;
  await Deno.writeTextFile(
    yaml,
    [
      "bridges:",
      "  - name: bench",
      `    addresses: mqtt://127.0.0.1:${remote}`,
      "    clientId: kite-edge",
      `    protocolVersion: "${version}"`,
      "    cleanStart: true",
      "    maxQueued: 10000000",
      "    topics:",
      `      - { pattern: "b/#", direction: out, qos: ${qos} }`,
      "",
    ].join("\n"),
  );
  const p = await spawn(
    Deno.execPath(),
    [
      "run",
      "-A",
      "--v8-flags=--max-semi-space-size=4",
      "broker/main.ts",
      "--config",
      yaml,
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--enable-persistence=false",
      "--sys-interval",
      "0",
      "--log-level",
      "warning",
    ],
    port,
    "kite",
  );
  return {
    async stop() {
      await p.stop();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

/** One measurement: messages/s received on the remote, and how many. */
async function once(
  edge: Edge,
  qos: 0 | 1,
): Promise<{ rate: number; received: number }> {
  const rport = freePort();
  const eport = freePort();
  // The subscriber there must not be what drops messages.
  const remote = await mosquitto(rport, ["max_queued_messages 0"]);
  const procs: Proc[] = [remote];
  const clients: Client[] = [];
  const links: Link[] = [];
  try {
    procs.push(
      edge === "mosquitto"
        ? await mosquitto(eport, [
          "max_queued_messages 0",
          "connection bench",
          `address 127.0.0.1:${rport}`,
          "remote_clientid mosq-edge",
          "cleansession true",
          "try_private true",
          `topic b/# out ${qos}`,
        ])
        : await kite(eport, rport, qos, edge === "kite-5" ? "5" : "3.1.1"),
    );
    // A raw subscriber (bench/_link.ts): counting costs next to nothing.
    const up = Promise.withResolvers<void>();
    const connack = Promise.withResolvers<void>();
    let received = 0;
    let last = 0;
    const done = Promise.withResolvers<void>();
    const sub = await Link.open("127.0.0.1", rport, (first, b, body) => {
      const type = first >> 4;
      if (type === 2) connack.resolve();
      if (type !== 3) return;
      const tlen = (b[body]! << 8) | b[body + 1]!;
      if (b[body + 2] === 0x24) { // "$": the bridge's state
        if (b[body + 2 + tlen + ((first >> 1) & 3 ? 2 : 0)] === 0x31) {
          up.resolve();
        }
      } else if (++received === N) done.resolve();
      last = performance.now();
      if ((first >> 1) & 3) {
        const at = body + 2 + tlen;
        sub.ack(PUBACK, (b[at]! << 8) | b[at + 1]!);
      }
    });
    links.push(sub);
    sub.start();
    sub.writer.enqueue(connectBytes("bench-sub", 60));
    await connack.promise;
    sub.writer.enqueue(subscribeBytes(1, "$SYS/broker/connection/+/state", 1));
    sub.writer.enqueue(subscribeBytes(2, "b/#", qos));
    await up.promise;
    const pub = new Client({
      port: eport,
      protocolVersion: 4,
      maxQueued: N + 1,
    });
    clients.push(pub);
    await pub.connect();
    const start = performance.now();
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < N; i++) {
      acks.push(pub.publish(`b/${String(i).padStart(7, "0")}`, PAYLOAD, qos));
    }
    await Promise.all(acks);
    // QoS 0 may lose some: stop waiting 5 s after the last arrival.
    for (;;) {
      const seen = received;
      let t: ReturnType<typeof setTimeout> | undefined;
      const idle = new Promise((r) => t = setTimeout(r, 5000, "idle"));
      const r = await Promise.race([done.promise, idle]);
      clearTimeout(t);
      if (r !== "idle" || received === seen) break;
    }
    return { rate: received / ((last - start) / 1000), received };
  } finally {
    for (const c of clients) await c.disconnect().catch(() => {});
    for (const l of links) await l.close();
    for (const p of procs.reverse()) await p.stop();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

const EDGES: Edge[] = ["kite-311", "kite-5", "mosquitto"];
const results = new Map<string, { rates: number[]; lost: number[] }>();
for (let run = 0; run < RUNS; run++) {
  for (const qos of [0, 1] as const) {
    for (const edge of EDGES) {
      const r = await once(edge, qos);
      const key = `${edge} ${qos}`;
      const entry = results.get(key) ?? { rates: [], lost: [] };
      entry.rates.push(r.rate);
      entry.lost.push(N - r.received);
      results.set(key, entry);
      console.error(
        `run ${run + 1} QoS ${qos} ${edge}: ${Math.round(r.rate)} msg/s, ${
          N - r.received
        } lost`,
      );
    }
  }
}

const fmt = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : `${(n / 1e3).toFixed(1)}k`;
console.log(
  `\n${N} messages of 64 bytes, median of ${RUNS} runs (msg/s, lost in brackets)\n`,
);
console.log(
  "| QoS | Kite -> Mosquitto (3.1.1) | Kite -> Mosquitto (5.0) | Mosquitto -> Mosquitto (3.1.1) | Kite (3.1.1) / Mosquitto |",
);
console.log("| --: | --: | --: | --: | --: |");
for (const qos of [0, 1]) {
  const cell = (e: Edge) => {
    const r = results.get(`${e} ${qos}`)!;
    return `${fmt(median(r.rates))} (${Math.max(...r.lost)})`;
  };
  const ratio = median(results.get(`kite-311 ${qos}`)!.rates) /
    median(results.get(`mosquitto ${qos}`)!.rates);
  console.log(
    `| ${qos} | ${cell("kite-311")} | ${cell("kite-5")} | ${
      cell("mosquitto")
    } | ${ratio.toFixed(2)}x |`,
  );
}
