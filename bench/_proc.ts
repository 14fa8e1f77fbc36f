/**
 * Reading another process's CPU time and RSS from /proc, and the tool's own
 * CPU time, over a measured interval.
 *
 * @module
 */

import process from "node:process";
import type { CpuResult } from "./_load_types.ts";

/** User + system CPU seconds of a process, or undefined when unreadable. */
export function readProcCpuSeconds(pid: number): number | undefined {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    // Fields after the ")" closing the command name; utime and stime are
    // fields 14 and 15 (1-based), in clock ticks (100 per second on Linux).
    const rest = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(rest[11]) + Number(rest[12])) / 100;
  } catch {
    return undefined;
  }
}

/** VmRSS of a process in KB, or undefined when it cannot be read. */
export function readRssKB(pid: number): number | undefined {
  try {
    const status = Deno.readTextFileSync(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** This process's user + system CPU seconds. */
export function toolCpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

/** CPU seconds of the tool and (with a pid) the broker from start() to stop(). */
export class CpuMeter {
  #pid: number | undefined;
  #t0 = 0;
  #tool0 = 0;
  #broker0: number | undefined;
  constructor(pid: number | undefined) {
    this.#pid = pid;
  }
  start(): void {
    this.#t0 = performance.now();
    this.#tool0 = toolCpuSeconds();
    this.#broker0 = this.#pid ? readProcCpuSeconds(this.#pid) : undefined;
  }
  stop(): CpuResult {
    const wall = (performance.now() - this.#t0) / 1000;
    const toolS = toolCpuSeconds() - this.#tool0;
    const out: CpuResult = { toolS, toolPct: (100 * toolS) / wall };
    const b1 = this.#pid ? readProcCpuSeconds(this.#pid) : undefined;
    if (b1 !== undefined && this.#broker0 !== undefined) {
      out.brokerS = b1 - this.#broker0;
      out.brokerPct = (100 * out.brokerS) / wall;
    }
    return out;
  }
}
