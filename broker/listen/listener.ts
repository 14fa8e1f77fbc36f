/**
 * The `Listener` seam: where the broker's clients come from. A listener
 * accepts connections of one transport (MQTT over TCP, TLS, WebSocket or
 * WebSocket over TLS) and hands each to the broker as a `Duplex`; the broker
 * serves every duplex with the same connection code.
 *
 * @module
 */

import type { Duplex } from "../../codec/duplex.ts";

/** The transport protocol of a listener, as in its URL scheme. */
export type ListenerProtocol = "mqtt" | "mqtts" | "ws" | "wss";

/** Where a listener listens. */
export interface ListenerAddr {
  /** The transport protocol. */
  protocol: ListenerProtocol;
  /** The host name or address it is bound to. */
  hostname: string;
  /** The port (the real one when 0 was asked). */
  port: number;
}

/**
 * Accepts client connections for a broker.
 *
 * @example
 * ```ts ignore
 * const listener = listenTcp({ hostname: "127.0.0.1", port: 0 });
 * for await (const duplex of listener.accept()) serve(duplex);
 * ```
 */
export interface Listener {
  /** Where it listens. */
  readonly addr: ListenerAddr;
  /**
   * The URL clients connect to when it says more than `listenerUrl(addr)`
   * (a WebSocket listener's path: `ws://0.0.0.0:8080/mqtt`).
   */
  readonly endpoint?: string;
  /**
   * The accepted connections, one `Duplex` each, until `close()`. A
   * transient accept failure does not end it.
   */
  accept(): AsyncIterable<Duplex>;
  /** Stops accepting; connections already accepted stay open. Idempotent. */
  close(): void;
  /**
   * Re-reads the certificate and key files (TLS listeners): connections
   * accepted afterwards get the new certificate, open ones keep theirs.
   * Resolves true when the certificate changed, false when the files hold
   * what is served already; rejects (serving the old one) when they cannot
   * be read or do not make a certificate.
   */
  reloadCertificates?(): Promise<boolean>;
}

/**
 * A `Duplex` from a listener that verified who the peer is (mutual TLS with
 * `useIdentityAsUsername`): `peerIdentity` is the subject CN of the client
 * certificate, and the broker uses it as the client's user name.
 *
 * @example
 * ```ts ignore
 * for await (const d of listener.accept()) {
 *   const who = (d as IdentifiedDuplex).peerIdentity; // "alice", or undefined
 * }
 * ```
 */
export interface IdentifiedDuplex extends Duplex {
  /** The verified identity (certificate CN), if the listener provides one. */
  readonly peerIdentity?: string | undefined;
}

/**
 * The URL of a listener's address, e.g. `mqtt://127.0.0.1:1883`.
 *
 * @example
 * ```ts
 * import { listenerUrl } from "@kite/mqtt/broker";
 * console.log(listenerUrl({ protocol: "mqtts", hostname: "::1", port: 8883 }));
 * // mqtts://[::1]:8883
 * ```
 */
export function listenerUrl(addr: ListenerAddr): string {
  const host = addr.hostname.includes(":")
    ? `[${addr.hostname}]`
    : addr.hostname;
  return `${addr.protocol}://${host}:${addr.port}`;
}
