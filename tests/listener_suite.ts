/**
 * The shared `Listener` test suite: `listenerSuite(name, make)` registers
 * the same `Deno.test` cases for every `Listener` implementation (TCP, TLS,
 * mutual TLS, WebSocket, WebSocket over TLS). `make()` opens a listener and says how to dial
 * it; the suite checks what the broker relies on: one `Duplex` per
 * connection, bytes both ways (large and many small writes), EOF, and
 * `close()` ending the accept iteration while accepted connections live on.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { Duplex } from "../codec/duplex.ts";
import type { Listener, ListenerProtocol } from "../broker/listen/listener.ts";
import { withTimeout } from "./_helpers.ts";

/** A listener under test and a way to connect to it. */
export interface ListenerFixture {
  /** The listener, open. */
  listener: Listener;
  /** Opens a client connection to it. */
  dial(): Promise<Duplex>;
  /** The protocol its `addr` must report. */
  protocol: ListenerProtocol;
  /** Releases what `dial()` needs besides the duplexes (an HTTP client). */
  dispose?(): Promise<void> | void;
}

/** How long one step may take (the CPUs are shared with other work). */
const STEP_MS = 5000;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Bytes 0..n-1 of a pattern that shows misordered chunks. */
function pattern(n: number, seed: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = (i * 31 + (i >> 8) + seed) & 0xff;
  return b;
}

/** Reads exactly `n` bytes; fails at EOF or on more bytes than that. */
async function readExactly(d: Duplex, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const chunk = await d.read();
    if (chunk === null) throw new Error(`EOF after ${got} of ${n} bytes`);
    if (got + chunk.length > n) {
      throw new Error(`${got + chunk.length} bytes where ${n} were expected`);
    }
    out.set(chunk, got);
    got += chunk.length;
  }
  return out;
}

/** Reads until EOF. */
async function readToEnd(d: Duplex): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let n = 0;
  while (true) {
    const chunk = await d.read();
    if (chunk === null) break;
    parts.push(chunk);
    n += chunk.length;
  }
  const out = new Uint8Array(n);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** The listener's accept iteration, stepped by hand. */
class Acceptor {
  #it: AsyncIterator<Duplex>;
  #next: Promise<IteratorResult<Duplex>> | undefined;

  constructor(listener: Listener) {
    this.#it = listener.accept()[Symbol.asyncIterator]();
  }

  async #step(): Promise<IteratorResult<Duplex>> {
    const p = this.#next ??= this.#it.next();
    const r = await withTimeout(p, STEP_MS, "accept()");
    this.#next = undefined;
    return r;
  }

  /** The next accepted connection. */
  async next(): Promise<Duplex> {
    const r = await this.#step();
    if (r.done === true) throw new Error("accept() ended");
    return r.value;
  }

  /** Whether the iteration has ended (waits for its next step). */
  async ended(): Promise<boolean> {
    return (await this.#step()).done === true;
  }

  /** After `close()`: waits for a step still pending. */
  async settle(): Promise<void> {
    if (this.#next !== undefined) await this.#step();
  }
}

/** One fixture with everything a case opened, closed at the end. */
class Harness {
  readonly listener: Listener;
  readonly protocol: ListenerProtocol;
  readonly acceptor: Acceptor;
  #dial: () => Promise<Duplex>;
  #open: Duplex[] = [];
  #fixture: ListenerFixture;

  constructor(f: ListenerFixture) {
    this.listener = f.listener;
    this.protocol = f.protocol;
    this.#dial = f.dial;
    this.#fixture = f;
    this.acceptor = new Acceptor(f.listener);
  }

  async dial(): Promise<Duplex> {
    const d = await withTimeout(this.#dial(), STEP_MS, "dial()");
    this.#open.push(d);
    return d;
  }

  async accept(): Promise<Duplex> {
    const d = await this.acceptor.next();
    this.#open.push(d);
    return d;
  }

  /** Dials one connection and accepts it. */
  async pair(): Promise<{ client: Duplex; server: Duplex }> {
    const client = await this.dial();
    const server = await this.accept();
    return { client, server };
  }

  async dispose(): Promise<void> {
    for (const d of this.#open) d.close();
    this.listener.close();
    await this.acceptor.settle();
    await this.#fixture.dispose?.();
  }
}

/**
 * Registers the shared cases for one implementation. `ignore` names cases
 * (by the text after the implementation's name) that it is known to fail:
 * they are registered as ignored, so that they show in the report.
 */
export function listenerSuite(
  name: string,
  make: () => Promise<ListenerFixture>,
  ignore: readonly string[] = [],
): void {
  const cases = new Set<string>();
  const test = (what: string, fn: (h: Harness) => Promise<void>) => {
    cases.add(what);
    Deno.test({
      name: `${name} ${what}`,
      ignore: ignore.includes(what),
    }, async () => {
      const h = new Harness(await make());
      try {
        await fn(h);
      } finally {
        await h.dispose();
      }
    });
  };

  test("addr has the real port and the listener's protocol", (h) => {
    const { addr } = h.listener;
    assert.equal(addr.protocol, h.protocol);
    assert.ok(
      Number.isInteger(addr.port) && addr.port > 0 && addr.port < 65536,
      `port ${addr.port}`,
    );
    assert.equal(typeof addr.hostname, "string");
    assert.ok(addr.hostname.length > 0);
    return Promise.resolve();
  });

  test("accept() yields one Duplex per dialed connection", async (h) => {
    const clients: Duplex[] = [];
    for (let i = 0; i < 3; i++) {
      const c = await h.dial();
      await c.write(new Uint8Array([i]));
      clients.push(c);
    }
    const byId = new Map<number, Duplex>();
    for (let i = 0; i < 3; i++) {
      const s = await h.accept();
      const [id] = await withTimeout(readExactly(s, 1), STEP_MS, "id");
      assert.ok(!byId.has(id!), `connection ${id} accepted twice`);
      byId.set(id!, s);
    }
    assert.deepEqual([...byId.keys()].sort(), [0, 1, 2]);
    // Each accepted duplex talks to its own client.
    for (const [id, s] of byId) await s.write(new Uint8Array([100 + id]));
    for (let i = 0; i < 3; i++) {
      const back = await withTimeout(readExactly(clients[i]!, 1), STEP_MS, "");
      assert.equal(back[0], 100 + i);
    }
  });

  test("accepted Duplexes carry the peer's remoteAddress", async (h) => {
    const { server } = await h.pair();
    assert.equal(typeof server.remoteAddress, "string");
    assert.ok(server.remoteAddress!.length > 0);
  });

  test("bytes flow both ways", async (h) => {
    const { client, server } = await h.pair();
    await client.write(enc.encode("ping"));
    const got = await withTimeout(readExactly(server, 4), STEP_MS, "ping");
    assert.equal(dec.decode(got), "ping");
    await server.write(enc.encode("pong!"));
    const back = await withTimeout(readExactly(client, 5), STEP_MS, "pong");
    assert.equal(dec.decode(back), "pong!");
  });

  test("a 1 MiB write arrives whole and in order, both ways v3:[MQTT-7.1.1-1] v3:[MQTT-7.1.1-2] v5:[MQTT-4.2.0-1]", async (h) => {
    const { client, server } = await h.pair();
    const n = 1024 * 1024;
    for (
      const [from, to, seed] of [[client, server, 1], [
        server,
        client,
        2,
      ]] as const
    ) {
      const data = pattern(n, seed);
      // The writer may wait for the reader (backpressure): both at once.
      const [, got] = await withTimeout(
        Promise.all([from.write(data), readExactly(to, n)]),
        STEP_MS * 2,
        "1 MiB",
      );
      assert.ok(got.every((b, i) => b === data[i]), "bytes differ");
    }
  });

  test("many small writes arrive in order", async (h) => {
    const { client, server } = await h.pair();
    const writes = 2000;
    const sizes = Array.from({ length: writes }, (_, i) => 1 + (i * 7) % 13);
    const total = sizes.reduce((a, b) => a + b, 0);
    const all = pattern(total, 3);
    const writer = (async () => {
      let off = 0;
      for (const size of sizes) {
        await client.write(all.subarray(off, off + size));
        off += size;
      }
    })();
    const [, got] = await withTimeout(
      Promise.all([writer, readExactly(server, total)]),
      STEP_MS * 2,
      "small writes",
    );
    assert.ok(got.every((b, i) => b === all[i]), "bytes differ");
  });

  test("a writer's close() is EOF for the reader, after the bytes written before it", async (h) => {
    for (const side of ["client", "server"] as const) {
      const pair = await h.pair();
      const closing = pair[side];
      const other = side === "client" ? pair.server : pair.client;
      await closing.write(enc.encode(`bye from ${side}`));
      closing.close();
      const rest = await withTimeout(readToEnd(other), STEP_MS, "EOF");
      assert.equal(dec.decode(rest), `bye from ${side}`);
    }
  });

  test("read() after EOF returns null again", async (h) => {
    const { client, server } = await h.pair();
    client.close();
    assert.equal(await withTimeout(server.read(), STEP_MS, "EOF"), null);
    assert.equal(await withTimeout(server.read(), STEP_MS, "EOF"), null);
  });

  test("a Duplex's close() ends a read pending on it with null, and is idempotent", async (h) => {
    const { client, server } = await h.pair();
    const pending = server.read();
    server.close();
    server.close();
    assert.equal(await withTimeout(pending, STEP_MS, "pending read"), null);
    assert.equal(
      await withTimeout(readToEnd(client), STEP_MS, "EOF").then((b) =>
        b.length
      ),
      0,
    );
  });

  test("close() ends the accept iteration and is idempotent", async (h) => {
    // A step of the iteration is pending when the listener closes.
    const ended = h.acceptor.ended();
    h.listener.close();
    h.listener.close();
    assert.equal(await ended, true);
  });

  test("connections accepted before close() stay usable", async (h) => {
    const { client, server } = await h.pair();
    h.listener.close();
    assert.equal(await h.acceptor.ended(), true);
    await client.write(enc.encode("still"));
    const got = await withTimeout(readExactly(server, 5), STEP_MS, "bytes");
    assert.equal(dec.decode(got), "still");
    await server.write(enc.encode("here"));
    const back = await withTimeout(readExactly(client, 4), STEP_MS, "bytes");
    assert.equal(dec.decode(back), "here");
    server.close();
    assert.equal(
      (await withTimeout(readToEnd(client), STEP_MS, "EOF")).length,
      0,
    );
  });

  for (const what of ignore) {
    if (!cases.has(what)) throw new Error(`no listener case "${what}"`);
  }
}
