/**
 * Errors of listeners that could not open: {@linkcode ListenError} (a
 * missing or bad certificate file, naming the listener's URL) and
 * `listenError` / `listenFailure` for a bind failure (address in use, a
 * host that does not resolve, ...), which keep the `Deno.errors` class and
 * name the address.
 *
 * @module
 */

/**
 * A failure to open a listener other than binding its address (a missing or
 * bad certificate file), with a message naming it: `cannot listen on
 * mqtts://0.0.0.0:8883: cannot read certFile /etc/kite/cert.pem: no such
 * file`. (A port in use stays a `Deno.errors.AddrInUse`, with a message
 * naming the listener too: `cannot listen on wss://0.0.0.0:8884: address
 * already in use`.)
 *
 * @example
 * ```ts ignore
 * try {
 *   await broker.listen();
 * } catch (e) {
 *   if (e instanceof ListenError) console.error(e.message);
 * }
 * ```
 */
export class ListenError extends Error {
  /** The URL of the listener that could not open. */
  readonly url: string;

  /** `reason` says what went wrong; `cause` is the underlying error. */
  constructor(url: string, reason: string, options?: { cause?: unknown }) {
    super(`cannot listen on ${url}: ${reason}`, options);
    this.name = "ListenError";
    this.url = url;
  }
}

/** A short reason for a bind failure: "address already in use", ... */
export function bindFailure(e: unknown): string {
  if (e instanceof Deno.errors.AddrInUse) return "address already in use";
  if (e instanceof Deno.errors.AddrNotAvailable) {
    return "address not available on this machine";
  }
  if (e instanceof Deno.errors.PermissionDenied) {
    return "permission denied (ports below 1024 need privileges)";
  }
  const code = (e as { code?: unknown })?.code;
  if (code === "EADDRINUSE") return "address already in use";
  if (code === "EADDRNOTAVAIL") return "address not available on this machine";
  if (code === "EACCES") return "permission denied";
  // Already one of ours (`listenError`): its reason alone.
  const message = (e instanceof Error ? e.message : String(e))
    .replace(/^cannot listen on \S+: /, "");
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
  const message = `cannot listen on ${host}:${port}: ${bindFailure(cause)}`;
  const Class = cause instanceof Error && DENO_ERRORS.has(cause.constructor)
    ? cause.constructor as ErrorConstructor
    : Error;
  return new Class(message, { cause });
}

/** Whether `e` is about the address (else: the certificate or key). */
export function isBindError(e: unknown): boolean {
  return e instanceof Deno.errors.AddrInUse ||
    e instanceof Deno.errors.AddrNotAvailable ||
    e instanceof Deno.errors.PermissionDenied ||
    e instanceof Deno.errors.NotCapable;
}

/**
 * The error to report for listener `url` failing with `e`: a bind error
 * keeps its class (`Deno.errors.AddrInUse`, ...) with a message naming the
 * listener; anything else becomes a `ListenError`.
 */
export function listenFailure(url: string, e: unknown): Error {
  const code = (e as { code?: unknown } | null)?.code;
  const bindClass = isBindError(e)
    ? (e as Error).constructor as new (
      message: string,
      options?: { cause?: unknown },
    ) => Error
    : code === "EADDRINUSE"
    ? Deno.errors.AddrInUse
    : code === "EADDRNOTAVAIL"
    ? Deno.errors.AddrNotAvailable
    : code === "EACCES"
    ? Deno.errors.PermissionDenied
    : undefined;
  if (bindClass !== undefined) {
    return new bindClass(`cannot listen on ${url}: ${bindFailure(e)}`, {
      cause: e,
    });
  }
  return new ListenError(url, e instanceof Error ? e.message : String(e), {
    cause: e,
  });
}
