/**
 * The options of a bridge's client (private to the bridge): its identity
 * and session on the remote, its will (the state notification), and the
 * transport of each address (`useAddress`).
 *
 * @module
 */

import type { ClientOptions, TlsOptions } from "../../client/options.ts";
import type { ReconnectOptions } from "../../client/reconnect.ts";
import type { BridgeAddress } from "./_address.ts";
import type { BridgeOptions } from "./types.ts";

const ZERO = new TextEncoder().encode("0");

/**
 * The client options of bridge `o`: `clientId` on the remote, a will of `0`
 * on `notifyRemote` (if any), room for `maxQueued` messages (the bridge
 * bounds what it hands over: the client never refuses one), acknowledgements
 * of received messages left to the bridge (`manualAcks`). Pointed at the
 * first address.
 */
export function bridgeClientOptions(
  o: BridgeOptions,
  clientId: string,
  notifyRemote: string | undefined,
  reconnect: ReconnectOptions,
  maxQueued: number,
  tls: TlsOptions,
  first: BridgeAddress,
): ClientOptions {
  const version = o.protocolVersion ?? 5;
  const co: ClientOptions = {
    clientId,
    protocolVersion: version,
    bridge: version === 4 && o.tryPrivate !== false,
    cleanStart: o.cleanStart ?? false,
    keepAlive: o.keepAlive ?? 60,
    connectTimeout: 15_000,
    reconnect: { ...reconnect, retryRefusals: true },
    // The state notification may wait beside the messages.
    maxQueued: maxQueued + 2,
    queueQoS0Offline: false,
    // Acknowledged once committed here (see _incoming.ts).
    manualAcks: true,
  };
  if (version === 5) {
    co.sessionExpiryInterval = o.sessionExpiryInterval ?? 86_400;
  }
  if (o.username !== undefined) co.username = o.username;
  if (o.password !== undefined) co.password = o.password;
  if (notifyRemote !== undefined) {
    co.will = { topic: notifyRemote, payload: ZERO, qos: 1, retain: true };
  }
  useAddress(co, first, tls);
  return co;
}

/**
 * Points client options `co` at address `a`: TCP or TLS by host and port,
 * or a WebSocket URL; `tls` (CAs, client certificate) for `mqtts://` and
 * `wss://`.
 */
export function useAddress(
  co: ClientOptions,
  a: BridgeAddress,
  tls: TlsOptions,
): void {
  if (a.path !== undefined) {
    co.url = a.url;
    delete co.host;
    delete co.port;
  } else {
    delete co.url;
    co.host = a.host;
    co.port = a.port;
  }
  co.tls = a.tls ? tls : false;
}
