/**
 * Connecting the load tool's clients: one MQTT connection with its CONNACK
 * ({@link connectLink}), many at a bounded concurrency ({@link inTurn}), and
 * idle connections held open beside a measurement ({@link openIdle}).
 *
 * @module
 */

import { Link, type LoadTransport, TCP } from "./_link.ts";
import { connectBytes, DISCONNECT, type Login } from "./_packets.ts";

/** Waits for one packet with the given first-byte type nibble. */
export function expectPacket(
  link: Link,
  type: number,
  timeoutMs: number,
  what: string,
): Promise<{ buf: Uint8Array; body: number; length: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      link.onPacket = ignore;
      reject(new Error(`timed out waiting for ${what}`));
    }, timeoutMs);
    link.onPacket = (first, buf, body, length) => {
      if (first >> 4 !== type) return;
      clearTimeout(timer);
      link.onPacket = ignore;
      resolve({ buf, body, length });
    };
  });
}

/** A packet handler that drops everything. */
export function ignore(): void {}

/** How {@link connectLink} connects. */
export interface ConnectOptions {
  keepAlive: number;
  cleanSession: boolean;
  login?: Login | undefined;
  transport?: LoadTransport;
  /** The link's first read buffer (it grows for a larger packet). */
  bufSize?: number;
}

/**
 * Opens a link and completes CONNECT / CONNACK; `sessionPresent` is the
 * CONNACK's flag [MQTT-3.2.2-2].
 */
export async function connectLink(
  host: string,
  port: number,
  clientId: string,
  o: ConnectOptions,
): Promise<{ link: Link; sessionPresent: boolean }> {
  const link = await Link.open(
    host,
    port,
    ignore,
    o.transport ?? TCP,
    o.bufSize,
  );
  link.start();
  const connack = expectPacket(link, 2, 10_000, `CONNACK for ${clientId}`);
  link.writer.enqueue(
    connectBytes(clientId, o.keepAlive, o.cleanSession, o.login),
  );
  const { buf, body } = await connack.catch(async (e) => {
    await link.close();
    throw e;
  });
  const rc = buf[body + 1];
  if (rc !== 0) {
    await link.close();
    throw new Error(`CONNACK return code ${rc} for ${clientId}`);
  }
  return { link, sessionPresent: (buf[body]! & 1) === 1 };
}

/**
 * Runs `task(i)` for i in [0, count) with at most `concurrency` in flight;
 * rejects with the first error once every started task has settled.
 */
export async function inTurn(
  count: number,
  concurrency: number,
  task: (i: number) => Promise<void>,
): Promise<void> {
  let next = 0;
  let failure: unknown;
  const worker = async () => {
    while (next < count && failure === undefined) {
      const i = next++;
      try {
        await task(i);
      } catch (e) {
        failure ??= e;
      }
    }
  };
  await Promise.all(
    Array.from({ length: Math.min(count, concurrency) }, worker),
  );
  if (failure !== undefined) throw failure;
}

/** Reads until `n` bytes arrived into `buf`; false on EOF. */
export async function readN(
  conn: Deno.Conn,
  buf: Uint8Array,
  n: number,
): Promise<boolean> {
  let got = 0;
  while (got < n) {
    const r = await conn.read(buf.subarray(got));
    if (r === null) return false;
    got += r;
  }
  return true;
}

/**
 * Closes any watched connection still waiting for an answer after
 * `timeoutMs`, so a broker that never answers fails that connection, not
 * the run.
 */
export class Watchdog {
  #waiting = new Map<Deno.TcpConn, number>();
  #timer: ReturnType<typeof setInterval>;
  constructor(timeoutMs: number) {
    this.#timer = setInterval(() => {
      const old = performance.now() - timeoutMs;
      for (const [conn, since] of this.#waiting) {
        if (since < old) {
          this.#waiting.delete(conn);
          try {
            conn.close();
          } catch { /* closed */ }
        }
      }
    }, 500);
  }
  watch(conn: Deno.TcpConn): void {
    this.#waiting.set(conn, performance.now());
  }
  unwatch(conn: Deno.TcpConn): void {
    this.#waiting.delete(conn);
  }
  stop(): void {
    clearInterval(this.#timer);
  }
}

/** Bare TCP connections that completed CONNECT / CONNACK, and the misses. */
export interface IdleConns {
  conns: Deno.TcpConn[];
  failed: number;
  firstError: unknown;
  /** Seconds from the first connect to the last CONNACK. */
  seconds: number;
}

/**
 * Opens `count` MQTT connections (CONNECT with Clean Session 1, client ids
 * `<idPrefix>-NNNNNN`) `concurrency` at a time and leaves them idle: no
 * read is kept pending on them, so they cost this process nothing while a
 * scenario runs. A broker that refuses or never answers fails that
 * connection (closed by a 10 s {@link Watchdog}), not the run.
 */
export async function openIdle(
  host: string,
  port: number,
  count: number,
  concurrency: number,
  keepAlive: number,
  idPrefix: string,
): Promise<IdleConns> {
  const conns: Deno.TcpConn[] = [];
  let failed = 0;
  let firstError: unknown;
  const watchdog = new Watchdog(10_000);
  const t0 = performance.now();
  let next = 0;
  const worker = async () => {
    const buf = new Uint8Array(16);
    // This worker's CONNECT, the client id's last 6 digits patched in place
    // (the write is awaited before the next patch).
    const connect = connectBytes(`${idPrefix}-000000`, keepAlive);
    const digits = connect.length - 6;
    while (next < count) {
      const i = next++;
      let conn: Deno.TcpConn | undefined;
      try {
        conn = await Deno.connect({ hostname: host, port });
        watchdog.watch(conn);
        for (let d = 0, n = i; d < 6; d++, n = Math.floor(n / 10)) {
          connect[digits + 5 - d] = 0x30 + (n % 10);
        }
        let off = 0;
        while (off < connect.length) {
          off += await conn.write(connect.subarray(off));
        }
        if (!(await readN(conn, buf, 4)) || buf[0] !== 0x20 || buf[3] !== 0) {
          throw new Error(`no CONNACK 0 (got ${buf.subarray(0, 4)})`);
        }
        watchdog.unwatch(conn);
        conns.push(conn);
      } catch (e) {
        if (conn) watchdog.unwatch(conn);
        failed++;
        firstError ??= e;
        try {
          conn?.close();
        } catch { /* closed */ }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: concurrency }, worker));
  } finally {
    watchdog.stop();
  }
  return {
    conns,
    failed,
    firstError,
    seconds: (performance.now() - t0) / 1000,
  };
}

/** Sends DISCONNECT on each connection and closes it. */
export async function closeIdle(conns: Deno.TcpConn[]): Promise<void> {
  await Promise.all(conns.map(async (conn) => {
    try {
      await conn.write(DISCONNECT);
    } catch { /* closed */ }
    try {
      conn.close();
    } catch { /* closed */ }
  }));
}

/** The soft limit of open files of a process (this one by default). */
export function openFileLimit(pid: number | "self" = "self"): number {
  try {
    const limits = Deno.readTextFileSync(`/proc/${pid}/limits`);
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(limits);
    if (m) return m[1] === "unlimited" ? Infinity : Number(m[1]);
  } catch { /* not Linux, or gone */ }
  return Infinity;
}
