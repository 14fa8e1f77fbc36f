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

  /**
   * Spawns the process (`NO_COLOR=1` plus `env`; stdin closed unless
   * piped). `shellPrefix` runs a shell line first (`ulimit -n 120`).
   */
  constructor(
    args: string[],
    options: {
      stdin?: "piped" | "null";
      env?: Record<string, string>;
      shellPrefix?: string;
    } = {},
  ) {
    const argv = ["run", "-A", ...args];
    const io = {
      stdin: options.stdin ?? "null",
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1", ...options.env },
    } as const;
    this.child = options.shellPrefix === undefined
      ? new Deno.Command(Deno.execPath(), { args: argv, ...io }).spawn()
      : new Deno.Command("sh", {
        args: [
          "-c",
          `${options.shellPrefix} && exec "$0" "$@"`,
          Deno.execPath(),
          ...argv,
        ],
        ...io,
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

  /** Writes `text` to stdin (spawned with `stdin: "piped"`), left open. */
  async send(text: string): Promise<void> {
    const w = this.child.stdin.getWriter();
    try {
      await w.write(new TextEncoder().encode(text));
    } finally {
      w.releaseLock();
    }
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

const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;

/** A `broker/main.ts` subprocess listening on `port`. */
export interface BrokerProcess extends AsyncDisposable {
  process: DenoProcess;
  port: number;
}

/**
 * Starts `broker/main.ts` on 127.0.0.1 port 0 (no persistence, no `$SYS`
 * unless `args` say otherwise) and waits for its "listening on" line; the
 * returned handle kills it (SIGKILL) when disposed.
 */
export async function spawnBroker(
  args: string[] = [],
  options: { env?: Record<string, string>; shellPrefix?: string } = {},
): Promise<BrokerProcess> {
  const process = new DenoProcess([
    MAIN,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--enable-persistence=false",
    "--sys-interval",
    "0",
    ...args,
  ], options);
  try {
    const m = await process.waitForOutput(
      /listening on mqtt:\/\/\S+:(\d+)/,
      "all",
      15_000,
      "the broker's start-up line",
    );
    return {
      process,
      port: Number(m[1]),
      [Symbol.asyncDispose]: () => process.kill(),
    };
  } catch (e) {
    await process.kill();
    throw new Error(
      `broker did not start: ${process.stdout}${process.stderr}`,
      { cause: e },
    );
  }
}
