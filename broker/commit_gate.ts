/**
 * Group commit for what the broker acknowledges: output that must wait until
 * the store has made the state behind it durable (PUBACK/PUBREC/PUBCOMP to a
 * publisher, QoS 2 PUBLISH/PUBREL to a persistent session) is held by its
 * connection, which asks the `CommitGate` to tell it when the next commit is
 * done. Everything mutated in one turn of the event loop goes into one
 * commit; commits run one after another.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Histogram } from "./metrics.ts";
import type { Store } from "./store/store.ts";

const log = getLogger(["kite", "broker"]);

/** What waits for a commit (a connection holding output). */
export interface CommitWaiter {
  /** The commit of generation `gen` (and every one before) is durable. */
  committed(gen: number): void;
  /** The commit failed: nothing held can be sent truthfully. */
  commitFailed(): void;
}

/**
 * A store wrapper that notes whether mutations are pending a commit, and
 * runs the group commits that waiters wait for.
 *
 * @example
 * ```ts ignore
 * const gate = new CommitGate(new MemoryStore());
 * gate.store.putRetained("a", message);
 * gate.wait(connection); // connection.committed(gen) once it is durable
 * ```
 */
export class CommitGate {
  /** The store, as everyone else writes to it. */
  readonly store: Store;
  #inner: Store;
  #dirty = false;
  #gen = 1;
  #waiters: CommitWaiter[] = [];
  #scheduled = false;
  #chain: Promise<void> = Promise.resolve();
  #latency: Histogram | undefined;

  /** Wraps `store`; `latency` gets each group commit's duration, seconds. */
  constructor(store: Store, latency?: Histogram) {
    this.#inner = store;
    this.#latency = latency;
    // A store that makes nothing durable (`durable: false`, the in-memory
    // store) gives acknowledgements nothing to wait for: its mutations do
    // not hold them (only `markDirty` does).
    const volatile = store.durable === false;
    const mark = <A extends unknown[]>(f: (...a: A) => void) =>
      volatile ? f : (...a: A) => {
        this.#dirty = true;
        f(...a);
      };
    this.store = {
      putRetained: mark((t, m) => store.putRetained(t, m)),
      putSession: mark((r) => store.putSession(r)),
      deleteSession: mark((id) => store.deleteSession(id)),
      putOutgoing: mark((id, r) => store.putOutgoing(id, r)),
      deleteOutgoing: mark((id, seq) => store.deleteOutgoing(id, seq)),
      putIncomingQos2: mark((id, p) => store.putIncomingQos2(id, p)),
      deleteIncomingQos2: mark((id, p) => store.deleteIncomingQos2(id, p)),
      commit: () => this.#commitNow(),
      load: () => store.load(),
      close: () => store.close(),
    };
  }

  /** Whether mutations wait for a commit. */
  get dirty(): boolean {
    return this.#dirty;
  }

  /**
   * Makes the next commit cover something that is not a store mutation
   * (a cluster node's message to other nodes, which its store's `commit`
   * waits for): acknowledgements held until then.
   */
  markDirty(): void {
    this.#dirty = true;
  }

  /** The generation the next commit will have (held output is tagged with it). */
  get generation(): number {
    return this.#gen;
  }

  /**
   * Tells `waiter` (once) when the next commit is done; the commit starts
   * at the end of this turn.
   */
  wait(waiter: CommitWaiter): void {
    this.#waiters.push(waiter);
    if (!this.#scheduled) {
      this.#scheduled = true;
      queueMicrotask(this.#run);
    }
  }

  #commitNow(): Promise<void> {
    this.#dirty = false;
    return this.#inner.commit();
  }

  #run = (): void => {
    this.#scheduled = false;
    const waiters = this.#waiters;
    this.#waiters = [];
    const gen = this.#gen++;
    const start = performance.now();
    const p = this.#commitNow();
    this.#chain = this.#chain.then(() => p).then(() => {
      this.#latency?.observe((performance.now() - start) / 1000);
      for (const w of waiters) w.committed(gen);
    }, (e) => {
      log.error("Store commit failed: {error}", { error: e });
      for (const w of waiters) w.commitFailed();
    });
  };

  /** Resolves when every commit started so far, and what is pending, is done. */
  async flush(): Promise<void> {
    if (this.#dirty) {
      const p = this.#commitNow();
      this.#chain = this.#chain.then(() => p);
    }
    await this.#chain;
  }
}
