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
import { DenoProcess, spawnBroker } from "./_subprocess.ts";
import { within } from "./client_helpers.ts";

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

/**
 * The EMFILE fixture with `args` under `ulimit -n 64`, its `wait` for a line
 * (15 s), and the port once it printed it and filled its descriptor table.
 */
async function fullFixture(args: string[]): Promise<{
  fixture: DenoProcess;
  wait: (re: RegExp, what: string) => Promise<RegExpMatchArray>;
  port: number;
}> {
  const fixture = new DenoProcess([FIXTURE, ...args], {
    stdin: "piped",
    shellPrefix: "ulimit -n 64",
  });
  const wait = (re: RegExp, what: string) =>
    fixture.waitForOutput(re, "all", 15_000, what);
  try {
    const port = Number((await wait(/port (\d+)/, "the port"))[1]);
    await wait(/full/, "the descriptor table full");
    return { fixture, wait, port };
  } catch (e) {
    await fixture.kill();
    throw e;
  }
}

Deno.test("TcpListener (io: deno) keeps accepting after accept fails with EMFILE (Too many open files), and logs it", async () => {
  const { fixture, wait, port } = await fullFixture(["deno"]);
  try {
    // Accepting this one fails: no descriptor left.
    const first = await Deno.connect({ hostname: "127.0.0.1", port });
    await wait(/accept failed \d+ times?.*still accepting/, "the log");
    await fixture.input("go\n");
    await wait(/freed/, "descriptors freed");
    // The pending connection is accepted once descriptors are free, and so
    // is a new one.
    await wait(/accepted 1/, "the first connection");
    const second = await Deno.connect({ hostname: "127.0.0.1", port });
    await wait(/accepted 2/, "the second connection");
    first.close();
    second.close();
    assert.equal((await fixture.exit(15_000, "the fixture's exit")).code, 0);
  } finally {
    await fixture.kill();
  }
});

// The stream-handle listener (the default) is told nothing of a failed
// accept: the runtime's handle stops accepting without a callback (see
// `rearm` in codec/_handle_io.ts), so there is no log line to wait for. The
// connections made while the table is full must still be accepted once it
// is not, and new ones after them.
Deno.test("TcpListener (handles) keeps accepting after accepts fail with EMFILE (Too many open files)", async () => {
  const { fixture, wait, port } = await fullFixture(["handles", "4"]);
  try {
    // Accepting these fails: no descriptor left.
    const early: Deno.TcpConn[] = [];
    for (let i = 0; i < 3; i++) {
      early.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    }
    // The fixture reads this after its loop saw the connections (and
    // failed to accept them).
    await fixture.send("tick\n");
    await wait(/ticked/, "a turn of the fixture's loop");
    await fixture.input("go\n");
    await wait(/freed/, "descriptors freed");
    await wait(/accepted 3/, "the connections made while full");
    const late = await Deno.connect({ hostname: "127.0.0.1", port });
    await wait(/accepted 4/, "a new connection");
    for (const c of early) c.close();
    late.close();
    assert.equal((await fixture.exit(15_000, "the fixture's exit")).code, 0);
  } finally {
    await fixture.kill();
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
  await within(Promise.all(opening), 15_000, "200 connects");
  // The broker closes what it cannot hold at accept; it logs once for it.
  await broker.process.waitForOutput(
    /closed at accept/,
    "all",
    15_000,
    "the refusal log line",
  );
  for (const c of conns) c.close();
  // The broker sees those sockets close as it reads their EOFs; until then
  // a new socket may still be over the cap and closed at accept. Try again
  // until a CONNACK comes back (bounded): it must, and soon.
  const deadline = Date.now() + 10_000;
  let p: Packet | undefined;
  while (p === undefined) {
    try {
      p = await within(connack(broker.port, "after-burst"), 5_000, "CONNACK");
    } catch (e) {
      if (Date.now() > deadline) {
        throw new Error(
          `no CONNACK after the burst; broker output:\n${broker.process.stdout}${broker.process.stderr}`,
          { cause: e },
        );
      }
      await new Promise((r) => setTimeout(r, 50)); // between attempts only
    }
  }
  assert.equal(p.type, "connack");
  assert.equal(p.type === "connack" && p.reasonCode, 0);
  assert.doesNotMatch(
    broker.process.stdout + broker.process.stderr,
    /Uncaught/,
  );
});
