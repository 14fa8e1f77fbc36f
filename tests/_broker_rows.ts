/**
 * The packets-in, packets-out row runner of the broker tests
 * (broker_handlers_test.ts, conformance_broker_*_test.ts): each row drives
 * one broker `Connection` (through `Broker.start()` + `broker.serve()` with
 * an in-memory `Listener`, no sockets) and checks exactly what comes back and
 * whether the broker then closes the connection.
 *
 * Every row runs three times, with the input in one write per packet, in
 * a single write, and one byte per chunk (both directions), so that the
 * same answers come whatever the chunking.
 *
 * Answers are compared with `deepEqual` after a round trip of the expected
 * packets through the codec (its canonical form); a v5 Reason String is
 * ignored unless the row expects one (its text is for people).
 *
 * Around the row's connection: `before` connections run to their end
 * first (sessions, retained messages), `setup` acts on the broker, an
 * `observe` client watches a filter, `drop` ends the row's connection
 * without DISCONNECT (a network failure), and `after` connections run last.
 *
 * @module
 */

import assert from "node:assert/strict";
import { Broker, type BrokerInit } from "../broker/broker.ts";
import { encode } from "../codec/encode.ts";
import { decode, PacketDecoder } from "../codec/decode.ts";
import type { Duplex } from "../codec/duplex.ts";
import type {
  ConnackPacket,
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
} from "../codec/packet.ts";
import { withTimeout } from "./_helpers.ts";
import { MemoryListener } from "./_memory_duplex.ts";

/**
 * A connection before or after the row's: sends `in`, gets `out`, then
 * sends DISCONNECT (or, with `drop`, closes its end without one) and waits
 * until the broker has closed it.
 */
export interface Step {
  /** The protocol version of its packets. */
  version: ProtocolVersion;
  /** What it sends. */
  in: (Packet | Uint8Array)[];
  /** What the broker answers, in order. */
  out: Packet[];
  /** End without DISCONNECT (a lost connection). */
  drop?: true;
}

/** One row: what the client sends, what the broker must answer. */
export interface Row {
  /** What is checked, with the spec statement. */
  name: string;
  /** The protocol version the packets are encoded and decoded with. */
  version: ProtocolVersion;
  /** Broker options for this row. */
  options?: BrokerInit;
  /** Connections run (each to its close) before the row's. */
  before?: Step[];
  /** Run on the broker after `before`, before the row's connection. */
  setup?: (broker: Broker) => void | Promise<void>;
  /** Packets (encoded with the codec) or raw bytes (what it refuses to encode). */
  in: (Packet | Uint8Array)[];
  /**
   * The packets the broker sends, in order ("closed": none, and the broker
   * closes the connection).
   */
  out: Packet[] | "closed";
  /** After `out`, the broker closes the connection. */
  closes?: true;
  /** After `out`, the client closes its end without DISCONNECT. */
  drop?: true;
  /**
   * A second client subscribed to `filter` (3.1.1 unless `version`, at
   * `qos`, default 0) before the row runs gets exactly `out` by the time
   * the row's connection is done (wills, deliveries).
   */
  observe?: {
    filter: string;
    out: Packet[];
    version?: ProtocolVersion;
    qos?: QoS;
  };
  /** Connections run (each to its close) after the row's. */
  after?: Step[];
  /** Compare Reason Strings too (absent where `out` has none). */
  strict?: true;
}

// ------------------------------------------------------------------ packets

export function connect(
  version: ProtocolVersion,
  extra: Partial<ConnectPacket> = {},
): ConnectPacket {
  return {
    type: "connect",
    protocolVersion: version,
    clientId: "c",
    cleanStart: true,
    keepAlive: 0,
    ...extra,
  };
}

export const c4 = (extra?: Partial<ConnectPacket>) => connect(4, extra);
export const c5 = (extra?: Partial<ConnectPacket>) => connect(5, extra);

export const CONNACK4: ConnackPacket = {
  type: "connack",
  sessionPresent: false,
  reasonCode: 0,
};

/** The CONNACK of a v5 client with the default settings (and `props`). */
export function connack5(props: Properties = {}): ConnackPacket {
  return {
    type: "connack",
    sessionPresent: false,
    reasonCode: 0,
    properties: {
      receiveMaximum: 65535,
      maximumPacketSize: 262144,
      topicAliasMaximum: 10,
      wildcardSubscriptionAvailable: 1,
      sharedSubscriptionAvailable: 1,
      subscriptionIdentifierAvailable: 1,
      ...props,
    },
  };
}

export function refused(reasonCode: number): ConnackPacket {
  return { type: "connack", sessionPresent: false, reasonCode };
}

const enc = new TextEncoder();

export function publish(
  topic: string,
  qos: QoS,
  packetId?: number,
  extra: Partial<PublishPacket> = {},
): PublishPacket {
  const p: PublishPacket = {
    type: "publish",
    topic,
    payload: enc.encode("x"),
    qos,
    retain: false,
    dup: false,
    ...extra,
  };
  if (packetId !== undefined) p.packetId = packetId;
  return p;
}

export function subscribe(
  packetId: number,
  ...filters: [string, QoS][]
): Packet {
  return {
    type: "subscribe",
    packetId,
    subscriptions: filters.map(([filter, qos]) => ({ filter, qos })),
  };
}

export function suback(packetId: number, ...reasonCodes: number[]): Packet {
  return { type: "suback", packetId, reasonCodes };
}

export function ack(
  type: "puback" | "pubrec" | "pubrel" | "pubcomp",
  packetId: number,
  reasonCode?: number,
): Packet {
  return reasonCode === undefined
    ? { type, packetId }
    : { type, packetId, reasonCode };
}

export function disconnect(
  reasonCode?: number,
  properties?: Properties,
): Packet {
  const p: Packet = { type: "disconnect" };
  if (reasonCode !== undefined) p.reasonCode = reasonCode;
  if (properties !== undefined) p.properties = properties;
  return p;
}

export const PINGREQ: Packet = { type: "pingreq" };
export const PINGRESP: Packet = { type: "pingresp" };

/** A fixed header + body, for packets the codec will not encode. */
export function raw(first: number, ...body: number[]): Uint8Array {
  if (body.length > 127) throw new Error("raw(): one length byte only");
  return new Uint8Array([first, body.length, ...body]);
}

/** A UTF-8 string with its 2-byte length. */
export function str(s: string): number[] {
  const b = enc.encode(s);
  return [b.length >> 8, b.length & 0xff, ...b];
}

export const will = {
  topic: "will/c",
  payload: enc.encode("gone"),
  qos: 0 as const,
  retain: false,
};

// ------------------------------------------------------------------- runner

/**
 * Sent after a row to see that the connection is open and that nothing
 * else came before its answer (an UNSUBACK with a packet id no row uses).
 */
const SENTINEL: Packet = {
  type: "unsubscribe",
  packetId: 0xfffe,
  filters: ["sentinel/never/subscribed"],
};

function sentinelAck(version: ProtocolVersion): Packet {
  return version === 5
    ? { type: "unsuback", packetId: 0xfffe, reasonCodes: [0x11] }
    : { type: "unsuback", packetId: 0xfffe };
}

/** How long one answer may take. */
const STEP_MS = 3000;

/** A packet-level client over a `Duplex`. */
class Peer {
  readonly #duplex: Duplex;
  readonly #version: ProtocolVersion;
  readonly #decoder: PacketDecoder;
  readonly #inbox: (Packet | "closed")[] = [];
  #wake: (() => void) | undefined;
  readonly #reading: Promise<void>;
  #error: unknown;

  constructor(duplex: Duplex, version: ProtocolVersion) {
    this.#duplex = duplex;
    this.#version = version;
    this.#decoder = new PacketDecoder({ version });
    this.#reading = this.#read();
  }

  async #read(): Promise<void> {
    try {
      while (true) {
        const chunk = await this.#duplex.read();
        if (chunk === null) break;
        this.#decoder.push(chunk, (p) => this.#inbox.push(p));
        this.#wake?.();
      }
    } catch (e) {
      this.#error = e;
    }
    this.#inbox.push("closed");
    this.#wake?.();
  }

  /** Writes `items`: one write each, or all in one write. */
  async send(items: (Packet | Uint8Array)[], oneWrite: boolean): Promise<void> {
    const parts = items.map((p) =>
      p instanceof Uint8Array ? p : encode(p, { version: this.#version })
    );
    if (!oneWrite) {
      for (const b of parts) await this.#duplex.write(b);
      return;
    }
    const all = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
    let pos = 0;
    for (const b of parts) {
      all.set(b, pos);
      pos += b.length;
    }
    await this.#duplex.write(all);
  }

  /** The next packet, or "closed" once the broker closed the connection. */
  async next(): Promise<Packet | "closed"> {
    // A chunk may end inside a packet: wait until one is complete.
    while (this.#inbox.length === 0) {
      await withTimeout(
        new Promise<void>((r) => this.#wake = r),
        STEP_MS,
        "the broker's answer",
      ).finally(() => this.#wake = undefined);
    }
    if (this.#error !== undefined) throw this.#error;
    const p = this.#inbox.shift()!;
    if (p === "closed") this.#inbox.unshift(p); // stays closed
    return p;
  }

  async close(): Promise<void> {
    this.#duplex.close();
    await this.#reading;
  }
}

/** `expected` as the codec decodes it (its canonical form). */
function canonical(p: Packet, version: ProtocolVersion): Packet {
  const v = p.type === "connect" ? p.protocolVersion : version;
  return decode(encode(p, { version: v }), { version: v });
}

/** `actual` without a Reason String the row does not ask for. */
function comparable(actual: Packet, expected: Packet): Packet {
  const props = "properties" in actual ? actual.properties : undefined;
  const wanted = "properties" in expected ? expected.properties : undefined;
  if (props?.reasonString === undefined || wanted?.reasonString !== undefined) {
    return actual;
  }
  const { reasonString: _, ...rest } = props;
  const copy = { ...actual } as Packet & { properties?: Properties };
  if (Object.keys(rest).length > 0 || wanted !== undefined) {
    copy.properties = rest;
  } else delete copy.properties;
  return copy;
}

function show(p: Packet | "closed"): string {
  return p === "closed"
    ? "closed"
    : JSON.stringify(p, (_, v) =>
      v instanceof Uint8Array ? new TextDecoder().decode(v) : v);
}

async function expectPackets(
  peer: Peer,
  expected: Packet[],
  version: ProtocolVersion,
  what: string,
  strict = false,
): Promise<void> {
  for (let i = 0; i < expected.length; i++) {
    const want = canonical(expected[i]!, version);
    const got = await peer.next();
    assert.ok(
      got !== "closed",
      `${what} #${i}: closed, expected ${show(want)}`,
    );
    assert.deepEqual(
      strict ? got : comparable(got, want),
      want,
      `${what} #${i}`,
    );
  }
}

type Mode = "a write per packet" | "one write" | "a byte per chunk";
const MODES: Mode[] = ["a write per packet", "one write", "a byte per chunk"];

/** Runs a `Step` on a new connection (see `Step`). */
async function runStep(
  broker: Broker,
  listener: MemoryListener,
  peers: Peer[],
  step: Step,
  what: string,
): Promise<void> {
  const before = broker.connectedClients;
  const peer = new Peer(listener.dial(), step.version);
  peers.push(peer);
  await peer.send(step.in, false);
  await expectPackets(peer, step.out, step.version, what);
  if (step.drop === true) await peer.close();
  else {
    await peer.send([{ type: "disconnect" }], false);
    assert.equal(show(await peer.next()), "closed", `${what}: then closed`);
  }
  await connectedClients(broker, before);
}

/** Waits until the broker counts `n` connected clients (bounded). */
async function connectedClients(broker: Broker, n: number): Promise<void> {
  const deadline = Date.now() + STEP_MS;
  while (broker.connectedClients !== n) {
    if (Date.now() > deadline) {
      throw new Error(`still ${broker.connectedClients} clients, not ${n}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}

async function runRow(row: Row, mode: Mode): Promise<void> {
  const broker = new Broker({ sysInterval: 0, ...row.options });
  await broker.start();
  const listener = new MemoryListener(
    mode === "a byte per chunk" ? { maxChunk: 1 } : {},
  );
  broker.serve(listener);
  const peers: Peer[] = [];
  try {
    for (const [i, step] of (row.before ?? []).entries()) {
      await runStep(broker, listener, peers, step, `before #${i}`);
    }
    await row.setup?.(broker);
    let observer: Peer | undefined;
    const ov = row.observe?.version ?? 4;
    if (row.observe !== undefined) {
      observer = new Peer(listener.dial(), ov);
      peers.push(observer);
      const qos = row.observe.qos ?? 0;
      await observer.send(
        [
          connect(ov, { clientId: "observer" }),
          subscribe(1, [row.observe.filter, qos]),
        ],
        false,
      );
      await expectPackets(
        observer,
        [ov === 5 ? connack5() : CONNACK4, suback(1, qos)],
        ov,
        "observer",
      );
    }
    const peer = new Peer(listener.dial(), row.version);
    peers.push(peer);
    await peer.send(row.in, mode === "one write");
    if (row.out === "closed") {
      const got = await peer.next();
      assert.equal(show(got), "closed", "the broker closes, sending nothing");
    } else {
      await expectPackets(peer, row.out, row.version, "answer", row.strict);
      if (row.closes === true) {
        const got = await peer.next();
        assert.equal(show(got), "closed", "then the broker closes");
      } else if (row.drop === true) {
        await peer.close();
        await connectedClients(broker, observer === undefined ? 0 : 1);
      } else {
        // Still open, and nothing else was sent before the sentinel's answer.
        await peer.send([SENTINEL], false);
        await expectPackets(
          peer,
          [sentinelAck(row.version)],
          row.version,
          "then open, nothing more",
        );
      }
    }
    if (observer !== undefined) {
      // The broker routes a will before it reads the observer's sentinel.
      await observer.send([SENTINEL], false);
      await expectPackets(
        observer,
        [...row.observe!.out, sentinelAck(ov)],
        ov,
        "observer",
      );
    }
    for (const [i, step] of (row.after ?? []).entries()) {
      await runStep(broker, listener, peers, step, `after #${i}`);
    }
  } finally {
    for (const p of peers) await p.close();
    await broker.close();
  }
}

/** Registers one test per row, `prefix: name`, with a step per mode. */
export function registerRows(rows: Row[], prefix = "Connection"): void {
  for (const row of rows) {
    Deno.test(`${prefix}: ${row.name}`, async (t) => {
      for (const mode of MODES) {
        await t.step(mode, () => runRow(row, mode));
      }
    });
  }
}
