/**
 * The reconnect backoff policy of the client: exponential delays with jitter,
 * capped at a maximum. I/O-free; the client asks it for the next delay.
 *
 * @module
 */

/** Options of automatic reconnection. Every field is optional. */
export interface ReconnectOptions {
  /** Reconnect automatically after a lost connection. Default `true`. */
  enabled?: boolean;
  /** Delay before the first attempt, in milliseconds. Default 100. */
  initialDelay?: number;
  /** Largest delay between attempts, in milliseconds. Default 30 000. */
  maxDelay?: number;
  /** Each failed attempt multiplies the delay by this. Default 2. */
  backoffMultiplier?: number;
  /**
   * Randomisation of each delay, 0..1: the delay is spread uniformly over
   * `delay * (1 ± jitter)` (then capped at `maxDelay`). Default 0.2.
   */
  jitter?: number;
  /**
   * Give up after this many consecutive failed attempts (the client then
   * closes and rejects what is pending). Default `Infinity`.
   */
  maxAttempts?: number;
  /**
   * Reconnect after a refusal that a retry does not fix by itself too
   * (0x84 Unsupported protocol version, 0x85 Client identifier not valid,
   * 0x8A Banned, 0x8C Bad authentication method, 0x8E Session taken over):
   * for a client that must keep trying whatever happens, such as a bridge.
   * Default false.
   */
  retryRefusals?: boolean;
}

/** `ReconnectOptions` with every default filled in. */
export type ResolvedReconnectOptions = Required<ReconnectOptions>;

/** The defaults of `ReconnectOptions`. */
export const DEFAULT_RECONNECT: Readonly<ResolvedReconnectOptions> = {
  enabled: true,
  initialDelay: 100,
  maxDelay: 30_000,
  backoffMultiplier: 2,
  jitter: 0.2,
  maxAttempts: Infinity,
  retryRefusals: false,
};

/**
 * Exponential backoff with jitter. `next()` returns the delay before the next
 * attempt and counts it; `reset()` starts over after a successful connection.
 *
 * @example
 * ```ts
 * import { Backoff } from "@kite/mqtt/client";
 * const b = new Backoff({ initialDelay: 100, jitter: 0 });
 * b.next(); // 100
 * b.next(); // 200
 * b.reset();
 * b.next(); // 100
 * ```
 */
export class Backoff {
  /** The resolved options. */
  readonly options: Readonly<ResolvedReconnectOptions>;
  #attempt = 0;
  #random: () => number;

  /**
   * Creates a backoff policy; `random` (default `Math.random`) is injectable
   * for tests.
   */
  constructor(
    options: ReconnectOptions = {},
    random: () => number = Math.random,
  ) {
    const o = { ...DEFAULT_RECONNECT, ...stripUndefined(options) };
    if (!(o.initialDelay >= 0)) {
      throw new RangeError("initialDelay must be >= 0");
    }
    if (!(o.maxDelay >= o.initialDelay)) {
      throw new RangeError("maxDelay must be >= initialDelay");
    }
    if (!(o.backoffMultiplier >= 1)) {
      throw new RangeError("backoffMultiplier must be >= 1");
    }
    if (!(o.jitter >= 0 && o.jitter <= 1)) {
      throw new RangeError("jitter must be within 0..1");
    }
    this.options = o;
    this.#random = random;
  }

  /** How many delays were handed out since the last `reset()`. */
  get attempt(): number {
    return this.#attempt;
  }

  /** True when `maxAttempts` delays were handed out since the last reset. */
  get exhausted(): boolean {
    return this.#attempt >= this.options.maxAttempts;
  }

  /** The delay in milliseconds before the next attempt. */
  next(): number {
    const o = this.options;
    const base = Math.min(
      o.maxDelay,
      o.initialDelay * Math.pow(o.backoffMultiplier, this.#attempt),
    );
    this.#attempt++;
    const spread = base * o.jitter * (2 * this.#random() - 1);
    return Math.max(0, Math.min(o.maxDelay, Math.round(base + spread)));
  }

  /** Starts over from `initialDelay` (after a successful connection). */
  reset(): void {
    this.#attempt = 0;
  }
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}
