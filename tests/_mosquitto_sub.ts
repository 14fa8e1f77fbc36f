/**
 * Test helper: `mosquitto_sub` as a subscriber with bounded waits. It runs
 * with `-d`, so the helper knows when the SUBACK came (on a cluster node,
 * once every node routes to the subscription), and prints `topic payload`
 * lines (`-v`), collected as messages.
 *
 * ```ts ignore
 * await using sub = await mosquittoSub(port, ["-t", "a/#", "-q", "1"]);
 * const lines = await sub.take(2);
 * ```
 *
 * @module
 */

import { within } from "./client_helpers.ts";

/** A running `mosquitto_sub`. */
export interface MosquittoSub extends AsyncDisposable {
  /** `topic payload` lines received so far (and not taken). */
  readonly lines: string[];
  /** The next `n` lines (waits at most `ms`). */
  take(n: number, ms?: number): Promise<string[]>;
  /** Stops it. */
  stop(): Promise<void>;
}

/**
 * Starts `mosquitto_sub -h 127.0.0.1 -p port -d -v ...args` and resolves
 * once it got its SUBACK.
 */
export async function mosquittoSub(
  port: number,
  args: string[],
): Promise<MosquittoSub> {
  // stdbuf: mosquitto_sub buffers its output into a pipe; line by line,
  // each message is seen when it arrives.
  const child = new Deno.Command("stdbuf", {
    args: [
      "-oL",
      "mosquitto_sub",
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-d",
      "-v",
      ...args,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  let text = "";
  let wake: (() => void) | undefined;
  const read = async (s: ReadableStream<Uint8Array>, out: boolean) => {
    let partial = "";
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (out) {
        partial += chunk;
        const parts = partial.split("\n");
        partial = parts.pop()!;
        for (const l of parts) {
          if (!/^(Client |Subscribed )/.test(l) && l !== "") lines.push(l);
        }
      }
      wake?.();
    }
  };
  let exited = false;
  const done = Promise.all([
    child.status,
    read(child.stdout, true),
    read(child.stderr, false),
  ]).finally(() => {
    exited = true;
  });
  const until = async (pred: () => boolean, ms: number, what: string) => {
    await within(
      (async () => {
        while (!pred()) {
          const { promise, resolve } = Promise.withResolvers<void>();
          wake = resolve;
          await Promise.race([promise, done]);
          if (!pred() && exited) {
            throw new Error(`mosquitto_sub exited: ${text}`);
          }
        }
      })(),
      ms,
      what,
    );
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await done;
  };
  try {
    await until(
      () => text.includes("received SUBACK"),
      10_000,
      "mosquitto_sub's SUBACK",
    );
  } catch (e) {
    await stop();
    throw new Error(`${(e as Error).message}: ${text}`);
  }
  return {
    lines,
    take: async (n, ms = 5000) => {
      await until(() => lines.length >= n, ms, `${n} mosquitto_sub lines`)
        .catch((e) => {
          throw new Error(`${(e as Error).message}; got ${lines.join(" | ")}`);
        });
      return lines.splice(0, n);
    },
    stop,
    [Symbol.asyncDispose]: stop,
  };
}
