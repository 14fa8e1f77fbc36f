/**
 * `lineSink()`: the `kite` command's LogTape sink (private). Each record is
 * formatted at once and its line appended to a buffer; the buffer is
 * written with one write per stream (stdout for info and below, stderr for
 * warnings and errors) by a zero-delay timer, so what one turn of the event
 * loop logged goes out together early in the next; and at once when it
 * passes 64 KiB, on `dispose()` and on the process's `unload`.
 *
 * Why not LogTape's console sink: it goes through `console.info`, one
 * synchronous write system call and the console's own formatting per line.
 * A connect storm logs two lines per client, and those calls took about a
 * quarter of the broker's CPU time (`deno run --cpu-prof`, `conns`
 * scenario). Lines still appear at once, in order per stream.
 *
 * @module
 */

import type { LogRecord, Sink, TextFormatter } from "@logtape/logtape";

/** Bytes buffered before a write without waiting for the turn to end. */
const FLUSH_AT = 64 * 1024;

const encoder = new TextEncoder();

/** One output stream's pending lines. */
class LineBuffer {
  #lines: string[] = [];
  #chars = 0;
  constructor(readonly target: { writeSync(p: Uint8Array): number }) {}

  get chars(): number {
    return this.#chars;
  }

  push(line: string): void {
    this.#lines.push(line);
    this.#chars += line.length;
  }

  /** Writes every pending line (a short write is continued). */
  flush(): void {
    if (this.#lines.length === 0) return;
    const bytes = encoder.encode(this.#lines.join(""));
    this.#lines = [];
    this.#chars = 0;
    try {
      for (let off = 0; off < bytes.length;) {
        off += this.target.writeSync(bytes.subarray(off));
      }
    } catch {
      // A closed stdout or stderr: the lines have nowhere to go.
    }
  }
}

/**
 * A sink writing `formatter`'s lines (a newline added when missing) to
 * stdout, or to stderr from `warning` up, buffered for the current turn.
 * Dispose it (LogTape's `dispose()`) to write what is left.
 *
 * @example
 * ```ts ignore
 * await configure({
 *   sinks: { lines: lineSink(getTextFormatter()) },
 *   loggers: [{ category: ["kite"], lowestLevel: "info", sinks: ["lines"] }],
 * });
 * ```
 */
export function lineSink(
  formatter: TextFormatter,
  out: { writeSync(p: Uint8Array): number } = Deno.stdout,
  err: { writeSync(p: Uint8Array): number } = Deno.stderr,
): Sink & Disposable {
  const stdout = new LineBuffer(out);
  const stderr = new LineBuffer(err);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const flush = () => {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    stdout.flush();
    stderr.flush();
  };
  const onUnload = () => flush();
  globalThis.addEventListener("unload", onUnload);
  const sink = (record: LogRecord) => {
    let line = formatter(record);
    if (!line.endsWith("\n")) line += "\n";
    const buf = record.level === "warning" || record.level === "error" ||
        record.level === "fatal"
      ? stderr
      : stdout;
    buf.push(line);
    if (buf.chars >= FLUSH_AT) flush();
    else if (timer === undefined) {
      const t = setTimeout(flush, 0);
      // Pending lines do not keep the process alive (unload writes them).
      Deno.unrefTimer(t);
      timer = t;
    }
  };
  return Object.assign(sink, {
    [Symbol.dispose]() {
      globalThis.removeEventListener("unload", onUnload);
      flush();
    },
  });
}
