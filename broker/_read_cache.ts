/**
 * The per-session answers of the `authorizeRead` hook (hooks.ts), cached by
 * topic until the rules change: what keeps per-delivery authorization cheap
 * on fan-out. One {@linkcode ReadCache} belongs to one session's identity;
 * a new identity gets a new cache.
 *
 * - With an `authorizationEpoch` hook, answers are kept per topic until the
 *   epoch changes (the whole cache is dropped then), at most
 *   {@linkcode READ_CACHE_ENTRIES} topics (cleared when full) and only
 *   topics up to {@linkcode READ_CACHE_TOPIC_CHARS} characters (a longer one
 *   is checked each time, so the cache pins little memory).
 * - Without an epoch hook, nothing is cached: the rules may change at any
 *   time, so every delivery asks the hook.
 * - A hook that throws denies (logged once per cache).
 *
 * A hit costs the epoch call and one `Map` lookup (none when the topic is
 * the last one asked, as in a fan-out), and allocates nothing.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type {
  AuthorizationEpochHook,
  AuthorizeReadHook,
  ClientInfo,
} from "./hooks.ts";

const log = getLogger(["kite", "auth"]);

/** Most topics one session's cache holds (it is cleared when full). */
export const READ_CACHE_ENTRIES = 1024;

/** Longer topics are not cached (checked on every delivery). */
export const READ_CACHE_TOPIC_CHARS = 256;

/**
 * The `authorizeRead` answers for one client identity.
 *
 * @example
 * ```ts
 * import { ReadCache } from "./_read_cache.ts";
 * let epoch = 1;
 * const cache = new ReadCache(
 *   (client, topic) => topic.startsWith(`${client.username}/`),
 *   () => epoch,
 *   { clientId: "c1", username: "alice", protocolVersion: 5 },
 * );
 * cache.allows("alice/inbox"); // true (asked the hook)
 * cache.allows("alice/inbox"); // true (cached)
 * epoch++; // rules reloaded: the next check asks again
 * ```
 */
export class ReadCache {
  readonly #hook: AuthorizeReadHook;
  readonly #epochOf: AuthorizationEpochHook | undefined;
  readonly #client: ClientInfo;
  #answers: Map<string, boolean> | undefined;
  #epoch = 0;
  /** The last topic answered (fan-out repeats one topic string). */
  #lastTopic: string | undefined;
  #lastOk = false;
  #failed = false;

  /** A cache of `hook`'s answers for `client`, kept per `epoch`. */
  constructor(
    hook: AuthorizeReadHook,
    epoch: AuthorizationEpochHook | undefined,
    client: ClientInfo,
  ) {
    this.#hook = hook;
    this.#epochOf = epoch;
    this.#client = client;
  }

  /** Whether the client may receive a message published to `topic` now. */
  allows(topic: string): boolean {
    const epochOf = this.#epochOf;
    if (epochOf === undefined) return this.#ask(topic);
    const epoch = epochOf();
    let answers = this.#answers;
    if (answers === undefined || epoch !== this.#epoch) {
      this.#epoch = epoch;
      this.#lastTopic = undefined;
      answers = this.#answers = new Map();
    } else {
      if (topic === this.#lastTopic) return this.#lastOk;
      const hit = answers.get(topic);
      if (hit !== undefined) {
        this.#lastTopic = topic;
        this.#lastOk = hit;
        return hit;
      }
    }
    const ok = this.#ask(topic);
    if (topic.length <= READ_CACHE_TOPIC_CHARS) {
      if (answers.size >= READ_CACHE_ENTRIES) answers.clear();
      answers.set(topic, ok);
      this.#lastTopic = topic;
      this.#lastOk = ok;
    }
    return ok;
  }

  /** Topics cached now (for tests). */
  get size(): number {
    return this.#answers?.size ?? 0;
  }

  #ask(topic: string): boolean {
    try {
      return this.#hook(this.#client, topic) === true;
    } catch (e) {
      if (!this.#failed) {
        this.#failed = true;
        log.error(
          "authorizeRead failed for client {clientId}, denying: {error}",
          { clientId: this.#client.clientId, error: (e as Error).message },
        );
      }
      return false;
    }
  }
}
