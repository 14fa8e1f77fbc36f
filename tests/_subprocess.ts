/**
 * Test helper: runs a Deno program (`deno run -A ...`) as a subprocess,
 * collects its stdout and stderr as text, and lets a test wait (bounded) for
 * a pattern in them or for the exit.
 *
 * ```ts ignore
 * const p = new DenoProcess(["examples/hello.ts"]);
 * await p.waitForOutput(/ready/, "stdout", 10_000, "ready");
 * const { code } = await p.exit(10_000, "the exit");
 * ```
 *
 * @module
 */

import { within } from "./client_helpers.ts";

/** A finished process: exit code and everything it wrote. */
export interface ProcessResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Which output `waitForOutput` looks at: stdout alone, or stdout + stderr. */
export type OutputSource = "stdout" | "all";

/** A running `deno run -A ...args`, its output collected. */
export class DenoProcess {
  readonly child: Deno.ChildProcess;
  stdout = "";
  stderr = "";
  /** Resolves at the exit, once both outputs are drained. */
  readonly done: Promise<ProcessResult>;
  #waiters: {
    re: RegExp;
    source: OutputSource;
    resolve(m: RegExpMatchArray): void;
  }[] = [];

  /** Spawns the process (`NO_COLOR=1` plus `env`; stdin closed unless piped). */
  constructor(
    args: string[],
    options: { stdin?: "piped" | "null"; env?: Record<string, string> } = {},
  ) {
    this.child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", ...args],
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    }).spawn();
    const read = async (s: ReadableStream<Uint8Array>, err: boolean) => {
      for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
        if (err) this.stderr += chunk;
        else this.stdout += chunk;
        this.#check();
      }
    };
    const reads = Promise.all([
      read(this.child.stdout, false),
      read(this.child.stderr, true),
    ]);
    this.done = Promise.all([this.child.status, reads]).then(([s]) => ({
      code: s.code,
      stdout: this.stdout,
      stderr: this.stderr,
    }));
  }

  #check(): void {
    this.#waiters = this.#waiters.filter((w) => {
      const text = w.source === "stdout"
        ? this.stdout
        : this.stdout + this.stderr;
      const m = text.match(w.re);
      if (!m) return true;
      w.resolve(m);
      return false;
    });
  }

  /**
   * Resolves with the match once `source` matches `re`; rejects after `ms`
   * with a message naming `what`.
   */
  waitForOutput(
    re: RegExp,
    source: OutputSource,
    ms: number,
    what: string,
  ): Promise<RegExpMatchArray> {
    const { promise, resolve } = Promise.withResolvers<RegExpMatchArray>();
    this.#waiters.push({ re, source, resolve });
    this.#check();
    return within(promise, ms, what);
  }

  /** The exit status and output; rejects after `ms` naming `what`. */
  exit(ms: number, what: string): Promise<ProcessResult> {
    return within(this.done, ms, what);
  }

  /** Writes `text` to stdin (spawned with `stdin: "piped"`) and closes it. */
  async input(text: string): Promise<void> {
    const w = this.child.stdin.getWriter();
    await w.write(new TextEncoder().encode(text));
    await w.close();
  }

  /** Kills it (SIGKILL) if still running and waits until it is gone. */
  async kill(): Promise<void> {
    try {
      this.child.kill("SIGKILL");
    } catch { /* gone */ }
    await this.done;
  }
}

/**
 * True when the program `bin` is on PATH and answers `--help` (exit code 0
 * or 1, as mosquitto_pub and mosquitto_sub do).
 */
export function hasCommand(bin: string): boolean {
  try {
    const r = new Deno.Command(bin, {
      args: ["--help"],
      stdout: "null",
      stderr: "null",
    }).outputSync();
    return r.code === 0 || r.code === 1;
  } catch {
    return false;
  }
}
