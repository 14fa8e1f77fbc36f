/**
 * Client publish throughput: Kite's `Client` against MQTT.js (`npm:mqtt`),
 * both publishing to the same Mosquitto in one run.
 *
 * Run by hand: `deno run -A bench/client_bench.ts [--n0 200000] [--n1 50000]
 * [--window 100] [--rounds 3] [--broker mosquitto|kite]` (`kite` runs Kite's
 * broker, `broker/main.ts`, in its own process instead of Mosquitto).
 *
 * - QoS 0: `n0` publishes of a 64-byte payload as fast as the client takes
 *   them (waiting on every 1024th one for backpressure), then one QoS 1
 *   publish whose PUBACK proves the broker has read everything before it.
 * - QoS 1: `n1` publishes with at most `window` unacknowledged at a time;
 *   done when the last PUBACK is in.
 *
 * Each case runs `rounds` times per client, alternating clients; the best
 * round is reported (the machine is shared), with the median beside it.
 * The client's own CPU time per message (`process.cpuUsage()` of this
 * process, which runs only the client under test; Mosquitto is another
 * process) is reported too: end-to-end rates are capped by Mosquitto on a
 * small machine, CPU per message is not.
 *
 * @module
 */

import mqtt from "mqtt";
import process from "node:process";
import { Client } from "../client/mod.ts";
import {
  freePort,
  HAVE_MOSQUITTO,
  startMosquitto,
} from "../tests/_mosquitto.ts";

if (!HAVE_MOSQUITTO && !Deno.args.includes("kite")) {
  console.error("client_bench needs /usr/sbin/mosquitto");
  Deno.exit(1);
}

function arg(name: string, dflt: number): number {
  const i = Deno.args.indexOf(`--${name}`);
  return i !== -1 ? Number(Deno.args[i + 1]) : dflt;
}
const N0 = arg("n0", 200_000);
const N1 = arg("n1", 50_000);
const WINDOW = arg("window", 100);
const ROUNDS = arg("rounds", 3);
const PAYLOAD = new Uint8Array(64).fill(0x61);
const TOPIC = "bench/client/throughput";

interface Publisher {
  /** Resolves with the ms when the last QoS 0 message was written. */
  qos0(n: number): Promise<number>;
  qos1(n: number, window: number): Promise<void>;
  end(): Promise<void>;
}

async function kite(port: number, version: 4 | 5): Promise<Publisher> {
  const c = new Client({
    port,
    protocolVersion: version,
    reconnect: false,
    maxQueued: 1_000_000,
  });
  await c.connect();
  return {
    async qos0(n) {
      const t = performance.now();
      let p;
      for (let i = 0; i < n; i++) {
        p = c.publish(TOPIC, PAYLOAD);
        if ((i & 1023) === 1023) await p;
      }
      await p;
      const written = performance.now() - t;
      await c.publish(TOPIC, PAYLOAD, 1);
      return written;
    },
    qos1(n, window) {
      return windowed(n, window, (done) => {
        c.publish(TOPIC, PAYLOAD, 1).then(done);
      });
    },
    end: () => c.disconnect(),
  };
}

async function mqttjs(port: number, version: 4 | 5): Promise<Publisher> {
  const c = await mqtt.connectAsync(`mqtt://127.0.0.1:${port}`, {
    protocolVersion: version,
    reconnectPeriod: 0,
  });
  const payload = PAYLOAD; // MQTT.js takes Uint8Array-compatible Buffers
  const pub = (qos: 0 | 1) =>
    new Promise<void>((resolve, reject) =>
      c.publish(
        TOPIC,
        payload as never,
        { qos },
        (e) => e ? reject(e) : resolve(),
      )
    );
  return {
    async qos0(n) {
      const t = performance.now();
      for (let i = 0; i < n - 1; i++) {
        if ((i & 1023) === 1023) await pub(0);
        else c.publish(TOPIC, payload as never, { qos: 0 });
      }
      await pub(0);
      const written = performance.now() - t;
      await pub(1);
      return written;
    },
    qos1(n, window) {
      return windowed(n, window, (done) => {
        c.publish(TOPIC, payload as never, { qos: 1 }, done);
      });
    },
    end: () => c.endAsync(),
  };
}

/** Runs `n` sends with at most `window` outstanding. */
function windowed(
  n: number,
  window: number,
  send: (done: () => void) => void,
): Promise<void> {
  return new Promise((resolve) => {
    let started = 0;
    let finished = 0;
    const done = () => {
      finished++;
      if (finished === n) resolve();
      else if (started < n) {
        started++;
        send(done);
      }
    };
    while (started < Math.min(window, n)) {
      started++;
      send(done);
    }
  });
}

async function time(f: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await f();
  return performance.now() - t;
}

const BROKER = (() => {
  const i = Deno.args.indexOf("--broker");
  return i !== -1 ? Deno.args[i + 1] : "mosquitto";
})();

async function startBroker(): Promise<{ port: number; stop(): Promise<void> }> {
  if (BROKER === "kite") {
    // Kite's broker in its own process, like Mosquitto.
    const port = freePort();
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        new URL("../broker/main.ts", import.meta.url).pathname,
        "--host",
        "127.0.0.1",
        "--port",
        String(port),
        "--no-enable-persistence",
        "--sys-interval",
        "0",
        "--log-level",
        "error",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "inherit",
    }).spawn();
    for (let i = 0;; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch {
        if (i > 200) throw new Error("Kite's broker did not start");
        await new Promise((r) => setTimeout(r, 25));
      }
    }
    return {
      port,
      async stop() {
        child.kill("SIGTERM");
        await child.status;
      },
    };
  }
  return await startMosquitto({
    // Let both clients keep the whole window in flight.
    extraConfig: "max_inflight_messages 0\nmax_queued_messages 0",
  });
}

const broker = await startBroker();
console.log(`broker: ${BROKER}`);
const rows: string[] = [];
const cpuRows: string[] = [];
try {
  for (const version of [5, 4] as const) {
    for (const qos of [0, 1] as const) {
      const n = qos === 0 ? N0 : N1;
      const results: Record<string, number[]> = {
        kite: [],
        mqttjs: [],
        "kite-written": [],
        "mqttjs-written": [],
        "kite-cpu": [],
        "mqttjs-cpu": [],
      };
      for (let round = 0; round < ROUNDS; round++) {
        for (
          const [name, make] of [["kite", kite], ["mqttjs", mqttjs]] as const
        ) {
          const p = await make(broker.port, version);
          // Warm up the JIT and the connection.
          if (qos === 0) await p.qos0(2000);
          else await p.qos1(2000, WINDOW);
          let written = 0;
          const cpu0 = process.cpuUsage();
          const ms = await time(async () => {
            if (qos === 0) written = await p.qos0(n);
            else await p.qos1(n, WINDOW);
          });
          const cpu = process.cpuUsage(cpu0);
          await p.end();
          results[`${name}-cpu`]!.push((cpu.user + cpu.system) / n);
          results[name]!.push(n / (ms / 1000));
          if (qos === 0) results[`${name}-written`]!.push(n / (written / 1000));
        }
      }
      const best = (k: string) => Math.max(...results[k]!);
      const median = (k: string) => {
        const s = [...results[k]!].sort((a, b) => a - b);
        return s[Math.floor(s.length / 2)]!;
      };
      const label = `QoS ${qos}${qos === 1 ? `, window ${WINDOW}` : ""}, MQTT ${
        version === 5 ? "5.0" : "3.1.1"
      }`;
      const row = `| ${label} | ${fmt(best("kite"))} (${
        fmt(median("kite"))
      }) | ${fmt(best("mqttjs"))} (${fmt(median("mqttjs"))}) | ${
        (best("kite") / best("mqttjs")).toFixed(1)
      }x (${(median("kite") / median("mqttjs")).toFixed(1)}x) |`;
      console.log(row);
      rows.push(row);
      const least = (k: string) => Math.min(...results[k]!);
      const c = `| client CPU per message (user + system), ${label} | ${
        least("kite-cpu").toFixed(2)
      } µs (${median("kite-cpu").toFixed(2)} µs) | ${
        least("mqttjs-cpu").toFixed(2)
      } µs (${median("mqttjs-cpu").toFixed(2)} µs) | ${
        (least("mqttjs-cpu") / least("kite-cpu")).toFixed(1)
      }x less (${(median("mqttjs-cpu") / median("kite-cpu")).toFixed(1)}x) |`;
      console.log(c);
      cpuRows.push(c);
      if (qos === 0) {
        const w =
          `| QoS 0 written by the client (not yet read by the broker), MQTT ${
            version === 5 ? "5.0" : "3.1.1"
          } | ${fmt(best("kite-written"))} (${fmt(median("kite-written"))}) | ${
            fmt(best("mqttjs-written"))
          } (${fmt(median("mqttjs-written"))}) | ${
            (best("kite-written") / best("mqttjs-written")).toFixed(1)
          }x (${
            (median("kite-written") / median("mqttjs-written")).toFixed(1)
          }x) |`;
        console.log(w);
        rows.push(w);
      }
    }
  }
} finally {
  await broker.stop();
}
console.log(
  "\n| case | Kite msg/s best (median) | MQTT.js msg/s best (median) | Kite / MQTT.js |",
);
console.log("| --- | --- | --- | --- |");
for (const r of rows) console.log(r);
console.log(
  "\n| case | Kite best (median) | MQTT.js best (median) | Kite uses |",
);
console.log("| --- | --- | --- | --- |");
for (const r of cpuRows) console.log(r);

function fmt(x: number): string {
  return x >= 1e6 ? `${(x / 1e6).toFixed(2)}M` : `${Math.round(x / 1000)}k`;
}
