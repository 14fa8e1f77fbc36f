// The end-of-turn batch (codec/_turn_end.ts) and the PUBLISH encoding that
// reuses one packet object (broker/delivery.ts encodePublish).
import assert from "node:assert/strict";
import { atEndOfTurn } from "../codec/_turn_end.ts";
import { encodePublish } from "../broker/delivery.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet, PublishPacket } from "../codec/packet.ts";
import type { StoredMessage } from "../broker/store/store.ts";

Deno.test("atEndOfTurn: one microtask runs a turn's callbacks in order, after the turn's code, and those they queue", async () => {
  const seen: string[] = [];
  function a(): void {
    seen.push("a");
    atEndOfTurn(c); // queued while the batch runs: same batch, last
  }
  function b(): void {
    seen.push("b");
  }
  function c(): void {
    seen.push("c");
  }
  atEndOfTurn(a);
  // A microtask queued after the batch's first callback runs after the batch.
  queueMicrotask(() => seen.push("later"));
  atEndOfTurn(b);
  // A function and its argument (no closure per call).
  atEndOfTurn((n: number) => seen.push(`n${n}`), 7);
  seen.push("sync");
  await Promise.resolve();
  await Promise.resolve();
  assert.deepEqual(seen, ["sync", "a", "b", "n7", "c", "later"]);
});

Deno.test("atEndOfTurn: a callback that throws is reported as uncaught and the rest still run", async () => {
  const reported: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    reported.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const seen: string[] = [];
    const boom = new Error("boom");
    atEndOfTurn(() => {
      throw boom;
    });
    atEndOfTurn(() => seen.push("after"));
    await new Promise((r) => setTimeout(r, 0));
    assert.deepEqual(seen, ["after"]);
    assert.deepEqual(reported, [boom]);
    // The next turn gets a batch of its own.
    atEndOfTurn(() => seen.push("next"));
    await Promise.resolve();
    assert.deepEqual(seen, ["after", "next"]);
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});

function decodeOne(bytes: Uint8Array, version: 4 | 5): PublishPacket {
  const out: Packet[] = [];
  const d = new PacketDecoder({ version });
  d.push(bytes, (p) => out.push(p));
  assert.equal(out.length, 1);
  assert.equal(out[0]!.type, "publish");
  return out[0] as PublishPacket;
}

Deno.test("encodePublish: one encoding's properties, topic and payload do not carry into the next [MQTT-3.3.2-6]", () => {
  const withProps: StoredMessage = {
    topic: "a/b",
    payload: new TextEncoder().encode("first"),
    qos: 1,
    retain: false,
    properties: { contentType: "text/plain", userProperties: [["k", "v"]] },
    expiresAt: 10_000,
  };
  const plain: StoredMessage = {
    topic: "c",
    payload: new TextEncoder().encode("2"),
    qos: 0,
    retain: false,
  };
  const first = decodeOne(
    encodePublish(withProps, 5, 1, true, [7], 1_000).bytes,
    5,
  );
  assert.equal(first.topic, "a/b");
  assert.equal(first.qos, 1);
  assert.equal(first.retain, true);
  assert.equal(first.properties?.contentType, "text/plain");
  assert.deepEqual(first.properties?.subscriptionIdentifiers, [7]);
  // 9 s left of the expiry, sent as the remaining interval [MQTT-3.3.2-6].
  assert.equal(first.properties?.messageExpiryInterval, 9);
  // The stored message itself is not changed.
  assert.equal(withProps.properties?.messageExpiryInterval, undefined);

  const second = decodeOne(
    encodePublish(plain, 5, 0, false, undefined, 0).bytes,
    5,
  );
  assert.equal(second.topic, "c");
  assert.equal(second.qos, 0);
  assert.equal(second.retain, false);
  assert.equal(second.packetId, undefined);
  assert.equal(second.properties, undefined);
  assert.deepEqual(second.payload, plain.payload);

  const v4 = decodeOne(
    encodePublish(withProps, 4, 1, false, undefined, 0).bytes,
    4,
  );
  assert.equal(v4.topic, "a/b");
  assert.equal(v4.properties, undefined);
  assert.deepEqual(v4.payload, withProps.payload);
});
