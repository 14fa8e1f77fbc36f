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

import type { TickerStart } from "./_ticker_worker.ts";

/** Calls `onTick` on the main thread every `intervalMs` from `t0`. */
export class Ticker {
  #worker: Worker;
  #listener: Deno.TcpListener;
  #flags: Int32Array;
  #loop: Promise<void>;

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

  /** Starts ticking; a tick not yet handled when the next is due is merged. */
  static async start(
    intervalMs: number,
    t0: number,
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
      t0,
      mainOrigin: performance.timeOrigin,
      flags: flags.buffer as SharedArrayBuffer,
    };
    worker.postMessage(start);
    const conn = await Promise.race([
      listener.accept(),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`ticker did not connect: ${failure}`)),
          10_000,
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
    return new Ticker(worker, listener, loop, flags);
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
