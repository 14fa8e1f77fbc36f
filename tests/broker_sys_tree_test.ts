/**
 * Mosquitto's `$SYS/broker/...` tree: Kite publishes the topics Mosquitto
 * publishes, with the same names (compared with a real Mosquitto when it is
 * installed), values from the broker's metrics, a value again only when it
 * changed, and load averages computed as Mosquitto computes them.
 */

import assert from "node:assert/strict";
import { SYS_TOPICS } from "../broker/mod.ts";
import { Metrics } from "../broker/metrics.ts";
import { loadAverage, SysTree } from "../broker/sys.ts";
import {
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
  withTimeout,
} from "./_helpers.ts";
import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";

/**
 * Every `$SYS` topic a broker on `port` has published so far, with its
 * value: subscribes to `$SYS/#`, waits for the topics `last` (published at
 * the end of an update), then a PINGREQ: its PINGRESP follows every
 * retained message queued before it.
 */
async function sysTree(
  port: number,
  last: string[],
): Promise<Map<string, string>> {
  const { client } = await RawClient.connect(port, { clientId: "sys-reader" });
  try {
    const seen = new Map<string, string>();
    await subscribeOne(client, "$SYS/#", 0);
    await withTimeout(
      (async () => {
        while (!last.every((t) => seen.has(t))) {
          const m = await client.expectPublish(undefined, 5000);
          seen.set(m.topic, text(m.payload));
        }
      })(),
      10_000,
      last.join(", "),
    );
    await client.send({ type: "pingreq" });
    while (true) {
      const p = await client.next(
        (x) => x.type === "publish" || x.type === "pingresp",
        5000,
      );
      if (p.type === "pingresp") break;
      if (p.type === "publish") seen.set(p.topic, text(p.payload));
    }
    return seen;
  } finally {
    await client.disconnect();
  }
}

Deno.test({
  name:
    "Broker publishes the $SYS topics Mosquitto publishes, with the same names",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    await using mosquitto = await startMosquitto({
      extraConfig: "sys_interval 1\n",
    });
    // clients/maximum only once a client was there at an update.
    const theirs = await sysTree(mosquitto.port, [
      "$SYS/broker/publish/bytes/sent",
      "$SYS/broker/clients/maximum",
    ]);
    const broker = await startBroker({ sysInterval: 0.1 });
    try {
      const ours = await sysTree(broker.addr.port, [
        SYS_TOPICS.loadConnections15min,
      ]);
      const missing = [...theirs.keys()].filter((t) => !ours.has(t));
      assert.deepEqual(missing, [], "Mosquitto's topics that Kite lacks");
      const extra = [...ours.keys()].filter((t) => !theirs.has(t));
      assert.deepEqual(extra, [], "Kite's topics Mosquitto does not have");
      // The same forms of value.
      assert.match(theirs.get(SYS_TOPICS.uptime)!, /^\d+ seconds$/);
      assert.match(ours.get(SYS_TOPICS.uptime)!, /^\d+ seconds$/);
      for (const t of Object.values(SYS_TOPICS)) {
        if (t.includes("/load/")) {
          assert.match(ours.get(t)!, /^\d+\.\d\d$/, t);
          assert.match(theirs.get(t)!, /^\d+\.\d\d$/, t);
        } else if (t !== SYS_TOPICS.uptime && t !== SYS_TOPICS.version) {
          assert.match(ours.get(t)!, /^\d+$/, t);
        }
      }
    } finally {
      await broker.close();
    }
  },
});

Deno.test("Broker's $SYS values follow its clients, messages and subscriptions", async () => {
  const broker = await startBroker({ sysInterval: 0.05 });
  const port = broker.addr.port;
  const open: RawClient[] = [];
  try {
    const off = await RawClient.connect(port, {
      clientId: "off",
      cleanStart: false,
    });
    await subscribeOne(off.client, "$share/g/q/#", 1);
    await off.client.disconnect();
    const { client: a } = await RawClient.connect(port, { clientId: "a" });
    open.push(a);
    await subscribeOne(a, "t/#", 0);
    await a.send(publishPacket("t/1", "hello"));
    await a.expectPublish("t/1");
    await a.send(publishPacket("q/1", "queued", { qos: 1 }));
    await a.expect("puback");
    const { client: r } = await RawClient.connect(port, { clientId: "r" });
    open.push(r);
    await subscribeOne(r, "$SYS/broker/#", 0);
    const want: [string, string][] = [
      [SYS_TOPICS.clientsConnected, "2"],
      [SYS_TOPICS.clientsActive, "2"],
      [SYS_TOPICS.clientsDisconnected, "1"],
      [SYS_TOPICS.clientsInactive, "1"],
      [SYS_TOPICS.clientsTotal, "3"],
      [SYS_TOPICS.clientsMaximum, "2"],
      [SYS_TOPICS.subscriptions, "3"],
      [SYS_TOPICS.sharedSubscriptions, "1"],
      [SYS_TOPICS.publishMessagesReceived, "2"],
      // Payload bytes: "hello" and "queued" (bytes sent also count $SYS).
      [SYS_TOPICS.publishBytesReceived, "11"],
    ];
    const latest = new Map<string, string>();
    const stored = () =>
      // The queued message, and every retained one ($SYS's own too), as
      // Mosquitto counts them.
      Number(latest.get(SYS_TOPICS.storeMessagesCount)) ===
        Number(latest.get(SYS_TOPICS.retained)) + 1;
    const done = () => want.every(([t, v]) => latest.get(t) === v) && stored();
    await withTimeout(
      (async () => {
        while (!done()) {
          const m = await r.expectPublish(undefined, 3000);
          latest.set(m.topic, text(m.payload));
        }
      })(),
      10_000,
      `$SYS values ${JSON.stringify(want)}`,
    ).catch((e) => {
      throw new Error(`${e.message}; got ${JSON.stringify([...latest])}`);
    });
    assert.ok(Number(latest.get(SYS_TOPICS.heapCurrent)) > 0);
    assert.ok(
      Number(latest.get(SYS_TOPICS.heapMaximum)) >=
        Number(latest.get(SYS_TOPICS.heapCurrent)),
    );
  } finally {
    for (const c of open) await c.close();
    await broker.close();
  }
});

Deno.test("loadAverage() is Mosquitto's exponentially damped rate per minute", () => {
  // 600 events in 10 s: 3600 a minute; the 1-minute average moves
  // 1 - exp(-10/60) of the way there.
  assert.equal(
    loadAverage(0, 600, 10, 60).toFixed(2),
    (3600 * (1 - Math.exp(-10 / 60))).toFixed(2),
  );
  assert.equal(loadAverage(0, 600, 10, 60).toFixed(2), "552.67");
  assert.equal(loadAverage(0, 600, 10, 300).toFixed(2), "118.02");
  assert.equal(loadAverage(0, 600, 10, 900).toFixed(2), "39.78");
  // Nothing more: it decays.
  assert.equal(
    loadAverage(552.67, 0, 10, 60).toFixed(2),
    (552.67 * Math.exp(-10 / 60)).toFixed(2),
  );
  // A steady rate is a fixed point.
  assert.equal(loadAverage(3600, 600, 10, 60), 3600);
});

Deno.test("SysTree publishes every topic first, then only what changed; loads from the counters", () => {
  const metrics = new Metrics();
  const published: [string, string][] = [];
  const tree = new SysTree(metrics, (t, v) => published.push([t, v]));
  const t0 = metrics.startedAt;
  tree.update(t0);
  const first = new Map(published);
  for (const t of Object.values(SYS_TOPICS)) assert.ok(first.has(t), t);
  assert.equal(first.get(SYS_TOPICS.loadMessagesReceived1min), "0.00");
  published.length = 0;
  metrics.packetsReceived += 600;
  metrics.messagesReceived += 60;
  tree.update(t0 + 10_000);
  const second = new Map(published);
  assert.equal(second.get(SYS_TOPICS.messagesReceived), "600");
  assert.equal(second.get(SYS_TOPICS.publishMessagesReceived), "60");
  assert.equal(second.get(SYS_TOPICS.loadMessagesReceived1min), "552.67");
  assert.equal(second.get(SYS_TOPICS.loadMessagesReceived5min), "118.02");
  assert.equal(second.get(SYS_TOPICS.loadMessagesReceived15min), "39.78");
  assert.equal(second.get(SYS_TOPICS.loadPublishReceived1min), "55.27");
  assert.equal(second.get(SYS_TOPICS.uptime), "10 seconds");
  // Unchanged values are not published again.
  assert.equal(second.has(SYS_TOPICS.version), false);
  assert.equal(second.has(SYS_TOPICS.clientsConnected), false);
  assert.equal(second.has(SYS_TOPICS.loadBytesSent1min), false);
});
