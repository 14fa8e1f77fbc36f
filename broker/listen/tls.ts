/**
 * The MQTT-over-TLS listener (`mqtts://`): `Deno.listenTls` with ALPN `mqtt`
 * offered, each connection a `ConnDuplex` once its handshake is done.
 *
 * - Handshakes run in the background, at most `MAX_HANDSHAKES` at once (the
 *   accept loop waits for a free slot), each bounded by
 *   `handshakeTimeout`: a client that never completes it, or sends
 *   something that is not TLS, is closed with a log line and no one else
 *   notices.
 * - `reloadCertificates()` re-reads the files and, when they changed, opens
 *   a new listener on the same port right after closing the old one:
 *   connections accepted before keep their TLS session, new ones get the new
 *   certificate. (A client that connects in the microseconds between the
 *   two, or waits in the old listener's backlog, is refused and retries.)
 * - A failed accept (out of file descriptors, say) never ends the loop (see
 *   `_accept_errors.ts`).
 *
 * Client certificates (mutual TLS) need `MutualTlsListener` (mtls.ts):
 * `Deno.listenTls` cannot ask for them.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Duplex } from "../../codec/duplex.ts";
import { AcceptFailures } from "./_accept_errors.ts";
import {
  badCertificate,
  readTlsFiles,
  sameMaterial,
  type TlsMaterial,
} from "./_tls_files.ts";
import { isBindError } from "./listen_error.ts";
import { ConnectionCount, ReadyQueue, TrackedConnDuplex } from "./_tracked.ts";
import { type Listener, type ListenerAddr, listenerUrl } from "./listener.ts";

const log = getLogger(["kite", "broker", "listen"]);

/** TLS handshakes one listener runs at once; more wait in the backlog. */
const MAX_HANDSHAKES = 256;
/** Default time a client has to complete the TLS handshake. */
const HANDSHAKE_TIMEOUT_MS = 10_000;

/** Options of a `TlsListener`. */
export interface TlsListenOptions {
  /** The address to bind. */
  hostname: string;
  /** The port (0: any free one). */
  port: number;
  /** The certificate chain, a PEM file. */
  certFile: string;
  /** Its private key, a PEM file. */
  keyFile: string;
  /** Connections this listener holds at most; more are closed at once. */
  maxConnections?: number | undefined;
  /** Milliseconds a client has to complete the handshake. Default 10000. */
  handshakeTimeout?: number | undefined;
}

/** The `peer:port` of a connection, for log lines. */
function peerOf(conn: Deno.Conn): string {
  const a = conn.remoteAddr;
  return a.transport === "tcp" ? `${a.hostname}:${a.port}` : a.transport;
}

function open(
  hostname: string,
  port: number,
  m: TlsMaterial,
): Deno.TlsListener {
  return Deno.listenTls({
    hostname,
    port,
    cert: m.cert,
    key: m.key,
    alpnProtocols: ["mqtt"],
  });
}

/**
 * A TLS listener.
 *
 * @example
 * ```ts ignore
 * const l = new TlsListener({
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
  #listener: Deno.TlsListener;
  #options: TlsListenOptions;
  #material: TlsMaterial;
  #url: string;
  #closed = false;
  #failures: AcceptFailures;
  #count: ConnectionCount;
  #ready = new ReadyQueue();
  #handshaking = new Set<Deno.TlsConn>();
  #slotFree: (() => void) | undefined;
  #timeout: number;

  /**
   * Reads the files and binds at once; throws when a file cannot be read,
   * the certificate or key is refused, or the address cannot be bound.
   */
  constructor(options: TlsListenOptions) {
    this.#options = options;
    this.#material = readTlsFiles(options);
    try {
      this.#listener = open(options.hostname, options.port, this.#material);
    } catch (e) {
      if (isBindError(e)) throw e;
      throw new Error(badCertificate(e), { cause: e });
    }
    const a = this.#listener.addr;
    this.addr = { protocol: "mqtts", hostname: a.hostname, port: a.port };
    this.#url = listenerUrl(this.addr);
    this.#failures = new AcceptFailures(log, this.#url);
    this.#count = new ConnectionCount(
      options.maxConnections ?? Infinity,
      log,
      this.#url,
    );
    this.#timeout = options.handshakeTimeout ?? HANDSHAKE_TIMEOUT_MS;
    // Accept and handshake from now on: a client's first write waits for
    // the handshake, which must not wait for someone to call accept().
    this.#acceptLoop();
  }

  async *accept(): AsyncIterable<Duplex> {
    while (true) {
      const d = await this.#ready.next();
      if (d === undefined) return;
      yield d;
    }
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#closed) {
      if (this.#handshaking.size >= MAX_HANDSHAKES) {
        await new Promise<void>((r) => this.#slotFree = r);
        continue;
      }
      const listener = this.#listener;
      let conn: Deno.TlsConn;
      try {
        conn = await listener.accept();
      } catch (e) {
        if (this.#closed) return;
        // Replaced by reloadCertificates(): go on with the new listener.
        if (listener !== this.#listener) continue;
        if (e instanceof Deno.errors.BadResource) return;
        await this.#failures.failed(e);
        continue;
      }
      this.#failures.succeeded();
      if (!this.#count.tryAcquire()) {
        conn.close();
        continue;
      }
      this.#handshake(conn);
    }
  }

  /** Completes the handshake in the background; the duplex is then ready. */
  async #handshake(conn: Deno.TlsConn): Promise<void> {
    this.#handshaking.add(conn);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      conn.close();
    }, this.#timeout);
    try {
      await conn.handshake();
    } catch (e) {
      if (!this.#closed) {
        log.info("{url}: TLS handshake with {peer} failed: {reason}", {
          url: this.#url,
          peer: peerOf(conn),
          reason: timedOut
            ? `not completed within ${this.#timeout} ms`
            : String(e instanceof Error ? e.message : e),
        });
      }
      this.#count.release();
      try {
        conn.close();
      } catch {
        // closed by the timer
      }
      return;
    } finally {
      clearTimeout(timer);
      this.#handshaking.delete(conn);
      const wake = this.#slotFree;
      this.#slotFree = undefined;
      wake?.();
    }
    this.#ready.push(new TrackedConnDuplex(conn, this.#count));
  }

  reloadCertificates(): Promise<boolean> {
    try {
      return Promise.resolve(this.#reload());
    } catch (e) {
      return Promise.reject(e);
    }
  }

  #reload(): boolean {
    if (this.#closed) return false;
    const next = readTlsFiles(this.#options);
    if (sameMaterial(next, this.#material)) return false;
    // Check the new pair before giving up the port: a refused one leaves
    // the old listener serving.
    try {
      const probe = open("127.0.0.1", 0, next);
      probe.close();
    } catch (e) {
      throw new Error(badCertificate(e), { cause: e });
    }
    const old = this.#listener;
    old.close();
    try {
      this.#listener = open(this.addr.hostname, this.addr.port, next);
    } catch (e) {
      // The port was taken in between: serve the old certificate again.
      this.#listener = open(this.addr.hostname, this.addr.port, this.#material);
      throw e;
    }
    this.#material = next;
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#failures.cancel();
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    for (const conn of this.#handshaking) {
      try {
        conn.close();
      } catch {
        // already closed
      }
    }
    const wake = this.#slotFree;
    this.#slotFree = undefined;
    wake?.();
    this.#ready.end();
  }
}
