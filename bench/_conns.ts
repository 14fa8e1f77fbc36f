/**
 * The conns scenario: how fast a broker takes new connections (CONNECT,
 * wait for CONNACK, `concurrency` at a time), and what each idle one costs
 * it (its RSS growth, read after an idle period: over all of them, and over
 * the second half alone).
 *
 * @module
 */

import { closeIdle, openIdle, readN, Watchdog } from "./_connect.ts";
import { TCP } from "./_link.ts";
import type { CpuResult, LoadOptions, LoadResult } from "./_load_types.ts";
import { PINGREQ } from "./_packets.ts";
import { CpuMeter, readRssKB } from "./_proc.ts";

/** Runs the conns scenario. */
export async function runConns(opts: LoadOptions): Promise<LoadResult> {
  if ((opts.transport ?? TCP).kind !== "tcp") {
    throw new Error("the conns scenario runs over TCP only");
  }
  const host = opts.host ?? "127.0.0.1";
  const count = opts.count ?? 10_000;
  const concurrency = opts.concurrency ?? 100;
  const keepAlive = opts.keepAlive ?? 0;
  const hold = opts.duration ?? 5;
  const runId = crypto.randomUUID().slice(0, 8);
  const warnings: string[] = [];

  // Two halves: the broker's RSS is read before, between (after an idle
  // period) and after, so the growth over the second half is what one more
  // connection costs, without what the first connections commit once (heap
  // pages, compiled code, pools).
  const half = Math.ceil(count / 2);
  const openHalf = async (n: number, suffix: string) => {
    const meter = new CpuMeter(opts.pid);
    meter.start();
    const opened = await openIdle(
      host,
      opts.port,
      n,
      concurrency,
      keepAlive,
      `kite-conns-${runId}${suffix}`,
    );
    return { opened, cpu: meter.stop() };
  };
  const rssBeforeKB = opts.pid ? readRssKB(opts.pid) : undefined;
  const { opened: a, cpu: cpuResultA } = await openHalf(half, "a");
  await new Promise((r) => setTimeout(r, hold * 1000));
  const rssMidKB = opts.pid ? readRssKB(opts.pid) : undefined;
  const { opened: b, cpu: cpuResultB } = await openHalf(count - half, "b");
  const cpuResult = addCpu(cpuResultA, a.seconds, cpuResultB, b.seconds);
  const conns = [...a.conns, ...b.conns];
  const failed = a.failed + b.failed;
  const firstError = a.firstError ?? b.firstError;
  const elapsed = a.seconds + b.seconds;
  const watchdog = new Watchdog(10_000);
  try {
    // Idle period, then the broker's RSS, then check every connection is
    // still open with a PINGREQ.
    await new Promise((r) => setTimeout(r, hold * 1000));
    const rssAfterKB = opts.pid ? readRssKB(opts.pid) : undefined;
    let alive = 0;
    let k = 0;
    const pinger = async () => {
      const buf = new Uint8Array(16);
      while (k < conns.length) {
        const conn = conns[k++]!;
        watchdog.watch(conn);
        try {
          await conn.write(PINGREQ);
          if ((await readN(conn, buf, 2)) && buf[0] === 0xd0) alive++;
        } catch { /* counted as not alive */ }
        watchdog.unwatch(conn);
      }
    };
    await Promise.all(Array.from({ length: concurrency }, pinger));
    if (failed > 0) {
      warnings.push(`${failed} connections failed: ${firstError}`);
    }
    if (
      cpuResult.toolPct > 90 &&
      (cpuResult.brokerPct === undefined || cpuResult.brokerPct < 90)
    ) {
      warnings.push(
        "the tool used over 90% of a core: it may be the bottleneck",
      );
    }
    if (alive < conns.length) {
      warnings.push(
        `${conns.length - alive} connections did not answer PINGREQ`,
      );
    }
    const result: LoadResult = {
      scenario: "conns",
      host,
      port: opts.port,
      seconds: elapsed,
      conns: {
        count,
        connected: conns.length,
        failed,
        connectsPerSec: conns.length / elapsed,
        alive,
      },
      cpu: cpuResult,
      warnings,
    };
    if (cpuResult.brokerS) {
      result.perBrokerCpuSecond = conns.length / cpuResult.brokerS;
    }
    if (rssBeforeKB !== undefined && rssAfterKB !== undefined) {
      result.conns!.rssBeforeKB = rssBeforeKB;
      result.conns!.rssAfterKB = rssAfterKB;
      result.conns!.kbPerConn = conns.length > 0
        ? (rssAfterKB - rssBeforeKB) / conns.length
        : 0;
      result.brokerRssKB = rssAfterKB;
    }
    if (rssMidKB !== undefined && rssAfterKB !== undefined) {
      result.conns!.rssMidKB = rssMidKB;
      if (b.conns.length > 0) {
        result.conns!.kbPerConnSecondHalf = (rssAfterKB - rssMidKB) /
          b.conns.length;
      }
    }
    return result;
  } finally {
    watchdog.stop();
    await closeIdle(conns);
  }
}

/** Two halves' CPU, as if measured over their open phases together. */
function addCpu(
  a: CpuResult,
  aSeconds: number,
  b: CpuResult,
  bSeconds: number,
): CpuResult {
  const wall = aSeconds + bSeconds;
  const toolS = a.toolS + b.toolS;
  const out: CpuResult = {
    toolS,
    toolPct: wall > 0 ? (100 * toolS) / wall : 0,
  };
  if (a.brokerS !== undefined && b.brokerS !== undefined) {
    out.brokerS = a.brokerS + b.brokerS;
    out.brokerPct = wall > 0 ? (100 * out.brokerS) / wall : 0;
  }
  return out;
}
