/**
 * {@linkcode ListenError}: a listener could not be opened (address in use, a
 * host that does not resolve, ...), with a message that names the address.
 *
 * @module
 */

import { MqttError } from "../../codec/errors.ts";
import { ReasonCode } from "../../codec/reason_code.ts";

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

/**
 * Thrown by `Broker.listen()` when a listener cannot be opened. The message
 * names the address and the cause: `cannot listen on 0.0.0.0:1883: address
 * already in use`; the system's error is the `cause`.
 *
 * @example
 * ```ts ignore
 * import { Broker, ListenError } from "@kite/mqtt/broker";
 * try {
 *   await new Broker({ port: 1883 }).listen();
 * } catch (e) {
 *   if (e instanceof ListenError) console.error(e.message, e.hostname, e.port);
 * }
 * ```
 */
export class ListenError extends MqttError {
  /** The host the listener was to bind. */
  readonly hostname: string;
  /** The port it was to bind. */
  readonly port: number;

  /** Creates the error for `hostname`:`port` failing with `cause`. */
  constructor(hostname: string, port: number, cause: unknown) {
    const host = hostname.includes(":") ? `[${hostname}]` : hostname;
    super(
      ReasonCode.ServerUnavailable,
      `cannot listen on ${host}:${port}: ${why(cause)}`,
      { cause },
    );
    this.name = "ListenError";
    this.hostname = hostname;
    this.port = port;
  }
}
