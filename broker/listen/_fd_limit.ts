/**
 * How many sockets the broker may hold open (private): enough for
 * `maxConnections` clients plus a few more that get a refusing CONNACK, and
 * never so many that the process runs out of file descriptors (the store,
 * listeners and the runtime need some). Beyond it a new connection is
 * closed as soon as it is accepted.
 *
 * @module
 */

/** Sockets over `maxConnections` kept for refusing with a CONNACK. */
const REFUSAL_SLACK = 64;
/** Descriptors left for everything else (store, listeners, runtime). */
const RESERVED_FDS = 48;

/** The soft limit on open files (Linux `/proc/self/limits`), if readable. */
export function openFileLimit(): number | undefined {
  try {
    const text = Deno.readTextFileSync("/proc/self/limits");
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(text);
    if (m === null || m[1] === "unlimited") return undefined;
    return Number(m[1]);
  } catch {
    return undefined; // not Linux, or no read permission
  }
}

/**
 * The most sockets to hold open for `maxConnections` clients under a
 * descriptor limit of `fdLimit` (undefined: unknown, no cap from it).
 */
export function socketCap(
  maxConnections: number,
  fdLimit: number | undefined,
): number {
  const wanted = maxConnections + REFUSAL_SLACK;
  if (fdLimit === undefined) return wanted;
  return Math.max(1, Math.min(wanted, fdLimit - RESERVED_FDS));
}
