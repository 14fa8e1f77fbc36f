/**
 * The MQTT-over-TLS listener that requires client certificates (mutual
 * TLS): `node:tls` `createServer({ requestCert: true, rejectUnauthorized:
 * true, ca })`, because `Deno.listenTls` cannot ask for them. A client
 * without a certificate the CA vouches for fails the handshake (logged,
 * closed); with `useIdentityAsUsername` the certificate's subject CN is the
 * client's user name (as Mosquitto's `use_identity_as_username`).
 *
 * `reloadCertificates()` swaps the server's secure context in place
 * (`setSecureContext`): new handshakes use the new files, open connections
 * are not touched, and the port is never released.
 *
 * `node:tls` moves bytes through Node-style streams, slower than
 * `Deno.listenTls` (about 2.5 times for bulk transfer here); the plain TLS
 * listener (tls.ts) serves listeners that need no client certificate.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import * as tls from "node:tls";
import type { Duplex } from "../../codec/duplex.ts";
import { NodeSocketDuplex } from "./_node_socket_duplex.ts";
import {
  badCertificate,
  readTlsFiles,
  sameMaterial,
  type TlsMaterial,
} from "./_tls_files.ts";
import { ConnectionCount, ReadyQueue } from "./_tracked.ts";
import { type Listener, type ListenerAddr, listenerUrl } from "./listener.ts";
import type { TlsListenOptions } from "./tls.ts";

const log = getLogger(["kite", "broker", "listen"]);

/** Default time a client has to complete the TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Options of a `MutualTlsListener`. */
export interface MutualTlsListenOptions extends TlsListenOptions {
  /** CA certificates (PEM file) that client certificates must chain to. */
  caFile: string;
  /** Use the client certificate's subject CN as the user name. */
  useIdentityAsUsername?: boolean | undefined;
}

function contextOptions(m: TlsMaterial): tls.SecureContextOptions {
  return { cert: m.cert, key: m.key, ca: m.ca! };
}

/** The subject CN of a peer certificate, if it has one. */
function commonName(socket: tls.TLSSocket): string | undefined {
  const cn: unknown = socket.getPeerCertificate()?.subject?.CN;
  if (typeof cn === "string" && cn !== "") return cn;
  if (Array.isArray(cn) && typeof cn[0] === "string") return cn[0];
  return undefined;
}

/**
 * A TLS listener that requires a client certificate signed by `caFile`.
 *
 * @example
 * ```ts ignore
 * const l = await MutualTlsListener.open({
 *   hostname: "0.0.0.0",
 *   port: 8884,
 *   certFile: "server.crt",
 *   keyFile: "server.key",
 *   caFile: "ca.crt",
 *   useIdentityAsUsername: true,
 * });
 * broker.serve(l);
 * ```
 */
export class MutualTlsListener implements Listener {
  readonly addr: ListenerAddr;
  #server: tls.Server;
  #options: MutualTlsListenOptions;
  #material: TlsMaterial;
  #url: string;
  #count: ConnectionCount;
  #ready = new ReadyQueue();
  #closed = false;

  private constructor(
    server: tls.Server,
    options: MutualTlsListenOptions,
    material: TlsMaterial,
    addr: ListenerAddr,
  ) {
    this.#server = server;
    this.#options = options;
    this.#material = material;
    this.addr = addr;
    this.#url = listenerUrl(addr);
    this.#count = new ConnectionCount(
      options.maxConnections ?? Infinity,
      log,
      this.#url,
    );
    server.on("secureConnection", (s: tls.TLSSocket) => this.#onSecure(s));
    server.on("tlsClientError", (e: Error, s: tls.TLSSocket) => {
      if (this.#closed) return;
      log.info("{url}: TLS handshake with {peer} failed: {reason}", {
        url: this.#url,
        peer: `${s.remoteAddress}:${s.remotePort}`,
        reason: e.message,
      });
    });
    server.on("error", (e: Error) => {
      log.error("{url}: {error}", { url: this.#url, error: e.message });
    });
  }

  /**
   * Reads the files and listens; rejects when a file cannot be read, the
   * certificate or key is refused, or the address cannot be bound.
   */
  static async open(
    options: MutualTlsListenOptions,
  ): Promise<MutualTlsListener> {
    const material = readTlsFiles(options);
    let server: tls.Server;
    try {
      server = tls.createServer({
        ...contextOptions(material),
        requestCert: true,
        rejectUnauthorized: true,
        ALPNProtocols: ["mqtt"],
        handshakeTimeout: options.handshakeTimeout ?? HANDSHAKE_TIMEOUT_MS,
      });
    } catch (e) {
      throw new Error(badCertificate(e), { cause: e });
    }
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(options.port, options.hostname, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const a = server.address();
    const port = typeof a === "object" && a !== null ? a.port : options.port;
    return new MutualTlsListener(server, options, material, {
      protocol: "mqtts",
      hostname: options.hostname,
      port,
    });
  }

  #onSecure(socket: tls.TLSSocket): void {
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (!socket.authorized) {
      // rejectUnauthorized refuses these in the handshake; never serve one.
      log.info("{url}: client certificate of {peer} refused: {reason}", {
        url: this.#url,
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
        reason: String(socket.authorizationError),
      });
      socket.destroy();
      return;
    }
    if (!this.#count.tryAcquire()) {
      socket.destroy();
      return;
    }
    socket.setNoDelay(true);
    const identity = this.#options.useIdentityAsUsername
      ? commonName(socket)
      : undefined;
    if (this.#options.useIdentityAsUsername && identity === undefined) {
      log.info("{url}: client certificate of {peer} has no CN: closed", {
        url: this.#url,
        peer: `${socket.remoteAddress}:${socket.remotePort}`,
      });
      this.#count.release();
      socket.destroy();
      return;
    }
    this.#ready.push(new NodeSocketDuplex(socket, this.#count, identity));
  }

  async *accept(): AsyncIterable<Duplex> {
    while (true) {
      const d = await this.#ready.next();
      if (d === undefined) return;
      yield d;
    }
  }

  reloadCertificates(): Promise<boolean> {
    try {
      if (this.#closed) return Promise.resolve(false);
      const next = readTlsFiles(this.#options);
      if (sameMaterial(next, this.#material)) return Promise.resolve(false);
      try {
        // Throws for a certificate or key that does not parse.
        tls.createSecureContext(contextOptions(next));
        this.#server.setSecureContext(contextOptions(next));
      } catch (e) {
        throw new Error(badCertificate(e), { cause: e });
      }
      this.#material = next;
      return Promise.resolve(true);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#server.close();
    this.#ready.end();
  }
}
