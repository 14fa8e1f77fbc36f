/**
 * Test helpers for a broker run as a subprocess (`broker/main.ts`): its
 * output collected and waited on by pattern (bounded), started on port 0 and
 * read back from its start-up line, stopped with a signal.
 */

export const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;
const TIMEOUT_MS = 15_000;

/** Rejects with a message naming `what` if `promise` takes over `ms`. */
export async function within<T>(
  promise: Promise<T>,
  what: string,
  ms = TIMEOUT_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Collects a stream's text and lets a test wait for a pattern in it. */
export class TextCollector {
  text = "";
  #waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.text += chunk;
        this.#check();
      }
    })();
  }

  #check() {
    this.#waiters = this.#waiters.filter(({ pattern, resolve }) => {
      const m = this.text.match(pattern);
      if (m) resolve(m);
      return !m;
    });
  }

  /** Resolves with the first match of `pattern` (bounded wait). */
  waitFor(pattern: RegExp, ms = TIMEOUT_MS): Promise<RegExpMatchArray> {
    const { promise, resolve } = Promise.withResolvers<RegExpMatchArray>();
    this.#waiters.push({ pattern, resolve });
    this.#check();
    return within(promise, `output matching ${pattern}`, ms);
  }
}

/** A broker subprocess. */
export interface BrokerProcess extends AsyncDisposable {
  child: Deno.ChildProcess;
  stdout: TextCollector;
  stderr: TextCollector;
  port: number;
  /** Sends `signal` (default SIGTERM) and waits for the exit. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** Options of `spawnBroker`. */
export interface SpawnOptions {
  /** A shell line run before the broker (e.g. `ulimit -n 120`). */
  shellPrefix?: string;
  /** Extra environment. */
  env?: Record<string, string>;
}

/**
 * Starts `main.ts` on 127.0.0.1 port 0 (no persistence, no $SYS unless
 * `args` say otherwise) and waits for its "listening on" line.
 */
export async function spawnBroker(
  args: string[] = [],
  options: SpawnOptions = {},
): Promise<BrokerProcess> {
  const argv = [
    "run",
    "-A",
    MAIN,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--enable-persistence=false",
    "--sys-interval",
    "0",
    ...args,
  ];
  const cmd = options.shellPrefix === undefined
    ? new Deno.Command(Deno.execPath(), {
      args: argv,
      env: options.env ?? {},
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    })
    : new Deno.Command("sh", {
      args: [
        "-c",
        `${options.shellPrefix} && exec "$0" "$@"`,
        Deno.execPath(),
        ...argv,
      ],
      env: options.env ?? {},
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    });
  const child = cmd.spawn();
  const stdout = new TextCollector(child.stdout);
  const stderr = new TextCollector(child.stderr);
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!exited) {
      try {
        child.kill(signal);
      } catch {
        // exited meanwhile
      }
    }
    const s = await status;
    await Promise.all([stdout.done, stderr.done]);
    return s;
  };
  try {
    const m = await stdout.waitFor(/listening on mqtt:\/\/\S+:(\d+)/);
    return {
      child,
      stdout,
      stderr,
      port: Number(m[1]),
      stop,
      [Symbol.asyncDispose]: async () => {
        await stop("SIGKILL");
      },
    };
  } catch (e) {
    await stop("SIGKILL");
    throw new Error(`broker did not start: ${stdout.text}${stderr.text}`, {
      cause: e,
    });
  }
}
