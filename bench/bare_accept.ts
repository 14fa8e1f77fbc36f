/**
 * The platform's ceiling for the conns scenario: a bare Deno accept loop
 * that does only what a broker must to take an MQTT connection (accept,
 * read the CONNECT, write CONNACK) and then keeps the connection open with
 * one small read pending, answering PINGREQ (the conns scenario checks
 * every connection with one) and closing on DISCONNECT or EOF. No session,
 * no parsing beyond the fixed header, no logging.
 *
 * compare.ts runs it beside Kite and Mosquitto in the conns scenario
 * (started like Kite, with the start task's V8 flags, pinned to the same
 * core) and prints Kite's ratio to it.
 *
 * ```sh
 * deno run -A bench/bare_accept.ts --port 1883
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

const CONNACK = Uint8Array.of(0x20, 0x02, 0x00, 0x00);
const PINGRESP = Uint8Array.of(0xd0, 0x00);

/** Bytes of a whole packet at `b[at]` within `b[at..n)`, or 0 if incomplete. */
export function packetLength(b: Uint8Array, n: number, at = 0): number {
  let length = 0;
  let mul = 1;
  for (let i = at + 1; i < at + 5 && i < n; i++) {
    const byte = b[i]!;
    length += (byte & 0x7f) * mul;
    if ((byte & 0x80) === 0) {
      return i + 1 + length <= n ? i + 1 + length - at : 0;
    }
    mul *= 128;
  }
  return 0;
}

async function serve(conn: Deno.TcpConn): Promise<void> {
  try {
    conn.setNoDelay(true);
    // The CONNECT (a client's first packet) fits in 512 bytes here.
    let buf = new Uint8Array(512);
    let n = 0;
    let whole = 0;
    while (whole === 0) {
      const r = await conn.read(buf.subarray(n));
      if (r === null) return;
      n += r;
      whole = packetLength(buf, n);
      if (whole === 0 && n === buf.length) return; // too large for us
    }
    if (buf[0]! >> 4 !== 1) return;
    await conn.write(CONNACK);
    // Idle: one 64-byte read pending (PINGREQ and DISCONNECT are 2 bytes).
    buf = new Uint8Array(64);
    while (true) {
      const r = await conn.read(buf);
      if (r === null) return;
      for (let i = 0; i + 1 < r; i += 2) {
        const type = buf[i]! >> 4;
        if (type === 12) await conn.write(PINGRESP);
        else if (type === 14) return;
      }
    }
  } catch {
    // reset by the client
  } finally {
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

/**
 * Where `--host` / `--port` say to listen (127.0.0.1:1883); exits on SIGTERM
 * from then on. Shared with bench/bare_relay.ts and bare_relay_handles.ts.
 */
export function listenArgs(): { hostname: string; port: number } {
  const args = Deno.args[0] === "--" ? Deno.args.slice(1) : Deno.args;
  const { values } = parseArgs({
    args,
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string", default: "1883" },
    },
  });
  Deno.addSignalListener("SIGTERM", () => Deno.exit(0));
  return { hostname: values.host, port: Number(values.port) };
}

/**
 * Listens where `listenArgs()` says and calls `serve` on every connection.
 */
export async function listenAndServe(
  serve: (conn: Deno.TcpConn) => void,
): Promise<void> {
  const listener = Deno.listen(listenArgs());
  for await (const conn of listener) serve(conn);
}

if (import.meta.main) await listenAndServe(serve);
