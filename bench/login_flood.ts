/**
 * Login flood (issue 19, finding 7): how long a valid login takes, and what
 * round trip a connected client sees, while other addresses flood the
 * broker with wrong passwords.
 *
 * ```sh
 * deno run -A bench/login_flood.ts [--attackers 16] [--sources 8] [--rate 120]
 *   [--valid 40] [--root DIR]
 * ```
 *
 * It starts `broker/main.ts` (from this checkout, or `--root DIR`, e.g. an
 * older commit unpacked with `git archive`) with a password file at the
 * default 100,000 PBKDF2 iterations, then measures twice, without and with
 * the flood:
 *
 * - `--valid` logins of user bob from 127.0.0.200 in turn: CONNECT to
 *   CONNACK, each on a new connection;
 * - PINGREQ to PINGRESP round trips of a client connected beforehand.
 *
 * The flood: `--attackers` connections from `--sources` addresses
 * (127.0.0.2, 127.0.0.3, ...; bound with `node:net`), each reconnecting
 * with a wrong password for user alice, `--rate` attempts per second in
 * all (0: as fast as the broker answers). Prints median and p99 of both,
 * and the CONNACK codes the attackers got (-1: closed without CONNACK, -2:
 * the connection failed).
 *
 * @module
 */

import net from "node:net";
import { once } from "node:events";
import { join } from "node:path";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet } from "../codec/packet.ts";
import { PasswordFile } from "../broker/password_file.ts";

function flag(name: string, fallback: string): string {
  const i = Deno.args.indexOf(`--${name}`);
  return i >= 0 && Deno.args[i + 1] !== undefined
    ? Deno.args[i + 1]!
    : fallback;
}

const ATTACKERS = Number(flag("attackers", "16"));
const SOURCES = Number(flag("sources", "8"));
const RATE = Number(flag("rate", "120"));
const VALID = Number(flag("valid", "40"));
const ROOT = flag("root", new URL("..", import.meta.url).pathname);

const enc = new TextEncoder();

/** One MQTT 5 connection over `node:net`, bound to `localAddress`. */
class NetClient {
  readonly socket: net.Socket;
  readonly closed: Promise<unknown>;
  #decoder = new PacketDecoder({ version: 5 });
  #waiting: ((p: Packet | undefined) => void) | undefined;
  #inbox: Packet[] = [];
  #ended = false;

  constructor(localAddress: string, port: number) {
    this.socket = net.connect({ host: "127.0.0.1", port, localAddress });
    this.socket.setNoDelay(true);
    // Not `once()`: it rejects on an "error" before the "close".
    this.closed = new Promise((resolve) => this.socket.once("close", resolve));
    this.socket.on(
      "data",
      (chunk: Uint8Array) =>
        this.#decoder.push(new Uint8Array(chunk), (p) => {
          const w = this.#waiting;
          this.#waiting = undefined;
          if (w !== undefined) w(p);
          else this.#inbox.push(p);
        }),
    );
    this.socket.on("error", () => {});
    this.socket.on("close", () => {
      this.#ended = true;
      this.#waiting?.(undefined);
    });
  }

  /** The next packet, or undefined once the connection closed. */
  next(): Promise<Packet | undefined> {
    const p = this.#inbox.shift();
    if (p !== undefined || this.#ended) return Promise.resolve(p);
    return new Promise((resolve) => this.#waiting = resolve);
  }

  send(p: Packet): void {
    this.socket.write(encode(p, { version: 5 }));
  }

  async close(): Promise<void> {
    this.socket.destroy();
    await this.closed;
  }
}

/** CONNECT as `user` from `localAddress`: the CONNACK code and the ms it took. */
async function login(
  localAddress: string,
  port: number,
  user: string,
  password: string,
): Promise<{ code: number; ms: number }> {
  const t0 = performance.now();
  const c = new NetClient(localAddress, port);
  try {
    try {
      await once(c.socket, "connect");
    } catch {
      return { code: -2, ms: performance.now() - t0 }; // refused, reset
    }
    c.send({
      type: "connect",
      protocolVersion: 5,
      clientId: "",
      cleanStart: true,
      keepAlive: 0,
      username: user,
      password: enc.encode(password),
    });
    const p = await c.next();
    const code = p?.type === "connack" ? p.reasonCode : -1;
    return { code, ms: performance.now() - t0 };
  } finally {
    await c.close();
  }
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;
}

function summary(ms: number[]): string {
  const s = [...ms].sort((a, b) => a - b);
  return `median ${quantile(s, 0.5).toFixed(1)} ms, p99 ${
    quantile(s, 0.99).toFixed(1)
  } ms (n=${s.length})`;
}

/**
 * Valid logins in turn, and pings from `pinger` alongside: their times, and
 * the codes of valid logins that failed (-1, -2: see the module doc).
 */
async function measure(
  port: number,
  pinger: NetClient,
): Promise<{ logins: number[]; pings: number[]; failed: number[] }> {
  const logins: number[] = [];
  const failed: number[] = [];
  const pings: number[] = [];
  let done = false;
  const pinging = (async () => {
    while (!done) {
      const t0 = performance.now();
      pinger.send({ type: "pingreq" });
      const p = await pinger.next();
      if (p?.type !== "pingresp") {
        throw new Error(`ping: got ${JSON.stringify(p)}`);
      }
      pings.push(performance.now() - t0);
      // Pace the pings (one every 20 ms): a load generator, not a wait.
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  for (let i = 0; i < VALID; i++) {
    const { code, ms } = await login("127.0.0.200", port, "bob", "bob-pw");
    if (code === 0) logins.push(ms);
    else failed.push(code);
  }
  done = true;
  await pinging;
  return { logins, pings, failed };
}

async function main(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kite-login-flood-" });
  const passwordFile = join(dir, "kite.passwd");
  const file = new PasswordFile();
  for (const user of ["admin", "alice", "bob"]) {
    await file.setUser(user, `${user}-pw`);
  }
  await file.save(passwordFile);
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      join(ROOT, "broker", "main.ts"),
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--no-enable-persistence",
      "--sys-interval",
      "0",
      "--max-connections",
      "20000",
      "--password-file",
      passwordFile,
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let log = "";
  const { promise: listening, resolve } = Promise.withResolvers<number>();
  const drain = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      if (log.length < 1_000_000) log += chunk;
      const m = log.match(/listening on mqtt:\/\/[^\s:]+:(\d+)/);
      if (m) resolve(Number(m[1]));
    }
  };
  const drained = Promise.all([drain(child.stdout), drain(child.stderr)]);
  try {
    const port = await listening;
    console.log(
      `broker ${ROOT}broker/main.ts on port ${port}; ${ATTACKERS} attackers from ${SOURCES} addresses at ${
        RATE || "max"
      }/s; ${VALID} valid logins per phase`,
    );
    const pinger = new NetClient("127.0.0.201", port);
    await once(pinger.socket, "connect");
    pinger.send({
      type: "connect",
      protocolVersion: 5,
      clientId: "pinger",
      cleanStart: true,
      keepAlive: 0,
      username: "admin",
      password: enc.encode("admin-pw"),
    });
    if ((await pinger.next())?.type !== "connack") throw new Error("pinger");

    const quiet = await measure(port, pinger);
    console.log(`no flood:   valid login ${summary(quiet.logins)}`);
    console.log(`            ping        ${summary(quiet.pings)}`);

    let flooding = true;
    const codes = new Map<number, number>();
    const perConnection = RATE > 0 ? 1000 * ATTACKERS / RATE : 0;
    const attackers = Array.from({ length: ATTACKERS }, async (_, i) => {
      const source = `127.0.0.${2 + (i % SOURCES)}`;
      while (flooding) {
        const t0 = performance.now();
        const { code } = await login(source, port, "alice", "guess");
        codes.set(code, (codes.get(code) ?? 0) + 1);
        const rest = perConnection - (performance.now() - t0);
        // The attack's pace (--rate), not a synchronisation.
        if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      }
    });
    const flood = await measure(port, pinger);
    flooding = false;
    await Promise.all(attackers);
    console.log(`flood:      valid login ${summary(flood.logins)}`);
    if (flood.failed.length > 0) {
      console.log(
        `            valid logins failed: ${flood.failed.join(", ")}`,
      );
    }
    console.log(`            ping        ${summary(flood.pings)}`);
    const seen = [...codes].map(([c, n]) => `0x${c.toString(16)} x${n}`);
    console.log(`attackers got: ${seen.join(", ")}`);
    await pinger.close();
  } finally {
    try {
      child.kill("SIGTERM");
    } catch { /* gone */ }
    await child.status;
    await drained;
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) await main();
