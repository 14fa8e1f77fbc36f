/**
 * The thread behind {@link Ticker} (bench/_ticker.ts): sleeps in
 * `Atomics.wait()` until each tick is due and then writes one byte to a
 * loopback socket the main thread reads, unless the main thread has not
 * yet taken the previous tick (no backlog of ticks builds up).
 *
 * Shared cells: [0] 1 while a tick is unread, [1] 1 to stop.
 *
 * @module
 */

/** What the main thread posts first: the worker connects. */
export interface TickerStart {
  port: number;
  /** Milliseconds between ticks. */
  intervalMs: number;
  /** The main thread's `performance.timeOrigin`. */
  mainOrigin: number;
  flags: SharedArrayBuffer;
}

/** What it posts then: tick from `t0` (main-thread `performance.now()`). */
export interface TickerGo {
  t0: number;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<TickerStart | TickerGo>) => void) | null;
  postMessage(message: { error: string } | { done: true }): void;
};

let start: TickerStart | undefined;
let connected: Promise<Deno.TcpConn> | undefined;

scope.onmessage = async (e) => {
  if (!("t0" in e.data)) {
    start = e.data;
    // (The main thread may accept, and post the go, before this resolves.)
    connected = Deno.connect({ hostname: "127.0.0.1", port: start.port });
    connected.catch((err) => scope.postMessage({ error: String(err) }));
    return;
  }
  const s = { ...start!, t0: e.data.t0 };
  const flags = new Int32Array(s.flags);
  const shift = performance.timeOrigin - s.mainOrigin;
  const one = Uint8Array.of(1);
  let conn: Deno.TcpConn | undefined;
  try {
    conn = await connected!;
    conn.setNoDelay(true);
    let k = 0;
    while (Atomics.load(flags, 1) === 0) {
      const now = performance.now() + shift;
      const due = s.t0 + k * s.intervalMs;
      if (now < due) {
        Atomics.wait(flags, 1, 0, due - now);
        continue;
      }
      if (Atomics.compareExchange(flags, 0, 0, 1) === 0) await conn.write(one);
      // The next tick after now (ticks missed while late are not repeated).
      k = Math.max(k + 1, Math.floor((now - s.t0) / s.intervalMs) + 1);
    }
    scope.postMessage({ done: true });
  } catch (err) {
    scope.postMessage({ error: String(err) });
  } finally {
    try {
      conn?.close();
    } catch { /* closed */ }
  }
};
