/**
 * Latency at the sockets, from the kernel's own record of the system calls
 * (`perf record -k mono` on the syscall tracepoints of the broker and the
 * load tool; see bench/socket_latency.ts). For each message of the
 * `latency` scenarios it finds when the tool's publisher wrote it, when the
 * broker's read returned it, when the broker wrote it on and when the tool's
 * subscriber read returned it: the path a message takes between the two
 * processes, without the tool's own scheduling and JavaScript on either end.
 *
 * Messages are matched by their place in each byte stream: every message of
 * these scenarios has the same size, so the k-th whole message of the
 * publisher's stream is the k-th of the broker's read stream, give or take
 * the messages in flight when the trace began (found by the alignment below,
 * per window of messages, so a dropped trace event costs one window, not the
 * rest of the run).
 *
 * @module
 */

import { Histogram } from "./_latency.ts";
import type { LatencyResult } from "./_load_types.ts";

/** One traced system call of interest. */
export interface SyscallEvent {
  pid: number;
  tid: number;
  /** Microseconds on the monotonic clock. */
  t: number;
  kind: "readEnter" | "readExit" | "write" | "wake";
  /** readEnter, write: the file descriptor. */
  fd?: number;
  /** readExit: bytes returned (negative: an error); write: bytes asked. */
  n?: number;
}

const LINE = /^\s*(\d+)\/(\d+)\s+([\d.]+):\s+syscalls:(\w+):\s*(.*)$/;
const FD = /\bfd: (0x[0-9a-f]+)/;
const LEN = /\b(?:len|count): (0x[0-9a-f]+)/;

/** A tracepoint's return value: hex, two's complement for errors. */
function returned(s: string): number {
  const v = BigInt(s.trim());
  return Number(v >= 1n << 63n ? v - (1n << 64n) : v);
}

/**
 * The events of `perf script -F pid,tid,time,event,trace` output (reads and
 * writes by `recvfrom`/`read` and `sendto`/`write`, and `epoll_wait`
 * returns); other lines are skipped.
 */
export function parsePerfScript(text: string): SyscallEvent[] {
  const out: SyscallEvent[] = [];
  for (const line of text.split("\n")) {
    const m = LINE.exec(line);
    if (m === null) continue;
    const pid = Number(m[1]);
    const tid = Number(m[2]);
    const t = Number(m[3]) * 1e6;
    const name = m[4]!;
    const args = m[5]!;
    switch (name) {
      case "sys_enter_recvfrom":
      case "sys_enter_read": {
        const fd = FD.exec(args);
        if (fd) out.push({ pid, tid, t, kind: "readEnter", fd: Number(fd[1]) });
        break;
      }
      case "sys_exit_recvfrom":
      case "sys_exit_read":
        out.push({ pid, tid, t, kind: "readExit", n: returned(args) });
        break;
      case "sys_enter_sendto":
      case "sys_enter_write": {
        const fd = FD.exec(args);
        const len = LEN.exec(args);
        if (fd && len) {
          out.push({
            pid,
            tid,
            t,
            kind: "write",
            fd: Number(fd[1]),
            n: Number(len[1]),
          });
        }
        break;
      }
      case "sys_exit_epoll_wait":
        out.push({ pid, tid, t, kind: "wake" });
        break;
    }
  }
  return out;
}

/** What {@linkcode analyzeSocketLatency} found. */
export interface SocketLatency {
  /** Messages followed from the tool's write to its read. */
  messages: number;
  /** The size of one message on the wire, bytes. */
  messageBytes: number;
  /** Tool's write to the tool's read returning it: the whole path. */
  total: LatencyResult;
  /** Tool's write to the broker's `epoll_wait` return before its read. */
  toBrokerWake: LatencyResult;
  /** That return to the broker's read. */
  brokerWakeToRead: LatencyResult;
  /** The broker's read to its write of the message: its own time. */
  inBroker: LatencyResult;
  /** The broker's write to the tool's read returning it. */
  toTool: LatencyResult;
}

type Stream = { t: number[]; cum: number[] };

/**
 * The load tool's percentiles of `values` (µs): the same histogram, so the
 * two sets of figures are read alike. perf's timestamps are whole µs.
 */
function stats(values: number[]): LatencyResult {
  const h = new Histogram();
  for (const v of values) h.record(Math.round(v));
  return h.result()!;
}

/** When each whole message of the stream had been moved. */
function completions(s: Stream, size: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.t.length; i++) {
    while ((out.length + 1) * size <= s.cum[i]!) out.push(s.t[i]!);
  }
  return out;
}

/**
 * The shift `s` (message `i` of `a` is message `i - s` of `b`) that keeps
 * `b` after `a` for all but 0.2% of messages `lo..hi` (sampled) with the
 * smallest median gap; searched within `span` of `around`.
 */
function bestShift(
  a: number[],
  b: number[],
  lo: number,
  hi: number,
  around: number,
  span: number,
): number {
  let best = around;
  let bestKey: [number, number] | undefined;
  const step = Math.max(1, Math.floor((hi - lo) / 600));
  for (let s = around - span; s <= around + span; s++) {
    const d: number[] = [];
    for (let i = lo; i < hi; i += step) {
      const j = i - s;
      if (j >= 0 && j < b.length && i < a.length) d.push(b[j]! - a[i]!);
    }
    if (d.length < 20) continue;
    let neg = 0;
    for (const x of d) if (x < 0) neg++;
    d.sort((x, y) => x - y);
    const causal = neg <= 0.002 * d.length;
    const key: [number, number] = [
      causal ? 0 : 1,
      causal ? d[d.length >> 1]! : neg,
    ];
    if (
      bestKey === undefined || key[0] < bestKey[0] ||
      (key[0] === bestKey[0] && key[1] < bestKey[1])
    ) {
      bestKey = key;
      best = s;
    }
  }
  return best;
}

/** Messages per alignment window. */
const WINDOW = 2000;
/** Messages left out at each end of the trace. */
const EDGE = 200;

/**
 * Follows the messages of a `latency` run through `events`: the tool's
 * busiest write stream (its publisher) into the broker's busiest read
 * stream, out of the broker's busiest write stream and into the tool's
 * busiest read stream (its subscriber). `messageBytes` defaults to the most
 * common size of the tool's writes (one message each). Throws when a stream
 * is missing or no message could be followed.
 *
 * @example
 * ```ts
 * const events = parsePerfScript(Deno.readTextFileSync("trace.txt"));
 * const r = analyzeSocketLatency(events, brokerPid, toolPid);
 * console.log(r.total.p99, r.inBroker.p99);
 * ```
 */
export function analyzeSocketLatency(
  events: SyscallEvent[],
  brokerPid: number,
  toolPid: number,
  messageBytes?: number,
): SocketLatency {
  const streams = new Map<string, Stream>();
  const lastFd = new Map<number, number>();
  const wakes = new Map<number, number[]>([[brokerPid, []], [toolPid, []]]);
  const add = (pid: number, dir: string, fd: number, t: number, n: number) => {
    const key = `${pid} ${dir} ${fd}`;
    let s = streams.get(key);
    if (s === undefined) streams.set(key, s = { t: [], cum: [] });
    s.t.push(t);
    s.cum.push((s.cum[s.cum.length - 1] ?? 0) + n);
  };
  for (const e of events) {
    if (e.pid !== brokerPid && e.pid !== toolPid) continue;
    if (e.kind === "readEnter") lastFd.set(e.tid, e.fd!);
    else if (e.kind === "readExit") {
      const fd = lastFd.get(e.tid);
      if (fd !== undefined && e.n! > 0) add(e.pid, "r", fd, e.t, e.n!);
    } else if (e.kind === "write") add(e.pid, "w", e.fd!, e.t, e.n!);
    else wakes.get(e.pid)!.push(e.t);
  }
  const busiest = (pid: number, dir: string): Stream => {
    let best: Stream | undefined;
    for (const [key, s] of streams) {
      if (!key.startsWith(`${pid} ${dir} `)) continue;
      if (best === undefined || s.cum.at(-1)! > best.cum.at(-1)!) best = s;
    }
    if (best === undefined) {
      throw new Error(
        `no ${dir === "r" ? "reads" : "writes"} traced for pid ${pid}`,
      );
    }
    return best;
  };
  const toolOut = busiest(toolPid, "w");
  if (messageBytes === undefined) {
    const sizes = new Map<number, number>();
    for (let i = 0; i < toolOut.cum.length; i++) {
      const n = toolOut.cum[i]! - (toolOut.cum[i - 1] ?? 0);
      sizes.set(n, (sizes.get(n) ?? 0) + 1);
    }
    messageBytes = [...sizes].sort((x, y) => y[1] - x[1])[0]![0];
  }
  const size = messageBytes;
  const wt = completions(toolOut, size);
  const rb = completions(busiest(brokerPid, "r"), size);
  const wb = completions(busiest(brokerPid, "w"), size);
  const rt = completions(busiest(toolPid, "r"), size);
  const brokerWakes = wakes.get(brokerPid)!.sort((x, y) => x - y);
  const seg = {
    total: [],
    toWake: [],
    wakeToRead: [],
    inBroker: [],
    back: [],
  } as Record<
    "total" | "toWake" | "wakeToRead" | "inBroker" | "back",
    number[]
  >;
  // Shifts over the whole trace first (wide search), then per window.
  let s1 = bestShift(wt, rb, 0, wt.length, 0, 300);
  let s2 = bestShift(rb, wb, 0, rb.length, 0, 300);
  let s3 = bestShift(wb, rt, 0, wb.length, 0, 300);
  for (let lo = 0; lo < wt.length; lo += WINDOW) {
    const hi = Math.min(lo + WINDOW, wt.length);
    s1 = bestShift(wt, rb, lo, hi, s1, 60);
    s2 = bestShift(rb, wb, Math.max(0, lo - s1), Math.max(0, hi - s1), s2, 60);
    s3 = bestShift(
      wb,
      rt,
      Math.max(0, lo - s1 - s2),
      Math.max(0, hi - s1 - s2),
      s3,
      60,
    );
    for (let g = lo; g < hi; g++) {
      const i1 = g - s1, i2 = i1 - s2, i3 = i2 - s3;
      if (Math.min(i1, i2, i3) < 0) continue;
      if (i1 >= rb.length || i2 >= wb.length || i3 >= rt.length) continue;
      const tw = wt[g]!, tr = rb[i1]!, tb = wb[i2]!, tt = rt[i3]!;
      // The broker's last epoll_wait return at or before its read.
      let k = upperBound(brokerWakes, tr) - 1;
      const wake = k >= 0 ? brokerWakes[k]! : tr;
      if (wake < tw) k = -1; // it read without waiting: no wake-up delay
      seg.total.push(tt - tw);
      seg.toWake.push(k >= 0 ? wake - tw : tr - tw);
      seg.wakeToRead.push(k >= 0 ? tr - wake : 0);
      seg.inBroker.push(tb - tr);
      seg.back.push(tt - tb);
    }
  }
  // The first and last messages may have been in flight as the trace began
  // or ended: left out.
  for (const k of Object.keys(seg) as (keyof typeof seg)[]) {
    seg[k] = seg[k].slice(EDGE, -EDGE);
  }
  if (seg.total.length === 0) throw new Error("no message could be followed");
  return {
    messages: seg.total.length,
    messageBytes: size,
    total: stats(seg.total),
    toBrokerWake: stats(seg.toWake),
    brokerWakeToRead: stats(seg.wakeToRead),
    inBroker: stats(seg.inBroker),
    toTool: stats(seg.back),
  };
}

/** The first index of sorted `a` whose value is above `x`. */
function upperBound(a: number[], x: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (a[mid]! <= x) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
