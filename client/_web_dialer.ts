/**
 * `webDialer()`: the dialer a `WebClient` picks from its options when none
 * is given (private; portable, no `Deno` namespace).
 *
 * @module
 */

import type { ClientOptions, TlsOptions } from "./options.ts";
import { type Dialer, WebSocketDialer } from "./dialer.ts";
import { brokerTarget, webSocketUrl } from "./_broker_url.ts";

/** True when `tls` carries material that only Deno can use. */
function hasTlsMaterial(tls: TlsOptions): boolean {
  return tls.caCerts !== undefined || tls.ca !== undefined ||
    tls.caFile !== undefined || tls.cert !== undefined ||
    tls.certFile !== undefined || tls.key !== undefined ||
    tls.keyFile !== undefined || tls.servername !== undefined ||
    tls.insecure !== undefined;
}

/**
 * The dialer of a `WebClient`'s options: a `WebSocketDialer` for a `ws://`
 * or `wss://` URL. Throws a `TypeError` for anything else (TCP needs
 * `Client`), and for TLS options (a browser trusts its own certificate
 * store; in Deno, `Client` applies them).
 *
 * @example
 * ```ts ignore
 * const dialer = webDialer({ url: "ws://127.0.0.1:8080/mqtt" });
 * ```
 */
export function webDialer(o: ClientOptions): Dialer {
  const t = brokerTarget(o);
  if (t.protocol !== "ws" && t.protocol !== "wss") {
    throw new TypeError(
      `${t.protocol}:// needs TCP sockets: this client connects over ws:// or ` +
        "wss:// only (use Client in Deno)",
    );
  }
  if (typeof o.tls === "object" && hasTlsMaterial(o.tls)) {
    throw new TypeError(
      "TLS options need Client in Deno: a browser checks wss:// certificates " +
        "against its own trust store",
    );
  }
  return new WebSocketDialer({ url: webSocketUrl(t) });
}
