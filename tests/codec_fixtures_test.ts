import assert from "node:assert/strict";
import { decode, encode, PacketDecoder } from "../codec/mod.ts";
import type { Packet, ProtocolVersion } from "../codec/mod.ts";
import { FIXTURES } from "./codec_fixture_table.ts";

function collect(
  version: ProtocolVersion | undefined,
  chunks: Iterable<Uint8Array>,
): Packet[] {
  const decoder = version === undefined
    ? new PacketDecoder()
    : new PacketDecoder({ version });
  const out: Packet[] = [];
  for (const c of chunks) decoder.push(c, (p) => out.push(p));
  assert.equal(decoder.buffered, 0);
  return out;
}

function* bytewise(b: Uint8Array): Generator<Uint8Array> {
  for (let i = 0; i < b.length; i++) yield b.slice(i, i + 1);
}

function concat(list: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(list.reduce((n, b) => n + b.length, 0));
  let at = 0;
  for (const b of list) {
    out.set(b, at);
    at += b.length;
  }
  return out;
}

for (const f of FIXTURES) {
  Deno.test(`decode() fixture: ${f.name}`, () => {
    assert.deepEqual(decode(f.bytes, { version: f.version }), f.packet);
  });
  Deno.test(`encode() fixture: ${f.name}`, () => {
    assert.deepEqual(encode(f.packet, { version: f.version }), f.bytes);
  });
  Deno.test(`encode() then decode() round trip: ${f.name}`, () => {
    const bytes = encode(f.packet, { version: f.version });
    assert.deepEqual(decode(bytes, { version: f.version }), f.packet);
    assert.deepEqual(
      encode(decode(bytes, { version: f.version }), {
        version: f.version,
      }),
      bytes,
    );
  });
  Deno.test(`PacketDecoder.push() one byte at a time: ${f.name}`, () => {
    assert.deepEqual(collect(f.version, bytewise(f.bytes)), [f.packet]);
  });
}

Deno.test("PacketDecoder.push() decodes all fixtures of a version in one chunk", () => {
  for (const version of [4, 5] as const) {
    const rows = FIXTURES.filter((f) =>
      f.version === version || (version === 4 && f.version === 3)
    );
    const chunk = concat(rows.map((f) => f.bytes));
    assert.deepEqual(collect(version, [chunk]), rows.map((f) => f.packet));
    // Also in uneven chunks of 7 bytes.
    const pieces: Uint8Array[] = [];
    for (let i = 0; i < chunk.length; i += 7) {
      pieces.push(chunk.slice(i, i + 7));
    }
    assert.deepEqual(collect(version, pieces), rows.map((f) => f.packet));
  }
});

Deno.test("PacketDecoder adopts the version of the CONNECT it decodes", () => {
  for (const version of [3, 4, 5] as const) {
    const connect = FIXTURES.find((f) =>
      f.version === version && f.packet.type === "connect"
    )!;
    const rest = FIXTURES.filter((f) =>
      (version === 5 ? f.version === 5 : f.version !== 5) &&
      f.packet.type !== "connect"
    );
    const decoder = new PacketDecoder();
    assert.equal(decoder.version, undefined);
    const out: Packet[] = [];
    decoder.push(
      concat([connect.bytes, ...rest.map((f) => f.bytes)]),
      (p) => out.push(p),
    );
    assert.equal(decoder.version, version);
    assert.deepEqual(out, [connect.packet, ...rest.map((f) => f.packet)]);
  }
});

Deno.test("decode() payload is a view of the input when it lies in one chunk", () => {
  const f = FIXTURES.find((f) => f.name.startsWith("3.1.1 PUBLISH QoS 0"))!;
  const bytes = f.bytes.slice();
  const p = decode(bytes, { version: 4 });
  assert.equal(p.type, "publish");
  if (p.type === "publish") assert.equal(p.payload.buffer, bytes.buffer);
});
