/**
 * Precise wake-ups for the main thread: a Worker sleeps until each tick is
 * due and writes a byte to a loopback socket, so the main thread, asleep
 * in its event loop with every other socket, wakes within tens of µs
 * (timers wake it 1-4 ms late, and a busy loop costs a core and is
 * preempted by V8's helper threads; a `postMessage` from the worker wakes
 * it 0.1-3 ms late). The fleet scenario sends its devices' messages on
 * these ticks.
 *
 * @module
 */

import type { TickerGo, TickerStart } from "./_ticker_worker.ts";

/**
 * Calls `onTick` on the main thread every `intervalMs`, from the time given
 * to {@link Ticker.go} (after the worker is up: starting one can take
 * seconds on a busy machine).
 */
export class Ticker {
  #worker: Worker;
  #listener: Deno.TcpListener;
  #flags: Int32Array;
  #loop: Promise<void>;
  /** What went wrong on the worker's side, if anything. */
  failure: string | undefined;

  private constructor(
    worker: Worker,
    listener: Deno.TcpListener,
    loop: Promise<void>,
    flags: Int32Array,
  ) {
    this.#worker = worker;
    this.#listener = listener;
    this.#loop = loop;
    this.#flags = flags;
  }

  /**
   * Starts the worker and waits until it is connected; a tick not yet
   * handled when the next is due is merged into it.
   */
  static async start(
    intervalMs: number,
    onTick: () => void,
  ): Promise<Ticker> {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const worker = new Worker(
      new URL("./_ticker_worker.ts", import.meta.url),
      { type: "module" },
    );
    let failure: string | undefined;
    worker.onmessage = (e: MessageEvent<{ error?: string }>) => {
      if (e.data.error) failure = e.data.error;
    };
    worker.onerror = (e) => {
      e.preventDefault();
      failure = e.message;
    };
    const flags = new Int32Array(new SharedArrayBuffer(8));
    const start: TickerStart = {
      port: listener.addr.port,
      intervalMs,
      mainOrigin: performance.timeOrigin,
      flags: flags.buffer as SharedArrayBuffer,
    };
    worker.postMessage(start);
    const conn = await Promise.race([
      listener.accept(),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`ticker did not connect: ${failure}`)),
          30_000,
        )
      ),
    ]);
    const loop = (async () => {
      const buf = new Uint8Array(64);
      try {
        while ((await conn.read(buf)) !== null) {
          Atomics.store(flags, 0, 0);
          onTick();
        }
      } catch { /* closed */ }
      try {
        conn.close();
      } catch { /* closed */ }
    })();
    const ticker = new Ticker(worker, listener, loop, flags);
    ticker.failure = failure;
    worker.onmessage = (e: MessageEvent<{ error?: string }>) => {
      if (e.data.error) ticker.failure ??= e.data.error;
    };
    worker.onerror = (e) => {
      e.preventDefault();
      ticker.failure ??= e.message;
    };
    return ticker;
  }

  /** Ticks from `t0` (main-thread `performance.now()`) on. */
  go(t0: number): void {
    const go: TickerGo = { t0 };
    this.#worker.postMessage(go);
  }

  /** Stops the ticks and the worker. */
  async stop(): Promise<void> {
    Atomics.store(this.#flags, 1, 1);
    Atomics.notify(this.#flags, 1);
    await Promise.race([
      this.#loop,
      new Promise((r) => setTimeout(r, 1000)),
    ]);
    this.#worker.terminate();
    this.#listener.close();
  }
}
