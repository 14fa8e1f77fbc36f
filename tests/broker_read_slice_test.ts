/**
 * A client that always has data does not keep the others' reads waiting
 * (issue 19: a stalled subscriber, a flooding publisher and a QoS 1 canary,
 * bench/stalled_reader.ts): a connection that has read its slice pauses
 * until the runtime has polled the OS for the other sockets (`IoTurn`), and
 * then reads on where it stopped, in order.
 */

import assert from "node:assert/strict";
import { MemoryStore } from "../broker/mod.ts";
import { BrokerCore } from "../broker/core.ts";
import { Connection } from "../broker/connection/connection.ts";
import { IoTurn } from "../broker/connection/_io_turn.ts";
import { PacketDecoder } from "../codec/decode.ts";
import { encode } from "../codec/encode.ts";
import type { Packet } from "../codec/packet.ts";
import { memoryDuplexPair } from "./_memory_duplex.ts";
import { withTimeout } from "./_helpers.ts";
import { FLOOD_PUBLISH, HeldTurn } from "./_held_turn.ts";

Deno.test("IoTurn runs what waits in order, one batch per poll, and at once after close()", async () => {
  const turn = await IoTurn.open();
  assert.ok(turn !== undefined, "the loopback pair opens with -P");
  try {
    const ran: string[] = [];
    const done = Promise.withResolvers<void>();
    turn.after(() => ran.push("a"));
    turn.after(() => {
      ran.push("b");
      // Queued while a batch runs: it waits for the next poll.
      turn.after(() => {
        ran.push("d");
        done.resolve();
      });
    });
    turn.after(() => ran.push("c"));
    await withTimeout(done.promise, 5000, "the second batch");
    assert.deepEqual(ran, ["a", "b", "c", "d"]);
    turn.close();
    const late = Promise.withResolvers<void>();
    turn.after(() => late.resolve());
    await withTimeout(late.promise, 5000, "after() once closed");
  } finally {
    turn.close();
  }
});

Deno.test("a connection that read its slice pauses for the poll, then reads on in order", async () => {
  const core = new BrokerCore({}, new MemoryStore());
  const turn = new HeldTurn();
  core.ioTurn = turn as unknown as IoTurn;
  const [client, server] = memoryDuplexPair();
  const conn = new Connection(core, server);
  core.connections.add(conn);
  const decoder = new PacketDecoder({ version: 4 });
  const received: Packet[] = [];
  let wake: (() => void) | undefined;
  (async () => {
    for (;;) {
      const chunk = await client.read();
      if (chunk === null) return;
      decoder.push(chunk, (p) => received.push(p));
      wake?.();
    }
  })();
  const until = async (what: string, ok: () => boolean) => {
    while (!ok()) {
      const p = new Promise<void>((r) => wake = r);
      await withTimeout(p, 5000, what);
    }
  };
  try {
    await client.write(encode({
      type: "connect",
      protocolVersion: 4,
      clientId: "flooder",
      cleanStart: true,
      keepAlive: 0,
    }));
    await until("CONNACK", () => received.some((p) => p.type === "connack"));
    const before = core.metrics.packetsReceived;
    // 80 QoS 0 PUBLISHes of 1 KB, one chunk each (more than a 64 KiB
    // slice), then a QoS 1 PUBLISH.
    for (let i = 0; i < 80; i++) await client.write(FLOOD_PUBLISH);
    await client.write(encode({
      type: "publish",
      topic: "canary",
      payload: new Uint8Array(4),
      qos: 1,
      packetId: 7,
      retain: false,
      dup: false,
    }, { version: 4 }));
    await withTimeout(turn.asked, 5000, "the pause");
    // Paused after the chunk that filled the slice: no read is pending,
    // so nothing more is handled however long this waits.
    const handled = core.metrics.packetsReceived - before;
    assert.ok(handled >= 63 && handled < 80, `${handled} handled`);
    assert.equal(turn.waiting.length, 1);
    assert.ok(!received.some((p) => p.type === "puback"));
    turn.release();
    // Read on: every PUBLISH, the QoS 1 one last.
    await until("PUBACK", () => received.some((p) => p.type === "puback"));
    assert.equal(core.metrics.packetsReceived - before, 81);
    const ack = received.find((p) => p.type === "puback");
    assert.equal(ack?.type === "puback" && ack.packetId, 7);
  } finally {
    conn.end(undefined, false, true);
    client.close();
    turn.release();
  }
});
