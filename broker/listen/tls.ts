/**
 * The MQTT-over-TLS listener (`mqtts://`), also under `wss://`: `node:tls`
 * `createServer`, ALPN `mqtt` offered, each connection a `NodeSocketDuplex`
 * once its handshake is done. With `caFile` it requires a client
 * certificate that CA signed (mutual TLS); with `useIdentityAsUsername` the
 * certificate's subject CN is the client's user name.
 *
 * Why `node:tls` and not `Deno.listenTls`: under Deno 2.9 a TLS socket
 * whose handshake never completes cannot be closed (`close()` leaves the
 * descriptor open until the client leaves; measured 70 s and counting), so
 * a client that connects and stays silent would pin a descriptor for good.
 * Here the handshake is bounded by `handshakeTimeout` on the raw TCP socket,
 * which can always be destroyed. `Deno.listenTls` also cannot ask for client
 * certificates, nor swap its certificate in place. In the load benchmark
 * (fan-in, QoS 1) both served the same messages per CPU second; fan-out
 * (bulk encryption) costs about twice the CPU (bench/README.md).
 *
 * - A handshake that fails (garbage, no or a refused client certificate) or
 *   times out is one log line; that connection is closed, no one else
 *   notices.
 * - `reloadCertificates()` swaps the secure context in place
 *   (`setSecureContext`): new handshakes use the new files, open connections
 *   keep theirs, and the port is never released.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Socket } from "node:net";
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
import {
  type Listener,
  type ListenerAddr,
  type ListenerProtocol,
  listenerUrl,
} from "./listener.ts";

const log = getLogger(["kite", "broker", "listen"]);

/** Default time a client has to complete the TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Options of `TlsListener.open()`. */
export interface TlsListenOptions {
  /** The address to bind. */
  hostname: string;
  /** The port (0: any free one). */
  port: number;
  /** The certificate chain, a PEM file. */
  certFile: string;
  /** Its private key, a PEM file. */
  keyFile: string;
  /**
   * CA certificates (PEM file): when given, a client must present a
   * certificate this CA signed (mutual TLS), or its handshake fails.
   */
  caFile?: string | undefined;
  /**
   * With `caFile`: the client certificate's subject CN is the client's user
   * name (see `IdentifiedDuplex`); a certificate without a CN is refused.
   */
  useIdentityAsUsername?: boolean | undefined;
  /** Connections this listener holds at most; more are closed at once. */
  maxConnections?: number | undefined;
  /** Milliseconds a client has to complete the handshake. Default 10000. */
  handshakeTimeout?: number | undefined;
  /** The protocol its `addr` reports. Default `mqtts` (`wss` uses it too). */
  protocol?: ListenerProtocol | undefined;
  /**
   * The ALPN protocols offered. Default `["mqtt"]` (`wss` offers
   * `http/1.1`). A client that offers none connects too.
   */
  alpnProtocols?: string[] | undefined;
}

function contextOptions(m: TlsMaterial): tls.SecureContextOptions {
  const o: tls.SecureContextOptions = { cert: m.cert, key: m.key };
  if (m.ca !== undefined) o.ca = m.ca;
  return o;
}

/** `host:port` of a Node socket. */
function peerOf(
  s: { remoteAddress?: string | undefined; remotePort?: number | undefined },
): string {
  return `${s.remoteAddress}:${s.remotePort}`;
}

/** The subject CN of a peer certificate, if it has one. */
function commonName(socket: tls.TLSSocket): string | undefined {
  const cn: unknown = socket.getPeerCertificate()?.subject?.CN;
  if (typeof cn === "string" && cn !== "") return cn;
  if (Array.isArray(cn) && typeof cn[0] === "string") return cn[0];
  return undefined;
}

/**
 * A TLS listener; with `caFile`, one that requires client certificates.
 *
 * @example
 * ```ts ignore
 * const l = await TlsListener.open({
 *   hostname: "0.0.0.0",
 *   port: 8883,
 *   certFile: "/etc/kite/server.crt",
 *   keyFile: "/etc/kite/server.key",
 * });
 * broker.serve(l);
 * ```
 */
export class TlsListener implements Listener {
  readonly addr: ListenerAddr;
  #server: tls.Server;
  #options: TlsListenOptions;
  #material: TlsMaterial;
  #url: string;
  #count: ConnectionCount;
  #ready = new ReadyQueue();
  #closed = false;
  /** Handshake timers of connections still in their handshake, by peer. */
  #handshaking = new Map<string, ReturnType<typeof setTimeout>>();
  #timeout: number;

  private constructor(
    server: tls.Server,
    options: TlsListenOptions,
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
    this.#timeout = options.handshakeTimeout ?? HANDSHAKE_TIMEOUT_MS;
    // The raw socket, before TLS: only destroying it closes a connection
    // whose handshake never completes.
    server.on("connection", (raw: Socket) => this.#onConnection(raw));
    server.on("secureConnection", (s: tls.TLSSocket) => this.#onSecure(s));
    server.on("tlsClientError", (e: Error, s: tls.TLSSocket) => {
      if (this.#closed) return;
      const raw = (s as { _parent?: Socket })._parent;
      const peer = peerOf(s.remoteAddress === undefined && raw ? raw : s);
      const timedOut = !this.#handshaking.has(peer) &&
        /timeout|hang up|closed|reset/i.test(e.message);
      this.#settled(peer);
      log.info("{url}: TLS handshake with {peer} failed: {reason}", {
        url: this.#url,
        peer,
        reason: timedOut
          ? `not completed within ${this.#timeout} ms`
          : e.message,
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
  static async open(options: TlsListenOptions): Promise<TlsListener> {
    const material = readTlsFiles(options);
    let server: tls.Server;
    try {
      server = tls.createServer({
        ...contextOptions(material),
        requestCert: options.caFile !== undefined,
        rejectUnauthorized: options.caFile !== undefined,
        ALPNProtocols: options.alpnProtocols ?? ["mqtt"],
        // Ours closes the socket (see #onConnection); Node's only reports.
        handshakeTimeout: 0,
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
    return new TlsListener(server, options, material, {
      protocol: options.protocol ?? "mqtts",
      hostname: options.hostname,
      port,
    });
  }

  #onConnection(raw: Socket): void {
    // Without an address the peer is already gone.
    if (this.#closed || raw.remoteAddress === undefined) {
      raw.destroy();
      return;
    }
    raw.setNoDelay(true);
    const peer = peerOf(raw);
    const timer = setTimeout(() => {
      this.#handshaking.delete(peer);
      raw.destroy();
    }, this.#timeout);
    this.#handshaking.set(peer, timer);
    raw.once("close", () => this.#settled(peer));
  }

  /** The handshake of `peer` is over (done, failed or closed). */
  #settled(peer: string): void {
    const timer = this.#handshaking.get(peer);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#handshaking.delete(peer);
  }

  #onSecure(socket: tls.TLSSocket): void {
    const peer = peerOf(socket);
    this.#settled(peer);
    if (this.#closed) {
      socket.destroy();
      return;
    }
    if (this.#options.caFile !== undefined && !socket.authorized) {
      // rejectUnauthorized refuses these in the handshake; never serve one.
      log.info("{url}: client certificate of {peer} refused: {reason}", {
        url: this.#url,
        peer,
        reason: String(socket.authorizationError),
      });
      socket.destroy();
      return;
    }
    const identity = this.#options.useIdentityAsUsername
      ? commonName(socket)
      : undefined;
    if (this.#options.useIdentityAsUsername && identity === undefined) {
      log.info("{url}: client certificate of {peer} has no CN: closed", {
        url: this.#url,
        peer,
      });
      socket.destroy();
      return;
    }
    if (!this.#count.tryAcquire()) {
      socket.destroy();
      return;
    }
    this.#ready.push(new NodeSocketDuplex(socket, this.#count, identity));
  }

  accept(): AsyncIterable<Duplex> {
    return this.#ready.accept();
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
    for (const timer of this.#handshaking.values()) clearTimeout(timer);
    this.#handshaking.clear();
    this.#ready.end();
  }
}
