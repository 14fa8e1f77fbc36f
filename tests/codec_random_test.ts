import assert from "node:assert/strict";
import { decode, encode, PacketDecoder } from "../codec/mod.ts";
import type { Packet, ProtocolVersion } from "../codec/mod.ts";
import { Gen, prng } from "./codec_random_gen.ts";

const SEED = Number(Deno.env.get("CODEC_SEED") ?? 20261125);
const CASES = 4000;

Deno.test("encode() and decode() round trip random packets of every type and version", () => {
  const g = new Gen(prng(SEED));
  const seen = new Set<string>();
  for (let i = 0; i < CASES; i++) {
    const v = g.pick([3, 4, 5] as const);
    const p = g.packet(v);
    seen.add(`${v}:${p.type}`);
    try {
      const bytes = encode(p, { version: v });
      assert.deepEqual(decode(bytes, { version: v }), p);
      assert.deepEqual(
        encode(decode(bytes, { version: v }), { version: v }),
        bytes,
      );
    } catch (e) {
      throw new Error(
        `case ${i} failed (CODEC_SEED=${SEED}): ${JSON.stringify(p)}`,
        { cause: e },
      );
    }
  }
  // 14 types for 3/3.1.1 and 15 for 5.0.
  assert.equal(seen.size, 14 + 14 + 15);
});

Deno.test("PacketDecoder.push() decodes random packet streams split at random bytes", () => {
  const g = new Gen(prng(SEED + 1));
  for (let round = 0; round < 100; round++) {
    const v: ProtocolVersion = g.pick([4, 5] as const);
    const packets: Packet[] = [];
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 20; i++) {
      let p = g.packet(v);
      while (p.type === "connect") p = g.packet(v);
      packets.push(p);
      parts.push(encode(p, { version: v }));
    }
    const all = new Uint8Array(parts.reduce((n, b) => n + b.length, 0));
    let at = 0;
    for (const b of parts) {
      all.set(b, at);
      at += b.length;
    }
    const out: Packet[] = [];
    const d = new PacketDecoder({ version: v });
    let pos = 0;
    while (pos < all.length) {
      const n = g.int(1, 64);
      d.push(all.slice(pos, pos + n), (p) => out.push(p));
      pos += n;
    }
    assert.equal(d.buffered, 0);
    assert.deepEqual(out, packets, `round ${round} (CODEC_SEED=${SEED})`);
  }
});
