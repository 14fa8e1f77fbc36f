import assert from "node:assert/strict";
import {
  encode,
  MalformedPacketError,
  type Packet,
  PacketDecoderStream,
  PacketEncoderStream,
} from "../codec/mod.ts";
import { FIXTURES } from "./codec_fixture_table.ts";

async function collect<T>(s: ReadableStream<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of s) out.push(x);
  return out;
}

Deno.test("PacketDecoderStream decodes packets split across chunks", async () => {
  const rows = FIXTURES.filter((f) => f.version === 5);
  const all = rows.flatMap((f) => [...f.bytes]);
  const chunks: Uint8Array[] = [];
  for (let i = 0; i < all.length; i += 5) {
    chunks.push(new Uint8Array(all.slice(i, i + 5)));
  }
  const stream = new PacketDecoderStream({ version: 5 });
  const out = await collect(ReadableStream.from(chunks).pipeThrough(stream));
  assert.deepEqual(out, rows.map((f) => f.packet));
  assert.equal(stream.decoder.version, 5);
});

Deno.test("PacketDecoderStream adopts the CONNECT's version", async () => {
  const connect = FIXTURES.find((f) =>
    f.version === 5 && f.packet.type === "connect"
  )!;
  const ping = new Uint8Array([0xc0, 0]);
  const stream = new PacketDecoderStream();
  const out = await collect(
    ReadableStream.from([connect.bytes, ping]).pipeThrough(stream),
  );
  assert.equal(out.length, 2);
  assert.equal(stream.decoder.version, 5);
});

Deno.test("PacketDecoderStream errors on bad input with the MqttError", async () => {
  const stream = new PacketDecoderStream({ version: 4 });
  await assert.rejects(
    collect(
      ReadableStream.from([new Uint8Array([0x36, 0])]).pipeThrough(stream),
    ),
    MalformedPacketError,
  );
});

Deno.test("PacketDecoderStream errors when the stream ends inside a packet", async () => {
  const stream = new PacketDecoderStream({ version: 4 });
  await assert.rejects(
    collect(
      ReadableStream.from([new Uint8Array([0x30, 5, 0])]).pipeThrough(stream),
    ),
    MalformedPacketError,
  );
});

Deno.test("PacketEncoderStream encodes packets and follows a CONNECT's version", async () => {
  const v5 = FIXTURES.filter((f) => f.version === 5);
  const connect = v5.find((f) => f.packet.type === "connect")!;
  const rest = v5.filter((f) => f.packet.type !== "connect");
  const enc = new PacketEncoderStream();
  assert.equal(enc.version, 4);
  const packets: Packet[] = [connect.packet, ...rest.map((f) => f.packet)];
  const out = await collect(ReadableStream.from(packets).pipeThrough(enc));
  assert.equal(enc.version, 5);
  assert.deepEqual(out, [connect.bytes, ...rest.map((f) => f.bytes)]);
});

Deno.test("PacketEncoderStream and PacketDecoderStream round trip", async () => {
  const rows = FIXTURES.filter((f) => f.version !== 5);
  const out = await collect(
    ReadableStream.from(rows.map((f) => f.packet))
      .pipeThrough(new PacketEncoderStream({ version: 4 }))
      .pipeThrough(new PacketDecoderStream({ version: 4 })),
  );
  assert.deepEqual(out, rows.map((f) => f.packet));
  assert.deepEqual(encode(out[0]!, { version: 3 }), rows[0]!.bytes);
});
