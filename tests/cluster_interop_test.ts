/**
 * Cluster mode against one node: cases in the style of the Paho MQTT
 * interoperability suite (client_test.py and its v5 counterpart), run with
 * MQTT.js twice: on a single Kite broker, and with the publisher and the
 * subscriber on different nodes of a two-node cluster. Each case records
 * what the clients saw; both runs must record the same.
 */

import assert from "node:assert/strict";
import mqtt from "mqtt";
import { startKiteCluster } from "./_cluster.ts";
import { startBroker } from "./_helpers.ts";
import { requireNats, startNats } from "./_nats.ts";
import { within } from "./client_helpers.ts";

const ready = requireNats("cluster_interop_test");

type Client = ReturnType<typeof mqtt.connect>;

/** Where a case's clients connect: publisher side and subscriber side. */
interface Sides {
  pub: number;
  sub: number;
}

/** A connected MQTT.js client that records `topic payload qos retain`. */
interface Recorder {
  client: Client;
  seen: string[];
  /** Waits (bounded) until `n` messages were seen in all. */
  waitFor(n: number, ms?: number): Promise<void>;
}

async function connect(
  port: number,
  options: Record<string, unknown> = {},
): Promise<Recorder> {
  const client = mqtt.connect({
    host: "127.0.0.1",
    port,
    protocolVersion: 5,
    reconnectPeriod: 0,
    keepalive: 0,
    ...options,
  });
  const seen: string[] = [];
  const waiters = new Set<() => void>();
  client.on("message", (topic, payload, packet) => {
    seen.push(
      `${topic} ${payload.toString()} q${packet.qos}${
        packet.retain ? " r" : ""
      }`,
    );
    for (const w of waiters) w();
  });
  client.on("error", () => {});
  await within(
    new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    }),
    5000,
    "MQTT.js connect",
  );
  return {
    client,
    seen,
    async waitFor(n, ms = 5000) {
      const { promise, resolve } = Promise.withResolvers<void>();
      const check = () => {
        if (seen.length >= n) resolve();
      };
      waiters.add(check);
      check();
      try {
        await within(promise, ms, `${n} messages (saw ${seen.join(" | ")})`);
      } finally {
        waiters.delete(check);
      }
    },
  };
}

function end(r: Recorder, force = false): Promise<void> {
  return within(
    new Promise<void>((res) => r.client.end(force, {}, () => res())),
    5000,
    "MQTT.js end",
  );
}

/** One case: returns what it observed. */
type Case = (s: Sides, tag: string) => Promise<string[]>;

const CASES: Record<string, Case> = {
  async "basic: QoS 0, 1, 2"(s, tag) {
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/basic/#`, { qos: 2 });
    const pub = await connect(s.pub);
    for (const qos of [0, 1, 2] as const) {
      await pub.client.publishAsync(`${tag}/basic/${qos}`, `q${qos}`, { qos });
    }
    await sub.waitFor(3);
    await end(pub);
    await end(sub);
    return sub.seen.map((x) => x.replace(tag, "T")).sort();
  },

  async "retained: sent on subscribe with RETAIN, live without"(s, tag) {
    const pub = await connect(s.pub);
    for (const [t, qos] of [["a", 0], ["b", 1], ["c", 2]] as const) {
      await pub.client.publishAsync(`${tag}/ret/${t}`, `kept ${t}`, {
        qos: qos as 0 | 1 | 2,
        retain: true,
      });
    }
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/ret/+`, { qos: 2 });
    await sub.waitFor(3);
    await pub.client.publishAsync(`${tag}/ret/a`, "live", {
      qos: 1,
      retain: true,
    });
    await sub.waitFor(4);
    // Clean up: cleared retained messages are gone for the next one.
    for (const t of ["a", "b", "c"]) {
      await pub.client.publishAsync(`${tag}/ret/${t}`, "", {
        qos: 1,
        retain: true,
      });
    }
    const late = await connect(s.sub);
    await late.client.subscribeAsync(`${tag}/ret/+`, { qos: 1 });
    const probe = await connect(s.pub);
    await probe.client.publishAsync(`${tag}/ret/end`, "end", { qos: 1 });
    await late.waitFor(1);
    await Promise.all([pub, sub, late, probe].map((r) => end(r)));
    return [
      ...sub.seen.slice(0, 3).sort(),
      sub.seen[3]!,
      ...late.seen,
    ].map((x) => x.replace(tag, "T"));
  },

  async "offline message queueing: QoS 1/2 kept, QoS 0 not"(s, tag) {
    const id = `${tag}-offline`;
    const opts = {
      clientId: id,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const sub = await connect(s.sub, opts);
    await sub.client.subscribeAsync(`${tag}/off/#`, { qos: 2 });
    await end(sub);
    const pub = await connect(s.pub);
    for (const qos of [0, 1, 2] as const) {
      await pub.client.publishAsync(`${tag}/off/${qos}`, `q${qos}`, { qos });
    }
    const back = await connect(s.sub, opts);
    await back.waitFor(2);
    await pub.client.publishAsync(`${tag}/off/end`, "end", { qos: 1 });
    await back.waitFor(3);
    await end(pub);
    await end(back);
    return back.seen.map((x) => x.replace(tag, "T")).sort();
  },

  async "overlapping subscriptions: one message at the highest QoS"(s, tag) {
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/ov/#`, { qos: 2 });
    await sub.client.subscribeAsync(`${tag}/ov/+`, { qos: 1 });
    const pub = await connect(s.pub);
    await pub.client.publishAsync(`${tag}/ov/x`, "over", { qos: 2 });
    await pub.client.publishAsync(`${tag}/ov/end`, "end", { qos: 1 });
    await sub.waitFor(2);
    await end(pub);
    await end(sub);
    // Sorted: MQTT.js emits a QoS 2 message at PUBREL, so the QoS 1 one
    // sent after it can be emitted first (the PUBLISH order is kept).
    return sub.seen.map((x) => x.replace(tag, "T")).sort();
  },

  async "will message on an ungraceful close, none on DISCONNECT"(s, tag) {
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/will/#`, { qos: 1 });
    const will = (t: string) => ({
      topic: `${tag}/will/${t}`,
      payload: `gone ${t}`,
      qos: 1 as const,
      retain: false,
    });
    const graceful = await connect(s.pub, { will: will("graceful") });
    await end(graceful);
    const crash = await connect(s.pub, { will: will("crash") });
    crash.client.stream.destroy();
    await sub.waitFor(1);
    const pub = await connect(s.pub);
    await pub.client.publishAsync(`${tag}/will/end`, "end", { qos: 1 });
    await sub.waitFor(2);
    await end(pub);
    await end(sub);
    await end(crash, true);
    return sub.seen.map((x) => x.replace(tag, "T"));
  },

  async "$ topics: not matched by a leading wildcard"(s, tag) {
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync("#", { qos: 1 });
    await sub.client.subscribeAsync(`$${tag}/#`, { qos: 1 });
    const pub = await connect(s.pub);
    await pub.client.publishAsync(`$${tag}/x`, "dollar", { qos: 1 });
    await pub.client.publishAsync(`${tag}/end`, "end", { qos: 1 });
    await sub.waitFor(2);
    await end(pub);
    await end(sub);
    return sub.seen.filter((x) => x.includes(tag)).map((x) =>
      x.replace(tag, "T")
    ).sort();
  },

  async "unsubscribe: nothing after UNSUBACK"(s, tag) {
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/un/a`, { qos: 1 });
    await sub.client.subscribeAsync(`${tag}/un/b`, { qos: 1 });
    await sub.client.unsubscribeAsync(`${tag}/un/a`);
    const pub = await connect(s.pub);
    await pub.client.publishAsync(`${tag}/un/a`, "gone", { qos: 1 });
    await pub.client.publishAsync(`${tag}/un/b`, "kept", { qos: 1 });
    await sub.waitFor(1);
    await end(pub);
    await end(sub);
    return sub.seen.map((x) => x.replace(tag, "T"));
  },

  async "v5: no local, retain as published, subscription identifiers"(s, tag) {
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/v5/+`, {
      qos: 1,
      rap: true,
      properties: { subscriptionIdentifier: 3 },
    });
    const self = await connect(s.pub, { clientId: `${tag}-self` });
    await self.client.subscribeAsync(`${tag}/v5/nl`, { qos: 1, nl: true });
    await self.client.subscribeAsync(`${tag}/v5/end`, { qos: 1 });
    await self.client.publishAsync(`${tag}/v5/nl`, "own", { qos: 1 });
    await self.client.publishAsync(`${tag}/v5/rap`, "rap", {
      qos: 1,
      retain: true,
    });
    await self.client.publishAsync(`${tag}/v5/end`, "end", { qos: 1 });
    await sub.waitFor(3);
    await self.waitFor(1);
    await self.client.publishAsync(`${tag}/v5/rap`, "", {
      qos: 1,
      retain: true,
    });
    await end(self);
    await end(sub);
    return [
      ...sub.seen.map((x) => `sub ${x}`),
      ...self.seen.map((x) => `self ${x}`),
    ].map((x) => x.replaceAll(tag, "T"));
  },

  async "v5: retain handling 1 and 2"(s, tag) {
    const pub = await connect(s.pub);
    await pub.client.publishAsync(`${tag}/rh/x`, "kept", {
      qos: 1,
      retain: true,
    });
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/rh/+`, { qos: 1, rh: 1 });
    await sub.client.subscribeAsync(`${tag}/rh/+`, { qos: 1, rh: 1 }); // again: none
    await sub.client.subscribeAsync(`${tag}/rh/#`, { qos: 1, rh: 2 }); // none
    await pub.client.publishAsync(`${tag}/rh/end`, "end", { qos: 1 });
    await sub.waitFor(2);
    await pub.client.publishAsync(`${tag}/rh/x`, "", {
      qos: 1,
      retain: true,
    });
    await end(pub);
    await end(sub);
    return sub.seen.map((x) => x.replace(tag, "T"));
  },

  async "v5: topic alias from the publisher"(s, tag) {
    const sub = await connect(s.sub);
    await sub.client.subscribeAsync(`${tag}/alias/#`, { qos: 1 });
    const pub = await connect(s.pub);
    await pub.client.publishAsync(`${tag}/alias/x`, "first", {
      qos: 1,
      properties: { topicAlias: 1 },
    });
    await pub.client.publishAsync("", "second", {
      qos: 1,
      properties: { topicAlias: 1 },
    });
    await sub.waitFor(2);
    await end(pub);
    await end(sub);
    return sub.seen.map((x) => x.replace(tag, "T"));
  },

  async "v5: shared subscription, each message once"(s, tag) {
    const m1 = await connect(s.sub);
    const m2 = await connect(s.pub);
    await m1.client.subscribeAsync(`$share/g/${tag}/sh/#`, { qos: 1 });
    await m2.client.subscribeAsync(`$share/g/${tag}/sh/#`, { qos: 1 });
    const pub = await connect(s.pub);
    for (let i = 0; i < 20; i++) {
      await pub.client.publishAsync(`${tag}/sh/${i}`, String(i), { qos: 1 });
    }
    const total = () => m1.seen.length + m2.seen.length;
    const { promise, resolve } = Promise.withResolvers<void>();
    const check = () => {
      if (total() >= 20) resolve();
    };
    m1.client.on("message", check);
    m2.client.on("message", check);
    check();
    await within(promise, 5000, "20 shared messages");
    await Promise.all([m1, m2, pub].map((r) => end(r)));
    return [...m1.seen, ...m2.seen].map((x) => x.replace(tag, "T")).sort();
  },
};

Deno.test({
  name:
    "cluster: Paho-style interop cases give the same results with publisher and subscriber on different nodes as on one node",
  ignore: !ready,
  async fn(t) {
    const single: Record<string, string[]> = {};
    const broker = await startBroker();
    try {
      for (const [name, run] of Object.entries(CASES)) {
        const port = broker.addr.port;
        single[name] = await run({ pub: port, sub: port }, "one");
      }
    } finally {
      await broker.close();
    }
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b"]);
    const [a, b] = cluster.nodes;
    for (const [name, run] of Object.entries(CASES)) {
      await t.step(name, async () => {
        const got = await run({ pub: a!.port, sub: b!.port }, "two");
        assert.deepEqual(got, single[name]);
      });
    }
  },
});
