/**
 * `IoTurn`: runs callbacks once the runtime has asked the operating system
 * which sockets are ready. A connection that has read its budget waits for
 * that before it reads again, so one client that always has data cannot keep
 * everyone else's reads waiting.
 *
 * Why it is needed: Deno completes a socket read at once when the socket
 * already has data, without asking the OS about the other sockets; its
 * runtime (tokio's current-thread scheduler) polls epoll only when it has
 * nothing else to run, or every 61 turns of its loop. A connection flooded
 * with data is read back to back, and a canary's PUBLISH on another socket
 * waited hundreds of milliseconds to be noticed (bench/stalled_reader.ts).
 * Yielding with `setTimeout(0)` makes the runtime poll, but sleeps about
 * 2 ms even when nothing else is ready (a single heavy publisher lost most
 * of its throughput); `setImmediate`, a `MessageChannel` message or a file
 * system op resume without polling.
 *
 * The mechanism: a loopback TCP pair. `after()` writes one byte into one
 * end; the read pending on the other end completes only when the runtime
 * learns from epoll that it is readable, and that same poll also marks the
 * other clients' sockets readable. When nothing else is ready it costs a
 * write, an epoll call and a read (tens of microseconds), not a sleep.
 *
 * Private to the broker.
 *
 * @module
 */

/**
 * A connection that read at least `SLICE_BYTES` over at least `SLICE_MS`
 * (of `Date.now()`) without a pause waits for the runtime to poll the OS
 * before it reads on: a client that always has data keeps the others'
 * reads waiting for about a slice, not for hundreds of milliseconds, and
 * one that is alone pays one pause (tens of microseconds) per slice.
 */
export const SLICE_BYTES = 64 * 1024;
/** See `SLICE_BYTES`. */
export const SLICE_MS = 2;

/** A callback `after()` runs; called with `undefined`. */
export type AfterPoll = (v: undefined) => void;

const ONE = new Uint8Array(1);

/** The self-pipe that resumes callbacks after the runtime polled the OS. */
export class IoTurn {
  #tx: Deno.TcpConn;
  #rx: Deno.TcpConn;
  #buf = new Uint8Array(256);
  #queue: AfterPoll[] = [];
  #spare: AfterPoll[] = [];
  /** A byte is on its way: `after()` adds to the batch it resumes. */
  #armed = false;
  #closed = false;

  private constructor(tx: Deno.TcpConn, rx: Deno.TcpConn) {
    this.#tx = tx;
    this.#rx = rx;
    tx.setNoDelay(true);
    // The pending read must not keep the process alive.
    rx.unref();
    this.#read();
  }

  /**
   * Opens the loopback pair; undefined when it cannot (no permission to
   * listen on or connect to 127.0.0.1): connections then read without
   * yielding.
   */
  static async open(): Promise<IoTurn | undefined> {
    let listener: Deno.TcpListener | undefined;
    let tx: Deno.TcpConn | undefined;
    try {
      // Asked first: listening without the permission would prompt.
      const net = { name: "net", host: "127.0.0.1" } as const;
      if (Deno.permissions.querySync(net).state !== "granted") return undefined;
      listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const accepted = listener.accept();
      tx = await Deno.connect({
        hostname: "127.0.0.1",
        port: listener.addr.port,
      });
      const rx = await accepted;
      return new IoTurn(tx, rx);
    } catch {
      try {
        tx?.close();
      } catch { /* closed */ }
      return undefined;
    } finally {
      try {
        listener?.close();
      } catch { /* closed */ }
    }
  }

  /** Runs `cb(undefined)` after the runtime's next poll of the OS. */
  after(cb: AfterPoll): void {
    if (this.#closed) {
      queueMicrotask(() => cb(undefined));
      return;
    }
    this.#queue.push(cb);
    if (this.#armed) return;
    this.#armed = true;
    this.#tx.write(ONE).catch(this.#onFail);
  }

  #read(): void {
    this.#rx.read(this.#buf).then(this.#onRead, this.#onFail);
  }

  #onRead = (n: number | null): void => {
    if (n === null) {
      this.#onFail();
      return;
    }
    this.#armed = false;
    this.#run();
    this.#read();
  };

  /** The pair broke (or was closed): whoever waits is resumed now. */
  #onFail = (): void => {
    this.close();
    this.#run();
  };

  #run(): void {
    const batch = this.#queue;
    this.#queue = this.#spare;
    for (let i = 0; i < batch.length; i++) batch[i]!(undefined);
    batch.length = 0;
    this.#spare = batch;
  }

  /** Closes the pair; callbacks still waiting run at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const c of [this.#tx, this.#rx]) {
      try {
        c.close();
      } catch { /* closed */ }
    }
  }
}
