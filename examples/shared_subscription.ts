/**
 * Shared subscription: two workers subscribe to `$share/workers/jobs/#`, and
 * the broker hands each job to one of them only, splitting the load.
 *
 * ```sh
 * deno run -A examples/shared_subscription.ts
 * KITE_EXAMPLE_COUNT=100 deno run -A examples/shared_subscription.ts
 * ```
 *
 * @module
 */

import { Client } from "@kite/mqtt/client";

const options = {
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
};
const jobs = Number(Deno.env.get("KITE_EXAMPLE_COUNT") ?? 10);

let done = 0;
const { promise: allDone, resolve } = Promise.withResolvers<void>();
const workers = await Promise.all(["worker-a", "worker-b"].map(async (name) => {
  const c = new Client({ ...options, clientId: name });
  await c.connect();
  const handled: string[] = [];
  await c.subscribe("$share/workers/jobs/#", 1, (m) => {
    handled.push(m.payloadText);
    if (++done === jobs) resolve();
  });
  return { name, c, handled };
}));

const producer = new Client(options);
await producer.connect();
for (let i = 1; i <= jobs; i++) {
  await producer.publish(`jobs/resize`, `job ${i}`, 1);
}
await allDone;

for (const w of workers) {
  console.log(
    `${w.name} handled ${w.handled.length} jobs: ${w.handled.join(", ")}`,
  );
  await w.c.disconnect();
}
await producer.disconnect();
console.log(`${done} jobs, each handled once`);
