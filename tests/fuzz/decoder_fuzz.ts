/**
 * Fuzz target 1: `PacketDecoder` (codec/decode.ts) fed random and mutated
 * byte streams, server side (version undefined, CONNECT first, any of 3, 4
 * and 5) and client side (version 4 and 5), in random chunkings (one chunk,
 * one byte at a time, random sizes, cuts around packet boundaries).
 *
 * Invariants checked for each case:
 * - `push` either yields packets or throws an `MqttError` whose reason code
 *   is one the codec documents (0x81, 0x82, 0x84, 0x94, 0x95), never any
 *   other exception; after it threw, every later push throws the same error;
 * - the chunking does not matter: the stream pushed as one chunk yields the
 *   same packets and fails (or not) the same way, with the same bytes left
 *   buffered;
 * - `buffered` never exceeds `maxPacketSize`;
 * - every packet it yields re-encodes (`encode`) to bytes that `decode`
 *   back to an equal packet, and encoding that packet again gives the same
 *   bytes.
 *
 * A case is made from (seed, iteration) alone, so any iteration replays on
 * its own; a failing case is shrunk (bytes removed, chunks merged) to a
 * small reproduction printed as hex chunks.
 *
 * @module
 */

import { isDeepStrictEqual } from "node:util";
import { decode, encode, MqttError, PacketDecoder } from "../../codec/mod.ts";
import type { Packet, ProtocolVersion } from "../../codec/mod.ts";
import { Gen, prng } from "../codec_random_gen.ts";
import {
  chunking,
  concat,
  framed,
  garbage,
  mutate,
  split,
  toHex,
} from "./_mutate.ts";

/** The reason codes the codec documents for decoding (codec/decode.ts). */
export const DECODER_REASON_CODES: ReadonlySet<number> = new Set([
  0x81,
  0x82,
  0x84,
  0x94,
  0x95,
]);

/** One input: decoder options and the chunks pushed, in order. */
export interface DecoderCase {
  /** "server": version undefined, CONNECT first; "client": version 4 or 5. */
  side: "server" | "client";
  /** The decoder's `version` option. */
  version: ProtocolVersion | undefined;
  /** The decoder's `maxPacketSize` option. */
  maxPacketSize: number | undefined;
  /** What was pushed, one `push` per chunk. */
  chunks: Uint8Array[];
  /** How the case was made (for the report). */
  note: string;
}

/** A broken invariant. */
export interface DecoderFailure {
  /** Short name of the invariant (also what shrinking must keep). */
  kind: string;
  /** What happened. */
  message: string;
}

/** A per-iteration seed from the run's seed (splitmix-style mixing). */
export function mixSeed(seed: number, iteration: number): number {
  let h = (seed ^ Math.imul(iteration + 1, 0x9e3779b9)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b) >>> 0;
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
  return (h ^ (h >>> 16)) >>> 0;
}

/** A valid packet of `type` for version `v` (drawn until one comes up). */
export function packetOf<T extends Packet["type"]>(
  g: Gen,
  v: ProtocolVersion,
  type: T,
): Extract<Packet, { type: T }> {
  for (let i = 0; i < 10_000; i++) {
    const p = g.packet(v);
    if (p.type === type) return p as Extract<Packet, { type: T }>;
  }
  throw new Error(`no ${type} generated`);
}

/** A valid stream: packets encoded for `v`, CONNECT first when `connect`. */
function validStream(
  g: Gen,
  v: ProtocolVersion,
  connect: boolean,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  if (connect) out.push(encode(packetOf(g, v, "connect")));
  const n = g.int(0, 10);
  for (let i = 0; i < n; i++) {
    let p = g.packet(v);
    if (g.bool(0.05)) {
      // Now and then a large PUBLISH: three- and four-byte lengths.
      p = packetOf(g, v, "publish");
      p.payload = g.bytes(g.pick([200, 20_000, 70_000]));
    }
    out.push(encode(p, { version: v }));
  }
  return out;
}

/** Makes the case of `iteration` of a run with `seed`. */
export function makeDecoderCase(seed: number, iteration: number): DecoderCase {
  const g = new Gen(prng(mixSeed(seed, iteration)));
  const side = g.bool() ? "server" : "client";
  const v: ProtocolVersion = side === "server"
    ? g.pick([3, 4, 5] as const)
    : g.pick([4, 5] as const);
  const packets = validStream(g, v, side === "server");
  const f = framed(packets);
  const donor = concat(validStream(g, g.pick([4, 5] as const), g.bool()));
  let bytes: Uint8Array;
  let note: string;
  const r = g.rnd();
  if (r < 0.1) {
    bytes = f.bytes;
    note = "valid stream";
  } else if (r < 0.85) {
    const m = mutate(g, f, donor, 4);
    bytes = m.bytes;
    note = `mutated: ${m.applied.join(", ")}`;
  } else {
    const junk = garbage(g, 300);
    bytes = side === "server" && packets.length > 0 && g.bool()
      ? concat([packets[0]!, junk])
      : junk;
    note = "random bytes";
  }
  let maxPacketSize: number | undefined;
  const m = g.rnd();
  if (m < 0.15) maxPacketSize = g.int(2, 64);
  else if (m < 0.3 && packets.length > 0) {
    // Right at one packet's size: the off-by-one edges.
    maxPacketSize = Math.max(2, g.pick(packets).length + g.int(-1, 1));
  } else if (m < 0.4) maxPacketSize = g.int(2, 5000);
  const { mode, cuts } = chunking(g, bytes.length, f.bounds);
  return {
    side,
    version: side === "server" ? undefined : v,
    maxPacketSize,
    chunks: split(bytes, cuts),
    note: `${side} v${v}, ${note}, ${mode}`,
  };
}

interface Outcome {
  packets: { p: Packet; v: ProtocolVersion }[];
  error: unknown;
  threw: boolean;
  buffered: number;
  failure: DecoderFailure | undefined;
}

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}`;
  return String(e);
}

/** Pushes `chunks` into a new decoder, checking the per-push invariants. */
function run(c: DecoderCase, chunks: readonly Uint8Array[]): Outcome {
  const options: { version?: ProtocolVersion; maxPacketSize?: number } = {};
  if (c.version !== undefined) options.version = c.version;
  if (c.maxPacketSize !== undefined) options.maxPacketSize = c.maxPacketSize;
  const d = new PacketDecoder(options);
  const packets: Outcome["packets"] = [];
  const onPacket = (p: Packet) => {
    const v = p.type === "connect" ? p.protocolVersion : d.version;
    if (v === undefined) {
      throw new Error(`a ${p.type} before any CONNECT was yielded`);
    }
    packets.push({ p, v });
  };
  const out: Outcome = {
    packets,
    error: undefined,
    threw: false,
    buffered: 0,
    failure: undefined,
  };
  try {
    for (const chunk of chunks) {
      d.push(chunk, onPacket);
      if (d.buffered > d.maxPacketSize) {
        out.failure = {
          kind: "buffered over maxPacketSize",
          message: `buffered ${d.buffered} > maxPacketSize ${d.maxPacketSize}`,
        };
        return out;
      }
    }
  } catch (e) {
    out.error = e;
    out.threw = true;
  }
  out.buffered = d.buffered;
  if (!out.threw) return out;
  const e = out.error;
  if (!(e instanceof MqttError)) {
    out.failure = {
      kind: "exception type",
      message: `threw ${describe(e)}, not an MqttError${
        e instanceof Error && e.stack ? `\n${e.stack}` : ""
      }`,
    };
    return out;
  }
  if (!DECODER_REASON_CODES.has(e.reasonCode)) {
    out.failure = {
      kind: "reason code",
      message: `MqttError with reason code 0x${
        e.reasonCode.toString(16)
      } (not one the codec documents): ${e.message}`,
    };
    return out;
  }
  // A failed decoder stays failed, with the same error.
  try {
    d.push(new Uint8Array([0xc0, 0x00]), onPacket);
    out.failure = {
      kind: "reuse after error",
      message: "push after an error did not throw",
    };
  } catch (again) {
    if (again !== e) {
      out.failure = {
        kind: "reuse after error",
        message: `push after an error threw another error: ${describe(again)}`,
      };
    }
  }
  return out;
}

/** Re-encodes and decodes a yielded packet. */
function roundTrip(
  p: Packet,
  v: ProtocolVersion,
): DecoderFailure | undefined {
  let bytes: Uint8Array;
  try {
    bytes = encode(p, { version: v });
  } catch (e) {
    return {
      kind: "re-encode",
      message: `a decoded ${p.type} (v${v}) does not encode: ${describe(e)}`,
    };
  }
  let back: Packet;
  try {
    back = decode(bytes, { version: v });
  } catch (e) {
    return {
      kind: "round trip",
      message: `a decoded ${p.type} (v${v}) re-encodes to ${
        toHex(bytes)
      }, which does not decode: ${describe(e)}`,
    };
  }
  if (!isDeepStrictEqual(back, p)) {
    return {
      kind: "round trip",
      message: `a decoded ${p.type} (v${v}) re-encodes to ${
        toHex(bytes)
      }, which decodes to another packet: ${show(back)} != ${show(p)}`,
    };
  }
  const again = encode(back, { version: v });
  if (!isDeepStrictEqual(again, bytes)) {
    return {
      kind: "round trip",
      message: `${p.type} (v${v}) encodes differently the second time: ${
        toHex(bytes)
      } then ${toHex(again)}`,
    };
  }
  return undefined;
}

/** A packet as JSON, payloads in hex. */
export function show(p: unknown): string {
  return JSON.stringify(
    p,
    (_, v) => v instanceof Uint8Array ? `hex:${toHex(v)}` : v,
  );
}

/** Checks every invariant on one case; undefined when all hold. */
export function checkDecoderCase(c: DecoderCase): DecoderFailure | undefined {
  const got = run(c, c.chunks);
  if (got.failure !== undefined) return got.failure;
  const whole = run(c, [concat(c.chunks)]);
  if (whole.failure !== undefined) return whole.failure;
  const same = got.threw === whole.threw &&
    got.packets.length === whole.packets.length &&
    (got.threw || got.buffered === whole.buffered) &&
    got.packets.every((x, i) =>
      x.v === whole.packets[i]!.v && isDeepStrictEqual(x.p, whole.packets[i]!.p)
    );
  if (!same) {
    return {
      kind: "chunking",
      message: `in ${c.chunks.length} chunks: ${got.packets.length} packets, ${
        got.threw ? `threw ${describe(got.error)}` : `${got.buffered} buffered`
      }; in one chunk: ${whole.packets.length} packets, ${
        whole.threw
          ? `threw ${describe(whole.error)}`
          : `${whole.buffered} buffered`
      }`,
    };
  }
  for (const { p, v } of got.packets) {
    const f = roundTrip(p, v);
    if (f !== undefined) return f;
  }
  return undefined;
}

/**
 * Shrinks a failing case while it fails the same way: byte ranges removed
 * (halving sizes down to one byte), chunks merged, `maxPacketSize` dropped.
 */
export function shrinkDecoderCase(
  c: DecoderCase,
  kind: string,
  budget = 20_000,
  progress?: Int32Array,
): DecoderCase {
  let tries = 0;
  const fails = (x: DecoderCase) => {
    if (progress !== undefined) beat(progress);
    return tries++ < budget && checkDecoderCase(x)?.kind === kind;
  };
  let bytes = concat(c.chunks);
  let cuts: number[] = [];
  let at = 0;
  for (const ch of c.chunks.slice(0, -1)) cuts.push(at += ch.length);
  const make = (b: Uint8Array, k: number[], max = c.maxPacketSize) => ({
    ...c,
    maxPacketSize: max,
    chunks: split(b, k.filter((x) => x > 0 && x < b.length)),
  });
  let best = c;
  if (c.chunks.length > 1 && fails(make(bytes, []))) {
    cuts = [];
    best = make(bytes, cuts);
  }
  if (c.maxPacketSize !== undefined && fails(make(bytes, cuts, undefined))) {
    best = make(bytes, cuts, undefined);
  }
  const max = best.maxPacketSize;
  for (let n = bytes.length >> 1; n >= 1; n >>= 1) {
    for (let i = 0; i + n <= bytes.length;) {
      const b = concat([bytes.subarray(0, i), bytes.subarray(i + n)]);
      const k = cuts.filter((x) => x <= i || x >= i + n).map((x) =>
        x >= i + n ? x - n : x
      );
      const cand = make(b, [...new Set(k)], max);
      if (fails(cand)) {
        bytes = b;
        cuts = [...new Set(k)];
        best = cand;
      } else i += n;
    }
  }
  // Fewer chunks: drop cuts one at a time.
  for (let i = 0; i < cuts.length;) {
    const k = cuts.filter((_, j) => j !== i);
    const cand = make(bytes, k, max);
    if (fails(cand)) {
      cuts = k;
      best = cand;
    } else i++;
  }
  return best;
}

/** The case as a fixture row (TypeScript), for a regression table. */
export function decoderFixture(c: DecoderCase): string {
  const opts = [
    `side: "${c.side}"`,
    `version: ${c.version}`,
    `maxPacketSize: ${c.maxPacketSize}`,
  ];
  const chunks = c.chunks.map((ch) => `"${toHex(ch)}"`).join(", ");
  return `{ ${opts.join(", ")}, chunks: [${chunks}] }`;
}

/** A failure found by a run: where, what, and the shrunk reproduction. */
export interface FoundFailure {
  target: string;
  seed: number;
  iteration: number;
  kind: string;
  message: string;
  /** How to replay it, human-readable (hex bytes). */
  reproduction: string;
}

/** Options of a fuzz run (both targets). */
export interface FuzzRunOptions {
  seed: number;
  /** Stop after this many iterations. */
  iterations?: number;
  /** Stop after this many seconds (checked between iterations). */
  seconds?: number;
  /** First iteration (to replay one: `start` n, `iterations` 1). */
  start?: number;
  /** Keep going after a failure (collect distinct kinds). */
  keepGoing?: boolean;
  /**
   * [current iteration, heartbeat]: a watchdog reads it (the heartbeat
   * moves while a failure is shrunk).
   */
  progress?: Int32Array;
  /** Called with each failure as it is found. */
  onFailure?: (f: FoundFailure) => void;
}

/** What a run did. */
export interface FuzzRunResult {
  target: string;
  seed: number;
  iterations: number;
  failures: FoundFailure[];
}

/** Moves the heartbeat of a progress array (see `FuzzRunOptions`). */
export function beat(progress: Int32Array): void {
  Atomics.add(progress, 1, 1);
}

/** A message reduced to its shape (numbers and hex out), for de-duplication. */
export function signature(kind: string, message: string): string {
  const first = message.split("\n")[0] ?? "";
  return `${kind}: ${first.replace(/[0-9a-f]{6,}/g, "#").replace(/\d+/g, "N")}`;
}

/** Runs the decoder target. */
export function fuzzDecoder(o: FuzzRunOptions): FuzzRunResult {
  const start = o.start ?? 0;
  const end = o.iterations !== undefined ? start + o.iterations : Infinity;
  const deadline = o.seconds !== undefined
    ? Date.now() + o.seconds * 1000
    : Infinity;
  const failures: FoundFailure[] = [];
  const seen = new Set<string>();
  let i = start;
  for (; i < end; i++) {
    if ((i & 63) === 0 && Date.now() >= deadline) break;
    if (o.progress !== undefined) Atomics.store(o.progress, 0, i);
    const c = makeDecoderCase(o.seed, i);
    const f = checkDecoderCase(c);
    if (f === undefined) continue;
    const sig = signature(f.kind, f.message);
    if (seen.has(sig)) continue;
    seen.add(sig);
    const small = shrinkDecoderCase(c, f.kind, undefined, o.progress);
    const sf = checkDecoderCase(small) ?? f;
    const found: FoundFailure = {
      target: "decoder",
      seed: o.seed,
      iteration: i,
      kind: f.kind,
      message: sf.message,
      reproduction: `${c.note}; shrunk: ${decoderFixture(small)}`,
    };
    failures.push(found);
    o.onFailure?.(found);
    if (!o.keepGoing) {
      i++;
      break;
    }
  }
  return { target: "decoder", seed: o.seed, iterations: i - start, failures };
}
