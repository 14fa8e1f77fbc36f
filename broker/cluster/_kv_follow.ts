/**
 * Following a JetStream KV bucket (private to the cluster): every entry it
 * holds, then every change, handed to `apply` in order; `follow()`
 * resolves once the entries there at the start are applied.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import type { KV, KvWatchEntry } from "@nats-io/kv";

/** A bucket being followed; `stop()` ends it. */
export interface Following {
  /** Stops following and waits for the loop to end. */
  stop(): Promise<void>;
}

/**
 * Loads `kv` into `apply`, then follows it; resolves when the initial
 * entries are applied. `what` names the bucket in the log if the watch
 * ends with an error.
 */
export async function follow(
  kv: KV,
  apply: (e: KvWatchEntry) => void,
  log: Logger,
  what: string,
): Promise<Following> {
  const { promise: loaded, resolve } = Promise.withResolvers<void>();
  const watch = await kv.watch({ key: ">" });
  let initial = true;
  const loop = (async () => {
    for await (const e of watch) {
      apply(e);
      if (initial && e.delta === 0) {
        initial = false;
        resolve();
      }
    }
  })().catch((e) => log.error("{what} watch ended: {e}", { what, e }));
  // An empty bucket sends nothing: ask for its size.
  const status = await kv.status();
  if (status.values === 0) resolve();
  await loaded;
  return {
    async stop() {
      watch.stop();
      await loop;
    },
  };
}
