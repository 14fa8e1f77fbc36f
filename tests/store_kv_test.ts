import assert from "node:assert/strict";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { KV_FILE_NAME, KvStore } from "../broker/store/kv.ts";
import { isSessionRecord } from "../broker/store/_kv_records.ts";
import { sha256 } from "../broker/store/_sha256.ts";
import type { Store } from "../broker/store/store.ts";
import { message, outgoing, session, storeSuite } from "./store_suite.ts";

storeSuite({
  name: "KvStore",
  async open() {
    const dir = await Deno.makeTempDir({ prefix: "kite_kv_" });
    let store: Store = await KvStore.open(dir);
    return {
      get store() {
        return store;
      },
      async reopen() {
        await store.close();
        store = await KvStore.open(dir);
        return store;
      },
      async dispose() {
        await store.close();
        await Deno.remove(dir, { recursive: true });
      },
    };
  },
});

Deno.test("isSessionRecord() accepts a record with an owner or without, and refuses a malformed owner", () => {
  assert.ok(isSessionRecord(session("a")));
  assert.ok(isSessionRecord(session("a", { owner: {} })));
  assert.ok(isSessionRecord(session("a", { owner: { username: "alice" } })));
  assert.ok(!isSessionRecord({ ...session("a"), owner: "alice" }));
  assert.ok(!isSessionRecord({ ...session("a"), owner: { username: 7 } }));
});

/** Runs `fn` with a fresh store directory, removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kite_kv_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Opens the KV file of a (closed) store directly. */
async function raw<T>(dir: string, fn: (kv: Deno.Kv) => Promise<T>) {
  const kv = await Deno.openKv(`${dir}/${KV_FILE_NAME}`);
  try {
    return await fn(kv);
  } finally {
    kv.close();
  }
}

async function keys(kv: Deno.Kv, prefix: Deno.KvKey): Promise<Deno.KvKey[]> {
  const out: Deno.KvKey[] = [];
  for await (const e of kv.list({ prefix })) out.push(e.key);
  return out;
}

/** Captures the ["kite", "store"] log records while `fn` runs. */
async function captureLogs(fn: () => Promise<void>): Promise<LogRecord[]> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { capture: (r) => records.push(r) },
    loggers: [
      { category: ["kite", "store"], sinks: ["capture"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
  });
  try {
    await fn();
  } finally {
    await reset();
  }
  return records;
}

Deno.test("sha256() matches WebCrypto", async () => {
  for (const n of [0, 3, 55, 56, 64, 65, 1000, 70_000]) {
    const data = new Uint8Array(n).map((_, i) => (i * 31 + 7) & 255);
    const expected = new Uint8Array(
      await crypto.subtle.digest("SHA-256", data),
    );
    assert.deepEqual(sha256(data), expected, `length ${n}`);
  }
});

Deno.test("KvStore.commit() groups the mutations of one turn into few atomic operations", async () => {
  await withDir(async (dir) => {
    const store = await KvStore.open(dir);
    try {
      store.putSession(session("c"));
      for (let i = 0; i < 2999; i++) store.putOutgoing("c", outgoing(i));
      await store.commit();
      // 3000 mutations: three operations of at most 1000.
      assert.equal(store.atomicCommits, 3);
      // A fan-in QoS 1 message stored and acknowledged before the flush
      // costs no write at all.
      store.putOutgoing("c", outgoing(5000));
      store.deleteOutgoing("c", 5000);
      await store.commit();
      assert.equal(store.atomicCommits, 3);
      // Rewritten in one turn: only the last state is written.
      store.putOutgoing("c", outgoing(1, { state: "sent", packetId: 1 }));
      store.putOutgoing("c", outgoing(1, { state: "pubrec", packetId: 1 }));
      store.deleteOutgoing("c", 2);
      await store.commit();
      assert.equal(store.atomicCommits, 4);
    } finally {
      await store.close();
    }
    const loaded = await raw(dir, async (kv) => {
      const v = await kv.get<{ state: string }>(["kite", "out", "c", 1]);
      return [v.value?.state, (await keys(kv, ["kite", "out"])).length];
    });
    assert.deepEqual(loaded, ["pubrec", 2998]);
  });
});

Deno.test("KvStore.commit() lingers for acks when records are acknowledged right after they are stored", async () => {
  await withDir(async (dir) => {
    const store = await KvStore.open(dir);
    try {
      store.putSession(session("c"));
      await store.commit();
      /** A turn of fan-in: 100 messages stored, acked in a later task. */
      const round = async (base: number) => {
        for (let i = 0; i < 100; i++) {
          store.putOutgoing("c", outgoing(base + i));
        }
        const committed = store.commit();
        await new Promise((r) => setTimeout(r, 0)); // the acks' I/O turn
        for (let i = 0; i < 100; i++) store.deleteOutgoing("c", base + i);
        await committed;
      };
      // At first the puts are written, then deleted by the acks...
      await round(0);
      await round(100);
      const before = store.atomicCommits;
      assert.ok(before >= 2);
      // ...after which the store waits for the acks: nothing is written.
      // (Without lingering: 2 commits a round, 16 in all. A round whose ack
      // turn comes later than 20 ms, on a starved CPU, costs about 4.)
      for (let r = 2; r < 10; r++) await round(r * 100);
      assert.ok(
        store.atomicCommits - before <= 8,
        `${store.atomicCommits - before} more commits`,
      );
      // A record nobody acknowledges is still written, and commit() resolves.
      store.putOutgoing("c", outgoing(5000));
      await store.commit();
    } finally {
      await store.close();
    }
    const left = await raw(dir, (kv) => keys(kv, ["kite", "out"]));
    assert.deepEqual(left, [["kite", "out", "c", 5000]]);
  });
});

Deno.test("KvStore.commit() splits big records over operations within KV limits", async () => {
  await withDir(async (dir) => {
    const store = await KvStore.open(dir);
    try {
      // 20 × 256 KiB = 5 MiB in one turn: far past 800 KiB per operation.
      const big = new Uint8Array(256 * 1024).fill(1);
      for (let i = 0; i < 20; i++) {
        store.putRetained(`t/${i}`, message(`t/${i}`, "", { payload: big }));
      }
      await store.commit();
      assert.ok(store.atomicCommits >= 7, `${store.atomicCommits} commits`);
      const { retained } = await store.load();
      assert.equal(retained.length, 20);
      for (const m of retained) assert.deepEqual(m.payload, big);
    } finally {
      await store.close();
    }
  });
});

Deno.test("KvStore.putRetained() replacing a chunked record removes its old chunks", async () => {
  await withDir(async (dir) => {
    let store = await KvStore.open(dir);
    const big = new Uint8Array(256 * 1024);
    store.putRetained("a", message("a", "", { payload: big }));
    await store.commit();
    store.putRetained("a", message("a", "", { payload: big }));
    await store.commit();
    await store.close();
    assert.equal(
      (await raw(dir, (kv) => keys(kv, ["kite", "chunk"]))).length,
      5,
    );
    // After a restart the store still knows where the chunks are.
    store = await KvStore.open(dir);
    await store.load();
    store.putRetained("a", undefined);
    await store.close();
    assert.deepEqual(await raw(dir, (kv) => keys(kv, ["kite"])), []);
  });
});

Deno.test("KvStore.putRetained() hashes a long topic into the key", async () => {
  await withDir(async (dir) => {
    const topic = "t/".repeat(1000);
    const store = await KvStore.open(dir);
    store.putRetained(topic, message(topic, "x"));
    store.putRetained("short", message("short", "y"));
    await store.close();
    const found = await raw(dir, (kv) => keys(kv, ["kite", "retained"]));
    assert.deepEqual(found, [
      ["kite", "retained", sha256(new TextEncoder().encode(topic))],
      ["kite", "retained", "short"],
    ]);
  });
});

Deno.test("KvStore.load() logs and skips corrupt records, and removes orphans", async () => {
  await withDir(async (dir) => {
    let store = await KvStore.open(dir);
    store.putRetained("good", message("good", "ok"));
    store.putRetained(
      "chunked",
      message("chunked", "", {
        payload: new Uint8Array(200_000),
      }),
    );
    store.putSession(session("c"));
    store.putOutgoing("c", outgoing(1));
    await store.close();
    const bad: Deno.KvKey[] = [
      ["kite", "retained", "wrong-shape"],
      ["kite", "retained", "other-topic"],
      ["kite", "session", "garbage"],
      ["kite", "out", "c", 2],
      ["kite", "q2", "c", "not-a-number"],
      ["kite", "chunk", 17, 0],
    ];
    await raw(dir, async (kv) => {
      await kv.set(bad[0]!, "not a message");
      await kv.set(bad[1]!, message("mismatch", "x"));
      await kv.set(bad[2]!, { clientId: 42 });
      // The records of an unreadable session stay (not orphans).
      await kv.set(["kite", "out", "garbage", 1], outgoing(1));
      await kv.set(bad[3]!, { seq: 2, state: "lost" });
      await kv.set(bad[4]!, true);
      await kv.set(bad[5]!, new Uint8Array(1));
      // A missing chunk makes the chunked retained message unreadable.
      const chunks = await keys(kv, ["kite", "chunk"]);
      await kv.delete(chunks.find((k) => k[3] === 1)!);
      // Orphans: records of a client without session, a chunk nobody uses.
      await kv.set(["kite", "out", "nobody", 1], outgoing(1));
      await kv.set(["kite", "q2", "nobody", 1], true);
      await kv.set(["kite", "chunk", "unused", 0], new Uint8Array(3));
    });
    let state;
    store = await KvStore.open(dir);
    const logs = await captureLogs(async () => {
      state = await store.load();
      await store.close();
    });
    assert.deepEqual(state, {
      retained: [message("good", "ok")],
      sessions: [{
        record: session("c"),
        outgoing: [outgoing(1)],
        incomingQos2: [],
      }],
    });
    const skipped = logs.filter((r) => r.level === "warning").map((r) =>
      r.properties.key
    );
    for (
      const key of [...bad, ["kite", "retained", "chunked"]]
    ) {
      assert.ok(
        skipped.some((k) => JSON.stringify(k) === JSON.stringify(key)),
        `${JSON.stringify(key)} logged`,
      );
    }
    const left = await raw(dir, async (kv) => ({
      out: await keys(kv, ["kite", "out", "c"]),
      kept: await keys(kv, ["kite", "out", "garbage"]),
      q2: await keys(kv, ["kite", "q2"]),
      unused: await keys(kv, ["kite", "chunk", "unused"]),
    }));
    assert.deepEqual(left.out, [["kite", "out", "c", 1], [
      "kite",
      "out",
      "c",
      2,
    ]]);
    assert.deepEqual(left.q2, [["kite", "q2", "c", "not-a-number"]]);
    assert.deepEqual(left.kept, [["kite", "out", "garbage", 1]]);
    assert.deepEqual(left.unused, []);
  });
});

Deno.test("KvStore put methods throw once the store is closed", async () => {
  await withDir(async (dir) => {
    const store = await KvStore.open(dir);
    await store.close();
    assert.throws(() => store.putSession(session("c")), /closed/);
    await store.close(); // idempotent
  });
});
