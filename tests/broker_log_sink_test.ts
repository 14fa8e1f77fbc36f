// The `kite` command's log sink: lines buffered for one turn, then one
// write per stream; warnings and errors to stderr; nothing lost on dispose.
import assert from "node:assert/strict";
import type { LogRecord } from "@logtape/logtape";
import { lineSink } from "../broker/_log_sink.ts";

class Capture {
  writes: string[] = [];
  writeSync(p: Uint8Array): number {
    // A short write: at most 7 bytes at a time, as a full pipe may do.
    const n = Math.min(7, p.length);
    const last = this.writes.length - 1;
    const text = new TextDecoder().decode(p.subarray(0, n));
    if (this.pending && last >= 0) this.writes[last] += text;
    else this.writes.push(text);
    this.pending = n < p.length;
    return n;
  }
  pending = false;
}

function record(level: LogRecord["level"], message: string): LogRecord {
  return {
    category: ["kite"],
    level,
    message: [message],
    rawMessage: message,
    timestamp: 0,
    properties: {},
  };
}

const format = (r: LogRecord) => `${r.level} ${r.message[0]}`;

Deno.test("lineSink() writes a turn's lines in one write per stream, in order", async () => {
  const out = new Capture();
  const err = new Capture();
  using sink = lineSink(format, out, err);
  sink(record("info", "one"));
  sink(record("warning", "careful"));
  sink(record("debug", "two"));
  sink(record("error", "bad"));
  assert.deepEqual(out.writes, [], "nothing written during the turn");
  await new Promise((r) => setTimeout(r, 0));
  await new Promise((r) => setTimeout(r, 0));
  assert.deepEqual(out.writes, ["info one\ndebug two\n"]);
  assert.deepEqual(err.writes, ["warning careful\nerror bad\n"]);
});

Deno.test("lineSink() writes at once past 64 KiB, and what is left on dispose", () => {
  const out = new Capture();
  const err = new Capture();
  const sink = lineSink(format, out, err);
  const long = "x".repeat(1000);
  for (let i = 0; i < 70; i++) sink(record("info", long));
  assert.equal(out.writes.length, 1, "one write once 64 KiB were buffered");
  assert.equal(out.writes[0]!.split("\n").length - 1, 66);
  sink(record("info", "last"));
  sink[Symbol.dispose]();
  assert.equal(out.writes.length, 2);
  assert.ok(out.writes[1]!.endsWith("info last\n"));
  assert.equal(out.writes.join("").split("\n").length - 1, 71);
});
