/**
 * The client's dialers: one shared suite run against each `Dialer` (TCP,
 * TLS) over an echo server, then what only TLS does (CA certificates, ALPN
 * `mqtt`, server name, client certificates), with a throwaway CA, server
 * and client certificate made by `openssl` (TLS tests are skipped without
 * it).
 */

import assert from "node:assert/strict";
import tls from "node:tls";
import type { Duplex } from "../codec/duplex.ts";
import { type Dialer, TcpDialer, TlsDialer } from "../client/dialer.ts";
import { within } from "./client_helpers.ts";

const HAVE_OPENSSL = (() => {
  try {
    return Deno.statSync("/usr/bin/openssl").isFile;
  } catch {
    return false;
  }
})();

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("/usr/bin/openssl", {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

interface Certs {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

/**
 * A CA, a server certificate for 127.0.0.1 and `kite.test`, and a client
 * certificate `CN=kite-client`, all signed by the CA.
 */
async function makeCerts(): Promise<Certs> {
  const dir = await Deno.makeTempDir({ prefix: "kite-dialer-" });
  try {
    const ec = [
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
    ];
    await openssl(
      dir,
      "req",
      "-x509",
      ...ec,
      ...["-keyout", "ca.key", "-out", "ca.crt", "-days", "1"],
      ...["-subj", "/CN=Kite Dialer Test CA"],
      ...["-addext", "basicConstraints=critical,CA:TRUE"],
      ...["-addext", "keyUsage=critical,keyCertSign"],
    );
    for (
      const [name, cn, ext] of [
        [
          "server",
          "127.0.0.1",
          "subjectAltName=IP:127.0.0.1,DNS:kite.test\nextendedKeyUsage=serverAuth\n",
        ],
        ["client", "kite-client", "extendedKeyUsage=clientAuth\n"],
      ] as const
    ) {
      await openssl(
        dir,
        "req",
        ...ec,
        ...["-keyout", `${name}.key`, "-out", `${name}.csr`],
        ...["-subj", `/CN=${cn}`],
      );
      await Deno.writeTextFile(
        `${dir}/${name}.cnf`,
        `basicConstraints=CA:FALSE\n${ext}`,
      );
      await openssl(
        dir,
        "x509",
        "-req",
        ...["-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key"],
        ...["-CAcreateserial", "-out", `${name}.crt`, "-days", "1"],
        ...["-extfile", `${name}.cnf`],
      );
    }
    const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
    return {
      ca: await read("ca.crt"),
      serverCert: await read("server.crt"),
      serverKey: await read("server.key"),
      clientCert: await read("client.crt"),
      clientKey: await read("client.key"),
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const certs: Certs | undefined = HAVE_OPENSSL ? await makeCerts() : undefined;

/** A server that echoes every byte, over TCP or TLS. */
class EchoServer implements AsyncDisposable {
  readonly port: number;
  /** The ALPN protocol of each TLS connection, in order. */
  readonly alpn: (string | null)[] = [];
  #listener: Deno.Listener;
  #conns = new Set<Deno.Conn>();
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;

  constructor(tlsCerts?: Certs) {
    this.#listener = tlsCerts
      ? Deno.listenTls({
        hostname: "127.0.0.1",
        port: 0,
        cert: tlsCerts.serverCert,
        key: tlsCerts.serverKey,
        alpnProtocols: ["mqtt"],
      })
      : Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  async #accept(): Promise<void> {
    try {
      for await (const conn of this.#listener) {
        this.#conns.add(conn);
        const t = this.#echo(conn).finally(() => {
          this.#conns.delete(conn);
          this.#tasks.delete(t);
        });
        this.#tasks.add(t);
      }
    } catch { /* closed */ }
  }

  async #echo(conn: Deno.Conn): Promise<void> {
    try {
      if ("handshake" in conn) {
        const info = await (conn as Deno.TlsConn).handshake();
        this.alpn.push(info.alpnProtocol);
      }
      const buf = new Uint8Array(1024);
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        let off = 0;
        while (off < n) off += await conn.write(buf.subarray(off, n));
      }
    } catch { /* closed, or a failed handshake */ }
    try {
      conn.close();
    } catch { /* already */ }
  }

  /** Closes every accepted connection (the clients then read EOF). */
  async dropAll(): Promise<void> {
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already */ }
    }
    await Promise.all([...this.#tasks]);
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting;
    await this.dropAll();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Reads from `d` until `n` bytes came (or EOF). */
async function readBytes(d: Duplex, n: number): Promise<Uint8Array> {
  const out = new Uint8Array(n);
  let got = 0;
  while (got < n) {
    const chunk = await d.read();
    if (chunk === null) break;
    out.set(chunk, got);
    got += chunk.length;
  }
  return out.subarray(0, got);
}

/** The suite every `Dialer` passes. */
function dialerSuite(
  name: string,
  make: (port: number) => Dialer,
  serverCerts: () => Certs | undefined,
  ignore: boolean,
): void {
  Deno.test({
    name:
      `${name}.dial() gives a Duplex with the fast raw read path v3:[MQTT-7.1.2-1] v3:[MQTT-7.1.2-2] v5:[MQTT-4.2.0-1]`,
    ignore,
    async fn() {
      await using server = new EchoServer(serverCerts());
      const dialer = make(server.port);
      assert.equal(dialer.address, `127.0.0.1:${server.port}`);
      const d = await dialer.dial();
      try {
        assert.ok(d.raw !== undefined, "raw read capability");
        // A packet written in two parts arrives whole.
        const pingreq = new Uint8Array([0xc0, 0x00]);
        await d.write(pingreq.subarray(0, 1));
        await d.write(pingreq.subarray(1));
        assert.deepEqual(
          await within(readBytes(d, 2), 3000, "echo"),
          pingreq,
        );
        // Larger than the first read buffer: read in several chunks.
        const big = new Uint8Array(100_000).map((_, i) => i & 0xff);
        await d.write(big);
        assert.deepEqual(
          await within(readBytes(d, big.length), 3000, "big echo"),
          big,
        );
      } finally {
        d.close();
        d.close(); // idempotent
      }
    },
  });

  Deno.test({
    name: `${name}: read() returns null once the server closes`,
    ignore,
    async fn() {
      await using server = new EchoServer(serverCerts());
      const d = await make(server.port).dial();
      try {
        await d.write(new Uint8Array([1]));
        await within(readBytes(d, 1), 3000, "echo");
        await server.dropAll();
        assert.equal(await within(d.read(), 3000, "EOF"), null);
      } finally {
        d.close();
      }
    },
  });

  Deno.test({
    name: `${name}.dial() rejects when nothing listens`,
    ignore,
    async fn() {
      const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const port = (l.addr as Deno.NetAddr).port;
      l.close();
      await assert.rejects(make(port).dial());
    },
  });
}

dialerSuite(
  "TcpDialer",
  (port) => new TcpDialer({ hostname: "127.0.0.1", port }),
  () => undefined,
  false,
);

dialerSuite(
  "TlsDialer",
  (port) =>
    new TlsDialer({ hostname: "127.0.0.1", port, caCerts: [certs!.ca] }),
  () => certs,
  !HAVE_OPENSSL,
);

Deno.test({
  name: "TlsDialer offers ALPN mqtt by default, none with alpnProtocols: []",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using server = new EchoServer(certs);
    for (const alpnProtocols of [undefined, []]) {
      const d = await new TlsDialer({
        port: server.port,
        caCerts: [certs!.ca],
        ...(alpnProtocols ? { alpnProtocols } : {}),
      }).dial();
      await d.write(new Uint8Array([1]));
      await within(readBytes(d, 1), 3000, "echo");
      d.close();
    }
    assert.deepEqual(server.alpn, ["mqtt", null]);
  },
});

Deno.test({
  name: "TlsDialer.dial() rejects a certificate not signed by a trusted CA",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using server = new EchoServer(certs);
    await assert.rejects(new TlsDialer({ port: server.port }).dial());
  },
});

Deno.test({
  name: "TlsDialer checks the certificate against serverName when given",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using server = new EchoServer(certs);
    const d = await new TlsDialer({
      hostname: "127.0.0.1",
      port: server.port,
      caCerts: [certs!.ca],
      serverName: "kite.test",
    }).dial();
    await d.write(new Uint8Array([7]));
    assert.deepEqual(
      await within(readBytes(d, 1), 3000, "echo"),
      Uint8Array.of(7),
    );
    d.close();
    await assert.rejects(
      new TlsDialer({
        port: server.port,
        caCerts: [certs!.ca],
        serverName: "other.test",
      }).dial(),
    );
  },
});

Deno.test({
  name: "TlsDialer sends the client certificate (mutual TLS)",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const peers: string[] = [];
    const sockets = new Set<tls.TLSSocket>();
    const server = tls.createServer({
      cert: certs!.serverCert,
      key: certs!.serverKey,
      ca: [certs!.ca],
      requestCert: true,
      rejectUnauthorized: true,
    }, (s) => {
      sockets.add(s);
      peers.push(String(s.getPeerCertificate().subject?.CN));
      s.on("data", (b: Uint8Array) => s.write(b));
      s.on("error", () => {});
      s.on("close", () => sockets.delete(s));
    });
    server.on("tlsClientError", () => {});
    const listening = Promise.withResolvers<void>();
    server.listen(0, "127.0.0.1", () => listening.resolve());
    await listening.promise;
    const port = (server.address() as { port: number }).port;
    try {
      const d = await new TlsDialer({
        port,
        caCerts: [certs!.ca],
        cert: certs!.clientCert,
        key: certs!.clientKey,
      }).dial();
      await d.write(new Uint8Array([9]));
      assert.deepEqual(
        await within(readBytes(d, 1), 3000, "echo"),
        Uint8Array.of(9),
      );
      d.close();
      assert.deepEqual(peers, ["kite-client"]);
      // Without one the server refuses it (in TLS 1.3 after the client's
      // side of the handshake, so on the first read).
      const refused = await new TlsDialer({ port, caCerts: [certs!.ca] })
        .dial().then(async (d) => {
          try {
            await d.write(new Uint8Array([9]));
            return await within(d.read(), 3000, "refusal");
          } catch (e) {
            return e;
          } finally {
            d.close();
          }
        }, (e) => e);
      assert.ok(refused === null || refused instanceof Error, String(refused));
      assert.deepEqual(peers, ["kite-client"]);
    } finally {
      for (const s of sockets) s.destroy();
      const closed = Promise.withResolvers<void>();
      server.close(() => closed.resolve());
      await closed.promise;
    }
  },
});

Deno.test("TlsDialer refuses cert without key, and serverName with a client certificate", () => {
  assert.throws(() => new TlsDialer({ cert: "x" }), TypeError);
  assert.throws(
    () =>
      new TlsDialer({
        hostname: "127.0.0.1",
        serverName: "kite.test",
        cert: "x",
        key: "y",
      }),
    TypeError,
  );
});
