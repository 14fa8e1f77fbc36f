import assert from "node:assert/strict";
import { decode, encode, MqttError, PacketDecoder } from "../codec/mod.ts";
import type { ProtocolVersion } from "../codec/mod.ts";
import { Gen, prng } from "./codec_random_gen.ts";

const SEED = Number(Deno.env.get("CODEC_SEED") ?? 7);
const MAX = 512;

/** Feeds `bytes` in random chunks; only MqttError may escape. */
function feed(g: Gen, bytes: Uint8Array, version: ProtocolVersion | undefined) {
  const d = version === undefined
    ? new PacketDecoder({ maxPacketSize: MAX })
    : new PacketDecoder({ version, maxPacketSize: MAX });
  let pos = 0;
  try {
    while (pos < bytes.length) {
      const n = g.int(1, 80);
      d.push(bytes.subarray(pos, pos + n), () => {});
      pos += n;
      assert.ok(d.buffered <= MAX, `buffered ${d.buffered} > ${MAX}`);
    }
  } catch (e) {
    if (!(e instanceof MqttError)) throw e;
    assert.equal(d.buffered, 0);
  }
}

function decodeOnly(bytes: Uint8Array, version: ProtocolVersion) {
  try {
    decode(bytes, { version, maxPacketSize: MAX });
  } catch (e) {
    if (!(e instanceof MqttError)) throw e;
  }
}

Deno.test("PacketDecoder.push() on random bytes throws only MqttError and buffers at most maxPacketSize", () => {
  const g = new Gen(prng(SEED));
  for (let i = 0; i < 3000; i++) {
    const b = g.bytes(400);
    // Make a plausible first byte half of the time.
    if (b.length > 0 && g.bool()) b[0] = g.int(1, 15) << 4 | g.pick([0, 2]);
    const v = g.pick([undefined, 4, 5] as const);
    try {
      feed(g, b, v);
      decodeOnly(b, v ?? 4);
    } catch (e) {
      throw new Error(`case ${i} (CODEC_SEED=${SEED}): [${b}]`, { cause: e });
    }
  }
});

Deno.test("PacketDecoder.push() on mutated valid packets throws only MqttError", () => {
  const g = new Gen(prng(SEED + 1));
  for (let i = 0; i < 4000; i++) {
    const v = g.pick([4, 5] as const);
    const bytes = encode(g.packet(v), { version: v });
    const n = g.int(1, 4);
    for (let k = 0; k < n; k++) {
      const at = g.int(0, bytes.length - 1);
      const r = g.rnd();
      if (r < 0.6) bytes[at] = g.int(0, 255);
      else if (r < 0.8) bytes[at] = bytes[at]! ^ (1 << g.int(0, 7));
      else bytes[at] = g.pick([0, 0x7f, 0x80, 0xff]);
    }
    const cut = g.bool(0.2) ? bytes.subarray(0, g.int(0, bytes.length)) : bytes;
    try {
      feed(g, cut, v);
      decodeOnly(cut, v);
    } catch (e) {
      throw new Error(`case ${i} (CODEC_SEED=${SEED}): [${cut}]`, {
        cause: e,
      });
    }
  }
});

Deno.test("PacketDecoder.push() never holds more than maxPacketSize of a huge announced packet", () => {
  const d = new PacketDecoder({ version: 4, maxPacketSize: 1 << 20 });
  // Announce 200 MB; the header alone must fail before anything is kept.
  assert.throws(
    () => d.push(new Uint8Array([0x30, 0x80, 0x80, 0x80, 0x60]), () => {}),
    MqttError,
  );
  assert.equal(d.buffered, 0);
});
