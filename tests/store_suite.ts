/**
 * The shared `Store` test suite: `storeSuite(harness)` registers the same
 * `Deno.test` cases for every `Store` implementation (memory and Deno KV).
 *
 * @module
 */

import assert from "node:assert/strict";
import type {
  OutgoingRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "../broker/store/store.ts";

/** A store under test, with a way to "restart" it. */
export interface StoreFixture {
  store: Store;
  /**
   * Returns the store as a restarted broker would see it: the KV store is
   * closed and the same directory opened again; the memory store returns
   * itself.
   */
  reopen(): Promise<Store>;
  /** Closes the current store and removes what it left behind. */
  dispose(): Promise<void>;
}

/** How the suite gets fresh stores of one implementation. */
export interface StoreHarness {
  /** Class name, the prefix of every test name (`KvStore`). */
  name: string;
  /** A new, empty store. */
  open(): Promise<StoreFixture>;
}

const enc = new TextEncoder();

/** A retained message fixture. */
export function message(
  topic: string,
  text: string,
  extra: Partial<StoredMessage> = {},
): StoredMessage {
  return { topic, payload: enc.encode(text), qos: 1, retain: true, ...extra };
}

/** A session record fixture. */
export function session(
  clientId: string,
  extra: Partial<SessionRecord> = {},
): SessionRecord {
  return {
    clientId,
    protocolVersion: 5,
    expiryInterval: 3600,
    subscriptions: [{ filter: "a/#", qos: 1 }],
    ...extra,
  };
}

/** An outgoing record fixture. */
export function outgoing(
  seq: number,
  extra: Partial<OutgoingRecord> = {},
): OutgoingRecord {
  return {
    seq,
    state: "queued",
    qos: 1,
    message: message("a/b", `m${seq}`, { retain: false }),
    ...extra,
  };
}

/** Rejects if `p` takes longer than 5 s; the timer is always cleared. */
async function bounded<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: timed out`)), 5000);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Registers the shared cases for one implementation. */
export function storeSuite(h: StoreHarness): void {
  const test = (what: string, fn: (f: StoreFixture) => Promise<void>) =>
    Deno.test(`${h.name}.${what}`, async () => {
      const f = await h.open();
      try {
        await fn(f);
      } finally {
        await f.dispose();
      }
    });

  test("putRetained() sets, replaces and clears a topic's message", async (f) => {
    const s = f.store;
    s.putRetained("a/b", message("a/b", "one"));
    s.putRetained("a/c", message("a/c", "c"));
    await s.commit();
    s.putRetained("a/b", message("a/b", "two", { qos: 2 }));
    s.putRetained("a/c", undefined);
    await s.commit();
    const { retained } = await (await f.reopen()).load();
    assert.deepEqual(retained, [message("a/b", "two", { qos: 2 })]);
  });

  test("putSession() keeps the session owner: a user, anonymous, or none (an older Kite)", async (f) => {
    const s = f.store;
    s.putSession(session("user", { owner: { username: "alice" } }));
    s.putSession(session("anon", { owner: {} }));
    s.putSession(session("legacy"));
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    const byId = new Map(sessions.map((x) => [x.record.clientId, x.record]));
    assert.deepEqual(byId.get("user")?.owner, { username: "alice" });
    assert.deepEqual(byId.get("anon")?.owner, {});
    assert.equal(byId.get("legacy")?.owner, undefined);
    assert.ok(!("owner" in byId.get("legacy")!));
  });

  test("putSession() keeps the bridge flag of a session (Mosquitto's try_private)", async (f) => {
    const s = f.store;
    s.putSession(session("b", { protocolVersion: 4, bridge: true }));
    s.putSession(session("plain", { protocolVersion: 4 }));
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    const byId = new Map(sessions.map((x) => [x.record.clientId, x.record]));
    assert.equal(byId.get("b")?.bridge, true);
    assert.equal(byId.get("plain")?.bridge, undefined);
  });

  test("putSession() creates and replaces a session", async (f) => {
    const s = f.store;
    s.putSession(session("c1"));
    s.putSession(session("c2", { protocolVersion: 4 }));
    await s.commit();
    const replaced = session("c1", {
      expiryInterval: 10,
      disconnectedAt: 1_700_000_000_000,
      subscriptions: [
        {
          filter: "x/+",
          qos: 2,
          noLocal: true,
          retainAsPublished: true,
          retainHandling: 2,
          subscriptionIdentifier: 7,
        },
        { filter: "$share/g/y", qos: 0 },
      ],
      will: { ...message("w", "bye", { qos: 1 }), dueAt: 1_700_000_005_000 },
    });
    s.putSession(replaced);
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    const byId = new Map(sessions.map((x) => [x.record.clientId, x]));
    assert.equal(sessions.length, 2);
    assert.deepEqual(byId.get("c1"), {
      record: replaced,
      outgoing: [],
      incomingQos2: [],
    });
    assert.deepEqual(
      byId.get("c2")?.record,
      session("c2", {
        protocolVersion: 4,
      }),
    );
  });

  test("deleteSession() removes the session with its outgoing and QoS 2 ids", async (f) => {
    let s = f.store;
    s.putSession(session("gone"));
    s.putSession(session("kept"));
    for (let i = 1; i <= 5; i++) {
      s.putOutgoing("gone", outgoing(i));
      s.putOutgoing("kept", outgoing(i));
    }
    s.putIncomingQos2("gone", 9);
    s.putIncomingQos2("kept", 9);
    await s.commit();
    // After a restart too: the store must know what the session owns.
    s = await f.reopen();
    await s.load();
    s.deleteSession("gone");
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    assert.deepEqual(sessions.map((x) => x.record.clientId), ["kept"]);
    assert.equal(sessions[0]?.outgoing.length, 5);
    assert.deepEqual(sessions[0]?.incomingQos2, [9]);
    // A new session with the same id starts empty.
    s = f.store;
    s.putSession(session("gone"));
    await s.commit();
    const again = (await (await f.reopen()).load()).sessions.find((x) =>
      x.record.clientId === "gone"
    );
    assert.deepEqual(again?.outgoing, []);
    assert.deepEqual(again?.incomingQos2, []);
  });

  test("deleteSession() and a new session of the same client in one turn keep only the new one's records", async (f) => {
    let s = f.store;
    s.putSession(session("c"));
    for (let i = 1; i <= 4; i++) s.putOutgoing("c", outgoing(i));
    s.putIncomingQos2("c", 7);
    await s.commit();
    s = await f.reopen();
    await s.load();
    // Not yet written: a put the session's delete must cancel.
    s.putOutgoing("c", outgoing(5));
    s.deleteSession("c");
    // The client is back before the flush: seq 2 again, with new content.
    s.putSession(session("c", { expiryInterval: 60 }));
    s.putOutgoing("c", outgoing(2, { state: "sent", packetId: 11 }));
    s.putIncomingQos2("c", 8);
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    assert.equal(sessions.length, 1);
    assert.equal(sessions[0]?.record.expiryInterval, 60);
    assert.deepEqual(sessions[0]?.outgoing, [
      outgoing(2, { state: "sent", packetId: 11 }),
    ]);
    assert.deepEqual(sessions[0]?.incomingQos2, [8]);
    // And once more after that flush: the index still knows seq 2.
    s = f.store;
    s.deleteSession("c");
    await s.commit();
    assert.deepEqual((await (await f.reopen()).load()).sessions, []);
  });

  test("putOutgoing() keeps messages in seq order and replaces by seq", async (f) => {
    const s = f.store;
    s.putSession(session("c"));
    for (const seq of [5, 1, 300, 42, 2]) s.putOutgoing("c", outgoing(seq));
    await s.commit();
    s.putOutgoing("c", outgoing(42, { state: "sent", packetId: 7 }));
    s.putOutgoing("c", outgoing(300, { state: "pubrec", packetId: 8, qos: 2 }));
    s.deleteOutgoing("c", 2);
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    assert.deepEqual(sessions[0]?.outgoing, [
      outgoing(1),
      outgoing(5),
      outgoing(42, { state: "sent", packetId: 7 }),
      outgoing(300, { state: "pubrec", packetId: 8, qos: 2 }),
    ]);
  });

  test("putIncomingQos2() records ids until deleteIncomingQos2()", async (f) => {
    const s = f.store;
    s.putSession(session("c"));
    for (const id of [65535, 1, 300]) s.putIncomingQos2("c", id);
    s.putIncomingQos2("c", 1); // idempotent
    await s.commit();
    s.deleteIncomingQos2("c", 300);
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    assert.deepEqual(sessions[0]?.incomingQos2, [1, 65535]);
  });

  test("commit() covers every earlier call, also without pending writes", async (f) => {
    const s = f.store;
    await s.commit();
    s.putSession(session("c"));
    const first = s.commit();
    s.putOutgoing("c", outgoing(1));
    const second = s.commit();
    await Promise.all([first, second]);
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    assert.deepEqual(sessions[0]?.outgoing, [outgoing(1)]);
  });

  test("deleteOutgoing() after putOutgoing() in one turn leaves nothing", async (f) => {
    const s = f.store;
    s.putSession(session("c"));
    for (let i = 1; i <= 100; i++) {
      s.putOutgoing("c", outgoing(i));
      s.deleteOutgoing("c", i);
      s.putIncomingQos2("c", i);
      s.deleteIncomingQos2("c", i);
    }
    s.putRetained("t", message("t", "x"));
    s.putRetained("t", undefined);
    await s.commit();
    const state = await (await f.reopen()).load();
    assert.deepEqual(state.retained, []);
    assert.deepEqual(state.sessions[0]?.outgoing, []);
    assert.deepEqual(state.sessions[0]?.incomingQos2, []);
  });

  test("commit() resolves when what it waits for cancelled out", async (f) => {
    const s = f.store;
    s.putSession(session("c"));
    s.putOutgoing("c", outgoing(1));
    const first = s.commit();
    s.deleteOutgoing("c", 1); // acknowledged before the flush
    await bounded(first, "commit() after put + delete");
    // The same while an earlier batch is being written.
    s.putOutgoing("c", outgoing(2));
    const busy = s.commit();
    await Promise.resolve();
    s.putOutgoing("c", outgoing(3));
    const second = s.commit();
    s.deleteOutgoing("c", 3);
    await bounded(Promise.all([busy, second]), "commit() during a flush");
    const { sessions } = await (await f.reopen()).load();
    assert.deepEqual(sessions[0]?.outgoing, [outgoing(2)]);
  });

  test("load() returns v5 properties and binary fields intact", async (f) => {
    const s = f.store;
    const m = message("p/q", "", {
      qos: 2,
      expiresAt: 1_800_000_000_000,
      properties: {
        payloadFormatIndicator: 1,
        messageExpiryInterval: 60,
        contentType: "text/plain",
        responseTopic: "r/s",
        correlationData: new Uint8Array([0, 1, 2, 255]),
        userProperties: [["k", "v"], ["k", "v2"], ["ü", "日本"]],
      },
    });
    s.putRetained("p/q", m);
    s.putSession(session("c"));
    s.putOutgoing(
      "c",
      outgoing(1, { subscriptionIdentifiers: [3, 4], message: m }),
    );
    await s.commit();
    const { retained, sessions } = await (await f.reopen()).load();
    assert.deepEqual(retained, [m]);
    assert.deepEqual(
      sessions[0]?.outgoing,
      [outgoing(1, { subscriptionIdentifiers: [3, 4], message: m })],
    );
  });

  test("load() returns copies the caller may change", async (f) => {
    const s = f.store;
    s.putRetained("a", message("a", "x"));
    s.putSession(session("c"));
    s.putOutgoing("c", outgoing(1));
    await s.commit();
    const first = await s.load();
    first.retained[0]!.topic = "changed";
    first.retained[0]!.payload[0] = 0;
    first.sessions[0]!.record.subscriptions.length = 0;
    first.sessions[0]!.outgoing.length = 0;
    const second = await s.load();
    assert.deepEqual(second.retained, [message("a", "x")]);
    assert.deepEqual(second.sessions[0]?.record, session("c"));
    assert.deepEqual(second.sessions[0]?.outgoing, [outgoing(1)]);
  });

  test("putRetained() keeps a 256 KiB payload, replaces and clears it", async (f) => {
    let s = f.store;
    const big = new Uint8Array(256 * 1024).map((_, i) => (i * 7) & 255);
    const m = message("big", "", { payload: big });
    s.putRetained("big", m);
    s.putSession(session("c"));
    s.putOutgoing("c", outgoing(1, { message: m }));
    await s.commit();
    let state = await (s = await f.reopen()).load();
    assert.deepEqual(state.retained, [m]);
    assert.deepEqual(state.sessions[0]?.outgoing, [
      outgoing(1, { message: m }),
    ]);
    // Replace by a small one, then by a bigger one, then clear.
    s.putRetained("big", message("big", "small"));
    await s.commit();
    assert.deepEqual((await (s = await f.reopen()).load()).retained, [
      message("big", "small"),
    ]);
    const bigger = message("big", "", { payload: new Uint8Array(300_000) });
    s.putRetained("big", bigger);
    await s.commit();
    assert.deepEqual((await (s = await f.reopen()).load()).retained, [bigger]);
    s.putRetained("big", undefined);
    s.deleteOutgoing("c", 1);
    await s.commit();
    state = await (await f.reopen()).load();
    assert.deepEqual(state.retained, []);
    assert.deepEqual(state.sessions[0]?.outgoing, []);
  });

  test("putRetained() keeps a payload that is a view into a larger buffer", async (f) => {
    const s = f.store;
    const buffer = new Uint8Array(1 << 20).fill(9);
    const m = message("v", "", { payload: buffer.subarray(100, 110) });
    s.putRetained("v", m);
    await s.commit();
    const { retained } = await (await f.reopen()).load();
    assert.deepEqual(retained[0]?.payload, new Uint8Array(10).fill(9));
  });

  test("putOutgoing() stores one message shared by many sessions", async (f) => {
    const s = f.store;
    const chunk = new Uint8Array(4096).map((_, i) => i & 255);
    const shared = message("fan/out", "", {
      retain: false,
      payload: chunk.subarray(10, 20),
      properties: { userProperties: [["k", "v"]] },
    });
    for (let c = 0; c < 20; c++) {
      s.putSession(session(`c${c}`));
      s.putOutgoing(`c${c}`, outgoing(1, { message: shared }));
    }
    await s.commit();
    const { sessions } = await (await f.reopen()).load();
    assert.equal(sessions.length, 20);
    for (const x of sessions) {
      assert.deepEqual(x.outgoing, [outgoing(1, {
        message: { ...shared, payload: chunk.slice(10, 20) },
      })]);
    }
  });

  test("putRetained() and putSession() accept long topics and client ids", async (f) => {
    const s = f.store;
    // Longest topic: 65535 UTF-8 bytes; two long ones sharing a prefix.
    const prefix = "ü/".repeat(500);
    const longest = "x".repeat(65535);
    const topics = [prefix + "one", prefix + "two", longest, "日".repeat(1000)];
    for (const t of topics) s.putRetained(t, message(t, t.slice(-3)));
    const clientId = "c".repeat(5000);
    s.putSession(session(clientId));
    s.putOutgoing(clientId, outgoing(1));
    s.putIncomingQos2(clientId, 2);
    await s.commit();
    const state = await (await f.reopen()).load();
    assert.deepEqual(
      state.retained.map((m) => m.topic).sort(),
      [...topics].sort(),
    );
    for (const m of state.retained) {
      assert.deepEqual(m, message(m.topic, m.topic.slice(-3)));
    }
    assert.deepEqual(state.sessions, [{
      record: session(clientId),
      outgoing: [outgoing(1)],
      incomingQos2: [2],
    }]);
  });

  test("commit() writes thousands of mutations of one turn", async (f) => {
    const s = f.store;
    s.putSession(session("c"));
    for (let i = 0; i < 2500; i++) {
      s.putOutgoing("c", outgoing(i));
      s.putRetained(`t/${i}`, message(`t/${i}`, "r"));
    }
    await s.commit();
    const state = await (await f.reopen()).load();
    assert.equal(state.retained.length, 2500);
    assert.equal(state.sessions[0]?.outgoing.length, 2500);
    assert.deepEqual(
      state.sessions[0]?.outgoing.map((o) => o.seq),
      Array.from({ length: 2500 }, (_, i) => i),
    );
  });

  test("close() writes what is pending", async (f) => {
    const s = f.store;
    s.putSession(session("c"));
    s.putRetained("a", message("a", "x"));
    const state = await (await f.reopen()).load();
    assert.equal(state.sessions.length, 1);
    assert.equal(state.retained.length, 1);
  });
}
