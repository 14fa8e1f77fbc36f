/**
 * `HandleDuplex` (codec/_handle_io.ts): the push read and write paths the
 * broker's connections use over the runtime's stream handles, against real
 * sockets (a `TcpListener` with handles, `Deno.connect` clients).
 */

import assert from "node:assert/strict";
import { TcpListener } from "../broker/listen/tcp.ts";
import net from "node:net";
import {
  HandleDuplex,
  hasHandles,
  setAfterSparseRead,
} from "../codec/_handle_io.ts";
import type { Duplex } from "../codec/duplex.ts";
import { withTimeout } from "./_helpers.ts";

const STEP_MS = 5000;

/** A listener with handles, one accepted duplex and its client socket. */
async function pair(): Promise<{
  listener: TcpListener;
  server: HandleDuplex;
  client: Deno.TcpConn;
  [Symbol.asyncDispose](): Promise<void>;
}> {
  const listener = new TcpListener({ hostname: "127.0.0.1", port: 0 });
  const it = listener.accept()[Symbol.asyncIterator]();
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const next = await withTimeout(it.next(), STEP_MS, "accept");
  const server = next.value as Duplex;
  assert.ok(server instanceof HandleDuplex, "the listener uses handles");
  return {
    listener,
    server,
    client,
    async [Symbol.asyncDispose]() {
      server.close();
      try {
        client.close();
      } catch {
        // closed by the test
      }
      listener.close();
      await it.return?.();
    },
  };
}

/** The next push read, as a promise (for the test only). */
function pushed(d: HandleDuplex): Promise<Uint8Array | 0 | Error> {
  return new Promise((resolve) => d.readPush(resolve));
}

Deno.test("the runtime has the stream-handle bindings", () => {
  assert.ok(hasHandles());
});

Deno.test("readPush never calls back before returning, and hands over chunks the caller owns", async () => {
  await using p = await pair();
  await p.client.write(new Uint8Array([1, 2, 3]));
  let returned = false;
  const got = await withTimeout(
    new Promise<Uint8Array | 0 | Error>((resolve) => {
      p.server.readPush((r) => {
        assert.ok(returned, "called back after readPush returned");
        resolve(r);
      });
      returned = true;
    }),
    STEP_MS,
    "read",
  );
  assert.deepEqual(got, new Uint8Array([1, 2, 3]));
  // The next read lands in the shared buffer: the chunk must not change.
  await p.client.write(new Uint8Array([9, 9, 9]));
  const next = await withTimeout(pushed(p.server), STEP_MS, "read 2");
  assert.deepEqual(next, new Uint8Array([9, 9, 9]));
  assert.deepEqual(got, new Uint8Array([1, 2, 3]));
});

Deno.test("bytes that arrive while nobody reads are held (the socket paused) and handed to the next readPush", async () => {
  await using p = await pair();
  // One read first, so the handle reads; then nobody asks for a while.
  await p.client.write(new Uint8Array([1]));
  assert.deepEqual(await pushed(p.server), new Uint8Array([1]));
  const big = new Uint8Array(4 * 1024 * 1024).fill(7);
  const writing = p.client.write(big).then(async (n) => {
    let off = n;
    while (off < big.length) off += await p.client.write(big.subarray(off));
  });
  let total = 0;
  while (total < big.length) {
    const r = await withTimeout(pushed(p.server), STEP_MS, "read");
    assert.ok(r instanceof Uint8Array);
    assert.ok(r.every((b) => b === 7));
    total += r.length;
  }
  await writing;
  assert.equal(total, big.length);
});

Deno.test("EOF reaches readPush as 0, and every later readPush gets 0", async () => {
  await using p = await pair();
  await p.client.write(new Uint8Array([5]));
  p.client.close();
  assert.deepEqual(await pushed(p.server), new Uint8Array([5]));
  assert.equal(await withTimeout(pushed(p.server), STEP_MS, "eof"), 0);
  assert.equal(await withTimeout(pushed(p.server), STEP_MS, "eof 2"), 0);
});

Deno.test("close() ends a readPush waiting on it with 0", async () => {
  await using p = await pair();
  const waiting = pushed(p.server);
  p.server.close();
  assert.equal(await withTimeout(waiting, STEP_MS, "closed"), 0);
  assert.ok(p.server.isClosed);
});

Deno.test("writePush calls done with the length, never before returning, and the bytes arrive in order", async () => {
  await using p = await pair();
  const sizes = [1, 100, 70_000, 3, 2_000_000, 10];
  const expected = sizes.reduce((a, b) => a + b, 0);
  const reading = (async () => {
    const buf = new Uint8Array(1 << 16);
    let got = 0;
    let k = 0;
    while (got < expected) {
      const n = await p.client.read(buf);
      assert.ok(n !== null, "EOF early");
      for (let i = 0; i < n; i++) assert.equal(buf[i], (k++ * 13) & 0xff);
      got += n;
    }
    return got;
  })();
  let k = 0;
  for (const size of sizes) {
    const data = new Uint8Array(size);
    for (let i = 0; i < size; i++) data[i] = (k++ * 13) & 0xff;
    let returned = false;
    const r = await withTimeout(
      new Promise<unknown>((resolve) => {
        p.server.writePush(data, (r) => {
          assert.ok(returned, "done after writePush returned");
          resolve(r);
        });
        returned = true;
      }),
      STEP_MS,
      `write ${size}`,
    );
    assert.equal(r, size);
  }
  assert.equal(await withTimeout(reading, STEP_MS, "client read"), expected);
});

Deno.test("writePush after close() calls done with an error", async () => {
  await using p = await pair();
  p.server.close();
  const r = await new Promise<unknown>((resolve) =>
    p.server.writePush(new Uint8Array([1]), resolve)
  );
  assert.ok(r instanceof Error);
});

Deno.test("closeWrite() sends EOF after the bytes written while reads go on", async () => {
  await using p = await pair();
  await p.server.write(new Uint8Array([4, 2]));
  await withTimeout(p.server.closeWrite(), STEP_MS, "closeWrite");
  const buf = new Uint8Array(8);
  assert.equal(await p.client.read(buf), 2);
  assert.equal(await p.client.read(buf), null);
  await p.client.write(new Uint8Array([6]));
  assert.deepEqual(await pushed(p.server), new Uint8Array([6]));
});

Deno.test("remoteAddress is the client's address and port", async () => {
  await using p = await pair();
  const local = p.client.localAddr as Deno.NetAddr;
  assert.equal(p.server.remoteAddress, `${local.hostname}:${local.port}`);
});

Deno.test("io: deno reads with the connections' own reads", async () => {
  const listener = new TcpListener({
    hostname: "127.0.0.1",
    port: 0,
    io: "deno",
  });
  const it = listener.accept()[Symbol.asyncIterator]();
  const client = await Deno.connect({
    hostname: "127.0.0.1",
    port: listener.addr.port,
  });
  const { value } = await withTimeout(it.next(), STEP_MS, "accept");
  const d = value as Duplex;
  assert.ok(!(d instanceof HandleDuplex));
  d.close();
  client.close();
  listener.close();
  await it.return?.();
});

Deno.test("closing 200 handle connections closes their sockets (no descriptor left open)", async () => {
  // Counted by `ls` (reading /proc/self/fd needs all permissions).
  const fds = () =>
    new TextDecoder().decode(
      new Deno.Command("ls", { args: [`/proc/${Deno.pid}/fd`] }).outputSync()
        .stdout,
    ).split("\n").filter((l) => l !== "").length;
  const listener = new TcpListener({ hostname: "127.0.0.1", port: 0 });
  const it = listener.accept()[Symbol.asyncIterator]();
  const before = fds();
  const ends: Promise<unknown>[] = [];
  for (let i = 0; i < 200; i++) {
    const client = await Deno.connect({
      hostname: "127.0.0.1",
      port: listener.addr.port,
    });
    const { value } = await withTimeout(it.next(), STEP_MS, "accept");
    const d = value as HandleDuplex;
    assert.ok(d instanceof HandleDuplex);
    d.close();
    // The client reads EOF once the server's socket is closed.
    ends.push(client.read(new Uint8Array(1)).finally(() => client.close()));
  }
  assert.deepEqual(
    new Set(await withTimeout(Promise.all(ends), STEP_MS, "EOFs")),
    new Set([null]),
  );
  assert.ok(fds() <= before + 2, `${fds()} descriptors, ${before} before`);
  listener.close();
  await it.return?.();
});

Deno.test("a writePush callback that throws is reported as uncaught (an error event), and later writes still complete", async () => {
  await using p = await pair();
  let onError = (_e: ErrorEvent) => {};
  const uncaught = new Promise<unknown>((resolve) => {
    onError = (e) => {
      e.preventDefault();
      resolve(e.error);
    };
  });
  globalThis.addEventListener("error", onError);
  try {
    // The first write of a new connection completes later (the socket is
    // not writable yet); the next ones at once, in the end-of-turn batch.
    await withTimeout(
      new Promise((resolve) =>
        p.server.writePush(new Uint8Array([0]), resolve)
      ),
      STEP_MS,
      "a first write",
    );
    const thrown = new Promise<void>((resolve) =>
      p.server.writePush(new Uint8Array([1]), () => {
        resolve();
        throw new Error("boom");
      })
    );
    await withTimeout(thrown, STEP_MS, "first write");
    const r = await withTimeout(
      new Promise<unknown>((resolve) =>
        p.server.writePush(new Uint8Array([2, 3]), resolve)
      ),
      STEP_MS,
      "second write",
    );
    assert.equal(r, 2);
    const e = await withTimeout(uncaught, STEP_MS, "the uncaught error");
    assert.equal((e as Error).message, "boom");
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

Deno.test("the after-read hook runs inside a lone read, and only for the first of several handles read in one turn", async () => {
  const listener = new TcpListener({ hostname: "127.0.0.1", port: 0 });
  const it = listener.accept()[Symbol.asyncIterator]();
  const port = listener.addr.port;
  const clients: net.Socket[] = [];
  const servers: HandleDuplex[] = [];
  // The hook sees `inRead` true only when it runs before this turn's
  // microtasks, i.e. right after the read callback.
  let inRead = false;
  let reads = 0;
  const hooked: boolean[] = [];
  const before = setAfterSparseRead(() => hooked.push(inRead));
  try {
    for (let i = 0; i < 2; i++) {
      const c = net.connect(port, "127.0.0.1");
      clients.push(c);
      const next = await withTimeout(it.next(), STEP_MS, "accept");
      servers.push(next.value as HandleDuplex);
    }
    await Promise.all(
      clients.map((c) =>
        c.readyState === "open"
          ? undefined
          : new Promise((r) => c.once("connect", r))
      ),
    );
    const readOnce = (s: HandleDuplex) =>
      withTimeout(
        new Promise<void>((resolve) =>
          s.readPush(() => {
            reads++;
            inRead = true;
            queueMicrotask(() => inRead = false);
            resolve();
          })
        ),
        STEP_MS,
        "read",
      );
    // A lone read (this turn and the one before read one handle each).
    const lone = readOnce(servers[0]!);
    clients[0]!.write(Uint8Array.of(1));
    await lone;
    assert.deepEqual(hooked, [true], "run once, before the turn's microtasks");
    // Two handles readable at once: node:net writes at once on loopback,
    // so both sockets have their byte before the runtime polls again.
    hooked.length = 0;
    const both = Promise.all(servers.map(readOnce));
    clients[0]!.write(Uint8Array.of(2));
    clients[1]!.write(Uint8Array.of(3));
    await both;
    assert.equal(reads, 3);
    assert.deepEqual(hooked, [true], "not run for the second read of the turn");
  } finally {
    setAfterSparseRead(before);
    for (const c of clients) c.destroy();
    for (const s of servers) s.close();
    listener.close();
    await it.return?.();
  }
});
