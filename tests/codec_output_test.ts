import assert from "node:assert/strict";
import { decode, encode, publishPacketIdOffset } from "../codec/mod.ts";
import { DUP_FLAG, OutputQueue } from "../codec/_output.ts";
import { allocShortLived } from "../codec/_slab.ts";

const V4 = { version: 4 } as const;
const shared = encode({
  type: "publish",
  topic: "fleet/1/telemetry",
  payload: new Uint8Array(200).fill(7),
  qos: 1,
  retain: false,
  dup: false,
  packetId: 1,
}, V4);
const idOffset = publishPacketIdOffset(shared);

Deno.test("OutputQueue.take() patches each copy of a shared PUBLISH, never the encoding", () => {
  const q = new OutputQueue();
  q.push(shared, idOffset, 7 | DUP_FLAG);
  const first = q.take();
  q.push(shared, idOffset, 9);
  q.push(shared, idOffset, 10);
  const second = q.take();
  // Both takes come from one slab; neither may overwrite the other.
  const p7 = decode(first, V4);
  assert.equal(p7.type, "publish");
  assert.equal(p7.packetId, 7);
  assert.equal(p7.dup, true);
  const p9 = decode(second.subarray(0, shared.length), V4);
  const p10 = decode(second.subarray(shared.length), V4);
  assert.equal(p9.type === "publish" && p9.packetId, 9);
  assert.equal(p9.type === "publish" && p9.dup, false);
  assert.equal(p10.type === "publish" && p10.packetId, 10);
  const again = decode(shared, V4);
  assert.equal(again.type === "publish" && again.packetId, 1);
  assert.equal(again.type === "publish" && again.dup, false);
  assert.equal(q.length, 0);
});

Deno.test("OutputQueue.take() returns a lone unpatched packet itself, and large outputs whole", () => {
  const q = new OutputQueue();
  const ack = encode({ type: "puback", packetId: 3 }, V4);
  q.push(ack);
  assert.equal(q.take(), ack);
  const big = new Uint8Array(5000).fill(1);
  q.push(big);
  q.push(shared, idOffset, 2);
  const out = q.take();
  assert.equal(out.length, 5000 + shared.length);
  assert.equal(out[4999], 1);
  const p = decode(out.subarray(5000), V4);
  assert.equal(p.type === "publish" && p.packetId, 2);
});

Deno.test("allocShortLived() hands out zeroed arrays that never overlap", () => {
  const arrays = [];
  for (let i = 0; i < 200; i++) {
    const a = allocShortLived(100 + (i % 50));
    assert.ok(a.every((b) => b === 0));
    a.fill(i & 0xff);
    arrays.push(a);
  }
  arrays.forEach((a, i) => assert.ok(a.every((b) => b === (i & 0xff))));
  assert.equal(allocShortLived(4096).byteLength, 4096);
});
