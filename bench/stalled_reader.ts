/**
 * A subscriber that never reads, a publisher flooding it with 1 KB QoS 0
 * messages, and a QoS 1 canary beside them: the broker must stay bounded
 * (memory), and the canary's latency must not suffer. Runs Kite and
 * Mosquitto in turn (interleaved with `--repeat`), each started fresh on a
 * free loopback port pinned to CPU 0; this process runs on CPU 1.
 *
 * ```sh
 * deno run -A bench/stalled_reader.ts [--seconds 10] [--repeat 3] [--brokers kite,mosquitto]
 * ```
 *
 * Reports per broker: the canary's round-trip latency (p50, p99, p99.9,
 * max), canary messages lost, flood messages sent, and the broker's RSS at
 * the start and end of the flood and its peak.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet } from "../codec/packet.ts";
import { type BrokerName, startBroker } from "./_brokers.ts";

const { values } = parseArgs({
  args: Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args,
  options: {
    seconds: { type: "string", default: "10" },
    repeat: { type: "string", default: "1" },
    brokers: { type: "string", default: "kite,mosquitto" },
    "canary-interval": { type: "string", default: "10" },
    port: { type: "string" },
    pid: { type: "string" },
  },
});
const SECONDS = Number(values.seconds);
const REPEAT = Number(values.repeat);
const CANARY_MS = Number(values["canary-interval"]);

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

/** A raw client: CONNECT, then packets through `onPacket`. */
async function client(
  port: number,
  clientId: string,
  onPacket: (p: Packet) => void = () => {},
  read = true,
): Promise<Deno.TcpConn> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  await conn.write(
    encode({
      type: "connect",
      protocolVersion: 4,
      clientId,
      cleanStart: true,
      keepAlive: 0,
    }),
  );
  const decoder = new PacketDecoder({ version: 4 });
  const buf = new Uint8Array(64 * 1024);
  const first = Promise.withResolvers<void>();
  let connected = false;
  (async () => {
    try {
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) return;
        decoder.push(buf.subarray(0, n), (p) => {
          if (!connected && p.type === "connack") {
            connected = true;
            first.resolve();
          } else onPacket(p);
        });
        // A stalled reader reads its CONNACK (and SUBACK), then stops.
        if (!read && connected) return;
      }
    } catch {
      // closed
    }
  })();
  await first.promise;
  return conn;
}

async function subscribe(conn: Deno.TcpConn, filter: string, qos: 0 | 1) {
  await conn.write(
    encode(
      { type: "subscribe", packetId: 1, subscriptions: [{ filter, qos }] },
      { version: 4 },
    ),
  );
}

interface Result {
  p50: number;
  p99: number;
  p999: number;
  max: number;
  lost: number;
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
  try {
    // The stalled subscriber: subscribes, then never reads again.
    const stalled = await client(port, "stalled", () => {}, false);
    conns.push(stalled);
    await subscribe(stalled, "flood", 0);
    // The canary pair.
    const sent = new Map<number, number>();
    const lat: number[] = [];
    const suback = Promise.withResolvers<void>();
    const canarySub = await client(port, "canary-sub", (p) => {
      if (p.type === "suback") suback.resolve();
      if (p.type !== "publish") return;
      const seq = new DataView(p.payload.buffer, p.payload.byteOffset)
        .getUint32(0);
      const t0 = sent.get(seq);
      if (t0 !== undefined) {
        lat.push(performance.now() - t0);
        sent.delete(seq);
      }
      if (p.qos === 1) {
        canarySub.write(
          encode({ type: "puback", packetId: p.packetId! }, { version: 4 }),
        ).catch(() => {});
      }
    });
    conns.push(canarySub);
    await subscribe(canarySub, "canary", 1);
    await suback.promise;
    const canaryPub = await client(port, "canary-pub");
    conns.push(canaryPub);
    const flooder = await client(port, "flooder");
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
    let stop = false;
    const flooding = (async () => {
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
    let seq = 0;
    let packetId = 0;
    const payload = new Uint8Array(4);
    const end = performance.now() + SECONDS * 1000;
    while (performance.now() < end) {
      new DataView(payload.buffer).setUint32(0, seq);
      packetId = packetId === 65535 ? 1 : packetId + 1;
      sent.set(seq++, performance.now());
      await canaryPub.write(
        encode({
          type: "publish",
          topic: "canary",
          payload,
          qos: 1,
          packetId,
          retain: false,
          dup: false,
        }, { version: 4 }),
      );
      rssPeak = Math.max(rssPeak, rssKB(broker.pid));
      // The canary's fixed rate (a pacing timer, not a synchronisation).
      await new Promise((r) => setTimeout(r, CANARY_MS));
    }
    // Messages still in flight after a last grace second count as lost.
    await new Promise((r) => setTimeout(r, 1000));
    stop = true;
    const rssEnd = rssKB(broker.pid);
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    await flooding;
    lat.sort((a, b) => a - b);
    return {
      p50: pct(lat, 0.5),
      p99: pct(lat, 0.99),
      p999: pct(lat, 0.999),
      max: lat[lat.length - 1] ?? NaN,
      lost: sent.size,
      flood,
      rssStart,
      rssEnd,
      rssPeak,
    };
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
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
      `${b}: canary p99 ${res.p99.toFixed(2)} ms, max ${
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
console.log(
  "| broker | canary p50 ms | p99 ms | p99.9 ms | max ms | canary lost | flood msgs | RSS start MB | RSS peak MB | RSS end MB |",
);
console.log("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
for (const [b, rs] of results) {
  const f = (k: keyof Result, d = 2) => med(rs.map((r) => r[k])).toFixed(d);
  const mb = (k: keyof Result) => (med(rs.map((r) => r[k])) / 1024).toFixed(0);
  console.log(
    `| ${b} | ${f("p50")} | ${f("p99")} | ${f("p999")} | ${f("max", 1)} | ${
      Math.max(...rs.map((r) => r.lost))
    } | ${f("flood", 0)} | ${mb("rssStart")} | ${mb("rssPeak")} | ${
      mb("rssEnd")
    } |`,
  );
}
