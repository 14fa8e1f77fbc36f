/**
 * What a listener does when `accept` fails (private to the listeners): a
 * transient failure (out of descriptors: EMFILE/ENFILE, a connection reset
 * before it was accepted, out of memory) must never end the accept loop.
 * The loop waits a little, longer while failures repeat (10 ms doubling up
 * to 1 s), and tries again; the log gets one line per 10 s with the count,
 * not one per failure.
 *
 * @module
 */

import type { Logger } from "@logtape/logtape";
import { plural } from "../_plural.ts";

/** First wait after a failed accept. */
const FIRST_BACKOFF_MS = 10;
/** Longest wait between accept attempts while they keep failing. */
const MAX_BACKOFF_MS = 1000;
/** At most one log line per this interval. */
const LOG_INTERVAL_MS = 10_000;

/** Backoff and rate-limited logging for one listener's accept loop. */
export class AcceptFailures {
  #log: Logger;
  #url: string;
  #backoff = 0;
  #unlogged = 0;
  #lastLog = -Infinity;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #wake: (() => void) | undefined;

  /** For the listener at `url`, logging to `log`. */
  constructor(log: Logger, url: string) {
    this.#log = log;
    this.#url = url;
  }

  /** An accept succeeded: the next failure starts a new backoff. */
  succeeded(): void {
    this.#backoff = 0;
  }

  /**
   * An accept failed with `error`: logs (rate-limited) and resolves when it
   * is time to try again (or at once after `cancel()`).
   */
  failed(error: unknown): Promise<void> {
    this.#unlogged++;
    const now = Date.now();
    if (now - this.#lastLog >= LOG_INTERVAL_MS) {
      this.#log.error(
        `{url}: accept failed {count} ${
          plural(this.#unlogged, "time")
        }: {error}; still accepting (if this is 'Too many open files', raise the descriptor limit: ulimit -n)`,
        { url: this.#url, count: this.#unlogged, error: String(error) },
      );
      this.#lastLog = now;
      this.#unlogged = 0;
    }
    this.#backoff = this.#backoff === 0
      ? FIRST_BACKOFF_MS
      : Math.min(this.#backoff * 2, MAX_BACKOFF_MS);
    return new Promise((resolve) => {
      this.#wake = resolve;
      this.#timer = setTimeout(() => {
        this.#timer = undefined;
        this.#wake = undefined;
        resolve();
      }, this.#backoff);
    });
  }

  /** Ends a pending wait now (the listener is closing). */
  cancel(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}
