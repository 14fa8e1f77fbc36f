/**
 * When `KvStore` lingers before a flush.
 *
 * When QoS 0/1 deliveries are acknowledged (deleted) right after they are
 * stored, as with an online persistent subscriber, the store waits before a
 * flush, one timer tick at a time, for at most 20 ms or twice the recent
 * write time (up to 100 ms), and flushes at once when the last waiting record
 * is deleted. The put and the delete then cancel out and the commits that
 * gate the publishers' acks write nothing. It starts lingering when, since
 * the previous flush, at least 16 records and half of the new ones were
 * deleted while pending or just after being written, and stays while acks
 * keep cancelling puts; a lingering window that did not pay turns it off for
 * 2, 4, 8, ... flushes.
 *
 * @module
 */

import { AS_DOUBLE } from "../../codec/_double.ts";

/**
 * A lingering flush waits for acks at most this long, or twice as long as
 * recent writes took (waiting as long as a write would take costs nothing),
 * but never more than `LINGER_CAP_MS`.
 */
const LINGER_MAX_MS = 20;
const LINGER_CAP_MS = 100;
/** Acks per flush window that turn lingering on. */
const LINGER_MIN_ACKS = 16;

/**
 * The lingering state of one store. The store counts into `puts`, `cancels`
 * and `late` as mutations come (plain fields: the put path stays cheap) and
 * calls `decide()` when a flush begins.
 */
export class LingerPolicy {
  /** Wait a little before flushing: acks are likely to cancel puts. */
  on = false;
  /** New outgoing records put since the last flush began. */
  puts = 0;
  /** Deletes since then that cancelled a pending put. */
  cancels = 0;
  /** Deletes since then of records first written by the last flush. */
  late = 0;
  /** When the current wait began (`performance.now()`; codec/_double.ts). */
  start = AS_DOUBLE;
  /** Flushes to go before lingering may be tried again. */
  #cooldown = 0;
  /** The next cooldown (doubles after each window that did not pay). */
  #backoff = 2;
  /** Moving average of how long a flush that wrote something took, in ms. */
  #writeMs = AS_DOUBLE;

  /** Whether a wait that began at `start` may go on at time `now`. */
  mayWait(now: number): boolean {
    return now - this.start <
      Math.min(LINGER_CAP_MS, Math.max(LINGER_MAX_MS, 2 * this.#writeMs));
  }

  /** Notes how long a flush that wrote something took. */
  wrote(ms: number): void {
    this.#writeMs = 0.7 * this.#writeMs + 0.3 * ms;
  }

  /**
   * Decides whether the next flush lingers, and starts a new window: when
   * most new outgoing records of this window were acknowledged right after
   * they were stored (an online subscriber), waiting a few ms lets the acks
   * cancel the puts, so nothing is written at all. A lingering window in
   * which acks cancelled too little turns it off for a while (acks that
   * cannot come before the commit).
   */
  decide(): void {
    const puts = this.puts;
    const cancels = this.cancels;
    const late = this.late;
    this.puts = this.cancels = this.late = 0;
    const enough = (n: number) => n >= LINGER_MIN_ACKS && n * 2 >= puts;
    if (this.on) {
      this.on = enough(cancels);
      if (this.on) this.#backoff = 2;
      else {
        // It did not pay: try again later, later each time in a row.
        this.#cooldown = this.#backoff;
        this.#backoff = Math.min(this.#backoff * 2, 256);
      }
    } else if (this.#cooldown > 0) {
      this.#cooldown--;
    } else {
      this.on = enough(cancels + late);
    }
  }
}
