// ConnDuplex: the broker's lean socket reader. Idle connections read into
// 64-byte slots of a shared slab; these tests check that the slots never
// mix one connection's bytes with another's, also when slots are recycled.
import assert from "node:assert/strict";
import { ConnDuplex } from "../codec/_conn_duplex.ts";
import { coreReadRid } from "../codec/_core_read.ts";
import type { Duplex } from "../codec/duplex.ts";
import { Broker } from "../broker/mod.ts";
import type { Listener, ListenerAddr } from "../broker/listen/listener.ts";
import { Client } from "../client/mod.ts";
import { withTimeout } from "./_helpers.ts";

interface Pair {
  server: ConnDuplex;
  client: Deno.TcpConn;
}

async function pairs(
  listener: Deno.TcpListener,
  n: number,
): Promise<Pair[]> {
  const out: Pair[] = [];
  for (let i = 0; i < n; i++) {
    const [client, server] = await Promise.all([
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
      listener.accept(),
    ]);
    out.push({ server: new ConnDuplex(server), client });
  }
  return out;
}

/** Reads from `d` until `len` bytes arrived. */
async function readBytes(d: ConnDuplex, len: number): Promise<Uint8Array> {
  const got = new Uint8Array(len);
  let have = 0;
  while (have < len) {
    const chunk = await d.read();
    assert.notEqual(chunk, null, `EOF after ${have} of ${len} bytes`);
    got.set(chunk!, have);
    have += chunk!.length;
  }
  return got;
}

function pattern(seed: number, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = (seed * 31 + i * 7) & 0xff;
  return b;
}

Deno.test("ConnDuplex returns every byte of a large write in order, growing and shrinking its buffer", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [p] = await pairs(listener, 1);
  try {
    for (const len of [3, 512, 40_000, 5, 64, 63, 65, 1]) {
      const data = pattern(len, len);
      const [, got] = await Promise.all([
        p!.client.write(data),
        readBytes(p!.server, len),
      ]);
      assert.deepEqual(got, data, `a ${len}-byte write`);
    }
  } finally {
    p!.client.close();
    p!.server.close();
  }
});

Deno.test("ConnDuplex keeps connections' bytes apart while idle read slots are recycled", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const live = await pairs(listener, 40);
  const all: Pair[] = [...live];
  try {
    // A first small read moves every connection to a 64-byte slot.
    await Promise.all(live.map(async (p, i) => {
      const [, got] = await Promise.all([
        p.client.write(pattern(i, 10)),
        readBytes(p.server, 10),
      ]);
      assert.deepEqual(got, pattern(i, 10));
    }));
    // Half close with a read pending (its slot is freed when that read
    // ends), the other half after the peer's EOF.
    const pending = live.slice(0, 20).map((p) => p.server.read());
    for (const p of live.slice(0, 20)) p.server.close();
    for (const r of await Promise.all(pending)) assert.equal(r, null);
    for (const p of live.slice(20, 30)) p.client.close();
    for (const p of live.slice(20, 30)) {
      assert.equal(await p.server.read(), null, "EOF after the peer closed");
    }
    // New connections take the freed slots; every live one then reads
    // several small messages at once, each its own bytes only.
    const fresh = await pairs(listener, 30);
    all.push(...fresh);
    const now = [...live.slice(30), ...fresh];
    for (let round = 0; round < 5; round++) {
      await Promise.all(now.map(async (p, i) => {
        const seed = 1000 * round + i;
        const data = pattern(seed, 1 + ((seed * 13) % 60));
        const [, got] = await Promise.all([
          p.client.write(data),
          readBytes(p.server, data.length),
        ]);
        assert.deepEqual(got, data, `connection ${i}, round ${round}`);
      }));
    }
  } finally {
    for (const p of all) {
      try {
        p.client.close();
      } catch {
        // closed above
      }
      p.server.close();
    }
  }
});

Deno.test("ConnDuplex chunks stay intact after later reads on any connection", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const ps = await pairs(listener, 8);
  try {
    // Many small reads (small chunks share receive slabs) and a few large
    // ones, kept and only checked at the end.
    const kept: { chunk: Uint8Array; want: Uint8Array }[] = [];
    for (let round = 0; round < 200; round++) {
      await Promise.all(ps.map(async (p, i) => {
        const len = round % 50 === 49 ? 3000 : 1 + ((round * 7 + i) % 120);
        const data = pattern(round * 8 + i, len);
        await p.client.write(data);
        let have = 0;
        while (have < len) {
          const chunk = await p.server.read();
          assert.notEqual(chunk, null);
          kept.push({
            chunk: chunk!,
            want: data.subarray(have, have + chunk!.length),
          });
          have += chunk!.length;
        }
      }));
    }
    for (const [k, { chunk, want }] of kept.entries()) {
      assert.deepEqual(chunk, want, `chunk ${k}`);
    }
  } finally {
    for (const p of ps) {
      p.client.close();
      p.server.close();
    }
  }
});

/**
 * A socket whose writes take at most `max` bytes each (like a full send
 * buffer); `onWrite` counts them.
 */
function shortWrites(
  conn: Deno.TcpConn,
  max: number,
  onWrite: () => void,
): Deno.Conn {
  return new Proxy(conn, {
    get(target, key) {
      if (key === "write") {
        return (p: Uint8Array) => {
          onWrite();
          return target.write(p.subarray(0, Math.min(p.length, max)));
        };
      }
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** A TCP listener whose connections' socket writes are short. */
class ShortWriteListener implements Listener {
  #l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  readonly addr: ListenerAddr = {
    protocol: "mqtt",
    hostname: "127.0.0.1",
    port: this.#l.addr.port,
  };
  writes = 0;
  async *accept(): AsyncIterable<Duplex> {
    for await (const conn of this.#l) {
      yield new ConnDuplex(shortWrites(conn, 7, () => this.writes++));
    }
  }
  #closed = false;
  close(): void {
    if (!this.#closed) this.#l.close();
    this.#closed = true;
  }
}

Deno.test("Broker writes the rest after a short socket write: whole packets, in order (writeRaw)", async () => {
  const broker = new Broker({ sysInterval: 0, enablePersistence: false });
  await broker.start();
  const listener = new ShortWriteListener();
  broker.serve(listener);
  const sub = new Client({ port: listener.addr.port, clientId: "short-sub" });
  const pub = new Client({ port: listener.addr.port, clientId: "short-pub" });
  try {
    await sub.connect();
    await pub.connect();
    const got: string[] = [];
    const all = Promise.withResolvers<void>();
    const big = "x".repeat(5000);
    const sent = ["a", big, "b", "c".repeat(300)];
    await sub.subscribe("t/short", 1, (m) => {
      got.push(m.payloadText);
      if (got.length === sent.length) all.resolve();
    });
    for (const p of sent) await pub.publish("t/short", p, { qos: 1 });
    await withTimeout(all.promise, 5000, "all 4 deliveries");
    assert.deepEqual(got, sent);
    // 5,000 bytes in 7-byte writes: the short-write path really ran.
    assert.ok(listener.writes > 700, `${listener.writes} socket writes`);
  } finally {
    await sub.disconnect().catch(() => {});
    await pub.disconnect().catch(() => {});
    await broker.close(); // closes the listener it serves
  }
});

Deno.test("ConnDuplex reads a Deno TCP connection through the read op (no per-read Set), and a wrapped one through its own read", async () => {
  // codec/_core_read.ts: Conn.read's Set of pending reads made old-generation
  // garbage on every other read of a long-lived connection.
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [client, server] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  assert.ok(coreReadRid(server) >= 0, "this Deno has the read op");
  let wrappedReads = 0;
  const wrapped = new Proxy(server, {
    get(target, key) {
      if (key === "read") {
        return (b: Uint8Array) => {
          wrappedReads++;
          return target.read(b);
        };
      }
      const v = Reflect.get(target, key);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
  assert.equal(coreReadRid(wrapped), -1, "a proxy's read is its own");
  const plain: Deno.Conn = Object.create(server, {
    read: { value: (b: Uint8Array) => server.read(b) },
  });
  assert.equal(coreReadRid(plain), -1, "an override of read is kept");
  for (const [conn, viaOp] of [[server, true], [wrapped, false]] as const) {
    const before = wrappedReads;
    const d = new ConnDuplex(conn);
    const data = pattern(9, 3000);
    const [, got] = await Promise.all([client.write(data), readBytes(d, 3000)]);
    assert.deepEqual(got, data);
    assert.equal(wrappedReads > before, !viaOp);
  }
  // EOF is null through the op, as through conn.read.
  client.closeWrite();
  const d = new ConnDuplex(server);
  assert.equal(await d.read(), null);
  client.close();
  d.close();
});

Deno.test("ConnDuplex.readCount() reads like readRaw() and resolves with 0 at EOF, through the read op and through a wrapper's own read", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  for (const wrap of [false, true]) {
    const [client, server] = await Promise.all([
      Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
      listener.accept(),
    ]);
    const conn: Deno.Conn = wrap
      ? Object.create(server, {
        read: { value: (b: Uint8Array) => server.read(b) },
      })
      : server;
    assert.equal(coreReadRid(conn) >= 0, !wrap);
    const d = new ConnDuplex(conn);
    const data = pattern(5, 200);
    await client.write(data);
    const got: number[] = [];
    while (got.length < data.length) {
      const n = await d.readCount();
      assert.ok(n > 0, `a count, not EOF, while data comes (${n})`);
      got.push(...d.take(n));
    }
    assert.deepEqual(Uint8Array.from(got), data);
    client.closeWrite();
    assert.equal(await d.readCount(), 0, "EOF");
    d.ended();
    client.close();
    d.close();
  }
});
