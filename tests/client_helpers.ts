/**
 * Helpers of the client tests: the brokers to run them against (Mosquitto,
 * Kite's broker), a TCP proxy that can drop or swallow traffic, a scripted
 * fake broker, and bounded waits.
 *
 * @module
 */

import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet, ProtocolVersion } from "../codec/packet.ts";
import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";

/** A running broker for a test. */
export interface TestBroker extends AsyncDisposable {
  port: number;
  stop(): Promise<void>;
}

/** What a test needs from the broker. */
export interface StartOptions {
  /** Reuse this port (a restart). */
  port?: number;
  /** Refuse every client as not authorized (no anonymous access). */
  refuseAll?: boolean;
  /** Maximum Packet Size the broker accepts and announces. */
  maxPacketSize?: number;
  /** Receive Maximum the broker announces. */
  receiveMaximum?: number;
  /** Refuse publishes to topics under `denied/` (v5 PUBACK 0x87). */
  denyPublishUnderDenied?: boolean;
}

/** A kind of broker the same tests run against. */
export interface BrokerTarget {
  name: string;
  /** False when it is not available here (the tests are then ignored). */
  available: boolean;
  /** Starts one; `port` reuses a port (restart). */
  start(options?: StartOptions): Promise<TestBroker>;
}

/**
 * Registers the test `name [target]`, ignored where `target` is not
 * available: starts a broker of `target` with `start`, runs `fn` with it,
 * then `cleanup()` (when given) and stops the broker, also when `fn` fails.
 */
export function targetTest(
  target: BrokerTarget,
  name: string,
  fn: (broker: TestBroker) => Promise<void> | void,
  start: StartOptions = {},
  cleanup?: () => Promise<void>,
): void {
  Deno.test({
    name: `${name} [${target.name}]`,
    ignore: !target.available,
    async fn() {
      const broker = await target.start(start);
      try {
        await fn(broker);
      } finally {
        await cleanup?.();
        await broker.stop();
      }
    },
  });
}

/** Mosquitto 2 (skipped when not installed). */
export const MOSQUITTO: BrokerTarget = {
  name: "mosquitto",
  available: HAVE_MOSQUITTO,
  start: async (options = {}) => {
    let acl: string | undefined;
    if (options.denyPublishUnderDenied) {
      acl = await Deno.makeTempFile({ prefix: "kite-acl-" });
      await Deno.chmod(acl, 0o644);
      // Anything not granted is denied once an ACL file is in use.
      await Deno.writeTextFile(
        acl,
        "topic read #\ntopic write allowed/#\n",
      );
    }
    const m = await startMosquitto({
      ...(options.port ? { port: options.port } : {}),
      allowAnonymous: !options.refuseAll,
      extraConfig: [
        options.maxPacketSize ? `max_packet_size ${options.maxPacketSize}` : "",
        options.receiveMaximum
          ? `max_inflight_messages ${options.receiveMaximum}`
          : "",
        acl ? `acl_file ${acl}` : "",
      ].join("\n"),
    });
    if (!acl) return m;
    const file = acl;
    const stop = async () => {
      await m.stop();
      await Deno.remove(file).catch(() => {});
    };
    return { port: m.port, stop, [Symbol.asyncDispose]: stop };
  },
};

// Loaded at run time so that a type error in the broker does not stop the
// client's tests from running against Mosquitto.
const kiteBrokerModule = "../broker/broker.ts";
let kiteAvailable = false;
try {
  await Deno.stat(new URL(kiteBrokerModule, import.meta.url));
  kiteAvailable = true;
} catch { /* not there yet */ }

/** Kite's own broker (`broker/broker.ts`). */
export const KITE: BrokerTarget = {
  name: "kite",
  available: kiteAvailable,
  async start(options = {}) {
    const { Broker } = await import(kiteBrokerModule);
    const broker = new Broker({
      host: "127.0.0.1",
      port: options.port ?? 0,
      sysInterval: 0,
      ...(options.refuseAll ? { allowAnonymous: false } : {}),
      ...(options.maxPacketSize
        ? { maxPacketSize: options.maxPacketSize }
        : {}),
      ...(options.receiveMaximum
        ? { receiveMaximum: options.receiveMaximum }
        : {}),
      ...(options.denyPublishUnderDenied
        ? {
          authorizePublish: (_c: unknown, topic: string) =>
            topic.startsWith("denied/") ? 0x87 : 0,
        }
        : {}),
    });
    await broker.listen();
    const port: number = broker.addr.port;
    let stopped = false;
    const stop = async () => {
      if (stopped) return;
      stopped = true;
      await broker.close();
    };
    return { port, stop, [Symbol.asyncDispose]: stop };
  },
};

/** The brokers every client feature test runs against. */
export const TARGETS: BrokerTarget[] = [MOSQUITTO, KITE];

/** Resolves with `promise` or rejects after `ms` with a message naming `what`. */
export async function within<T>(
  promise: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
          ms,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A promise resolved by `next()` calls until `count` were seen. */
export function counter(count: number): {
  promise: Promise<void>;
  next(): void;
  seen(): number;
} {
  const { promise, resolve } = Promise.withResolvers<void>();
  let n = 0;
  if (count <= 0) resolve();
  return {
    promise,
    next() {
      if (++n >= count) resolve();
    },
    seen: () => n,
  };
}

/**
 * A TCP proxy to a port on 127.0.0.1. `swallowUp`/`swallowDown` drop the
 * bytes going to the broker / to the client (the connection stays up);
 * `dropAll()` closes every proxied connection (a network failure).
 */
export class TcpProxy implements AsyncDisposable {
  readonly port: number;
  swallowUp = false;
  swallowDown = false;
  #listener: Deno.Listener;
  #target: number;
  #pairs = new Set<[Deno.Conn, Deno.Conn]>();
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;
  /** Connections accepted so far. */
  accepted = 0;

  constructor(target: number) {
    this.#target = target;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    this.#accepting = this.#accept();
  }

  async #accept(): Promise<void> {
    for await (const client of this.#listener) {
      this.accepted++;
      let server: Deno.Conn;
      try {
        server = await Deno.connect({
          hostname: "127.0.0.1",
          port: this.#target,
        });
      } catch {
        client.close();
        continue;
      }
      const pair: [Deno.Conn, Deno.Conn] = [client, server];
      this.#pairs.add(pair);
      const t = Promise.all([
        this.#pipe(client, server, true),
        this.#pipe(server, client, false),
      ]).then(() => {
        this.#pairs.delete(pair);
        this.#tasks.delete(t);
      });
      this.#tasks.add(t);
    }
  }

  async #pipe(from: Deno.Conn, to: Deno.Conn, up: boolean): Promise<void> {
    const buf = new Uint8Array(16 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (up ? this.swallowUp : this.swallowDown) continue;
        let off = 0;
        while (off < n) off += await to.write(buf.subarray(off, n));
      }
    } catch { /* closed */ }
    for (const c of [from, to]) {
      try {
        c.close();
      } catch { /* already */ }
    }
  }

  /** Closes every proxied connection (both sides). */
  async dropAll(): Promise<void> {
    for (const [a, b] of this.#pairs) {
      for (const c of [a, b]) {
        try {
          c.close();
        } catch { /* already */ }
      }
    }
    await Promise.all([...this.#tasks]);
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting.catch(() => {});
    await this.dropAll();
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** The packet model of a packet type (AckPacket covers four types). */
export type PacketOf<T extends Packet["type"]> = Packet extends infer P
  ? P extends { type: infer U } ? T extends U ? P : never : never
  : never;

/** One connection to a `FakeBroker`. */
export interface FakeConnection {
  /** Packets received so far, in order. */
  packets: Packet[];
  /** The bytes received so far, as read. */
  bytes: Uint8Array[];
  /** Resolves with the next packet of `type` (searching those not taken). */
  next<T extends Packet["type"]>(
    type: T,
    ms?: number,
  ): Promise<PacketOf<T>>;
  send(p: Packet): Promise<void>;
  /** Writes bytes as they are (what the codec will not encode). */
  sendRaw(bytes: Uint8Array): Promise<void>;
  /** Resolves once the client has closed the connection (bounded). */
  closed(ms?: number): Promise<void>;
  close(): void;
}

/**
 * A scripted broker for what real brokers will not do on demand (aliases
 * towards the client, duplicate QoS 2, no PINGRESP, AUTH): each accepted
 * connection is handed to `script`.
 */
export class FakeBroker implements AsyncDisposable {
  readonly port: number;
  #listener: Deno.Listener;
  #tasks = new Set<Promise<void>>();
  #accepting: Promise<void>;
  #conns = new Set<Deno.Conn>();

  constructor(
    script: (c: FakeConnection, index: number) => Promise<void>,
    version: ProtocolVersion = 5,
  ) {
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.port = (this.#listener.addr as Deno.NetAddr).port;
    const listener = this.#listener;
    this.#accepting = (async () => {
      let index = 0;
      for await (const conn of listener) {
        this.#conns.add(conn);
        const t = this.#serve(conn, script, index++, version).finally(() => {
          this.#tasks.delete(t);
          this.#conns.delete(conn);
        });
        this.#tasks.add(t);
      }
    })();
  }

  async #serve(
    conn: Deno.Conn,
    script: (c: FakeConnection, index: number) => Promise<void>,
    index: number,
    version: ProtocolVersion,
  ): Promise<void> {
    const packets: Packet[] = [];
    const bytes: Uint8Array[] = [];
    const taken = new Set<Packet>();
    let wake: (() => void) | undefined;
    let closed = false;
    const decoder = new PacketDecoder();
    const reading = (async () => {
      const buf = new Uint8Array(4096);
      try {
        for (;;) {
          const n = await conn.read(buf);
          if (n === null) break;
          const chunk = buf.slice(0, n);
          bytes.push(chunk);
          decoder.push(chunk, (p) => packets.push(p));
          wake?.();
        }
      } catch { /* closed */ }
      closed = true;
      wake?.();
    })();
    const fc: FakeConnection = {
      packets,
      bytes,
      async next(type, ms = 3000) {
        const deadline = Date.now() + ms;
        for (;;) {
          const p = packets.find((x) => x.type === type && !taken.has(x));
          if (p) {
            taken.add(p);
            return p as never;
          }
          if (closed) throw new Error(`connection closed waiting for ${type}`);
          const left = deadline - Date.now();
          if (left <= 0) throw new Error(`no ${type} within ${ms} ms`);
          await within(
            new Promise<void>((r) => wake = r),
            left,
            `waiting for ${type}`,
          ).catch(() => {});
        }
      },
      async send(p) {
        await fc.sendRaw(encode(p, { version }));
      },
      async sendRaw(b) {
        let off = 0;
        while (off < b.length) off += await conn.write(b.subarray(off));
      },
      closed(ms = 3000) {
        return within(reading, ms, "the client to close the connection");
      },
      close() {
        try {
          conn.close();
        } catch { /* already */ }
      },
    };
    try {
      await script(fc, index);
    } finally {
      await reading;
    }
  }

  async close(): Promise<void> {
    this.#listener.close();
    await this.#accepting.catch(() => {});
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* already */ }
    }
    await Promise.all([...this.#tasks]);
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}
