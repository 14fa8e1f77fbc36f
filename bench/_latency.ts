/**
 * What subscribers saw: per-publisher sequence tracking ({@link Tracker})
 * and end-to-end latency over every message ({@link LatencyRecorder}, on a
 * log-linear {@link Histogram}).
 *
 * Latency is kept for every message, not a sample: a histogram with 1 µs
 * buckets up to 1,024 µs and 512 buckets per power of two above (at most
 * 0.2% off), so p99.9 and max come from all messages whatever the rate and
 * duration. (The recorder before it kept every message until a buffer of
 * rate × (duration + 1) filled, then every 2nd, 4th, ...: at a fixed rate
 * the buffer never filled, so its p99 was over every message too; it only
 * thinned the as-fast-as-possible scenarios.)
 *
 * @module
 */

import type { LatencyResult } from "./_load_types.ts";

/** What one subscriber saw of one publisher. */
export class Tracker {
  seen: Uint8Array;
  /** One past the highest sequence number seen. */
  next = 0;
  unique = 0;
  gaps = 0;
  /** Sequence numbers jumped over (some may arrive later, out of order). */
  skipped = 0;
  duplicates = 0;
  outOfOrder = 0;

  /** `bytes`: the first bitmap's size (8 sequence numbers a byte; it grows). */
  constructor(bytes = 1024) {
    this.seen = new Uint8Array(bytes);
  }

  mark(seq: number): boolean {
    const i = seq >>> 3;
    if (i >= this.seen.length) {
      let n = this.seen.length * 2;
      while (n <= i) n *= 2;
      const bigger = new Uint8Array(n);
      bigger.set(this.seen);
      this.seen = bigger;
    }
    const bit = 1 << (seq & 7);
    const s = this.seen[i]!;
    if (s & bit) {
      this.duplicates++;
      return false;
    }
    this.seen[i] = s | bit;
    this.unique++;
    if (seq === this.next) this.next = seq + 1;
    else if (seq > this.next) {
      this.gaps++;
      this.skipped += seq - this.next;
      this.next = seq + 1;
    } else this.outOfOrder++;
    return true;
  }
}

const LINEAR = 1024; // 1 µs buckets below this
const HALF = 512; // buckets per power of two above
const TOP = 2 ** 31 - 1; // µs (about 36 minutes): larger values count here

/** Bucket of a value in whole µs. */
function bucketOf(v: number): number {
  if (v < LINEAR) return v;
  const m = 31 - Math.clz32(v) - 9; // 1 for [1024, 2048), 2 for [2048, ...
  return LINEAR + (m - 1) * HALF + ((v >>> m) - HALF);
}

/** The middle of a bucket, µs. */
function valueOf(b: number): number {
  if (b < LINEAR) return b + 0.5;
  const m = Math.floor((b - LINEAR) / HALF) + 1;
  const low = (((b - LINEAR) % HALF) + HALF) * 2 ** m;
  return low + 2 ** m / 2;
}

/**
 * Counts of values (µs) in log-linear buckets: exact below 1,024 µs (to the
 * µs), within 0.2% above. Every value is counted; max and mean are exact.
 */
export class Histogram {
  #counts = new Float64Array(bucketOf(TOP) + 1);
  count = 0;
  sum = 0;
  max = 0;

  /** Adds one value in µs (a negative one, from clock skew, counts as 0). */
  record(us: number): void {
    const v = us > 0 ? (us < TOP ? Math.floor(us) : TOP) : 0;
    this.#counts[bucketOf(v)]!++;
    this.count++;
    this.sum += us > 0 ? us : 0;
    if (us > this.max) this.max = us;
  }

  /**
   * The value at quantile `p` (0..1): the smallest bucket holding the
   * ceil(p × count)-th value, never above the max.
   */
  quantile(p: number): number {
    if (this.count === 0) return 0;
    const rank = Math.max(1, Math.ceil(p * this.count));
    let seen = 0;
    const c = this.#counts;
    for (let b = 0; b < c.length; b++) {
      seen += c[b]!;
      if (seen >= rank) return Math.min(valueOf(b), this.max);
    }
    return this.max;
  }

  /** p50 ... max and mean, or undefined when empty. */
  result(): LatencyResult | undefined {
    if (this.count === 0) return undefined;
    return {
      samples: this.count,
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.max,
      mean: this.sum / this.count,
    };
  }
}

/**
 * End-to-end latency of the messages scheduled inside [from, to), in three
 * histograms: from the time each message was scheduled to be sent (what a
 * user sees: a sender held up by a pause is not excused), from the time it
 * was actually written, and the difference (how late the tool sent).
 * Times are the main thread's `performance.now()`, ms.
 */
export class LatencyRecorder {
  from = Infinity;
  to = Infinity;
  readonly scheduled = new Histogram();
  readonly written = new Histogram();
  readonly lag = new Histogram();
  #fixedRate: boolean;

  /** `fixedRate`: messages have a schedule (else both times are the same). */
  constructor(fixedRate: boolean) {
    this.#fixedRate = fixedRate;
  }

  add(scheduledAt: number, writtenAt: number, now: number): void {
    if (scheduledAt < this.from || scheduledAt >= this.to) return;
    this.scheduled.record((now - scheduledAt) * 1000);
    if (this.#fixedRate) {
      this.written.record((now - writtenAt) * 1000);
      this.lag.record((writtenAt - scheduledAt) * 1000);
    }
  }

  /** The three results (the last two only at a fixed rate). */
  result(): {
    latency?: LatencyResult;
    latencyFromWrite?: LatencyResult;
    sendLag?: LatencyResult;
  } {
    const latency = this.scheduled.result();
    if (latency === undefined) return {};
    if (!this.#fixedRate) return { latency };
    return {
      latency,
      latencyFromWrite: this.written.result()!,
      sendLag: this.lag.result()!,
    };
  }
}

/**
 * A warning when the tool itself sent late (send lag p99 over 5 ms): then
 * its own lateness, not the broker, may be what the latency shows.
 */
export function lateSenderWarning(
  sendLag: LatencyResult | undefined,
): string | undefined {
  if (sendLag === undefined || sendLag.p99 <= 5000) return undefined;
  return `the tool sent late (send lag p99 ${
    (sendLag.p99 / 1000).toFixed(1)
  } ms, max ${
    (sendLag.max / 1000).toFixed(1)
  } ms): its own lateness may be part of the latency`;
}
