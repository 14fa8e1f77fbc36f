/**
 * {@linkcode listenError}: the error of a listener that could not be opened
 * (address in use, a host that does not resolve, ...), with a message that
 * names the address.
 *
 * @module
 */

/** `error`'s cause in a few words: `address already in use`. */
function why(error: unknown): string {
  if (error instanceof Deno.errors.AddrInUse) return "address already in use";
  if (error instanceof Deno.errors.AddrNotAvailable) {
    return "address not available on this machine";
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return "permission denied (ports below 1024 need privileges)";
  }
  const message = error instanceof Error ? error.message : String(error);
  const lookup = /^failed to lookup address information: (.*)$/.exec(message);
  if (lookup !== null) {
    return `host does not resolve (${lookup[1]!.toLowerCase()})`;
  }
  const text = message.replace(/ \(os error \d+\)$/, "");
  return text.charAt(0).toLowerCase() + text.slice(1);
}

/** The error classes of `Deno.errors` (an error keeps its class). */
const DENO_ERRORS: ReadonlySet<unknown> = new Set(Object.values(Deno.errors));

/**
 * The error to throw when binding `hostname`:`port` failed with `cause`:
 * of the same `Deno.errors` class (`Deno.errors.AddrInUse`, ...; else an
 * `Error`), with the message `cannot listen on HOST:PORT: why` (`address
 * already in use`, `host does not resolve (...)`) and `cause` as its cause.
 *
 * @example
 * ```ts ignore
 * try {
 *   Deno.listen({ hostname, port });
 * } catch (e) {
 *   throw listenError(hostname, port, e);
 * }
 * ```
 */
export function listenError(
  hostname: string,
  port: number,
  cause: unknown,
): Error {
  const host = hostname.includes(":") ? `[${hostname}]` : hostname;
  const message = `cannot listen on ${host}:${port}: ${why(cause)}`;
  const Class = cause instanceof Error && DENO_ERRORS.has(cause.constructor)
    ? cause.constructor as ErrorConstructor
    : Error;
  return new Class(message, { cause });
}
