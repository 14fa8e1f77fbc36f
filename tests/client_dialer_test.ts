/**
 * The client's dialers: one shared suite run against each `Dialer` (TCP,
 * TLS, WebSocket over ws:// and wss://) over an echo server, then what only
 * TLS does (CA certificates, ALPN `mqtt`, server name, client certificates)
 * and what only WebSocket does (subprotocol, text frames), with a throwaway
 * CA, server and client certificate made by `openssl` (TLS tests are
 * skipped without it).
 */

import assert from "node:assert/strict";
import tls from "node:tls";
import type { Duplex } from "../codec/duplex.ts";
import { type Dialer, WebSocketDialer } from "../client/dialer.ts";
import {
  denoDialer,
  DenoWebSocketDialer,
  TcpDialer,
  TlsDialer,
} from "../client/socket_dialer.ts";
import { within } from "./client_helpers.ts";
import { HAVE_OPENSSL, makeCerts, type TestCerts } from "./_certs.ts";

type Certs = TestCerts;

const certs: Certs | undefined = HAVE_OPENSSL
  ? await makeCerts({ serverNames: ["127.0.0.1", "kite.test"] })
  : undefined;
// The PEM texts are all the tests need.
await certs?.remove();

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

/** A WebSocket server that echoes every binary frame (ws:// or wss://). */
class WsEchoServer implements AsyncDisposable {
  readonly port: number;
  /** The subprotocols each client offered, in order. */
  readonly offered: string[] = [];
  #server: Deno.HttpServer<Deno.NetAddr>;
  #sockets = new Map<WebSocket, Promise<void>>();

  /**
   * `protocol`: the subprotocol to accept (null: accept none); `text`: send
   * a text frame as soon as a client connects.
   */
  constructor(
    options: { certs?: Certs; protocol?: string | null; text?: boolean } = {},
  ) {
    const protocol = options.protocol === undefined ? "mqtt" : options.protocol;
    const tlsOptions = options.certs
      ? { cert: options.certs.serverCert, key: options.certs.serverKey }
      : {};
    this.#server = Deno.serve({
      hostname: "127.0.0.1",
      port: 0,
      onListen() {},
      ...tlsOptions,
    }, (req) => {
      this.offered.push(req.headers.get("sec-websocket-protocol") ?? "");
      const { socket, response } = Deno.upgradeWebSocket(
        req,
        protocol === null ? {} : { protocol },
      );
      socket.binaryType = "arraybuffer";
      const closed = Promise.withResolvers<void>();
      socket.onclose = () => closed.resolve();
      socket.onopen = () => {
        if (options.text) socket.send("not mqtt");
      };
      socket.onmessage = (e) => {
        if (socket.readyState === WebSocket.OPEN) socket.send(e.data);
      };
      this.#sockets.set(socket, closed.promise);
      closed.promise.then(() => this.#sockets.delete(socket));
      return response;
    });
    this.port = this.#server.addr.port;
  }

  /** Closes every accepted socket and waits for the close handshakes. */
  async dropAll(): Promise<void> {
    const waits = [...this.#sockets.values()];
    for (const s of this.#sockets.keys()) s.close(1000);
    await Promise.all(waits);
  }

  async close(): Promise<void> {
    await this.dropAll();
    await this.#server.shutdown();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** What the suite needs of an echo server. */
interface Echo extends AsyncDisposable {
  readonly port: number;
  dropAll(): Promise<void>;
}

/** One dialer under test, with its echo server. */
interface SuiteTarget {
  name: string;
  ignore: boolean;
  /** Starts an echo server of the dialer's transport. */
  server(): Echo;
  /** A dialer to 127.0.0.1:`port`. */
  make(port: number): Dialer;
  /** The dialer's `address` for `port`. */
  address(port: number): string;
  /** Whether its duplexes have the fast raw read path. */
  raw: boolean;
}

/** The suite every `Dialer` passes. */
function dialerSuite(t: SuiteTarget): void {
  const { name, ignore } = t;
  Deno.test({
    name:
      `${name}.dial() gives a Duplex that carries bytes both ways v3:[MQTT-7.1.2-1] v3:[MQTT-7.1.2-2] v5:[MQTT-4.2.0-1]`,
    ignore,
    async fn() {
      await using server = t.server();
      const dialer = t.make(server.port);
      assert.equal(dialer.address, t.address(server.port));
      const d = await dialer.dial();
      try {
        assert.equal(d.raw !== undefined, t.raw, "raw read capability");
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
      await using server = t.server();
      const d = await t.make(server.port).dial();
      try {
        await d.write(new Uint8Array([1]));
        await within(readBytes(d, 1), 3000, "echo");
        // A duplex may answer the close handshake only while read: read
        // while the server closes.
        const dropped = server.dropAll();
        assert.equal(await within(d.read(), 3000, "EOF"), null);
        await within(dropped, 3000, "the server's close");
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
      await assert.rejects(t.make(port).dial());
    },
  });
}

const hostPort = (port: number) => `127.0.0.1:${port}`;

dialerSuite({
  name: "TcpDialer",
  ignore: false,
  server: () => new EchoServer(),
  make: (port) => new TcpDialer({ hostname: "127.0.0.1", port }),
  address: hostPort,
  raw: true,
});

dialerSuite({
  name: "TlsDialer",
  ignore: !HAVE_OPENSSL,
  server: () => new EchoServer(certs),
  make: (port) =>
    new TlsDialer({ hostname: "127.0.0.1", port, caCerts: [certs!.ca] }),
  address: hostPort,
  raw: true,
});

dialerSuite({
  name: "WebSocketDialer",
  ignore: false,
  server: () => new WsEchoServer(),
  make: (port) => new WebSocketDialer({ url: `ws://127.0.0.1:${port}/mqtt` }),
  address: (port) => `ws://127.0.0.1:${port}/mqtt`,
  raw: false,
});

dialerSuite({
  name: "DenoWebSocketDialer",
  ignore: false,
  server: () => new WsEchoServer(),
  make: (port) =>
    new DenoWebSocketDialer({ url: `ws://127.0.0.1:${port}/mqtt` }),
  address: (port) => `ws://127.0.0.1:${port}/mqtt`,
  raw: false,
});

dialerSuite({
  name: "DenoWebSocketDialer (wss://, from the client's options)",
  ignore: !HAVE_OPENSSL,
  server: () => new WsEchoServer({ certs: certs! }),
  make: (port) =>
    denoDialer({ url: `wss://127.0.0.1:${port}/mqtt`, tls: { ca: certs!.ca } }),
  address: (port) => `wss://127.0.0.1:${port}/mqtt`,
  raw: false,
});

Deno.test("WebSocketDialer offers subprotocol mqtt and fails without it [MQTT-6.0.0-3] [MQTT-6.0.0-4]", async () => {
  {
    await using server = new WsEchoServer();
    const d = await new WebSocketDialer({
      url: `ws://127.0.0.1:${server.port}/`,
    }).dial();
    d.close();
    assert.deepEqual(server.offered, ["mqtt"]);
  }
  await using server = new WsEchoServer({ protocol: null });
  await assert.rejects(
    new WebSocketDialer({ url: `ws://127.0.0.1:${server.port}/` }).dial(),
    /subprotocol/,
  );
});

Deno.test("WebSocketDialer: a text frame fails the read and closes the socket [MQTT-6.0.0-1]", async () => {
  await using server = new WsEchoServer({ text: true });
  const d = await new WebSocketDialer({
    url: `ws://127.0.0.1:${server.port}/`,
  }).dial();
  try {
    await assert.rejects(within(d.read(), 3000, "text frame"), /binary/);
  } finally {
    d.close();
  }
});

Deno.test("WebSocketDialer refuses a URL that is not ws: or wss:", () => {
  assert.throws(
    () => new WebSocketDialer({ url: "mqtt://127.0.0.1:1883" }),
    TypeError,
  );
});

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

Deno.test({
  name: "TlsDialer with insecure skips the host name check, not the chain",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using server = new EchoServer(certs);
    // The certificate names 127.0.0.1 and kite.test, not localhost.
    const base = { hostname: "localhost", port: server.port };
    await assert.rejects(
      new TlsDialer({ ...base, caCerts: [certs!.ca] }).dial(),
    );
    const d = await new TlsDialer({
      ...base,
      caCerts: [certs!.ca],
      insecure: true,
    }).dial();
    await d.write(new Uint8Array([5]));
    assert.deepEqual(
      await within(readBytes(d, 1), 3000, "echo"),
      Uint8Array.of(5),
    );
    d.close();
    // Without the CA the chain check still fails.
    await assert.rejects(new TlsDialer({ ...base, insecure: true }).dial());
  },
});

/**
 * A stand-in for a `WebSocket` whose `bufferedAmount` the test sets: only
 * for the duplex's write bound, which a real socket cannot show on cue.
 */
class BufferedSocket extends EventTarget {
  readyState = 1;
  binaryType = "blob";
  protocol = "mqtt";
  sent: Uint8Array[] = [];
  buffered = 0;
  /** Reads of `bufferedAmount` (the duplex polls it while waiting). */
  polls = 0;
  #polled: (() => void) | undefined;

  get bufferedAmount(): number {
    this.polls++;
    this.#polled?.();
    return this.buffered;
  }

  /** Resolves after `n` more reads of `bufferedAmount`. */
  polled(n: number): Promise<void> {
    const target = this.polls + n;
    return new Promise((resolve) => {
      this.#polled = () => {
        if (this.polls >= target) {
          this.#polled = undefined;
          resolve();
        }
      };
    });
  }

  send(data: Uint8Array): void {
    this.sent.push(data.slice());
    this.buffered += data.length;
  }

  close(): void {
    this.readyState = 3;
    this.dispatchEvent(new CloseEvent("close", { code: 1000 }));
  }
}

Deno.test("WebSocketDuplex.write() waits while bufferedAmount is above the bound", async () => {
  const { WebSocketDuplex } = await import("../client/_ws_duplex.ts");
  const ws = new BufferedSocket();
  const d = new WebSocketDuplex(ws as unknown as WebSocket, {
    maxBufferedAmount: 1000,
  });
  assert.equal(ws.binaryType, "arraybuffer");
  await d.write(new Uint8Array(600)); // 600 buffered: under the bound
  let done = false;
  const w = d.write(new Uint8Array(600)).then(() => done = true); // 1200
  await ws.polled(3);
  assert.equal(done, false, "write resolved above the bound");
  ws.buffered = 600; // drained, but still above half the bound
  await ws.polled(2);
  assert.equal(done, false, "write resolved above half the bound");
  ws.buffered = 0;
  await within(w, 3000, "write after the drain");
  assert.equal(ws.sent.length, 2);
  d.close();
  assert.equal(await d.read(), null);
});

// ------------------------------------------- DenoWebSocketDialer's framing

const GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** A server frame (unmasked). */
function frame(opcode: number, payload: Uint8Array, fin = true): Uint8Array {
  const n = payload.length;
  const head = n < 126
    ? [n]
    : n < 65536
    ? [126, n >> 8, n & 0xff]
    : [127, 0, 0, 0, 0, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff];
  return new Uint8Array([(fin ? 0x80 : 0) | opcode, ...head, ...payload]);
}

/** Reads one client frame (masked) from `conn`; `buf` keeps leftovers. */
async function readClientFrame(
  conn: Deno.Conn,
  buf: { bytes: Uint8Array },
): Promise<{ opcode: number; payload: Uint8Array; masked: boolean }> {
  const need = async (n: number) => {
    while (buf.bytes.length < n) {
      const b = new Uint8Array(4096);
      const got = await conn.read(b);
      if (got === null) throw new Error("EOF");
      const j = new Uint8Array(buf.bytes.length + got);
      j.set(buf.bytes);
      j.set(b.subarray(0, got), buf.bytes.length);
      buf.bytes = j;
    }
  };
  await need(2);
  let len = buf.bytes[1]! & 0x7f;
  let off = 2;
  if (len === 126) {
    await need(4);
    len = (buf.bytes[2]! << 8) | buf.bytes[3]!;
    off = 4;
  }
  const masked = (buf.bytes[1]! & 0x80) !== 0;
  await need(off + 4 + len);
  const mask = buf.bytes.slice(off, off + 4);
  const payload = buf.bytes.slice(off + 4, off + 4 + len)
    .map((b, i) => b ^ mask[i & 3]!);
  const opcode = buf.bytes[0]! & 0x0f;
  buf.bytes = buf.bytes.slice(off + 4 + len);
  return { opcode, payload, masked };
}

/**
 * A scripted WebSocket server on a raw TCP socket: answers the handshake
 * (`answer` may change it), then runs `script` with the connection.
 */
async function scriptedWs(
  script: (conn: Deno.Conn, buf: { bytes: Uint8Array }) => Promise<void>,
  answer?: (key: string, accept: string) => string,
  run: (url: string) => Promise<void> = async () => {},
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const served = (async () => {
    const conn = await listener.accept();
    try {
      let head = "";
      const b = new Uint8Array(4096);
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(b);
        if (n === null) return;
        head += new TextDecoder().decode(b.subarray(0, n));
      }
      const key = head.match(/Sec-WebSocket-Key: (\S+)/i)![1]!;
      const digest = await crypto.subtle.digest(
        "SHA-1",
        new TextEncoder().encode(key + GUID),
      );
      const accept = btoa(String.fromCharCode(...new Uint8Array(digest)));
      const response = answer?.(key, accept) ??
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
          `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n` +
          "Sec-WebSocket-Protocol: mqtt\r\n\r\n";
      await conn.write(new TextEncoder().encode(response));
      await script(conn, { bytes: new Uint8Array(0) });
    } finally {
      try {
        conn.close();
      } catch { /* already */ }
    }
  })();
  try {
    await run(`ws://127.0.0.1:${port}/mqtt`);
  } finally {
    listener.close();
  }
  await within(served, 3000, "the scripted server"); // its assertions too
}

Deno.test("DenoWebSocketDialer reads frames split byte by byte, fragmented, packed; answers pings; sends masked frames", async () => {
  const done = Promise.withResolvers<void>();
  await scriptedWs(
    async (conn, buf) => {
      // One frame sent a byte at a time, a message in two fragments, and
      // two frames in one write, with a ping between.
      const one = frame(0x2, new Uint8Array([1, 2, 3]));
      for (const byte of one) await conn.write(new Uint8Array([byte]));
      await conn.write(frame(0x2, new Uint8Array([4]), false));
      await conn.write(frame(0x9, new TextEncoder().encode("hi")));
      await conn.write(frame(0x0, new Uint8Array([5])));
      const big = new Uint8Array(70_000).fill(7);
      await conn.write(
        new Uint8Array([...frame(0x2, big), ...frame(0x2, Uint8Array.of(8))]),
      );
      const pong = await readClientFrame(conn, buf);
      assert.deepEqual([pong.opcode, new TextDecoder().decode(pong.payload)], [
        0xa,
        "hi",
      ]);
      const data = await readClientFrame(conn, buf);
      assert.deepEqual(data, {
        opcode: 0x2,
        payload: Uint8Array.of(9, 9),
        masked: true,
      });
      await done.promise;
      await conn.write(frame(0x8, Uint8Array.of(0x03, 0xe8)));
      const close = await readClientFrame(conn, buf);
      assert.equal(close.opcode, 0x8);
    },
    undefined,
    async (url) => {
      const d = await new DenoWebSocketDialer({ url }).dial();
      try {
        const got = await within(readBytes(d, 5 + 70_000 + 1), 3000, "frames");
        assert.deepEqual(got.subarray(0, 5), Uint8Array.of(1, 2, 3, 4, 5));
        assert.equal(got[5 + 69_999], 7);
        assert.equal(got[5 + 70_000], 8);
        await d.write(Uint8Array.of(9, 9));
        done.resolve();
        assert.equal(await within(d.read(), 3000, "EOF after close"), null);
      } finally {
        d.close();
      }
    },
  );
});

Deno.test("DenoWebSocketDialer fails the read on a text or masked frame [MQTT-6.0.0-1]", async () => {
  for (
    const [bad, re] of [
      [frame(0x1, new TextEncoder().encode("{}")), /text frame/],
      [Uint8Array.of(0x82, 0x81, 1, 2, 3, 4, 5), /masked frame/],
    ] as const
  ) {
    await scriptedWs(
      async (conn, buf) => {
        await conn.write(bad);
        // The client says why: close 1002.
        const close = await readClientFrame(conn, buf);
        assert.deepEqual([close.opcode, [...close.payload]], [0x8, [
          0x03,
          0xea,
        ]]);
      },
      undefined,
      async (url) => {
        const d = await new DenoWebSocketDialer({ url }).dial();
        try {
          await assert.rejects(within(d.read(), 3000, "bad frame"), re);
          assert.equal(await d.read(), null);
        } finally {
          d.close();
        }
      },
    );
  }
});

Deno.test("DenoWebSocketDialer.dial() rejects a refused upgrade, a bad accept key, a missing subprotocol", async () => {
  for (
    const [answer, re] of [
      [
        () => "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        /"HTTP\/1.1 400 Bad Request", not 101/,
      ],
      [
        () =>
          "HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: nope\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n",
        /Sec-WebSocket-Accept/,
      ],
      [
        (_: string, accept: string) =>
          `HTTP/1.1 101 Switching Protocols\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`,
        /subprotocol mqtt/,
      ],
    ] as const
  ) {
    await scriptedWs(async () => {}, answer, async (url) => {
      await assert.rejects(new DenoWebSocketDialer({ url }).dial(), re);
    });
  }
});

Deno.test({
  name:
    "DenoWebSocketDialer over wss:// checks serverName, or skips the host check with insecure",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using server = new WsEchoServer({ certs: certs! });
    const url = `wss://localhost:${server.port}/mqtt`; // not in the certificate
    const tls = { caCerts: [certs!.ca] };
    await assert.rejects(new DenoWebSocketDialer({ url, tls }).dial());
    for (
      const extra of [{ serverName: "kite.test" }, { insecure: true }]
    ) {
      const d = await new DenoWebSocketDialer({
        url,
        tls: { ...tls, ...extra },
      }).dial();
      await d.write(Uint8Array.of(3));
      assert.deepEqual(
        await within(readBytes(d, 1), 3000, "echo"),
        Uint8Array.of(3),
      );
      d.close();
    }
  },
});
