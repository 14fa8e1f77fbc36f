/**
 * The QoS 1 canary of bench/stalled_reader.ts, as a process of its own: a
 * subscriber to `canary` (QoS 1) and a publisher that sends one QoS 1
 * PUBLISH every `--interval` ms for `--seconds`; the time from the write to
 * the delivery is its latency. In its own process its event loop does
 * nothing else, so what it measures is the broker's delay, not the delay of
 * a load tool's loop that also writes a flood.
 *
 * ```sh
 * deno run -A bench/_canary.ts --port 1883 [--seconds 8] [--interval 10]
 * ```
 *
 * Prints one JSON line: `{ lat: number[] (ms, sorted), lost: number }`.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet } from "../codec/packet.ts";

/** A raw MQTT 3.1.1 client: CONNECT, then packets through `onPacket`. */
export async function rawClient(
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

/** The canary's result: latencies in ms (sorted) and messages lost. */
export interface CanaryResult {
  lat: number[];
  lost: number;
}

/**
 * Runs the canary pair against `port` for `seconds`, one QoS 1 PUBLISH
 * every `intervalMs` to the topic `name` (also its clients' id prefix); calls `onReady` once both are connected and
 * subscribed, and `onTick` after each publish. Messages not delivered a
 * second after the last publish count as lost.
 */
export async function runCanary(
  port: number,
  seconds: number,
  intervalMs: number,
  name = "canary",
  onReady: () => Promise<void> | void = () => {},
  onTick: () => void = () => {},
): Promise<CanaryResult> {
  const sent = new Map<number, number>();
  const lat: number[] = [];
  const suback = Promise.withResolvers<void>();
  const sub = await rawClient(port, `${name}-sub`, (p) => {
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
      sub.write(
        encode({ type: "puback", packetId: p.packetId! }, { version: 4 }),
      ).catch(() => {});
    }
  });
  const pub = await rawClient(port, `${name}-pub`);
  try {
    await sub.write(
      encode({
        type: "subscribe",
        packetId: 1,
        subscriptions: [{ filter: name, qos: 1 }],
      }, { version: 4 }),
    );
    await suback.promise;
    await onReady();
    let seq = 0;
    let packetId = 0;
    const payload = new Uint8Array(4);
    const end = performance.now() + seconds * 1000;
    while (performance.now() < end) {
      new DataView(payload.buffer).setUint32(0, seq);
      packetId = packetId === 65535 ? 1 : packetId + 1;
      sent.set(seq++, performance.now());
      await pub.write(
        encode({
          type: "publish",
          topic: name,
          payload,
          qos: 1,
          packetId,
          retain: false,
          dup: false,
        }, { version: 4 }),
      );
      onTick();
      // The canary's fixed rate (a pacing timer, not a synchronisation).
      await new Promise((r) => setTimeout(r, intervalMs));
    }
    // Messages still in flight after a last grace second count as lost.
    await new Promise((r) => setTimeout(r, 1000));
  } finally {
    for (const c of [sub, pub]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
  lat.sort((a, b) => a - b);
  return { lat, lost: sent.size };
}

if (import.meta.main) {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      port: { type: "string" },
      seconds: { type: "string", default: "8" },
      interval: { type: "string", default: "10" },
      name: { type: "string", default: "canary" },
    },
  });
  const res = await runCanary(
    Number(values.port),
    Number(values.seconds),
    Number(values.interval),
    values.name,
    // Tell the parent the pair is subscribed: the flood may start.
    () => console.log("ready"),
  );
  console.log(JSON.stringify(res));
}
