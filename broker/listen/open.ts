/**
 * {@linkcode openListener}: a `Listener` from a `ListenerConfig` (an entry
 * of `BrokerOptions.listeners`), or an error naming it.
 *
 * @module
 */

import type { ListenerConfig } from "../config/types.ts";
import { listenFailure } from "./listen_error.ts";
import type { Listener } from "./listener.ts";
import { listenerUrl } from "./listener.ts";
import { TcpListener } from "./tcp.ts";
import { WebSocketListener } from "./websocket.ts";

/** What the broker adds to a listener's own settings. */
export interface OpenListenerDefaults {
  /** The interface when the entry has no `host`. */
  host: string;
}

/**
 * Opens the listener `config` describes. Rejects with an error naming it
 * when it cannot: a `ListenError` (`cannot listen on mqtts://0.0.0.0:8883:
 * cannot read certFile /etc/kite/cert.pem: no such file`), or the bind error
 * (`Deno.errors.AddrInUse`: `cannot listen on ws://0.0.0.0:8080: address
 * already in use`).
 *
 * @example
 * ```ts ignore
 * const l = await openListener({ protocol: "ws", port: 8080 }, { host: "0.0.0.0" });
 * broker.serve(l);
 * ```
 */
export async function openListener(
  config: ListenerConfig,
  defaults: OpenListenerDefaults,
): Promise<Listener> {
  const hostname = config.host ?? defaults.host;
  const { port, maxConnections } = config;
  const url = listenerUrl({ protocol: config.protocol, hostname, port });
  try {
    switch (config.protocol) {
      case "mqtt":
        return new TcpListener({ hostname, port, maxConnections });
      case "mqtts": {
        // node:tls is loaded only for a TLS listener (about 5 MB of RSS).
        const { TlsListener } = await import("./tls.ts");
        return await TlsListener.open({
          hostname,
          port,
          maxConnections,
          ...tlsOptions(config),
        });
      }
      case "ws":
      case "wss":
        return await WebSocketListener.open({
          hostname,
          port,
          maxConnections,
          path: config.path,
          allowedOrigins: config.allowedOrigins,
          ...(config.protocol === "wss" ? tlsOptions(config) : {}),
        });
    }
  } catch (e) {
    throw listenFailure(url, e);
  }
}

/** The TLS options of `config`: the CA only when it requires client certificates. */
function tlsOptions(config: ListenerConfig): {
  certFile: string;
  keyFile: string;
  caFile: string | undefined;
  useIdentityAsUsername: boolean | undefined;
} {
  if (config.certFile === undefined || config.keyFile === undefined) {
    throw new Error(`${config.protocol} needs certFile and keyFile`);
  }
  if (config.requireClientCertificate && config.caFile === undefined) {
    throw new Error("requireClientCertificate needs caFile");
  }
  return {
    certFile: config.certFile,
    keyFile: config.keyFile,
    caFile: config.requireClientCertificate ? config.caFile : undefined,
    useIdentityAsUsername: config.useIdentityAsUsername,
  };
}
