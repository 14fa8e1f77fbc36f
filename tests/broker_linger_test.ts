/**
 * Lingering close: after the broker's last packet (a DISCONNECT with a
 * reason code, a refusing CONNACK) it handles no more packets, half-closes
 * and drains what the client still sends for up to a second, so a client
 * that is still sending reads the reason code instead of a reset. The first
 * test is the Eclipse Paho MQTT 5.0 interoperability suite's
 * `test_flow_control2` expectation, with the Receive Maximum of Paho's
 * test configuration (20).
 */

import assert from "node:assert/strict";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type {
  ConnectPacket,
  Packet,
  ProtocolVersion,
} from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { Broker } from "../broker/mod.ts";
import { publishPacket, RawClient, startBroker } from "./_helpers.ts";
import { within } from "./client_helpers.ts";
import { MemoryListener } from "./_memory_duplex.ts";

/** Concatenated encodings of `packets`. */
function wire(version: ProtocolVersion, packets: Packet[]): Uint8Array {
  const parts = packets.map((p) => encode(p, { version }));
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

async function writeAll(conn: Deno.Conn, data: Uint8Array): Promise<void> {
  for (let off = 0; off < data.length;) {
    off += await conn.write(data.subarray(off));
  }
}

/**
 * A client socket that reads only when asked: `read()` gives the packets
 * of the next chunk (`null` at EOF); errors (a reset) are thrown.
 */
class SlowReader {
  readonly #decoder: PacketDecoder;
  readonly #buf = new Uint8Array(64 * 1024);
  constructor(readonly conn: Deno.Conn, version: ProtocolVersion) {
    this.#decoder = new PacketDecoder({ version });
  }
  async read(): Promise<Packet[] | null> {
    const n = await this.conn.read(this.#buf);
    if (n === null) return null;
    const got: Packet[] = [];
    this.#decoder.push(this.#buf.slice(0, n), (p) => got.push(p));
    return got;
  }
}

function connect(version: ProtocolVersion, fields: Partial<ConnectPacket>) {
  return {
    type: "connect",
    protocolVersion: version,
    clientId: "linger",
    cleanStart: true,
    keepAlive: 0,
    ...fields,
  } as ConnectPacket;
}

Deno.test("Connection: a client that sends Receive Maximum + 1 QoS 2 PUBLISHes before reading gets its PUBRECs, can send PUBRELs, and reads DISCONNECT 0x93 [MQTT-3.3.4-9]", async () => {
  const RM = 20;
  const broker = await startBroker({ receiveMaximum: RM });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: broker.addr.port,
  });
  try {
    const pubs: Packet[] = [];
    for (let id = 1; id <= RM + 1; id++) {
      pubs.push(publishPacket("linger/t", `m${id}`, { qos: 2, packetId: id }));
    }
    // Everything goes out before the client reads anything.
    await writeAll(conn, wire(5, [connect(5, {}), ...pubs]));
    const reader = new SlowReader(conn, 5);
    const seen: Packet[] = [];
    const pubrecs: number[] = [];
    let disconnect: Packet | undefined;
    let eof = false;
    await within(
      (async () => {
        while (!eof) {
          const got = await reader.read();
          if (got === null) {
            eof = true;
            break;
          }
          for (const p of got) {
            seen.push(p);
            if (p.type === "pubrec") {
              pubrecs.push(p.packetId);
              // The broker has already decided to disconnect: this write
              // must still succeed (no reset).
              await writeAll(
                conn,
                wire(5, [{ type: "pubrel", packetId: p.packetId }]),
              );
            }
            if (p.type === "disconnect") disconnect = p;
          }
        }
      })(),
      5000,
      "the PUBRECs, the DISCONNECT and EOF",
    );
    assert.equal(seen[0]?.type, "connack");
    assert.deepEqual(pubrecs, Array.from({ length: RM }, (_, i) => i + 1));
    assert.ok(disconnect !== undefined, "a DISCONNECT was read");
    assert.equal(
      (disconnect as { reasonCode: number }).reasonCode,
      ReasonCode.ReceiveMaximumExceeded,
    );
    // The DISCONNECT is the broker's last packet: no PUBCOMP for the
    // PUBRELs sent after it (they are not handled any more).
    assert.equal(seen.at(-1), disconnect);
    assert.ok(eof, "the broker half-closed after the DISCONNECT");
  } finally {
    conn.close();
    await broker.close();
  }
});

Deno.test("Connection: a client that keeps publishing after CONNACK 0x86 reads the CONNACK and EOF, not a reset [MQTT-3.2.2-7]", async () => {
  const broker = await startBroker({
    authenticate: () => ReasonCode.BadUserNameOrPassword,
  });
  const conn = await Deno.connect({
    hostname: "127.0.0.1",
    port: broker.addr.port,
  });
  try {
    // The CONNECT and PUBLISHes in one write, before reading.
    const burst: Packet[] = [connect(5, { username: "u" })];
    for (let i = 0; i < 50; i++) {
      burst.push(publishPacket("x", new Uint8Array(100)));
    }
    await writeAll(conn, wire(5, burst));
    const reader = new SlowReader(conn, 5);
    const first = await within(reader.read(), 3000, "the CONNACK");
    assert.equal(first?.[0]?.type, "connack");
    assert.equal(
      (first![0] as { reasonCode: number }).reasonCode,
      ReasonCode.BadUserNameOrPassword,
    );
    // A client that had more queued keeps sending: no broken pipe.
    for (let i = 0; i < 3; i++) {
      await writeAll(conn, wire(5, burst.slice(1, 11)));
    }
    assert.equal(await within(reader.read(), 3000, "EOF"), null);
  } finally {
    conn.close();
    await broker.close();
  }
});

Deno.test("Connection: packets that arrive after the broker's DISCONNECT are not handled", async () => {
  const broker = await startBroker({ receiveMaximum: 1 });
  const port = broker.addr.port;
  const sub = await RawClient.connect(port, { protocolVersion: 5 });
  await sub.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "after/#", qos: 0 }],
  });
  await sub.client.expect("suback");
  const c = await RawClient.connect(port, { protocolVersion: 5 });
  // Two QoS 2 PUBLISHes with a Receive Maximum of 1: the second is 0x93;
  // the QoS 0 PUBLISH in the same write comes after it.
  await c.client.send(
    publishPacket("after/1", "a", { qos: 2, packetId: 1 }),
    publishPacket("after/2", "b", { qos: 2, packetId: 2 }),
    publishPacket("after/3", "c"),
  );
  const d = await c.client.expect("disconnect");
  assert.equal(d.reasonCode, ReasonCode.ReceiveMaximumExceeded);
  await c.client.send(publishPacket("after/4", "d"));
  await c.client.waitClosed();
  const m = await sub.client.expectPublish();
  assert.equal(m.topic, "after/1");
  await sub.client.expectNothing((p) => p.type === "publish", 200);
  await c.client.close();
  await sub.client.disconnect();
  await broker.close();
});

Deno.test("Connection: without a half-close the broker drains at most a second, and Broker.close() ends the lingering at once", async () => {
  const broker = new Broker({ receiveMaximum: 1, sysInterval: 0 });
  await broker.start();
  const listener = new MemoryListener();
  broker.serve(listener);
  try {
    const client = listener.dial();
    const decoder = new PacketDecoder({ version: 5 });
    const got: Packet[] = [];
    const disconnected = Promise.withResolvers<number>();
    const reading = (async () => {
      for (;;) {
        const chunk = await client.read();
        if (chunk === null) return;
        decoder.push(chunk, (p) => {
          got.push(p);
          if (p.type === "disconnect") disconnected.resolve(Date.now());
        });
      }
    })();
    await client.write(wire(5, [
      connect(5, {}),
      publishPacket("t", "1", { qos: 2, packetId: 1 }),
      publishPacket("t", "2", { qos: 2, packetId: 2 }),
    ]));
    const t0 = await within(disconnected.promise, 3000, "the DISCONNECT");
    // Still accepted (drained) while the broker lingers.
    await client.write(wire(5, [{ type: "pubrel", packetId: 1 }]));
    // The memory duplex has no half-close: the client reads EOF when the
    // broker releases the connection, a second after its DISCONNECT.
    await within(reading, 3000, "EOF after the lingering close");
    const lingered = Date.now() - t0;
    assert.equal(got.at(-1)?.type, "disconnect");
    assert.ok(lingered >= 900 && lingered < 2500, `lingered ${lingered} ms`);
    client.close();

    // A second one, ended by Broker.close() while it lingers.
    const other = listener.dial();
    await other.write(wire(5, [
      connect(5, { clientId: "linger2" }),
      publishPacket("t", "1", { qos: 2, packetId: 1 }),
      publishPacket("t", "2", { qos: 2, packetId: 2 }),
    ]));
    const d2 = new PacketDecoder({ version: 5 });
    let sawDisconnect = false;
    while (!sawDisconnect) {
      const chunk = await within(other.read(), 3000, "the DISCONNECT");
      assert.ok(chunk !== null);
      d2.push(chunk, (p) => sawDisconnect ||= p.type === "disconnect");
    }
    const t1 = Date.now();
    await within(broker.close(), 3000, "Broker.close()");
    assert.ok(Date.now() - t1 < 900, "close() did not wait for the linger");
    assert.equal(await within(other.read(), 1000, "EOF"), null);
    other.close();
  } finally {
    await broker.close();
    listener.close();
  }
});

Deno.test("Connection: a client taken over while an async hook holds its packets reads DISCONNECT 0x8E, then EOF, and the hook's end changes nothing v5:[MQTT-3.1.4-3]", async () => {
  const hook = Promise.withResolvers<number>();
  const called = Promise.withResolvers<void>();
  let calls = 0;
  const broker = await startBroker({
    authorizePublish: () => {
      calls++;
      called.resolve();
      return hook.promise;
    },
  });
  const port = broker.addr.port;
  try {
    const a = await RawClient.connect(port, {
      protocolVersion: 5,
      clientId: "same",
    });
    await a.client.send(
      publishPacket("held/1", "x", { qos: 1, packetId: 1 }),
      publishPacket("held/2", "y", { qos: 1, packetId: 2 }),
    );
    // The first PUBLISH waits in the hook, the second behind it.
    await within(called.promise, 3000, "the hook's first call");
    const b = await RawClient.connect(port, {
      protocolVersion: 5,
      clientId: "same",
    });
    const d = await a.client.expect("disconnect");
    assert.equal(d.reasonCode, ReasonCode.SessionTakenOver);
    hook.resolve(0);
    await a.client.waitClosed();
    await a.client.expectNothing((p) => p.type === "puback", 100);
    assert.equal(calls, 1);
    await a.client.close();
    await b.client.disconnect();
  } finally {
    await broker.close();
  }
});
