/**
 * {@linkcode ListenError}: a listener that could not open (port in use, a
 * missing or bad certificate file), with a message naming its URL.
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
  if (e instanceof Deno.errors.AddrNotAvailable) return "address not available";
  if (e instanceof Deno.errors.PermissionDenied) {
    return "permission denied (ports below 1024 need privileges)";
  }
  const code = (e as { code?: unknown })?.code;
  if (code === "EADDRINUSE") return "address already in use";
  if (code === "EADDRNOTAVAIL") return "address not available";
  if (code === "EACCES") return "permission denied";
  return e instanceof Error ? e.message : String(e);
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
