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
 * A `Session` checks every message against its owner's read rights (client
 * id and user name, kept while offline and in the stored record) when it is
 * delivered (live, retained, will: before it is sent or queued) and again
 * when a queued or restored message is sent or an unacknowledged one is
 * resent on reconnect: the rules at send time win. A refused message is
 * skipped silently, as if no subscription matched (one in flight is
 * forgotten).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type {
  AuthorizationEpochHook,
  AuthorizeReadHook,
  ClientInfo,
} from "./hooks.ts";
import { debugEnabled } from "./_log.ts";

const log = getLogger(["kite", "auth"]);
const sessionLog = getLogger(["kite", "broker", "session"]);

/** The identity the read rules are asked about. */
export function identityOf(
  clientId: string,
  protocolVersion: ClientInfo["protocolVersion"],
  username: string | undefined,
): ClientInfo {
  const client: ClientInfo = { clientId, protocolVersion };
  if (username !== undefined) client.username = username;
  return client;
}

/** Logs (at debug level, when on) that `topic` was not delivered. */
export function logReadRefused(clientId: string, topic: string): void {
  if (!debugEnabled()) return;
  sessionLog.debug("Session {clientId}: {topic} not delivered (read refused)", {
    clientId,
    topic,
  });
}

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
