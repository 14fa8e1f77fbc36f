/**
 * Test helper: runs Kite's broker (`broker/main.ts`) as a subprocess on
 * 127.0.0.1, for tests whose main thread blocks (the `SyncClient`), where an
 * in-process broker could not answer. Persistence and $SYS are off.
 *
 * ```ts ignore
 * await using broker = await startKiteProcess();
 * // connect to 127.0.0.1:broker.port ...
 * ```
 *
 * @module
 */

const MAIN = new URL("../broker/main.ts", import.meta.url);

/** A running broker process. */
export interface KiteProcess extends AsyncDisposable {
  /** The port it listens on. */
  readonly port: number;
  /** Stops it (SIGTERM) and waits for the exit; safe to call twice. */
  stop(): Promise<void>;
  /** What it logged so far. */
  log(): string;
  /** Sends it a signal (e.g. `SIGHUP`). */
  signal(signal: Deno.Signal): void;
  /**
   * Resolves when its log (from `from` characters on) matches `pattern`;
   * rejects after `ms`.
   */
  waitForLog(pattern: RegExp, ms?: number, from?: number): Promise<void>;
}

/**
 * Starts the broker and resolves once it logged where it listens. `port`
 * (default 0, a free one) reuses a port, e.g. to restart a broker; `args`
 * are extra flags (`--no-allow-anonymous`).
 */
export async function startKiteProcess(
  options: { port?: number; args?: string[]; startTimeout?: number } = {},
): Promise<KiteProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      MAIN.pathname,
      "--host",
      "127.0.0.1",
      "--port",
      String(options.port ?? 0),
      "--no-enable-persistence",
      "--sys-interval",
      "0",
      ...(options.args ?? []),
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let text = "";
  const { promise: ready, resolve, reject } = Promise.withResolvers<number>();
  const logWaiters = new Set<() => void>();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    const dec = new TextDecoder();
    for await (const chunk of stream) {
      text += dec.decode(chunk, { stream: true });
      const m = text.match(/listening on mqtt:\/\/[^\s:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
      for (const w of logWaiters) w();
    }
  };
  const waitForLog = (pattern: RegExp, ms = 5000, from = 0) => {
    const { promise, resolve: found, reject: fail } = Promise
      .withResolvers<void>();
    const check = () => {
      if (pattern.test(text.slice(from))) found();
    };
    logWaiters.add(check);
    const timer = setTimeout(
      () => fail(new Error(`kite did not log ${pattern} in time:\n${text}`)),
      ms,
    );
    check();
    return promise.finally(() => {
      clearTimeout(timer);
      logWaiters.delete(check);
    });
  };
  const drained = Promise.all([read(child.stdout), read(child.stderr)]);
  const status = child.status.then((s) => {
    reject(new Error(`kite exited (${s.code}) before listening:\n${text}`));
    return s;
  });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await status;
    await drained;
  };
  const timer = setTimeout(
    () => reject(new Error(`kite did not start in time:\n${text}`)),
    options.startTimeout ?? 10_000,
  );
  try {
    const port = await ready;
    return {
      port,
      stop,
      log: () => text,
      signal: (signal) => child.kill(signal),
      waitForLog,
      [Symbol.asyncDispose]: stop,
    };
  } catch (e) {
    await stop();
    throw e;
  } finally {
    clearTimeout(timer);
  }
}
