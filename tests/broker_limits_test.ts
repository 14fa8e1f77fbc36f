import assert from "node:assert/strict";
import { encode } from "../codec/encode.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  bytes,
  RawClient,
  startBroker,
  waitFor,
  withTimeout,
} from "./_helpers.ts";

Deno.test("Broker refuses connections past maxConnections: v5 CONNACK 0x97, 3.1.1 0x03", async () => {
  const broker = await startBroker({ maxConnections: 2 });
  const port = broker.addr.port;
  const a = await RawClient.connect(port, { clientId: "a" });
  const b = await RawClient.connect(port, { clientId: "b" });
  const c5 = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "c5",
  });
  assert.equal(c5.connack.reasonCode, ReasonCode.QuotaExceeded);
  const c4 = await RawClient.connect(port, { clientId: "c4" });
  assert.equal(c4.connack.reasonCode, 0x03);
  await c5.client.waitClosed();
  await c4.client.waitClosed();
  await a.client.disconnect();
  // A slot is free again once a client left.
  const d = await withTimeout(
    (async () => {
      while (true) {
        const r = await RawClient.connect(port, { clientId: "d" });
        if (r.connack.reasonCode === 0) return r;
        await r.client.close();
      }
    })(),
    2000,
    "a free slot",
  );
  for (const x of [b, c5, c4, d]) await x.client.close();
  await broker.close();
});

Deno.test("Broker answers a packet over maxPacketSize with v5 DISCONNECT 0x95 and closes; 3.1.1 is closed", async () => {
  const broker = await startBroker({ maxPacketSize: 1024 });
  const port = broker.addr.port;
  const big = {
    type: "publish" as const,
    topic: "big",
    payload: new Uint8Array(2000),
    qos: 0 as const,
    retain: false,
    dup: false,
  };
  const v5 = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "b5",
  });
  await v5.client.send(big);
  assert.equal(
    (await v5.client.expect("disconnect")).reasonCode,
    ReasonCode.PacketTooLarge,
  );
  await v5.client.waitClosed();
  const v4 = await RawClient.connect(port, { clientId: "b4" });
  // Only the fixed header is needed for the broker to refuse.
  await v4.client.sendBytes(encode(big).subarray(0, 10));
  await v4.client.waitClosed();
  assert.equal(v4.client.inbox.length, 0);
  await v5.client.close();
  await v4.client.close();
  await broker.close();
});

Deno.test("Broker closes a client that sends garbage without affecting others", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const good = await RawClient.connect(port, { clientId: "good" });
  await good.client.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "g", qos: 0 }],
  });
  await good.client.expect("suback");
  const bad = await RawClient.connect(port, { clientId: "bad" });
  await bad.client.sendBytes(
    crypto.getRandomValues(new Uint8Array(64)).map(
      (b) => b | 0xf0, // type 15 (AUTH) with bad flags: malformed for 3.1.1
    ),
  );
  await bad.client.waitClosed();
  broker.publish("g", "still here");
  assert.equal((await good.client.expectPublish("g")).topic, "g");
  await bad.client.close();
  await good.client.disconnect();
  await broker.close();
});

Deno.test("Broker keeps serving others while a subscriber never reads (bounded buffer, QoS 0 dropped)", async () => {
  const broker = await startBroker();
  broker.outputBufferLimit = 256 * 1024;
  const port = broker.addr.port;
  // The stalled subscriber: connects, subscribes, then never reads again.
  const stalled = await Deno.connect({ hostname: "127.0.0.1", port });
  await stalled.write(encode({
    type: "connect",
    protocolVersion: 4,
    clientId: "stalled",
    cleanStart: true,
    keepAlive: 0,
  }));
  await stalled.write(encode({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "flood", qos: 0 }],
  }));
  const ack = new Uint8Array(9);
  let got = 0;
  while (got < 9) {
    const n = await stalled.read(ack.subarray(got));
    if (n === null) throw new Error("closed");
    got += n;
  }
  const { client: reader } = await RawClient.connect(port, { clientId: "rd" });
  await reader.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "flood", qos: 1 }],
  });
  await reader.expect("suback");
  const { client: pub } = await RawClient.connect(port, { clientId: "pub" });
  // At most maxQueuedMessages (1000): a fast publisher can fill the queue
  // of even a reading subscriber, which then drops its oldest messages.
  const n = 800;
  const payload = new Uint8Array(16 * 1024); // 12.8 MB in total
  const t0 = performance.now();
  const sending = (async () => {
    for (let i = 0; i < n; i += 50) {
      const batch = [];
      for (let j = i; j < i + 50; j++) {
        batch.push({
          type: "publish" as const,
          topic: "flood",
          payload,
          qos: 1 as const,
          packetId: j + 1,
          retain: false,
          dup: false,
        });
      }
      await pub.send(...batch);
      pub.inbox.length = 0;
    }
  })();
  for (let i = 0; i < n; i++) {
    const m = await reader.expectPublish("flood", 5000);
    assert.equal(m.payload.length, payload.length);
    await reader.send({ type: "puback", packetId: m.packetId! });
  }
  await sending;
  const ms = performance.now() - t0;
  assert.ok(ms < 10000, `took ${ms} ms`);
  // The reader is still served promptly after the flood.
  broker.publish("flood", bytes("end"));
  await reader.expectPublish("flood");
  stalled.close();
  await reader.disconnect();
  await pub.disconnect();
  await broker.close();
});

Deno.test("Broker decoder never buffers past maxPacketSize for a half-sent packet", async () => {
  const broker = await startBroker({ maxPacketSize: 64 * 1024 });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "half",
  });
  // Announce a 10 MB PUBLISH: refused from the fixed header alone.
  await client.sendBytes(new Uint8Array([0x30, 0x80, 0xad, 0xe2, 0x04]));
  assert.equal(
    (await client.expect("disconnect")).reasonCode,
    ReasonCode.PacketTooLarge,
  );
  await client.waitClosed();
  await client.close();
  await broker.close();
});

Deno.test("Broker decodes packets split at every byte and many packets per chunk", async () => {
  const broker = await startBroker();
  const { client: sub } = await RawClient.connect(broker.addr.port, {
    clientId: "split-sub",
  });
  await sub.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "split", qos: 1 }],
  });
  await sub.expect("suback");
  const pub = await RawClient.open(broker.addr.port);
  const wire = [
    encode({
      type: "connect",
      protocolVersion: 4,
      clientId: "split-pub",
      cleanStart: true,
      keepAlive: 0,
    }),
    encode({
      type: "publish",
      topic: "split",
      payload: bytes("one byte at a time"),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 9,
    }),
  ];
  for (const part of wire) {
    for (let i = 0; i < part.length; i++) {
      await pub.sendBytes(part.subarray(i, i + 1));
    }
  }
  assert.equal((await pub.expect("puback")).packetId, 9);
  assert.equal(
    new TextDecoder().decode((await sub.expectPublish("split")).payload),
    "one byte at a time",
  );
  await pub.disconnect();
  await sub.disconnect();
  await broker.close();
});

Deno.test("Broker keeps each connected client's partial packet apart while decoders are reused between packets (v5 properties, interleaved halves)", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const { client: sub } = await RawClient.connect(port, {
    clientId: "halves-sub",
    protocolVersion: 5,
  });
  await sub.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "halves/#", qos: 1 }],
  });
  await sub.expect("suback");
  const a = (await RawClient.connect(port, {
    clientId: "halves-a",
    protocolVersion: 5,
  })).client;
  const b = (await RawClient.connect(port, { clientId: "halves-b" })).client;
  const wireA = encode({
    type: "publish",
    topic: "halves/a",
    payload: bytes("from a, a v5 packet"),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 7,
    properties: { contentType: "text/plain", userProperties: [["k", "v"]] },
  }, { version: 5 });
  const wireB = encode({
    type: "publish",
    topic: "halves/b",
    payload: bytes("from b, a 3.1.1 packet"),
    qos: 1,
    retain: false,
    dup: false,
    packetId: 8,
  }, { version: 4 });
  // Both decoders hold a partial packet at once: each half is sent once the
  // broker has read the bytes before it (its received-bytes count).
  const read = (n: number) =>
    waitFor(() => broker.stats.bytesReceived >= n, 5000, `${n} bytes read`);
  const before = broker.stats.bytesReceived;
  await a.sendBytes(wireA.subarray(0, 9));
  await read(before + 9);
  await b.sendBytes(wireB.subarray(0, 5));
  await read(before + 14);
  await a.sendBytes(wireA.subarray(9));
  assert.equal((await a.expect("puback")).packetId, 7);
  await b.sendBytes(wireB.subarray(5));
  assert.equal((await b.expect("puback")).packetId, 8);
  const first = await sub.expectPublish("halves/a");
  assert.equal(first.properties?.contentType, "text/plain");
  assert.deepEqual(first.properties?.userProperties, [["k", "v"]]);
  const second = await sub.expectPublish("halves/b");
  assert.equal(
    new TextDecoder().decode(second.payload),
    "from b, a 3.1.1 packet",
  );
  // Whole packets after the split ones still decode with each one's version.
  await a.send({ type: "pingreq" });
  await a.expect("pingresp");
  await b.send({ type: "pingreq" });
  await b.expect("pingresp");
  await a.disconnect();
  await b.disconnect();
  await sub.disconnect();
  await broker.close();
});

Deno.test("Broker survives many clients sending random bytes while others exchange messages", async () => {
  const broker = await startBroker({ connectTimeout: 0.5 });
  const port = broker.addr.port;
  const { client: sub } = await RawClient.connect(port, { clientId: "fz-sub" });
  await sub.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "fz", qos: 1 }],
  });
  await sub.expect("suback");
  const { client: pub } = await RawClient.connect(port, { clientId: "fz-pub" });
  const junk = await Promise.all(
    Array.from({ length: 30 }, () => RawClient.open(port)),
  );
  for (let round = 0; round < 5; round++) {
    await Promise.all(junk.map(async (j, i) => {
      if (j.isClosed) return;
      const b = crypto.getRandomValues(new Uint8Array(32 + i));
      // Half of them start with a plausible CONNECT header.
      if (i % 2 === 0 && round === 0) b[0] = 0x10;
      await j.sendBytes(b).catch(() => {});
    }));
    await pub.send({
      type: "publish",
      topic: "fz",
      payload: bytes(String(round)),
      qos: 1,
      retain: false,
      dup: false,
      packetId: round + 1,
    });
    await pub.expect("puback");
    const m = await sub.expectPublish("fz");
    assert.equal(new TextDecoder().decode(m.payload), String(round));
    await sub.send({ type: "puback", packetId: m.packetId! });
  }
  for (const j of junk) await j.waitClosed(3000);
  for (const j of junk) await j.close();
  assert.equal(broker.connectedClients, 2);
  await pub.disconnect();
  await sub.disconnect();
  await broker.close();
});
