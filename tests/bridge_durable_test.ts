/**
 * Bridges lose nothing when the Kite broker itself dies: QoS 1/2 messages
 * for the remote are kept in the broker's store (Deno KV) until the remote
 * acknowledges them, and come out after a restart, QoS 2 ones with their
 * packet ids (none twice); messages from the remote are acknowledged only
 * once they are committed here. Against a real Mosquitto, with Kite as a
 * `broker/main.ts` subprocess killed with SIGKILL.
 */

import assert from "node:assert/strict";
import type { BridgeOptions, Broker } from "../broker/mod.ts";
import { MemoryStore } from "../broker/mod.ts";
import type {
  LoadedState,
  OutgoingRecord,
  SessionRecord,
  Store,
  StoredMessage,
} from "../broker/mod.ts";
import { Client } from "../client/mod.ts";
import { startBroker } from "./_helpers.ts";
import { freePort, HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";
import { spawnBroker } from "./_subprocess.ts";
import { bridgeState, Collector } from "./_bridge.ts";
import { TcpProxy, within } from "./client_helpers.ts";

/** A persistent session on the remote (and a fast reconnect). */
function persistent(id: string) {
  return {
    clientId: id,
    cleanStart: false,
    sessionExpiryInterval: 3600,
    reconnect: { initialDelay: 50, maxDelay: 200 },
  };
}

/**
 * A persistent subscription of client `id` to `filter` on a Mosquitto at
 * `port` with persistence in `dir`, left offline: messages for it are
 * queued from now on, across restarts.
 */
async function persistentSubscription(
  port: number,
  dir: string,
  id: string,
  filter: string,
): Promise<void> {
  await using _mosq = await startMosquitto({ port, persistenceDir: dir });
  const c = new Client({ port, ...persistent(id) });
  await c.connect();
  await c.subscribe(filter, 2);
  await c.disconnect();
}

/**
 * A Kite config file with one bridge "m" to the remote on `port` (`rule`:
 * its topic rule) and persistence on: the flags of `broker/main.ts`.
 */
async function kiteConfig(
  dir: string,
  port: number,
  rule = '{ pattern: "t/#", direction: out, qos: 2 }',
): Promise<string[]> {
  const config = `${dir}/kite.yaml`;
  await Deno.writeTextFile(
    config,
    [
      "bridges:",
      "  - name: m",
      `    addresses: mqtt://127.0.0.1:${port}`,
      "    client_id: edge-1",
      "    reconnect_delay: 50",
      "    max_reconnect_delay: 200",
      "    topics:",
      `      - ${rule}`,
      "",
    ].join("\n"),
  );
  return [
    "--config",
    config,
    "--enable-persistence",
    "--persistence-path",
    `${dir}/data`,
  ];
}

/** How often each payload arrived. */
function counts(c: Collector, prefix: string): Map<string, number> {
  const n = new Map<string, number>();
  for (const m of c.messages) {
    if (m.topic.startsWith(prefix)) {
      n.set(m.payloadText, (n.get(m.payloadText) ?? 0) + 1);
    }
  }
  return n;
}

Deno.test({
  name:
    "Bridge keeps QoS 1/2 messages for a remote that is down in the store: a broker killed (SIGKILL) and restarted delivers them all, QoS 2 once",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    const port = freePort();
    const mdir = await Deno.makeTempDir({ prefix: "kite-bridge-m-" });
    const kdir = await Deno.makeTempDir({ prefix: "kite-bridge-k-" });
    try {
      await persistentSubscription(port, mdir, "sub", "t/#");
      const args = await kiteConfig(kdir, port);
      const N = 40;
      {
        await using kite = await spawnBroker(args);
        const pub = new Client({ port: kite.port, reconnect: false });
        await pub.connect();
        // Each acknowledged once committed, the bridge's copy with it.
        const acks: Promise<unknown>[] = [];
        for (let i = 0; i < N; i++) {
          acks.push(pub.publish(`t/1/${i}`, `q1-${i}`, { qos: 1 }));
          acks.push(pub.publish(`t/2/${i}`, `q2-${i}`, { qos: 2 }));
        }
        await within(Promise.all(acks), 10_000, "the local acknowledgements");
        await pub.close();
        await kite.process.kill(); // SIGKILL: no clean shutdown
      }
      await using kite = await spawnBroker(args);
      await kite.process.waitForOutput(
        new RegExp(`Bridge m: ${2 * N} messages for the remote kept`),
        "all",
        10_000,
        "the restored messages",
      );
      await using _mosq = await startMosquitto({ port, persistenceDir: mdir });
      await using remote = await Collector.open(
        port,
        [],
        {},
        persistent("sub"),
      );
      await remote.waitDistinct("t/", 2 * N, 20_000);
      const q2 = counts(remote, "t/2/");
      assert.equal(q2.size, N);
      assert.deepEqual(
        [...q2.values()].filter((n) => n !== 1),
        [],
        "QoS 2 twice",
      );
      assert.equal(counts(remote, "t/1/").size, N);
    } finally {
      await Deno.remove(mdir, { recursive: true });
      await Deno.remove(kdir, { recursive: true });
    }
  },
});

for (const kind of ["mosquitto", "kite"] as const) {
  Deno.test({
    name:
      `Bridge to ${kind} loses no acknowledged message when the broker is killed (SIGKILL) mid-stream with the remote up, and sends no QoS 2 message twice v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-10]`,
    ignore: kind === "mosquitto" && !HAVE_MOSQUITTO,
    async fn() {
      const kdir = await Deno.makeTempDir({ prefix: "kite-bridge-k-" });
      // The subscriber there may fall behind: the remote must not drop. (A
      // Kite remote delivers a QoS 2 message when it arrives, Mosquitto when
      // it is released: a resend under a new packet id would show on Kite.)
      await using remoteBroker = kind === "mosquitto"
        ? await startMosquitto({ extraConfig: "max_queued_messages 0" })
        : await kiteRemote();
      const port = remoteBroker.port;
      try {
        const state = "$SYS/broker/connection/edge-1/state";
        await using remote = await Collector.open(port, ["t/#", state], {
          qos: 2,
        });
        const args = await kiteConfig(kdir, port);
        const acked = new Set<string>();
        {
          await using kite = await spawnBroker(args);
          await remote.waitFor(state, "1");
          const pub = new Client({ port: kite.port, reconnect: false });
          pub.on("error", () => {});
          await pub.connect();
          // A stream; the broker dies once some 300 are acknowledged, with
          // more in flight both sides.
          const enough = Promise.withResolvers<void>();
          for (let i = 0; i < 2000; i++) {
            const qos = i % 2 === 0 ? 2 : 1;
            const payload = `${qos}-${i}`;
            pub.publish(`t/${qos}/${i}`, payload, { qos }).then(() => {
              acked.add(payload);
              if (acked.size === 300) enough.resolve();
            }, () => {});
          }
          await within(enough.promise, 20_000, "300 acknowledgements");
          await kite.process.kill();
          await pub.close();
        }
        assert.ok(acked.size >= 300);
        await using _kite = await spawnBroker(args);
        // Every message acknowledged here before the kill reaches the
        // remote; QoS 2 ones once.
        const arrived = new Set<string>();
        await remote.wait(
          (m) => {
            arrived.add(m.payloadText);
            return arrived.size >= acked.size &&
              [...acked].every((p) => arrived.has(p));
          },
          `${acked.size} acknowledged messages`,
          30_000,
        );
        const twice = [...counts(remote, "t/2/")].filter(([, n]) => n > 1);
        assert.deepEqual(twice, [], "QoS 2 messages delivered twice");
      } finally {
        await Deno.remove(kdir, { recursive: true });
      }
    },
  });
}

Deno.test(
  "Bridge resumes a QoS 2 message in flight when the broker was killed (SIGKILL) with its packet id: a Kite remote that delivered it does not deliver it again v5:[MQTT-4.3.3-10] v5:[MQTT-4.4.0-1]",
  async () => {
    const kdir = await Deno.makeTempDir({ prefix: "kite-bridge-k-" });
    await using remoteBroker = await kiteRemote();
    // Between the bridge and the remote: PUBRECs can be held back.
    await using proxy = new TcpProxy(remoteBroker.port);
    try {
      const state = "$SYS/broker/connection/edge-1/state";
      await using remote = await Collector.open(
        remoteBroker.port,
        ["t/#", state],
        { qos: 2 },
      );
      const args = await kiteConfig(kdir, proxy.port);
      {
        await using kite = await spawnBroker(args);
        await remote.waitFor(state, "1");
        const pub = new Client({ port: kite.port, reconnect: false });
        await pub.connect();
        // Completed first: the ids of those in flight next are not the
        // ones a fresh client would pick.
        for (let i = 0; i < 7; i++) {
          await pub.publish(`t/1/${i}`, `q1-${i}`, { qos: 1 });
        }
        await remote.waitDistinct("t/1/", 7);
        proxy.swallowDown = true; // nothing reaches the bridge any more
        for (let i = 0; i < 5; i++) {
          await pub.publish(`t/2/${i}`, `q2-${i}`, { qos: 2 });
        }
        // The remote delivered them when they came; the bridge never saw
        // their PUBRECs: they are in flight, their ids stored.
        await remote.waitDistinct("t/2/", 5);
        await pub.close();
        await kite.process.kill();
      }
      proxy.swallowDown = false;
      await using kite = await spawnBroker(args);
      const pub = new Client({ port: kite.port, reconnect: false });
      await pub.connect();
      await pub.publish("t/2/marker", "marker", { qos: 2 });
      await remote.waitFor("t/2/marker");
      await pub.disconnect();
      const q2 = counts(remote, "t/2/");
      assert.deepEqual(
        [...q2].sort(),
        [0, 1, 2, 3, 4].map((i) => [`q2-${i}`, 1]).concat([["marker", 1]])
          .sort(),
      );
    } finally {
      await Deno.remove(kdir, { recursive: true });
    }
  },
);

Deno.test({
  name:
    "Bridge keeps the ids of QoS 2 messages from the remote until released: after a kill (SIGKILL) before its PUBREC reached Mosquitto, the resend is not published twice v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-10]",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    const kdir = await Deno.makeTempDir({ prefix: "kite-bridge-k-" });
    await using mosq = await startMosquitto();
    // Between the bridge and Mosquitto: what the bridge sends can be held.
    await using proxy = new TcpProxy(mosq.port);
    try {
      const state = "$SYS/broker/connection/edge-1/state";
      await using remote = await Collector.open(mosq.port, [state]);
      const args = await kiteConfig(
        kdir,
        proxy.port,
        '{ pattern: "in/#", direction: in, qos: 2 }',
      );
      const here = {
        clientId: "here",
        cleanStart: false,
        sessionExpiryInterval: 300,
      };
      {
        await using kite = await spawnBroker(args);
        await remote.waitFor(state, "1");
        await using local = await Collector.open(
          kite.port,
          ["in/#"],
          { qos: 2 },
          here,
        );
        proxy.swallowUp = true; // the bridge's PUBREC will not arrive
        await remote.client.publish("in/1", "once", { qos: 2 });
        // A persistent session gets a QoS 2 message once it is committed
        // (the bridge's copy of its id with it); its own exchange ends.
        const released = Promise.withResolvers<void>();
        local.client.on("released", () => released.resolve());
        await local.waitFor("in/1");
        await within(released.promise, 5000, "in/1 released to the session");
        await kite.process.kill();
      }
      proxy.swallowUp = false;
      await using kite = await spawnBroker(args);
      // Mosquitto sends in/1 again (DUP) when the bridge is back.
      await using local = await Collector.open(kite.port, [], { qos: 2 }, here);
      await remote.client.publish("in/marker", "m", { qos: 2 });
      await local.waitFor("in/marker");
      assert.deepEqual(local.texts("in/1"), [], "in/1 published twice");
    } finally {
      await Deno.remove(kdir, { recursive: true });
    }
  },
});

/** A Kite broker (in-process) as the remote, holding all it queues. */
async function kiteRemote(): Promise<{ port: number } & AsyncDisposable> {
  const b = await startBroker({
    maxQueuedMessages: 100_000,
    maxInflightMessages: 20,
  });
  return { port: b.addr.port, [Symbol.asyncDispose]: () => b.close() };
}

/** A `MemoryStore` whose commits can be held back (a slow disk). */
class SlowStore implements Store {
  readonly durable = true;
  readonly #inner = new MemoryStore();
  #held: PromiseWithResolvers<void> | undefined;
  /** Commits from now on wait for `release()`. */
  hold(): void {
    this.#held ??= Promise.withResolvers();
  }
  /** Lets the held commits finish. */
  release(): void {
    this.#held?.resolve();
    this.#held = undefined;
  }
  putRetained(t: string, m: StoredMessage | undefined): void {
    this.#inner.putRetained(t, m);
  }
  putSession(r: SessionRecord): void {
    this.#inner.putSession(r);
  }
  deleteSession(id: string): void {
    this.#inner.deleteSession(id);
  }
  putOutgoing(id: string, r: OutgoingRecord): void {
    this.#inner.putOutgoing(id, r);
  }
  deleteOutgoing(id: string, seq: number): void {
    this.#inner.deleteOutgoing(id, seq);
  }
  putIncomingQos2(id: string, p: number): void {
    this.#inner.putIncomingQos2(id, p);
  }
  deleteIncomingQos2(id: string, p: number): void {
    this.#inner.deleteIncomingQos2(id, p);
  }
  async commit(): Promise<void> {
    await this.#held?.promise;
  }
  load(): Promise<LoadedState> {
    return this.#inner.load();
  }
  close(): Promise<void> {
    return this.#inner.close();
  }
}

Deno.test({
  name:
    "Bridge acknowledges a message from Mosquitto only once it is committed here: one whose commit had not finished when the link dropped comes again [MQTT-4.3.2-4]",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    await using mosq = await startMosquitto();
    await using proxy = new TcpProxy(mosq.port);
    const store = new SlowStore();
    const options: BridgeOptions = {
      name: "m",
      addresses: [`mqtt://127.0.0.1:${proxy.port}`],
      clientId: "edge-1",
      reconnectDelay: 50,
      maxReconnectDelay: 200,
      topics: [{ pattern: "in/#", direction: "in", qos: 2 }],
    };
    let broker: Broker | undefined;
    try {
      broker = await startBroker({ store, bridges: [options] });
      // A persistent session here: what comes in is stored for it. (It
      // gets a QoS 2 message only once that is committed.)
      await using _kept = await Collector.open(
        broker.addr.port,
        ["in/#"],
        { qos: 2 },
        { clientId: "here", cleanStart: false, sessionExpiryInterval: 60 },
      );
      // And a plain one, who sees what comes in at once.
      await using local = await Collector.open(broker.addr.port, ["in/#"], {
        qos: 2,
      });
      await using remote = await Collector.open(mosq.port, []);
      await bridgeState(broker, "m", "1");
      store.hold();
      await remote.client.publish("in/1", "one", { qos: 1 });
      await remote.client.publish("in/2", "two", { qos: 2 });
      await local.waitFor("in/1");
      await local.waitFor("in/2");
      // Neither is acknowledged to Mosquitto yet: the link drops, then the
      // commit finishes (too late for that link).
      await proxy.dropAll();
      store.release();
      // Mosquitto sends in/1 again (never acknowledged); in/2 too, but the
      // bridge's client knows its id: it is acknowledged, not delivered
      // again v5:[MQTT-4.3.3-10].
      await local.wait(
        () => local.texts("in/1").length === 2,
        "in/1 a second time",
      );
      await remote.client.publish("in/marker", "m", { qos: 1 });
      await local.waitFor("in/marker");
      assert.deepEqual(local.texts("in/2"), ["two"]);
      // Now acknowledged: nothing more comes after a new drop.
      await proxy.dropAll();
      await remote.client.publish("in/marker2", "m", { qos: 1 });
      await local.waitFor("in/marker2");
      assert.deepEqual(local.texts("in/1"), ["one", "one"]);
      assert.deepEqual(local.texts("in/2"), ["two"]);
    } finally {
      store.release();
      await broker?.close();
    }
  },
});
