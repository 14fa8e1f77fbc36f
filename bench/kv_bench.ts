/**
 * Persistence throughput: what group commit buys over one write per message.
 *
 * Run: `deno run -A bench/kv_bench.ts [messages]` (default 5000). Each
 * scenario stores `messages` QoS 1 outgoing records (100-byte payloads) in a
 * fresh Deno KV directory and waits until they are durable:
 *
 * - `kv.set, one await each`: raw Deno KV, one commit per record
 * - `KvStore put+commit, one await each`: the store used serially
 * - `KvStore, 1000 clients in one turn`: 1000 concurrent put+commit (what a
 *   broker sees when many clients publish at once), repeated
 * - `KvStore, batches of N then commit`
 * - `KvStore fan-in, put+ack in one turn`: stored then deleted before the
 *   flush: nothing reaches the disk
 *
 * @module
 */

import { KvStore } from "../broker/store/kv.ts";
import type { OutgoingRecord } from "../broker/store/store.ts";

const total = Number(Deno.args[0] ?? 5000);
const payload = new Uint8Array(100).fill(42);

function record(seq: number): OutgoingRecord {
  return {
    seq,
    state: "queued",
    qos: 1,
    message: { topic: "bench/kv", payload, qos: 1, retain: false },
  };
}

async function scenario(
  name: string,
  fn: (store: KvStore, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kite_kv_bench_" });
  const store = await KvStore.open(dir);
  try {
    const t0 = performance.now();
    await fn(store, dir);
    const ms = performance.now() - t0;
    const rate = Math.round(total / (ms / 1000));
    console.log(
      `${name.padEnd(42)} ${String(rate).padStart(9)} msg/s  ` +
        `(${total} in ${ms.toFixed(0)} ms, ${store.atomicCommits} atomic ops)`,
    );
  } finally {
    await store.close();
    await Deno.remove(dir, { recursive: true });
  }
}

console.log(`Deno ${Deno.version.deno}, ${total} messages each`);

await scenario("kv.set, one await each", async (_store, dir) => {
  const kv = await Deno.openKv(`${dir}/raw.kv`);
  try {
    for (let i = 0; i < total; i++) await kv.set(["out", "c", i], record(i));
  } finally {
    kv.close();
  }
});

await scenario("KvStore put+commit, one await each", async (store) => {
  store.putSession({
    clientId: "c",
    protocolVersion: 4,
    expiryInterval: 3600,
    subscriptions: [],
  });
  for (let i = 0; i < total; i++) {
    store.putOutgoing("c", record(i));
    await store.commit();
  }
});

await scenario("KvStore, 1000 clients in one turn", async (store) => {
  const clients = 1000;
  for (let done = 0; done < total; done += clients) {
    const waits: Promise<void>[] = [];
    for (let c = 0; c < clients && done + c < total; c++) {
      store.putOutgoing(`c${c}`, record(done + c));
      waits.push(store.commit());
    }
    await Promise.all(waits);
  }
});

for (const batch of [10, 100, 1000]) {
  await scenario(`KvStore, batches of ${batch} then commit`, async (store) => {
    for (let i = 0; i < total; i++) {
      store.putOutgoing("c", record(i));
      if ((i + 1) % batch === 0) await store.commit();
    }
    await store.commit();
  });
}

await scenario("KvStore fan-in, put+ack in one turn", async (store) => {
  for (let i = 0; i < total; i++) {
    store.putOutgoing("c", record(i));
    store.deleteOutgoing("c", i);
    if ((i + 1) % 100 === 0) await store.commit();
  }
  await store.commit();
});
