/**
 * Test helpers for the broker: a raw packet-level client and a broker
 * factory. Every wait is bounded by a timeout.
 */

import assert from "node:assert/strict";
import { Broker, type BrokerInit } from "../broker/mod.ts";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type {
  ConnackPacket,
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
} from "../codec/packet.ts";

/** Starts a broker on 127.0.0.1, port 0, $SYS off unless given. */
export async function startBroker(options: BrokerInit = {}): Promise<Broker> {
  const broker = new Broker({
    host: "127.0.0.1",
    port: 0,
    sysInterval: 0,
    ...options,
  });
  await broker.listen();
  return broker;
}

/** Rejects after `ms` unless `p` settles first; the timer is always cleared. */
export function withTimeout<T>(
  p: Promise<T>,
  ms: number,
  what: string,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)),
      ms,
    );
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

/**
 * Resolves once `cond()` holds, polling a broker-side condition that no
 * event announces; rejects after `ms` naming `what`.
 */
export async function waitFor(
  cond: () => boolean,
  ms: number,
  what: string,
): Promise<void> {
  await withTimeout(
    (async () => {
      while (!cond()) await new Promise((r) => setTimeout(r, 10));
    })(),
    ms,
    what,
  );
}

/** The packet interface whose `type` includes `T`. */
export type PacketOf<T extends Packet["type"]> = Packet extends infer P
  ? P extends { type: infer U } ? T extends U ? P : never : never
  : never;

type Waiter = {
  pred: (p: Packet) => boolean;
  resolve: (p: Packet) => void;
};

/** A packet-level MQTT client for tests. */
export class RawClient {
  readonly conn: Deno.TcpConn;
  readonly version: ProtocolVersion;
  /** Packets received and not yet taken by `next`/`expect`. */
  readonly inbox: Packet[] = [];
  /** Raw bytes received, when `recordBytes`. */
  readonly bytes: Uint8Array[] = [];
  recordBytes = false;
  /** Resolves when the broker closed the connection (EOF or error). */
  readonly closed: Promise<void>;
  #decoder: PacketDecoder;
  #waiters: Waiter[] = [];
  #closedResolve!: () => void;
  #isClosed = false;
  #reading: Promise<void>;

  private constructor(conn: Deno.TcpConn, version: ProtocolVersion) {
    this.conn = conn;
    this.version = version;
    this.#decoder = new PacketDecoder({ version });
    this.closed = new Promise((r) => this.#closedResolve = r);
    this.#reading = this.#read();
  }

  /** Opens a TCP connection (no CONNECT sent). */
  static async open(
    port: number,
    version: ProtocolVersion = 4,
  ): Promise<RawClient> {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    conn.setNoDelay(true);
    return new RawClient(conn, version);
  }

  /**
   * Opens a connection, sends CONNECT (fields default to a clean session
   * with keep alive 0) and returns the client with its CONNACK.
   */
  static async connect(
    port: number,
    fields: Partial<ConnectPacket> & { protocolVersion?: ProtocolVersion } = {},
  ): Promise<{ client: RawClient; connack: ConnackPacket }> {
    const version = fields.protocolVersion ?? 4;
    const client = await RawClient.open(port, version);
    await client.send({
      type: "connect",
      protocolVersion: version,
      clientId: "",
      cleanStart: true,
      keepAlive: 0,
      ...fields,
    } as ConnectPacket);
    const connack = await client.expect("connack");
    return { client, connack };
  }

  async #read(): Promise<void> {
    const buf = new Uint8Array(64 * 1024);
    try {
      while (true) {
        const n = await this.conn.read(buf);
        if (n === null) break;
        const chunk = buf.slice(0, n);
        if (this.recordBytes) this.bytes.push(chunk);
        this.#decoder.push(chunk, (p) => this.#deliver(p));
      }
    } catch {
      // closed
    }
    this.#isClosed = true;
    this.#closedResolve();
  }

  #deliver(p: Packet): void {
    for (let i = 0; i < this.#waiters.length; i++) {
      const w = this.#waiters[i]!;
      if (w.pred(p)) {
        this.#waiters.splice(i, 1);
        w.resolve(p);
        return;
      }
    }
    this.inbox.push(p);
  }

  /** Encodes and sends packets (in one write). */
  async send(...packets: Packet[]): Promise<void> {
    const parts = packets.map((p) => encode(p, { version: this.version }));
    let total = 0;
    for (const p of parts) total += p.length;
    const out = new Uint8Array(total);
    let pos = 0;
    for (const p of parts) {
      out.set(p, pos);
      pos += p.length;
    }
    await this.sendBytes(out);
  }

  /** Sends raw bytes. */
  async sendBytes(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) {
      off += await this.conn.write(bytes.subarray(off));
    }
  }

  /** The next packet matching `pred` (from the inbox first). */
  next(
    pred: (p: Packet) => boolean = () => true,
    ms = 2000,
    what = "a packet",
  ): Promise<Packet> {
    const i = this.inbox.findIndex(pred);
    if (i >= 0) return Promise.resolve(this.inbox.splice(i, 1)[0]!);
    if (this.#isClosed) {
      return Promise.reject(new Error(`connection closed waiting for ${what}`));
    }
    let waiter!: Waiter;
    const p = new Promise<Packet>((resolve) => {
      waiter = { pred, resolve };
      this.#waiters.push(waiter);
    });
    const closed = this.closed.then(() => {
      throw new Error(`connection closed waiting for ${what}`);
    });
    return withTimeout(Promise.race([p, closed]), ms, what).finally(() => {
      const j = this.#waiters.indexOf(waiter);
      if (j >= 0) this.#waiters.splice(j, 1);
    });
  }

  /** The next packet of type `type`. */
  async expect<T extends Packet["type"]>(
    type: T,
    ms = 2000,
  ): Promise<PacketOf<T>> {
    return await this.next((p) => p.type === type, ms, type) as PacketOf<T>;
  }

  /** The next PUBLISH to `topic` (any topic when omitted). */
  async expectPublish(topic?: string, ms = 2000): Promise<PublishPacket> {
    return await this.next(
      (p) => p.type === "publish" && (topic === undefined || p.topic === topic),
      ms,
      `PUBLISH ${topic ?? ""}`,
    ) as PublishPacket;
  }

  /** Asserts nothing matching arrives within `ms` (a bounded negative wait). */
  async expectNothing(
    pred: (p: Packet) => boolean = () => true,
    ms = 150,
  ): Promise<void> {
    try {
      const p = await this.next(pred, ms, "nothing");
      throw new Error(`unexpected packet ${JSON.stringify(p.type)}`);
    } catch (e) {
      if (e instanceof Error && e.message.startsWith("timed out")) return;
      if (e instanceof Error && e.message.startsWith("connection closed")) {
        return;
      }
      throw e;
    }
  }

  /** Waits until the broker closes the connection. */
  async waitClosed(ms = 3000): Promise<void> {
    await withTimeout(this.closed, ms, "the connection to close");
  }

  /**
   * The next packet of type `type` (the CONNACK or DISCONNECT that ends the
   * connection), asserted to carry `reasonCode`; then waits until the
   * broker closes the connection.
   */
  async expectClosedWith<T extends "connack" | "disconnect">(
    type: T,
    reasonCode: number,
  ): Promise<PacketOf<T>> {
    const p = await this.expect(type);
    const ending = p as PacketOf<"connack"> | PacketOf<"disconnect">;
    assert.equal(ending.reasonCode, reasonCode);
    await this.waitClosed();
    return p;
  }

  /** Whether the broker closed the connection. */
  get isClosed(): boolean {
    return this.#isClosed;
  }

  /** Closes the socket (without DISCONNECT) and waits for the reader. */
  async close(): Promise<void> {
    try {
      this.conn.close();
    } catch {
      // already closed
    }
    await this.#reading;
  }

  /** Sends DISCONNECT then closes. */
  async disconnect(): Promise<void> {
    try {
      await this.send({ type: "disconnect" });
    } catch {
      // closed
    }
    await this.close();
  }
}

/** UTF-8 bytes of a string. */
export function bytes(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

/** A string from UTF-8 bytes. */
export function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/**
 * A PUBLISH from the client: `payload` as text or bytes, QoS 0 and no
 * retain unless given; the packet id (default 1) only for QoS > 0, the
 * properties only when given.
 */
export function publishPacket(
  topic: string,
  payload: string | Uint8Array,
  options: {
    qos?: QoS | undefined;
    retain?: boolean | undefined;
    packetId?: number | undefined;
    properties?: Properties | undefined;
  } = {},
): PublishPacket {
  const qos = options.qos ?? 0;
  const p: PublishPacket = {
    type: "publish",
    topic,
    payload: typeof payload === "string" ? bytes(payload) : payload,
    qos,
    retain: options.retain ?? false,
    dup: false,
  };
  if (qos > 0) p.packetId = options.packetId ?? 1;
  if (options.properties !== undefined) p.properties = options.properties;
  return p;
}

/**
 * Subscribes `client` to one filter (packet id 1) and waits (bounded) for
 * the SUBACK; resolves with its reason codes.
 */
export async function subscribeOne(
  client: RawClient,
  filter: string,
  qos: QoS,
): Promise<number[]> {
  await client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter, qos }],
  });
  return (await client.expect("suback")).reasonCodes;
}
