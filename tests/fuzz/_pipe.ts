/**
 * An in-memory duplex pair with backpressure, for the connection target
 * (private to tests/fuzz): unlike tests/_memory_duplex.ts, whose writes
 * resolve at once, the broker's writes here resolve only once the client
 * has read the chunk, as on a socket with a full send buffer. A client that reads
 * slowly (or not at all) so makes the broker's output queue grow, and the
 * broker's slow-reader rules (QoS 0 dropped, session queues, the close at
 * four times `outputBufferLimit`) run.
 *
 * `close()` ends both directions of that end: the peer reads what was
 * written before, then null; pending and later writes of either end reject
 * (`BrokenPipe` for the peer, `BadResource` for this end).
 *
 * @module
 */

import type { Duplex } from "../../codec/duplex.ts";

function noop(): void {}

/** One direction: chunks with the callbacks that resolve their writes. */
class Channel {
  #chunks: { chunk: Uint8Array; done: () => void }[] = [];
  #reader: ((chunk: Uint8Array | null) => void) | undefined;
  #ended = false;
  #backpressure: boolean;

  constructor(backpressure: boolean) {
    this.#backpressure = backpressure;
  }

  get ended(): boolean {
    return this.#ended;
  }

  write(chunk: Uint8Array): Promise<void> {
    const r = this.#reader;
    if (r !== undefined) {
      this.#reader = undefined;
      r(chunk);
      return Promise.resolve();
    }
    if (!this.#backpressure) {
      this.#chunks.push({ chunk, done: noop });
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      this.#chunks.push({ chunk, done: resolve });
    });
  }

  read(): Promise<Uint8Array | null> {
    const next = this.#chunks.shift();
    if (next !== undefined) {
      next.done();
      return Promise.resolve(next.chunk);
    }
    if (this.#ended) return Promise.resolve(null);
    return new Promise((resolve) => this.#reader = resolve);
  }

  /** No more writes: the reader gets what is there, then null. */
  end(): void {
    if (this.#ended) return;
    this.#ended = true;
    const r = this.#reader;
    this.#reader = undefined;
    r?.(null);
  }

  /** The reading end closed: unread chunks are gone, their writes resolve. */
  discard(): void {
    for (const c of this.#chunks.splice(0)) c.done();
    this.end();
  }
}

class PipeEnd implements Duplex {
  remoteAddress: string | undefined;
  #in: Channel;
  #out: Channel;
  #closed = false;

  constructor(input: Channel, output: Channel, remoteAddress: string) {
    this.#in = input;
    this.#out = output;
    this.remoteAddress = remoteAddress;
  }

  read(): Promise<Uint8Array | null> {
    return this.#in.read();
  }

  write(data: Uint8Array): Promise<void> {
    if (this.#closed) {
      return Promise.reject(new Deno.errors.BadResource("the pipe is closed"));
    }
    if (this.#out.ended) {
      return Promise.reject(
        new Deno.errors.BrokenPipe("the peer closed the pipe"),
      );
    }
    return this.#out.write(data.slice());
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#out.end();
    this.#in.discard();
  }
}

/**
 * The two ends of a pipe, [client, server]: the server's writes resolve
 * once the client read them; the client's resolve at once (the broker's
 * reading pauses while it closes or waits for a hook, and that is not what
 * is tested here).
 */
export function pipePair(n: number): [Duplex, Duplex] {
  const up = new Channel(false);
  const down = new Channel(true);
  return [
    new PipeEnd(down, up, "memory-broker"),
    new PipeEnd(up, down, `pipe-client:${n}`),
  ];
}
