/**
 * Security finding 12: a message over 4 MiB must reach a subscriber that
 * reads, up to the Maximum Packet Size both sides allow; the slow-reader
 * bound is about what waits behind the write in progress, not about one
 * packet's size.
 */
import assert from "node:assert/strict";
import { Client } from "../client/mod.ts";
import type { Message } from "../client/mod.ts";
import type { QoS } from "../codec/packet.ts";
import { startBroker, withTimeout } from "./_helpers.ts";

const MAX = 100_000_000;

function payloadOf(size: number): Uint8Array {
  const p = new Uint8Array(size);
  for (let i = 0; i < size; i += 4096) p[i] = (i / 4096) & 0xff;
  p[size - 1] = 0x5a;
  return p;
}

function samePayload(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 4096) if (a[i] !== b[i]) return false;
  return a[a.length - 1] === b[b.length - 1];
}

for (
  const [size, qos] of [[4_500_000, 1], [50_000_000, 0], [
    50_000_000,
    1,
  ]] as const
) {
  Deno.test(`Broker delivers a ${size / 1e6} MB QoS ${qos} message to a subscriber that reads (maxPacketSize ${MAX})`, async () => {
    const broker = await startBroker({ maxPacketSize: MAX });
    const port = broker.addr.port;
    const sub = new Client({ port, clientId: "big-sub", protocolVersion: 5 });
    const pub = new Client({ port, clientId: "big-pub", protocolVersion: 5 });
    try {
      await sub.connect();
      await pub.connect();
      const got = Promise.withResolvers<Message>();
      await sub.subscribe("firmware/+", { qos: 1 }, (m) => got.resolve(m));
      const payload = payloadOf(size);
      const published = pub.publish("firmware/v2", payload, {
        qos: qos as QoS,
      });
      const m = await withTimeout(got.promise, 30_000, "the large message");
      assert.equal(m.topic, "firmware/v2");
      assert.equal(m.qos, qos);
      assert.ok(samePayload(m.payload, payload), "payload intact");
      await withTimeout(published, 30_000, "PUBACK");
      assert.equal(sub.connected, true);
    } finally {
      await sub.close();
      await pub.close();
      await broker.close();
    }
  });
}

Deno.test("Broker closes a client that keeps sending but never reads once more than 4 x outputBufferLimit waits behind the write", async () => {
  const broker = await startBroker({ outputBufferLimit: 1024 });
  const port = broker.addr.port;
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(
      new Uint8Array([
        0x10,
        12,
        0,
        4,
        0x4d,
        0x51,
        0x54,
        0x54,
        4,
        2,
        0,
        0,
        0,
        0,
      ]),
    );
    // PINGREQs, never reading the PINGRESPs: the broker's output grows
    // until it is over the bound, then the broker closes the connection.
    const chunk = new Uint8Array(64 * 1024);
    for (let i = 0; i < chunk.length; i += 2) chunk[i] = 0xc0;
    let closed = false;
    for (
      let sent = 0;
      sent < 64 * 1024 * 1024 && !closed;
      sent += chunk.length
    ) {
      try {
        await withTimeout(conn.write(chunk), 10_000, "a write");
      } catch (e) {
        if (
          e instanceof Deno.errors.BrokenPipe ||
          e instanceof Deno.errors.ConnectionReset
        ) closed = true;
        else throw e;
      }
    }
    if (!closed) {
      // Our writes all went through: the broker must have closed by now;
      // reading drains its PINGRESPs up to the end of the stream.
      const buf = new Uint8Array(1 << 20);
      while (
        await withTimeout(conn.read(buf), 10_000, "EOF") !== null
      ) { /* drain */ }
    }
  } finally {
    conn.close();
    await broker.close();
  }
});
