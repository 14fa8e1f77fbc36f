/**
 * What a fuzzed client of the connection target sends (private to
 * tests/fuzz): valid packets in random orders and states, mutated packets
 * and garbage, each client ending with a sentinel PINGREQ; how it writes
 * them (one write, one per step, random chunks, one byte at a time, with
 * pauses); and the plans printed as reproductions.
 *
 * @module
 */

import { encode } from "../../codec/mod.ts";
import type {
  ConnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
} from "../../codec/mod.ts";
import { Gen, prng } from "../codec_random_gen.ts";
import { concat, framed, garbage, mutate, toHex } from "./_mutate.ts";
import type { Peer } from "./_peer.ts";
import { packetOf } from "./decoder_fuzz.ts";

const POOL = ["fz0", "fz1", "fz2", "fz3", "fz4", "fz5"];
const TOPICS = [
  "fz/a",
  "fz/b",
  "fz/a/b",
  "fz/c/d/e",
  "deny/a",
  "slow/a",
  "x",
  "fz/é",
];
const FILTERS = [
  "#",
  "+",
  "fz/#",
  "fz/+",
  "fz/+/b",
  "+/+",
  "deny/#",
  "slow/#",
  "$share/g/fz/#",
  "$share/h/#",
  "$SYS/#",
  "fz/a",
  "x",
];

/** One fuzzed client: what it writes and how. */
export interface ClientPlan {
  /** The version its packets are encoded with. */
  version: ProtocolVersion;
  /** The bytes of each step, in order (the last is the sentinel PINGREQ). */
  segments: Uint8Array[];
  /** What each step is (for the report). */
  steps: string[];
  /** Seeds the chunking of its writes and the pauses between them. */
  writeSeed: number;
  /** Close without waiting for an answer. */
  abrupt: boolean;
  /**
   * How it reads what the broker sends, over a pipe with backpressure when
   * not "normal": "slow" pauses after each chunk, "mute" reads nothing
   * until it closes (and waits for no answer).
   */
  reader?: "normal" | "slow" | "mute";
}

/** The PINGREQ each client sends last. */
export const SENTINEL: Uint8Array = new Uint8Array([0xc0, 0x00]);

/** One timer turn. */
export function tick(): Promise<void> {
  return new Promise((r) => setTimeout(r, 0));
}

function tryEncode(p: Packet, v: ProtocolVersion): Uint8Array | undefined {
  try {
    return encode(p, { version: v });
  } catch {
    return undefined;
  }
}

function connectPacket(g: Gen, v: ProtocolVersion): ConnectPacket {
  const p = packetOf(g, v, "connect");
  p.clientId = g.bool(0.1) ? "" : g.pick(POOL);
  p.keepAlive = g.pick([0, 0, 0, 60, 1, p.keepAlive]);
  if (p.will !== undefined) p.will.topic = g.pick(TOPICS);
  const u = g.rnd();
  if (u < 0.1) p.username = "bad";
  else if (u < 0.25) p.username = "slow";
  if (v === 5) {
    const props: Properties = { ...p.properties };
    if (g.bool(0.8)) {
      delete props.authenticationMethod;
      delete props.authenticationData;
    }
    if (g.bool(0.1)) {
      props.authenticationMethod = "TOY";
      props.authenticationData = new TextEncoder().encode(
        g.pick(["ok", "more", "no"]),
      );
    }
    if (g.bool(0.4)) {
      props.sessionExpiryInterval = g.pick([0, 5, 3600, 0xffffffff]);
    }
    if (g.bool(0.2)) props.receiveMaximum = g.int(1, 3);
    if (g.bool(0.2)) {
      props.maximumPacketSize = g.pick([64, 128, 512, 4096]);
    }
    if (g.bool(0.4)) props.topicAliasMaximum = g.int(1, 5);
    p.properties = props;
  }
  return p;
}

function publishPacket(g: Gen, v: ProtocolVersion): PublishPacket {
  const p = packetOf(g, v, "publish");
  p.topic = g.pick(TOPICS);
  if (p.qos > 0) p.packetId = g.bool(0.7) ? g.int(1, 4) : g.id();
  if (g.bool(0.02)) p.payload = g.bytes(70_000);
  if (v === 5) {
    const props: Properties = { ...p.properties };
    if (g.bool(0.9)) delete props.subscriptionIdentifiers;
    if (g.bool(0.5)) delete props.topicAlias;
    else {
      props.topicAlias = g.int(1, 12);
      if (g.bool(0.4)) p.topic = "";
    }
    if (props.payloadFormatIndicator === 1 && g.bool(0.5)) {
      p.payload = new Uint8Array([0xff, 0xfe]);
    }
    if (Object.keys(props).length > 0) p.properties = props;
    else delete p.properties;
  }
  return p;
}

/** One step of a client: a packet (valid or mutated) or garbage. */
function step(g: Gen, v: ProtocolVersion): [string, Uint8Array | undefined] {
  const r = g.rnd();
  let p: Packet;
  if (r < 0.3) p = publishPacket(g, v);
  else if (r < 0.45) {
    const type = g.pick(["puback", "pubrec", "pubrel", "pubcomp"] as const);
    const a = packetOf(g, v, type);
    if (g.bool(0.7)) a.packetId = g.int(1, 4);
    p = a;
  } else if (r < 0.55) {
    const s = packetOf(g, v, "subscribe");
    for (const sub of s.subscriptions) {
      sub.filter = g.pick(FILTERS);
      if (sub.filter.startsWith("$share/") && g.bool(0.9)) delete sub.noLocal;
    }
    p = s;
  } else if (r < 0.6) {
    const u = packetOf(g, v, "unsubscribe");
    u.filters = u.filters.map(() => g.pick(FILTERS));
    p = u;
  } else if (r < 0.65) p = { type: "pingreq" };
  else if (r < 0.68) {
    const d = packetOf(g, v, "disconnect");
    if (v === 5 && g.bool(0.3)) {
      d.reasonCode = 4;
      if (g.bool(0.5)) {
        d.properties = { sessionExpiryInterval: g.pick([0, 10]) };
      }
    }
    p = d;
  } else if (r < 0.72 && v === 5) {
    p = {
      type: "auth",
      reasonCode: g.pick([0x18, 0x19, 0]),
      properties: {
        authenticationMethod: g.pick(["TOY", "TOY", "X"]),
        authenticationData: new TextEncoder().encode(
          g.pick(["ok", "more", "no"]),
        ),
      },
    };
  } else if (r < 0.74) p = connectPacket(g, v);
  else if (r < 0.77) {
    p = packetOf(
      g,
      v,
      g.pick(["connack", "suback", "unsuback", "pingresp"] as const),
    );
  } else if (r < 0.9) {
    // A valid step mutated.
    const [name, bytes] = step(g, v);
    if (bytes === undefined) return [name, bytes];
    const m = mutate(g, framed([bytes]), SENTINEL, 2);
    return [`${name} mutated (${m.applied.join(", ")})`, m.bytes];
  } else if (r < 0.95) return ["garbage", garbage(g, 40)];
  else p = g.packet(v);
  return [p.type, tryEncode(p, v)];
}

/** Plans one fuzzed client. */
export function planClient(g: Gen): ClientPlan {
  const v = g.pick([3, 4, 4, 5, 5, 5] as const);
  const segments: Uint8Array[] = [];
  const steps: string[] = [];
  const add = (name: string, bytes: Uint8Array | undefined) => {
    if (bytes === undefined) return;
    segments.push(bytes);
    steps.push(name);
  };
  const first = g.rnd();
  if (first < 0.85) add("connect", tryEncode(connectPacket(g, v), v));
  else if (first < 0.95) add(...step(g, v));
  else add("garbage", garbage(g, 40));
  const n = g.int(0, 20);
  for (let i = 0; i < n; i++) add(...step(g, v));
  add("sentinel pingreq", SENTINEL);
  return {
    version: v,
    segments,
    steps,
    writeSeed: g.int(0, 0x7fffffff),
    abrupt: g.bool(0.15),
    reader: g.pick(["normal", "normal", "normal", "slow", "mute"] as const),
  };
}

/** The pause after each chunk a client reads (see `ClientPlan.reader`). */
export function readPause(
  plan: ClientPlan,
): ((peer: Peer) => Promise<void>) | undefined {
  if (plan.reader === "mute") return (peer) => peer.closing;
  if (plan.reader !== "slow") return undefined;
  const g = new Gen(prng(plan.writeSeed ^ 0x5bd1e995));
  return () => g.bool(0.5) ? tick() : pause(g);
}

/**
 * Lets the others run: mostly a few microtask turns (the in-memory pipes
 * and the broker's read loop run on promises), sometimes a timer turn (the
 * slow hooks and the broker's timers).
 */
async function pause(g: Gen): Promise<void> {
  if (g.bool(0.05)) return tick();
  for (let n = g.int(1, 12); n > 0; n--) await null;
}

/** Writes a plan's segments: chunked and paused as its seed says. */
export async function writePlan(
  plan: ClientPlan,
  peer: Peer,
): Promise<void> {
  const g = new Gen(prng(plan.writeSeed));
  const mode = g.int(0, 3);
  const all = mode === 1 ? [concat(plan.segments)] : plan.segments;
  for (const seg of all) {
    if (mode === 2 && seg.length <= 1024) {
      // One byte at a time.
      for (let i = 0; i < seg.length; i++) {
        await peer.send(seg.slice(i, i + 1));
        if (g.bool(0.1)) await pause(g);
      }
    } else if (mode >= 2) {
      let at = 0;
      while (at < seg.length) {
        const n = g.int(1, g.pick([8, 64, 4096]));
        await peer.send(seg.slice(at, at + n));
        at += n;
        if (g.bool(0.3)) await pause(g);
      }
    } else await peer.send(seg.slice());
    if (g.bool(0.5)) await pause(g);
  }
}

/** A batch as a reproduction: each client's version and steps in hex. */
export function connectionFixture(plans: readonly ClientPlan[]): string {
  return plans.map((p, k) =>
    `client ${k} (v${p.version}${p.abrupt ? ", closes abruptly" : ""}${
      p.reader !== undefined && p.reader !== "normal"
        ? `, reader ${p.reader}`
        : ""
    }, writeSeed ${p.writeSeed}):\n` +
    p.segments.map((s, i) => `  ${p.steps[i]}: ${toHex(s)}`).join("\n")
  ).join("\n");
}

/** Batches run one after the other, as a reproduction. */
export function sequenceFixture(batches: readonly ClientPlan[][]): string {
  if (batches.length === 1) return connectionFixture(batches[0]!);
  return batches.map((b, i) =>
    `batch ${i}${i + 1 < batches.length ? " (sessions kept)" : ""}:\n` +
    connectionFixture(b)
  ).join("\n");
}
