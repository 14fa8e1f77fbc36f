/**
 * The broker's WebSocket framing (`WsServerDuplex`, RFC 6455 5.2) over an
 * in-memory pipe: frames of every length form (7-bit, 16-bit, 64-bit),
 * fragmented messages with a ping between their frames, every chunk split
 * of the bytes: the payload bytes come out in order [MQTT-6.0.0-2]; server
 * frames are unmasked with the right length form.
 */

import assert from "node:assert/strict";
import {
  type WsOwner,
  WsServerDuplex,
} from "../broker/listen/_ws_server_duplex.ts";
import { wsFrame as serverFrame } from "../codec/_websocket.ts";
import type { Duplex } from "../codec/duplex.ts";
import { memoryDuplexPair } from "./_memory_duplex.ts";
import { withTimeout } from "./_helpers.ts";

/** A masked client frame (`fin`, `opcode`) with mask `key`. */
function clientFrame(
  opcode: number,
  payload: Uint8Array,
  fin = true,
  key = [0x37, 0xfa, 0x21, 0x3d],
): Uint8Array {
  const n = payload.length;
  const ext = n < 126 ? 0 : n < 65536 ? 2 : 8;
  const out = new Uint8Array(2 + ext + 4 + n);
  out[0] = (fin ? 0x80 : 0) | opcode;
  if (ext === 0) out[1] = 0x80 | n;
  else if (ext === 2) {
    out[1] = 0x80 | 126;
    out[2] = n >> 8;
    out[3] = n & 0xff;
  } else {
    out[1] = 0x80 | 127;
    new DataView(out.buffer).setBigUint64(2, BigInt(n));
  }
  out.set(key, 2 + ext);
  for (let i = 0; i < n; i++) out[6 + ext + i] = payload[i]! ^ key[i & 3]!;
  return out;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) & 0xff);
}

const owner = (): WsOwner & { violations: string[] } => {
  const violations: string[] = [];
  return { violations, violation: (_d, r) => violations.push(r), closed() {} };
};

/** Reads from `d` until `n` bytes came. */
async function readBytes(d: Duplex, n: number): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let got = 0;
  while (got < n) {
    const c = await withTimeout(d.read(), 3000, `${n - got} more bytes`);
    if (c === null) throw new Error(`EOF after ${got} of ${n} bytes`);
    parts.push(c.slice());
    got += c.length;
  }
  return concat(parts);
}

Deno.test("WsServerDuplex reads binary frames of every length form, split into chunks of any size", async () => {
  const payloads = [pattern(5, 1), pattern(200, 2), pattern(70_000, 3)];
  // A fragmented message: three frames with a ping between the first two.
  const frag = pattern(300, 4);
  const bytes = concat([
    ...payloads.map((p) => clientFrame(2, p)),
    clientFrame(2, frag.subarray(0, 100), false),
    clientFrame(9, new TextEncoder().encode("ping!")),
    clientFrame(0, frag.subarray(100, 250), false),
    clientFrame(0, frag.subarray(250), true),
    clientFrame(2, new Uint8Array(0)), // an empty frame
  ]);
  const expected = concat([...payloads, frag]);
  for (const chunk of [1, 2, 3, 7, 13, 100, 4096, bytes.length]) {
    const [client, server] = memoryDuplexPair({ maxChunk: chunk });
    const o = owner();
    const d = new WsServerDuplex(server, o, new Uint8Array(0));
    const reading = readBytes(d, expected.length);
    await client.write(bytes);
    const got = await reading;
    assert.ok(
      got.length === expected.length && got.every((b, i) => b === expected[i]),
      `chunks of ${chunk}: bytes differ`,
    );
    // The ping got its pong, with the same payload.
    const pong = await readBytes(client, 7);
    assert.deepEqual([...pong], [
      0x8a,
      5,
      ...new TextEncoder().encode("ping!"),
    ]);
    assert.deepEqual(o.violations, []);
    d.close();
    client.close();
  }
});

Deno.test("WsServerDuplex: bytes read with the handshake are the first frames", async () => {
  const [client, server] = memoryDuplexPair();
  const first = clientFrame(2, pattern(10, 5));
  const d = new WsServerDuplex(server, owner(), first.subarray(0, 7));
  const reading = readBytes(d, 10);
  await client.write(first.subarray(7));
  assert.deepEqual([...await reading], [...pattern(10, 5)]);
  d.close();
  client.close();
});

Deno.test("serverFrame() writes unmasked frames with the 7-, 16- and 64-bit length forms", () => {
  for (
    const [n, head] of [[0, 2], [125, 2], [126, 4], [65535, 4], [65536, 10]]
  ) {
    const f = serverFrame(2, pattern(n!, 6));
    assert.equal(f.length, n! + head!);
    assert.equal(f[0], 0x82);
    assert.equal(f[1]! & 0x80, 0, "not masked");
    const len = head === 2
      ? f[1]!
      : head === 4
      ? (f[2]! << 8) | f[3]!
      : Number(new DataView(f.buffer).getBigUint64(2));
    assert.equal(len, n);
    if (head === 4) assert.equal(f[1], 126);
    if (head === 10) assert.equal(f[1], 127);
  }
});

Deno.test("WsServerDuplex: a close frame is answered with one (the peer's code) and ends the reads", async () => {
  const [client, server] = memoryDuplexPair();
  const d = new WsServerDuplex(server, owner(), new Uint8Array(0));
  const reading = d.read();
  await client.write(clientFrame(8, new Uint8Array([0x03, 0xe9]))); // 1001
  assert.equal(await withTimeout(reading, 3000, "EOF"), null);
  const answer = await readBytes(client, 4);
  assert.deepEqual([...answer], [0x88, 2, 0x03, 0xe9]);
  assert.equal(await withTimeout(client.read(), 3000, "EOF"), null);
  client.close();
});
