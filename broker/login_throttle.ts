/**
 * {@linkcode LoginThrottle}: failed logins counted per source address, and
 * temporary bans, without I/O (the clock is injectable).
 *
 * - A source is the client's IP address: the host part of its
 *   `remoteAddress`; an IPv6 address counts by its /64 prefix (one host
 *   commonly has a whole /64), an IPv4-mapped IPv6 address as the IPv4
 *   address ({@linkcode sourceOf}).
 * - `maxFailures` failures within `windowMs` ban the source for `banMs`;
 *   each further ban of the same source doubles, up to `maxBanMs`. A source
 *   clean for `maxBanMs` after its last ban starts over.
 * - A source with failures in the current window is a *suspect*: its
 *   password checks wait behind everyone else's (see `PasswordFile.verify`).
 * - At most `maxSources` sources are remembered: the oldest are forgotten
 *   first, so memory stays bounded whatever the number of attackers.
 *
 * `fileAuth` uses one per broker: a banned source gets CONNACK 0x8A
 * (Banned; 3.1.1: 0x05) without a password check, and each ban is logged
 * once.
 *
 * @module
 */

/** Options of {@linkcode LoginThrottle}. */
export interface LoginThrottleOptions {
  /** Failures within `windowMs` that ban a source. Default 5. */
  maxFailures?: number;
  /** The window failures are counted in, in ms. Default 60,000. */
  windowMs?: number;
  /** The first ban of a source, in ms; it doubles each time. Default 10,000. */
  banMs?: number;
  /** The longest ban, in ms. Default 3,600,000 (one hour). */
  maxBanMs?: number;
  /** Most sources remembered. Default 100,000. */
  maxSources?: number;
  /** The clock (epoch ms); for tests. Default `Date.now`. */
  now?: () => number;
}

interface Entry {
  /** Failures in the window that started at `windowStart`. */
  failures: number;
  windowStart: number;
  /** Epoch ms the current or last ban ends (0: never banned). */
  bannedUntil: number;
  /** Bans so far (the next lasts banMs * 2^bans). */
  bans: number;
}

/**
 * Counts failed logins per source address and bans sources that fail too
 * often.
 *
 * @example
 * ```ts
 * import { LoginThrottle } from "./login_throttle.ts";
 * let now = 0;
 * const throttle = new LoginThrottle({ maxFailures: 2, now: () => now });
 * throttle.failed("203.0.113.7"); // 0: no ban yet
 * throttle.failed("203.0.113.7"); // 10000: banned for 10 s
 * throttle.banned("203.0.113.7"); // 10000 ms left
 * now += 10_000;
 * throttle.banned("203.0.113.7"); // 0
 * ```
 */
export class LoginThrottle {
  readonly #maxFailures: number;
  readonly #windowMs: number;
  readonly #banMs: number;
  readonly #maxBanMs: number;
  readonly #maxSources: number;
  readonly #now: () => number;
  /** By source, oldest change first (re-inserted on each failure). */
  readonly #entries = new Map<string, Entry>();

  /** Creates a throttle; see {@linkcode LoginThrottleOptions}. */
  constructor(options: LoginThrottleOptions = {}) {
    this.#maxFailures = positive(options.maxFailures ?? 5, "maxFailures");
    this.#windowMs = positive(options.windowMs ?? 60_000, "windowMs");
    this.#banMs = positive(options.banMs ?? 10_000, "banMs");
    this.#maxBanMs = Math.max(
      this.#banMs,
      positive(options.maxBanMs ?? 3_600_000, "maxBanMs"),
    );
    this.#maxSources = positive(options.maxSources ?? 100_000, "maxSources");
    this.#now = options.now ?? Date.now;
  }

  /** How many sources are remembered now. */
  get size(): number {
    return this.#entries.size;
  }

  /** Milliseconds left of the ban of `source`; 0 when it is not banned. */
  banned(source: string): number {
    const e = this.#entries.get(source);
    if (e === undefined) return 0;
    const left = e.bannedUntil - this.#now();
    return left > 0 ? left : 0;
  }

  /**
   * Whether `source` failed within the current window (or is banned): its
   * checks should wait behind those of other sources.
   */
  suspect(source: string): boolean {
    const e = this.#entries.get(source);
    if (e === undefined) return false;
    const now = this.#now();
    return e.bannedUntil > now ||
      (e.failures > 0 && now - e.windowStart < this.#windowMs);
  }

  /**
   * Records a failed login from `source`. Returns the length of the ban it
   * started in ms (log it: once per ban), or 0.
   */
  failed(source: string): number {
    const now = this.#now();
    let e = this.#entries.get(source);
    if (e !== undefined) {
      if (e.bannedUntil > now) return 0; // banned: not counted again
      this.#entries.delete(source); // re-inserted below: newest last
      if (this.#stale(e, now)) e = undefined;
      else if (now - e.windowStart >= this.#windowMs) {
        e.failures = 0;
        e.windowStart = now;
      }
    }
    e ??= { failures: 0, windowStart: now, bannedUntil: 0, bans: 0 };
    this.#entries.set(source, e);
    this.#trim(now);
    if (++e.failures < this.#maxFailures) return 0;
    const ban = Math.min(this.#banMs * 2 ** e.bans, this.#maxBanMs);
    e.bans++;
    e.bannedUntil = now + ban;
    // Failures after the ban count in a new window.
    e.failures = 0;
    e.windowStart = now + ban;
    return ban;
  }

  /** Whether an entry holds nothing worth keeping any more. */
  #stale(e: Entry, now: number): boolean {
    return e.bannedUntil > 0
      ? now - e.bannedUntil >= this.#maxBanMs
      : now - e.windowStart >= this.#windowMs;
  }

  /**
   * Forgets the oldest sources above `maxSources`, and a few stale ones at
   * the old end (entries are in order of their last failure).
   */
  #trim(now: number): void {
    let over = this.#entries.size - this.#maxSources;
    let checks = 2;
    for (const [source, e] of this.#entries) {
      if (over > 0) over--;
      else if (checks-- > 0 && this.#stale(e, now)) {
        // fall through: forget it
      } else break;
      this.#entries.delete(source);
    }
  }
}

function positive(n: number, name: string): number {
  if (!(n > 0) || !Number.isFinite(n)) {
    throw new RangeError(`${name} must be a positive number, got ${n}`);
  }
  return n;
}

/**
 * The source a `remoteAddress` (`host:port`, `[v6]:port`) counts under: the
 * IPv4 address, or the /64 prefix of an IPv6 address (`2001:db8:0:1::/64`);
 * undefined when the address is unknown.
 *
 * @example
 * ```ts
 * import { sourceOf } from "./login_throttle.ts";
 * sourceOf("192.0.2.1:50123"); // "192.0.2.1"
 * sourceOf("2001:db8:0:1:aaaa::7:443"); // "2001:db8:0:1::/64"
 * sourceOf("::ffff:192.0.2.1:50123"); // "192.0.2.1"
 * ```
 */
export function sourceOf(
  remoteAddress: string | undefined,
): string | undefined {
  if (remoteAddress === undefined || remoteAddress === "") return undefined;
  let host = remoteAddress;
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    host = end < 0 ? host.slice(1) : host.slice(1, end);
  } else {
    const colon = host.lastIndexOf(":");
    if (colon > 0 && /^\d+$/.test(host.slice(colon + 1))) {
      host = host.slice(0, colon);
    }
  }
  const zone = host.indexOf("%");
  if (zone >= 0) host = host.slice(0, zone);
  if (!host.includes(":")) return host; // IPv4 (or a name)
  if (host.includes(".")) return host.slice(host.lastIndexOf(":") + 1);
  const groups = expandIpv6(host.toLowerCase());
  if (groups === undefined) return host;
  return `${groups.slice(0, 4).join(":")}::/64`;
}

/** The eight groups of an IPv6 address (leading zeros dropped). */
function expandIpv6(host: string): string[] | undefined {
  const halves = host.split("::");
  if (halves.length > 2) return undefined;
  const head = halves[0] === "" ? [] : halves[0]!.split(":");
  const tail = halves.length === 2 && halves[1] !== ""
    ? halves[1]!.split(":")
    : [];
  const fill = 8 - head.length - tail.length;
  if (halves.length === 1 ? fill !== 0 : fill < 0) return undefined;
  const groups = [...head, ...Array<string>(fill).fill("0"), ...tail];
  const out: string[] = [];
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    out.push(parseInt(g, 16).toString(16));
  }
  return out;
}
