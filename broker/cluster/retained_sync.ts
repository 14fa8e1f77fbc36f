/**
 * `RetainedSync`: every node holds every retained message of the cluster
 * in memory (a subscriber on any node gets them at once, as NATS's own
 * MQTT does), following the KV bucket the store writes them to.
 *
 * A node applies its own change at once (read-your-writes), and every
 * change of the bucket as it comes, its own included: all nodes end with
 * the bucket's order (the last write wins everywhere). An empty retained
 * message deletes the key: the topic is cleared on every node.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV, KvWatchEntry } from "@nats-io/kv";
import { follow, type Following } from "./_kv_follow.ts";
import type { BrokerCore } from "../core.ts";
import { deserialize, isStoredMessage } from "../store/_kv_records.ts";
import { fromBase64url } from "./_keys.ts";
import { plain } from "./jetstream_store.ts";

const log = getLogger(["kite", "cluster"]);
const decoder = new TextDecoder();

/** Follows the retained bucket into a core (see the module doc). */
export class RetainedSync {
  readonly #kv: KV;
  #core: BrokerCore | undefined;
  /** Topics of hashed keys (long topics), to apply their deletes. */
  readonly #hashed = new Map<string, string>();
  #following: Following | undefined;

  /** Follows bucket `kv`. */
  constructor(kv: KV) {
    this.#kv = kv;
  }

  /** Loads every retained message into `core`, then follows changes. */
  async start(core: BrokerCore): Promise<void> {
    this.#core = core;
    this.#following = await follow(
      this.#kv,
      (e) => this.#apply(e),
      log,
      "retained",
    );
  }

  #apply(e: KvWatchEntry): void {
    const core = this.#core!;
    this.#seen(e.revision);
    if (e.operation !== "PUT" || e.value.length === 0) {
      const topic = this.#topicOf(e.key);
      if (topic === undefined) return;
      this.#hashed.delete(e.key);
      core.retainedExpiry.delete(topic);
      core.retained.delete(topic);
      return;
    }
    let m: unknown;
    try {
      m = deserialize(plain(e.value));
    } catch {
      return;
    }
    if (!isStoredMessage(m)) return;
    if (e.key.startsWith("h")) this.#hashed.set(e.key, m.topic);
    if (m.expiresAt !== undefined && m.expiresAt <= Date.now()) return;
    core.retained.set(m);
    if (m.expiresAt !== undefined) {
      core.retainedExpiry.set(m.topic, m.expiresAt);
    } else core.retainedExpiry.delete(m.topic);
  }

  #topicOf(key: string): string | undefined {
    if (key.startsWith("k")) {
      try {
        return decoder.decode(fromBase64url(key.slice(1)));
      } catch {
        return undefined;
      }
    }
    return this.#hashed.get(key);
  }

  #applied = 0;
  #waiters: { revision: number; resolve: () => void }[] = [];

  #seen(revision: number): void {
    if (revision <= this.#applied) return;
    this.#applied = revision;
    if (this.#waiters.length === 0) return;
    const ready = this.#waiters.filter((w) => w.revision <= revision);
    this.#waiters = this.#waiters.filter((w) => w.revision > revision);
    for (const w of ready) w.resolve();
  }

  /** Resolves once `revision` of the bucket is applied (or after `timeout`). */
  waitApplied(revision: number, timeout: number): Promise<void> {
    if (this.#applied >= revision) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    const w = { revision, resolve };
    this.#waiters.push(w);
    const timer = setTimeout(() => {
      this.#waiters = this.#waiters.filter((x) => x !== w);
      resolve();
    }, timeout);
    return promise.finally(() => clearTimeout(timer));
  }

  /** Stops following. */
  async stop(): Promise<void> {
    await this.#following?.stop();
  }
}
