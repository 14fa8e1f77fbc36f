/**
 * `Link`, one client connection's I/O, over an in-memory `Duplex`: packets
 * in (split or packed chunks), one coalesced write per turn, the QoS 0
 * batch promise, keep-alive, and how it reports its end.
 */

import assert from "node:assert/strict";
import { Link, type LinkHandler } from "../client/link.ts";
import { ClientOfflineError } from "../client/mod.ts";
import type { Duplex } from "../codec/duplex.ts";
import { PacketDecoder } from "../codec/decode.ts";
import { encode } from "../codec/encode.ts";
import { MqttError } from "../codec/errors.ts";
import type { Packet } from "../codec/packet.ts";
import { within } from "./client_helpers.ts";

/** A duplex whose reads the test feeds and whose writes it records. */
class MemoryDuplex implements Duplex {
  writes: Uint8Array[] = [];
  closed = false;
  failWrites = false;
  #chunks: (Uint8Array | null)[] = [];
  #waiting: ((c: Uint8Array | null) => void) | undefined;

  feed(chunk: Uint8Array | null): void {
    const w = this.#waiting;
    if (w) {
      this.#waiting = undefined;
      w(chunk);
    } else this.#chunks.push(chunk);
  }

  read(): Promise<Uint8Array | null> {
    if (this.#chunks.length > 0) return Promise.resolve(this.#chunks.shift()!);
    if (this.closed) return Promise.resolve(null);
    return new Promise((r) => this.#waiting = r);
  }

  write(data: Uint8Array): Promise<void> {
    if (this.failWrites) return Promise.reject(new Error("broken pipe"));
    this.writes.push(data.slice());
    return Promise.resolve();
  }

  close(): void {
    this.closed = true;
    this.feed(null);
  }
}

/** A handler that records what the link reports. */
function recorder() {
  const packets: Packet[] = [];
  const errors: Error[] = [];
  const ended = Promise.withResolvers<string>();
  let reports = 0;
  let onPacket = (_p: Packet): void => {};
  const handler: LinkHandler = {
    packet(p) {
      packets.push(p);
      onPacket(p);
    },
    readEnded(e) {
      reports++;
      if (e) errors.push(e);
      ended.resolve(e ? `read: ${e.constructor.name} ${e.message}` : "eof");
    },
    writeFailed(e) {
      reports++;
      ended.resolve(`write: ${e.message}`);
    },
    pingTimeout(ms) {
      reports++;
      ended.resolve(`ping: ${ms}`);
    },
  };
  return {
    handler,
    packets,
    errors,
    ended: ended.promise,
    get reports() {
      return reports;
    },
    set onPacket(f: (p: Packet) => void) {
      onPacket = f;
    },
  };
}

const PUBACK_7 = encode({ type: "puback", packetId: 7 });
const PINGRESP = new Uint8Array([0xd0, 0x00]);

Deno.test("Link hands packets to its handler from split and packed chunks; PINGRESP stays in the link", async () => {
  const d = new MemoryDuplex();
  const r = recorder();
  const link = new Link(d, new PacketDecoder({ version: 5 }), r.handler);
  const two = Promise.withResolvers<void>();
  r.onPacket = () => {
    if (r.packets.length === 2) two.resolve();
  };
  d.feed(PUBACK_7.subarray(0, 1));
  d.feed(PUBACK_7.subarray(1));
  const packed = new Uint8Array([...PINGRESP, ...PUBACK_7]);
  d.feed(packed);
  await within(two.promise, 3000, "two PUBACKs");
  assert.deepEqual(r.packets, [
    { type: "puback", packetId: 7 },
    { type: "puback", packetId: 7 },
  ]);
  d.feed(null);
  assert.equal(await within(r.ended, 3000, "end"), "eof");
  await link.done;
  assert.equal(r.reports, 1);
});

Deno.test("Link.send() coalesces a turn's packets into one write; QoS 0 share one batch promise", async () => {
  const d = new MemoryDuplex();
  const r = recorder();
  const link = new Link(d, new PacketDecoder({ version: 5 }), r.handler);
  const a = encode({ type: "pubrel", packetId: 1 });
  const b = encode({ type: "pubcomp", packetId: 2 });
  link.send(a);
  const p1 = link.batchPromise();
  link.send(b);
  const p2 = link.batchPromise();
  assert.equal(p1, p2);
  assert.deepEqual(await p1, { reasonCode: 0 });
  assert.deepEqual(d.writes, [new Uint8Array([...a, ...b])]);
  // The next turn is the next batch.
  link.send(a);
  const p3 = link.batchPromise();
  assert.notEqual(p3, p1);
  await p3;
  assert.equal(d.writes.length, 2);
  link.close();
  await link.done;
  assert.equal(r.reports, 0); // nothing reported after close()
});

Deno.test("Link reports bad input from the broker once, as an MqttError", async () => {
  const d = new MemoryDuplex();
  const r = recorder();
  const link = new Link(d, new PacketDecoder({ version: 5 }), r.handler);
  d.feed(new Uint8Array([0x00, 0x00])); // packet type 0 is reserved
  assert.match(await within(r.ended, 3000, "end"), /^read: /);
  assert.ok(r.errors[0] instanceof MqttError);
  assert.equal(r.errors[0].reasonCode, 0x81); // Malformed Packet
  await link.done;
  assert.equal(r.reports, 1);
  link.close();
});

Deno.test("Link rejects the QoS 0 batch and reports writeFailed when a write fails", async () => {
  const d = new MemoryDuplex();
  d.failWrites = true;
  const r = recorder();
  const link = new Link(d, new PacketDecoder({ version: 5 }), r.handler);
  link.send(PUBACK_7);
  await assert.rejects(link.batchPromise(), ClientOfflineError);
  assert.equal(await within(r.ended, 3000, "end"), "write: broken pipe");
  link.close();
  await link.done;
  assert.equal(r.reports, 1);
});

Deno.test("Link.close() drops unwritten output: its QoS 0 batch is rejected", async () => {
  const d = new MemoryDuplex();
  const r = recorder();
  const link = new Link(d, new PacketDecoder({ version: 5 }), r.handler);
  link.send(PUBACK_7);
  const batch = link.batchPromise();
  link.close();
  await assert.rejects(batch, (e: unknown) => {
    assert.ok(e instanceof ClientOfflineError);
    assert.ok(e instanceof MqttError);
    return true;
  });
  await link.done;
  assert.deepEqual(d.writes, []);
  assert.ok(d.closed);
  assert.equal(r.reports, 0);
});

Deno.test("Link keep-alive sends PINGREQ when idle and reports a missing PINGRESP v3:[MQTT-3.1.2-23] v5:[MQTT-3.1.2-20]", async () => {
  const d = new MemoryDuplex();
  const r = recorder();
  const link = new Link(d, new PacketDecoder({ version: 5 }), r.handler);
  link.startKeepAlive(100, 100);
  assert.equal(await within(r.ended, 3000, "ping timeout"), "ping: 100");
  assert.deepEqual(d.writes, [new Uint8Array([0xc0, 0x00])]);
  link.close();
  await link.done;
});
