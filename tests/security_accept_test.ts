/**
 * Security finding 0: a burst of connections must never make the broker
 * deaf. Accept failures (EMFILE) are retried, and sockets past
 * maxConnections (or the descriptor limit) are closed at accept, so the
 * broker accepts again as soon as descriptors free up.
 */
import assert from "node:assert/strict";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet } from "../codec/packet.ts";
import { spawnBroker, TextCollector, within } from "./_subprocess.ts";

const FIXTURE = new URL("./fixtures/emfile_listener.ts", import.meta.url)
  .pathname;

/** CONNECT (3.1.1), then the first packet back. */
async function connack(port: number, clientId: string): Promise<Packet> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(encode({
      type: "connect",
      protocolVersion: 4,
      clientId,
      cleanStart: true,
      keepAlive: 30,
    }));
    const decoder = new PacketDecoder({ version: 4 });
    const buf = new Uint8Array(64);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) throw new Error("closed before CONNACK");
      const got: Packet[] = [];
      decoder.push(buf.slice(0, n), (p) => got.push(p));
      if (got[0] !== undefined) return got[0];
    }
  } finally {
    conn.close();
  }
}

Deno.test("TcpListener keeps accepting after accept fails with EMFILE (Too many open files)", async () => {
  const child = new Deno.Command("sh", {
    args: [
      "-c",
      `ulimit -n 64 && exec "$0" run -A "$1"`,
      Deno.execPath(),
      FIXTURE,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = new TextCollector(child.stdout);
  const err = new TextCollector(child.stderr);
  const stdin = child.stdin.getWriter();
  try {
    const port = Number((await out.waitFor(/port (\d+)/))[1]);
    await out.waitFor(/full/);
    // Accepting this one fails: no descriptor left.
    const first = await Deno.connect({ hostname: "127.0.0.1", port });
    await err.waitFor(/accept failed \d+ time\(s\).*still accepting/);
    await stdin.write(new TextEncoder().encode("go\n"));
    await out.waitFor(/freed/);
    // The pending connection is accepted once descriptors are free, and so
    // is a new one.
    await out.waitFor(/accepted 1/);
    const second = await Deno.connect({ hostname: "127.0.0.1", port });
    await out.waitFor(/accepted 2/);
    first.close();
    second.close();
    assert.equal((await within(child.status, "fixture exit")).code, 0);
  } finally {
    await stdin.close().catch(() => {});
    try {
      child.kill("SIGKILL");
    } catch { /* exited */ }
    await child.status;
    await Promise.all([out.done, err.done]);
  }
});

Deno.test("Broker with 120 descriptors survives 200 connections at once and accepts again when they close", async () => {
  await using broker = await spawnBroker([], { shellPrefix: "ulimit -n 120" });
  const conns: Deno.TcpConn[] = [];
  const opening: Promise<void>[] = [];
  for (let i = 0; i < 200; i++) {
    opening.push(
      Deno.connect({ hostname: "127.0.0.1", port: broker.port }).then(
        (c) => void conns.push(c),
        () => {},
      ),
    );
  }
  await within(Promise.all(opening), "200 connects");
  // The broker closes what it cannot hold at accept; it logs once for it.
  await broker.stderr.waitFor(/closed at accept/);
  for (const c of conns) c.close();
  // Nothing is left half-accepted: a new client gets its CONNACK.
  const p = await within(connack(broker.port, "after-burst"), "CONNACK");
  assert.equal(p.type, "connack");
  assert.equal(p.type === "connack" && p.reasonCode, 0);
  assert.doesNotMatch(broker.stdout.text + broker.stderr.text, /Uncaught/);
});
