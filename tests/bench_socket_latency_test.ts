// bench/_syscall_latency.ts: following messages through a `perf script`
// trace of the broker's and the tool's system calls (bench/socket_latency.ts).

import assert from "node:assert/strict";
import {
  analyzeSocketLatency,
  parsePerfScript,
} from "../bench/_syscall_latency.ts";

const BROKER = 100;
const TOOL = 200;

/** One line as `perf script -F pid,tid,time,event,trace` prints it. */
function line(pid: number, us: number, event: string, args: string): string {
  const t = (1000 + us / 1e6).toFixed(6);
  return `${pid}/${pid} ${t}: syscalls:${event}: ${args}`;
}
const hex = (n: number) => `0x${n.toString(16).padStart(8, "0")}`;
const send = (pid: number, us: number, fd: number, n: number) =>
  line(
    pid,
    us,
    "sys_enter_sendto",
    `fd: ${hex(fd)}, buff: 0x1, len: ${hex(n)}, flags: 0x00004000`,
  );
const read = (pid: number, us: number, fd: number, n: number) => [
  line(
    pid,
    us - 1,
    "sys_enter_recvfrom",
    `fd: ${hex(fd)}, ubuf: 0x1, size: 0x00004000`,
  ),
  line(pid, us, "sys_exit_recvfrom", `0x${n.toString(16)}`),
];
const wake = (pid: number, us: number) =>
  line(pid, us, "sys_exit_epoll_wait", "0x1");

/**
 * 3,000 messages of 10 bytes, one every 100 µs: the broker wakes 20-26 µs
 * after the tool's write, reads 3 µs later, writes 5 µs after its read; the
 * tool reads 15 µs after that. The trace begins with 3 messages already
 * written (the broker's reads of them are traced, the tool's writes not),
 * every 50th pair of messages is read by the broker in one read, a failed
 * read (EAGAIN) and the broker's PINGRESPs on another socket are in it too.
 */
function trace(): string {
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const tw = i * 100;
    if (i >= 3) lines.push(send(TOOL, tw, 5, 10));
    if (i % 50 === 1) continue; // read with the next one
    const wk = tw + 20 + (i % 7);
    lines.push(wake(BROKER, wk));
    lines.push(...read(BROKER, wk + 3, 7, i % 50 === 2 ? 20 : 10));
    lines.push(send(BROKER, wk + 8, 8, i % 50 === 2 ? 20 : 10));
    if (i % 100 === 0) lines.push(send(BROKER, wk + 9, 9, 2));
    lines.push(wake(TOOL, wk + 20));
    lines.push(...read(TOOL, wk + 23, 6, i % 50 === 2 ? 20 : 10));
  }
  lines.push(
    line(BROKER, 400_000, "sys_enter_recvfrom", `fd: ${hex(7)}, ubuf: 0x1`),
  );
  lines.push(line(BROKER, 400_001, "sys_exit_recvfrom", "0xfffffffffffffff5"));
  return lines.join("\n");
}

Deno.test("parsePerfScript reads fds, sizes and error returns of perf's syscall lines", () => {
  const events = parsePerfScript(
    [
      "  100/101 12.000001:     syscalls:sys_enter_sendto: fd: 0x0000001a, buff: 0x5603, len: 0x00000468, flags: 0x00004000",
      "  100/101 12.000002:    syscalls:sys_exit_recvfrom: 0xfffffffffffffff5",
      "  100/101 12.000003:  syscalls:sys_exit_epoll_wait: 0x1",
      "not a trace line",
    ].join("\n"),
  );
  assert.equal(events.length, 3);
  assert.deepEqual(events[0], {
    pid: 100,
    tid: 101,
    t: 12.000001e6,
    kind: "write",
    fd: 26,
    n: 1128,
  });
  assert.equal(events[1]!.n, -11);
  assert.equal(events[2]!.kind, "wake");
});

Deno.test("analyzeSocketLatency follows each message from the tool's write to its read", () => {
  const r = analyzeSocketLatency(parsePerfScript(trace()), BROKER, TOOL);
  assert.equal(r.messageBytes, 10);
  // All but the edges left out at each end (200 each).
  assert.ok(r.messages > 2500, `followed ${r.messages}`);
  // Broker woke 20-26 µs after the write; the message read at the next
  // wake-up (every 50th) waited 100 µs more.
  assert.ok(r.toBrokerWake.p50 >= 20 && r.toBrokerWake.p50 <= 26);
  assert.ok(r.toBrokerWake.max >= 120 && r.toBrokerWake.max <= 126);
  assert.equal(r.brokerWakeToRead.p50, 3);
  assert.equal(r.inBroker.p50, 5);
  assert.equal(r.inBroker.max, 5);
  assert.equal(r.toTool.p50, 15);
  assert.ok(r.total.p50 >= 43 && r.total.p50 <= 49, `total p50 ${r.total.p50}`);
});

Deno.test("analyzeSocketLatency says which stream is missing", () => {
  assert.throws(
    () => analyzeSocketLatency(parsePerfScript(trace()), BROKER, 300),
    /no writes traced for pid 300/,
  );
});
