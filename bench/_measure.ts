/**
 * The measured interval of the fleet and scatter scenarios: deliveries and
 * broker RSS each second, CPU over [t0 + warm-up, + duration), and a stall
 * check (no delivery for 10 s ends the run).
 *
 * @module
 */

import type { CpuResult } from "./_load_types.ts";
import { CpuMeter, readRssKB } from "./_proc.ts";

/** What {@link measureWindow} watches. */
export interface WindowOptions {
  /** The run's start, `performance.now()`. */
  t0: number;
  /** Seconds from t0 to the measured interval. */
  warmup: number;
  /** Seconds measured. */
  duration: number;
  /** The broker's pid, for its CPU and RSS. */
  pid?: number | undefined;
  /** Deliveries so far. */
  delivered: () => number;
  /** Called every tick (about 1-50 ms) with the time. */
  onTick?: (now: number) => void;
}

/** What {@link measureWindow} saw. */
export interface Measured {
  /** Deliveries at the start and end of the measured interval. */
  d0: number;
  d1: number;
  /** Its length, seconds. */
  seconds: number;
  cpu: CpuResult;
  /** Deliveries in each whole second from t0. */
  perSecond: number[];
  /** The broker's RSS (KB) at the end of each of those seconds. */
  rssPerSecond: number[];
  brokerRssKB?: number;
  /** True when nothing was delivered for 10 s (the window ended early). */
  stalled: boolean;
}

/** Waits through warm-up and the measured interval, measuring. */
export async function measureWindow(o: WindowOptions): Promise<Measured> {
  const cpu = new CpuMeter(o.pid);
  const from = o.t0 + o.warmup * 1000;
  const to = from + o.duration * 1000;
  const perSecond: number[] = [];
  const rssPerSecond: number[] = [];
  let nextSecond = o.t0 + 1000;
  let lastSecond = 0;
  let lastDelivered = 0;
  let lastProgress = o.t0;
  let d0 = 0;
  let tStart = 0;
  let started = false;
  while (true) {
    const now = performance.now();
    o.onTick?.(now);
    const delivered = o.delivered();
    if (now >= nextSecond) {
      perSecond.push(delivered - lastSecond);
      if (o.pid) rssPerSecond.push(readRssKB(o.pid) ?? 0);
      lastSecond = delivered;
      nextSecond += 1000;
    }
    if (delivered !== lastDelivered) {
      lastDelivered = delivered;
      lastProgress = now;
    }
    const stalled = now - lastProgress > 10_000;
    if (!started && now >= from) {
      started = true;
      d0 = delivered;
      tStart = now;
      cpu.start();
    }
    if ((started && now >= to) || stalled) {
      const out: Measured = {
        d0,
        d1: delivered,
        seconds: started ? (now - tStart) / 1000 : 0,
        cpu: started ? cpu.stop() : { toolS: 0, toolPct: 0 },
        perSecond,
        rssPerSecond,
        stalled,
      };
      const rss = o.pid ? readRssKB(o.pid) : undefined;
      if (rss !== undefined) out.brokerRssKB = rss;
      return out;
    }
    const wait = Math.min(50, Math.max(1, (started ? to : from) - now));
    await new Promise((r) => setTimeout(r, wait));
  }
}

/**
 * Waits until `done()` or, once `quietMs` passed without a new delivery
 * (0: never), or `timeoutS` seconds.
 */
export async function drain(
  done: () => boolean,
  delivered: () => number,
  timeoutS: number,
  quietMs = 0,
): Promise<void> {
  const end = performance.now() + timeoutS * 1000;
  let last = delivered();
  let quietSince = performance.now();
  while (performance.now() < end && !done()) {
    await new Promise((r) => setTimeout(r, 10));
    if (delivered() !== last) {
      last = delivered();
      quietSince = performance.now();
    } else if (quietMs > 0 && performance.now() - quietSince > quietMs) break;
  }
}
