/**
 * Cluster mode, the v5 Will Delay Interval of a killed node's clients: the
 * survivor that adopts a persistent session publishes its will after the
 * delay, counted from the dead node's last heartbeat (or when the session
 * expires, if that is first), once, and not at all when the client
 * reconnects in time, to any node.
 */

import assert from "node:assert/strict";
import type { PublishPacket } from "../codec/packet.ts";
import { startKiteCluster } from "./_cluster.ts";
import { publishPacket, RawClient, subscribeOne, text } from "./_helpers.ts";
import { requireNats, startNats } from "./_nats.ts";

const ready = requireNats("cluster_will_test");

/** Will delay of the clients on the node to be killed, seconds. */
const DELAY = 5;

/**
 * Connects `clientId` to `port` (v5, persistent session of `expiry`
 * seconds) with a QoS 1 will on `will/{clientId}` delayed by `delay`; the
 * PUBACK of one QoS 1 publish says its session record (with the will) is
 * stored.
 */
async function withDelayedWill(
  port: number,
  clientId: string,
  delay: number,
  expiry: number,
): Promise<RawClient> {
  const { client, connack } = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId,
    cleanStart: false,
    properties: { sessionExpiryInterval: expiry },
    will: {
      topic: `will/${clientId}`,
      payload: new TextEncoder().encode(`${clientId} is gone`),
      qos: 1,
      retain: false,
      properties: { willDelayInterval: delay },
    },
  });
  assert.equal(connack.reasonCode, 0);
  await client.send(publishPacket(`sync/${clientId}`, "x", { qos: 1 }));
  await client.expect("puback");
  return client;
}

Deno.test({
  name:
    "cluster: a killed node's client's will comes after its Will Delay Interval or at its session's end, whichever is first v5:[MQTT-3.1.2-8], and not after a reconnect to another node in time v5:[MQTT-3.1.3-9]",
  ignore: !ready,
  async fn() {
    await using nats = await startNats();
    await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
    const [a, b, c] = cluster.nodes;
    const watchers = await Promise.all([b!, c!].map(async (n) => {
      const { client } = await RawClient.connect(n.port, {
        protocolVersion: 5,
        clientId: `watch-${n.id}`,
      });
      assert.deepEqual(await subscribeOne(client, "will/#", 1), [1]);
      return client;
    }));
    // On a: one that stays away (its will after the delay), one whose
    // session expires before its delay ends (its will at the expiry), one
    // that comes back on b in time (no will).
    const late = await withDelayedWill(a!.port, "wd-late", DELAY, 3600);
    const short = await withDelayedWill(a!.port, "wd-short", 60, 1);
    const back = await withDelayedWill(a!.port, "wd-back", DELAY, 3600);
    const killedAt = Date.now();
    await cluster.kill("a");
    await Promise.all([late, short, back].map((x) => x.close()));
    // Its CONNACK comes once b has adopted a's sessions and drained a's
    // inbox (about 2 s), or waited for the node that did.
    const again = await RawClient.open(b!.port, 5);
    await again.send({
      type: "connect",
      protocolVersion: 5,
      clientId: "wd-back",
      cleanStart: false,
      keepAlive: 0,
      properties: { sessionExpiryInterval: 3600 },
    });
    const connack = await again.expect("connack", 10_000);
    assert.equal(connack.reasonCode, 0);
    assert.equal(connack.sessionPresent, true, "its session, adopted");
    assert.ok(
      Date.now() - killedAt < DELAY * 1000 - 500,
      `reconnected within the delay (after ${Date.now() - killedAt} ms)`,
    );
    // A control on b, whose will delay starts after wd-back's: if b kept
    // a will of wd-back, its sweep publishes it no later than this one.
    const ctl = await withDelayedWill(b!.port, "wd-ctl", DELAY, 3600);
    await ctl.close();
    const seen = await Promise.all(watchers.map(async (w) => {
      const got: string[] = [];
      while (!got.includes("will/wd-ctl")) {
        const p = await w.expectPublish(undefined, 15_000);
        got.push(p.topic);
        if (p.topic === "will/wd-late") {
          const at = Date.now() - killedAt;
          assert.equal(text(p.payload), "wd-late is gone");
          // Counted from the last heartbeat (at most ~0.5 s before the
          // kill), published by a sweep (every 0.25 s): loosely bounded.
          assert.ok(at >= DELAY * 1000 - 1000, `wd-late's will after ${at} ms`);
        }
      }
      return got;
    }));
    for (const got of seen) {
      // The session's end (1 s) before the delay (5 s).
      assert.deepEqual(got.slice(0, 1), ["will/wd-short"]);
      assert.deepEqual(got.slice(1).sort(), ["will/wd-ctl", "will/wd-late"]);
    }
    // wd-back's will would have been due with wd-late's, on the node that
    // adopted them: a marker published on each survivor now comes after
    // anything that node published then. Nothing but the markers comes.
    for (const [i, n] of [b!, c!].entries()) {
      const { client: p } = await RawClient.connect(n.port, {
        protocolVersion: 5,
        clientId: `marker-${i}`,
      });
      await p.send(publishPacket("will/marker", n.id, { qos: 1 }));
      await p.expect("puback");
      await p.disconnect();
    }
    for (const w of watchers) {
      const rest: string[] = [];
      while (rest.filter((t) => t === "will/marker").length < 2) {
        const p = await w.expectPublish(undefined, 5000) as PublishPacket;
        rest.push(p.topic);
      }
      assert.deepEqual(rest, ["will/marker", "will/marker"]);
    }
    await again.disconnect();
    await Promise.all(watchers.map((w) => w.disconnect()));
  },
});
