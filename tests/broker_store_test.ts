/** The broker's use of its Store: acks gated by commits, group commit, reload. */

import assert from "node:assert/strict";
import { MemoryStore } from "../broker/mod.ts";
import { bytes, RawClient, startBroker, subscribeOne } from "./_helpers.ts";

/** A MemoryStore whose commits wait until `release()` and are counted. */
class GatedStore extends MemoryStore {
  /** Acknowledgements wait for its commits, as for a store on disk. */
  override readonly durable: boolean = true;
  commits = 0;
  #waiting: (() => void)[] = [];
  gated = true;
  override commit(): Promise<void> {
    this.commits++;
    if (!this.gated) return super.commit();
    return new Promise((r) => this.#waiting.push(r));
  }
  release(): void {
    this.gated = false;
    for (const r of this.#waiting.splice(0)) r();
  }
}

Deno.test("Broker acknowledges a QoS 1/2 PUBLISH to a persistent session only after the store commit, one commit per batch", async () => {
  const store = new GatedStore();
  const broker = await startBroker({ store });
  const port = broker.addr.port;
  const s = await RawClient.connect(port, {
    clientId: "durable",
    cleanStart: false,
  });
  await subscribeOne(s.client, "g/#", 1);
  const { client: p } = await RawClient.connect(port, { clientId: "gp" });
  store.commits = 0;
  const n = 50;
  const packets = [];
  for (let i = 1; i <= n; i++) {
    packets.push({
      type: "publish" as const,
      topic: "g/x",
      payload: bytes(String(i)),
      qos: (i % 2 === 0 ? 2 : 1) as 1 | 2,
      retain: false,
      dup: false,
      packetId: i,
    });
  }
  await p.send(...packets); // one write: one turn of the broker
  // The subscriber gets the messages; the publisher no ack yet.
  for (let i = 1; i <= n; i++) await s.client.expectPublish("g/x");
  await p.expectNothing((x) => x.type === "puback" || x.type === "pubrec");
  assert.ok(
    store.commits >= 1 && store.commits <= 3,
    `${store.commits} commits`,
  );
  store.release();
  for (let i = 1; i <= n; i++) {
    const ack = await p.next((x) => x.type === "puback" || x.type === "pubrec");
    assert.equal((ack as { packetId: number }).packetId, i); // in order
  }
  await p.disconnect();
  await s.client.disconnect();
  await broker.close();
});

Deno.test("Broker does not hold acknowledgements for a store that keeps nothing past the process (durable false)", async () => {
  // Its commits never finish, yet a QoS 1 message stored for a persistent
  // session is acknowledged at once: nothing durable waits behind it.
  const store = new class extends GatedStore {
    override readonly durable = false;
  }();
  const broker = await startBroker({ store });
  const s = await RawClient.connect(broker.addr.port, {
    clientId: "kept",
    cleanStart: false,
  });
  await subscribeOne(s.client, "v/#", 1);
  const { client: p } = await RawClient.connect(broker.addr.port, {
    clientId: "vp",
  });
  store.commits = 0;
  await p.send({
    type: "publish",
    topic: "v/1",
    payload: bytes("x"),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 7,
  });
  assert.equal((await p.expect("puback")).packetId, 7);
  await s.client.expectPublish("v/1");
  assert.equal(store.commits, 0);
  store.release();
  await p.disconnect();
  await s.client.disconnect();
  await broker.close();
});

Deno.test("Broker acknowledges at once when nothing durable changed (clean sessions only)", async () => {
  const store = new GatedStore();
  const broker = await startBroker({ store });
  const { client: s } = await RawClient.connect(broker.addr.port, {
    clientId: "clean",
  });
  await subscribeOne(s, "c", 1);
  const { client: p } = await RawClient.connect(broker.addr.port, {
    clientId: "cp",
  });
  await p.send({
    type: "publish",
    topic: "c",
    payload: bytes("x"),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 3,
  });
  assert.equal((await p.expect("puback")).packetId, 3);
  store.release();
  await p.disconnect();
  await s.disconnect();
  await broker.close();
});
