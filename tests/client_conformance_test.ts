/**
 * Kite's client against the normative statements of MQTT 3.1.1 and 5.0, with
 * a scripted broker (`FakeBroker`) that sees every packet and byte the client
 * sends and answers exactly as a test needs. Tests that run for both
 * versions cite the statement of each (`v3:` and `v5:` markers).
 *
 * @module
 */

import assert from "node:assert/strict";
import { Client, type Message } from "../client/mod.ts";
import { MqttError, PacketTooLargeError } from "../codec/errors.ts";
import type {
  Packet,
  Properties,
  ProtocolVersion,
  PublishPacket,
} from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  counter,
  FakeBroker,
  type FakeConnection,
  within,
} from "./client_helpers.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const VERSIONS = [4, 5] as const;
const NAME: Record<4 | 5, string> = { 4: "3.1.1", 5: "5.0" };
const FAST = { initialDelay: 10, maxDelay: 50, jitter: 0 };

async function accept(
  c: FakeConnection,
  version: ProtocolVersion,
  sessionPresent = false,
  properties: Properties = {},
): Promise<void> {
  await c.next("connect");
  const connack: Packet = { type: "connack", sessionPresent, reasonCode: 0 };
  if (version === 5) connack.properties = properties;
  await c.send(connack);
}

function publish(
  topic: string,
  qos: 0 | 1 | 2,
  packetId?: number,
  payload = "x",
): PublishPacket {
  const p: PublishPacket = {
    type: "publish",
    topic,
    payload: enc.encode(payload),
    qos,
    retain: false,
    dup: false,
  };
  if (packetId !== undefined) p.packetId = packetId;
  return p;
}

function joined(chunks: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/** The first byte and the Connect Flags byte of the CONNECT in `bytes`. */
function connectBytes(bytes: Uint8Array[]): { first: number; flags: number } {
  const b = joined(bytes);
  let i = 1;
  while (b[i]! & 0x80) i++;
  i++; // past the Remaining Length
  // Protocol Name (2 + 4 bytes), Protocol Level (1 byte), then the flags.
  return { first: b[0]!, flags: b[i + 7]! };
}

for (const version of VERSIONS) {
  const v = NAME[version];

  Deno.test(`MQTT ${v} client: CONNECT first, with the payload fields its flags announce, in order, reserved bits 0 v3:[MQTT-3.1.0-1] v3:[MQTT-2.2.2-1] v3:[MQTT-3.1.2-9] v3:[MQTT-3.1.2-11] v3:[MQTT-3.1.2-13] v3:[MQTT-3.1.2-14] v3:[MQTT-3.1.2-15] v3:[MQTT-3.1.2-18] v3:[MQTT-3.1.2-19] v3:[MQTT-3.1.2-20] v3:[MQTT-3.1.2-21] v3:[MQTT-3.1.2-22] v3:[MQTT-3.1.3-1] v3:[MQTT-3.1.3-3] v3:[MQTT-3.1.3-4] v3:[MQTT-3.1.3-10] v3:[MQTT-3.1.3-11] v5:[MQTT-3.1.0-1] v5:[MQTT-2.1.3-1] v5:[MQTT-3.1.2-1] v5:[MQTT-3.1.2-9] v5:[MQTT-3.1.2-11] v5:[MQTT-3.1.2-12] v5:[MQTT-3.1.2-13] v5:[MQTT-3.1.2-16] v5:[MQTT-3.1.2-17] v5:[MQTT-3.1.2-18] v5:[MQTT-3.1.2-19] v5:[MQTT-3.1.3-1] v5:[MQTT-3.1.3-3] v5:[MQTT-3.1.3-4] v5:[MQTT-3.1.3-11] v5:[MQTT-3.1.3-12] v5:[MQTT-1.5.7-1]`, async () => {
    const seen: { packet: Packet; first: number; flags: number }[] = [];
    await using broker = new FakeBroker(async (c) => {
      const p = await c.next("connect");
      assert.equal(c.packets[0], p, "the first packet is CONNECT");
      seen.push({ packet: p, ...connectBytes(c.bytes) });
      await c.send(
        version === 5
          ? {
            type: "connack",
            sessionPresent: false,
            reasonCode: 0,
            properties: {},
          }
          : { type: "connack", sessionPresent: false, reasonCode: 0 },
      );
      await c.next("disconnect").catch(() => {});
    }, version);
    const full = new Client({
      port: broker.port,
      protocolVersion: version,
      clientId: "cid-é",
      keepAlive: 0,
      reconnect: false,
      username: "user-ü",
      password: "secret",
      userProperties: [["k", "v"]],
      will: { topic: "will/é", payload: "bye", qos: 1 },
    });
    await full.connect();
    await full.disconnect();
    const bare = new Client({
      port: broker.port,
      protocolVersion: version,
      clientId: "bare",
      keepAlive: 0,
      reconnect: false,
    });
    await bare.connect();
    await bare.disconnect();
    assert.equal(seen.length, 2);
    const [a, b] = seen;
    // CONNECT: type 1, flags 0000.
    assert.equal(a!.first, 0x10);
    assert.equal(b!.first, 0x10);
    // clean | will flag | will QoS 1 | password | user name
    assert.equal(a!.flags, 0x02 | 0x04 | 0x08 | 0x40 | 0x80);
    // clean only: no will QoS, no will retain, no user name, no password
    assert.equal(b!.flags, 0x02);
    const p = a!.packet;
    assert.ok(p.type === "connect");
    assert.equal(p.protocolVersion, version);
    assert.equal(p.clientId, "cid-é");
    assert.equal(p.username, "user-ü");
    assert.equal(dec.decode(p.password), "secret");
    assert.equal(p.will?.topic, "will/é");
    assert.equal(dec.decode(p.will?.payload), "bye");
    assert.equal(p.will?.qos, 1);
    if (version === 5) {
      assert.deepEqual(p.properties?.userProperties, [["k", "v"]]);
    }
    const q = b!.packet;
    assert.ok(q.type === "connect");
    assert.equal(q.will, undefined);
    assert.equal(q.username, undefined);
    assert.equal(q.password, undefined);
  });

  Deno.test(`MQTT ${v} client: QoS 0, 1 and 2 as sender: packet ids non-zero and unused, DUP 0, unacknowledged until PUBACK / PUBREC, PUBREL with the id until PUBCOMP v3:[MQTT-2.3.1-1] v3:[MQTT-2.3.1-2] v3:[MQTT-2.3.1-5] v3:[MQTT-2.3.1-6] v3:[MQTT-3.3.2-1] v3:[MQTT-3.3.1-2] v3:[MQTT-4.3.1-1] v3:[MQTT-4.3.2-1] v3:[MQTT-4.3.3-1] v5:[MQTT-2.2.1-2] v5:[MQTT-2.2.1-3] v5:[MQTT-2.2.1-5] v5:[MQTT-3.3.2-1] v5:[MQTT-3.3.1-2] v5:[MQTT-4.3.1-1] v5:[MQTT-4.3.2-1] v5:[MQTT-4.3.2-2] v5:[MQTT-4.3.2-3] v5:[MQTT-4.3.3-1] v5:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-3] v5:[MQTT-4.3.3-4] v5:[MQTT-4.3.3-5] v5:[MQTT-3.6.2-1] v5:[MQTT-2.2.2-1] v5:[MQTT-4.12.0-7]`, async () => {
    const acked = { q1: false };
    const seen = Promise.withResolvers<Packet[]>();
    await using broker = new FakeBroker(async (c) => {
      await accept(c, version);
      const p0 = await c.next("publish");
      const a = await c.next("publish");
      const b = await c.next("publish");
      acked.q1 = true;
      await c.send({ type: "puback", packetId: a.packetId! });
      await c.send({ type: "puback", packetId: b.packetId! });
      const q2 = await c.next("publish");
      await c.send({ type: "pubrec", packetId: q2.packetId! });
      const rel = await c.next("pubrel");
      await c.send({ type: "pubcomp", packetId: q2.packetId! });
      seen.resolve([p0, a, b, q2, rel, ...c.packets]);
      await c.next("disconnect").catch(() => {});
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      keepAlive: 0,
      reconnect: false,
    });
    await client.connect();
    await client.publish("t0", "zero", 0);
    const q1 = [
      client.publish("t1", "one", 1),
      client.publish("t1", "uno", 1),
    ];
    await within(Promise.all(q1), 3000, "PUBACKs");
    assert.ok(acked.q1, "not complete before the PUBACKs");
    await within(client.publish("t2", "two", 2), 3000, "PUBCOMP");
    const [p0, a, b, q2, rel, ...all] = await within(
      seen.promise,
      3000,
      "the packets",
    );
    assert.ok(p0!.type === "publish" && a!.type === "publish");
    assert.ok(b!.type === "publish" && q2!.type === "publish");
    assert.ok(rel!.type === "pubrel");
    assert.equal(p0.topic, "t0");
    assert.equal(p0.qos, 0);
    assert.equal(p0.dup, false);
    assert.equal(p0.packetId, undefined);
    for (const p of [a, b]) {
      assert.equal(p.qos, 1);
      assert.equal(p.dup, false);
      assert.ok(p.packetId! > 0);
    }
    assert.notEqual(a.packetId, b.packetId, "both in flight: distinct ids");
    assert.equal(q2.qos, 2);
    assert.equal(q2.dup, false);
    assert.ok(q2.packetId! > 0);
    assert.equal(rel.packetId, q2.packetId);
    assert.equal(rel.reasonCode ?? 0, 0);
    assert.ok(!all.some((x) => x.type === "auth"));
    await client.disconnect();
  });

  Deno.test(`MQTT ${v} client: QoS 0, 1 and 2 as receiver: every PUBLISH acknowledged per its QoS and in arrival order, subscribed or not; a packet id is new again after PUBACK / PUBCOMP; U+FEFF kept v3:[MQTT-1.5.3-3] v3:[MQTT-3.3.4-1] v3:[MQTT-2.3.1-6] v3:[MQTT-4.3.2-2] v3:[MQTT-4.3.3-2] v3:[MQTT-4.5.0-2] v3:[MQTT-4.6.0-2] v3:[MQTT-4.6.0-3] v5:[MQTT-1.5.4-3] v5:[MQTT-3.3.4-1] v5:[MQTT-2.2.1-5] v5:[MQTT-4.3.2-4] v5:[MQTT-4.3.2-5] v5:[MQTT-4.3.3-8] v5:[MQTT-4.3.3-11] v5:[MQTT-4.3.3-12] v5:[MQTT-4.5.0-2] v5:[MQTT-4.6.0-2] v5:[MQTT-4.6.0-3] v5:[MQTT-3.4.2-1] v5:[MQTT-3.5.2-1] v5:[MQTT-3.7.2-1]`, async () => {
    const done = Promise.withResolvers<Packet[]>();
    await using broker = new FakeBroker(async (c) => {
      await accept(c, version);
      const sub = await c.next("subscribe");
      await c.send({
        type: "suback",
        packetId: sub.packetId,
        reasonCodes: version === 5 ? [2, 2] : [2, 2],
      });
      await c.send(publish("\ufeffr", 0));
      for (const id of [10, 11, 12]) await c.send(publish("r", 1, id));
      await c.send(publish("not/subscribed", 1, 13));
      for (const id of [20, 21]) await c.send(publish("r", 2, id));
      for (const id of [20, 21]) {
        await c.next("pubrec");
        await c.send({ type: "pubrel", packetId: id });
      }
      await c.next("pubcomp");
      await c.next("pubcomp");
      // The same ids again: new messages now.
      await c.send(publish("r", 1, 10, "again"));
      await c.send(publish("r", 2, 20, "again"));
      await c.next("pubrec");
      await c.send({ type: "pubrel", packetId: 20 });
      await c.next("pubcomp");
      done.resolve(
        c.packets.filter((p) =>
          ["puback", "pubrec", "pubcomp"].includes(p.type)
        ),
      );
      await c.next("disconnect").catch(() => {});
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      keepAlive: 0,
      reconnect: false,
    });
    const got: string[] = [];
    client.onMessage((m: Message) => {
      got.push(`${m.topic}:${m.payloadText}`);
    });
    await client.connect();
    await client.subscribe(["r", "\ufeffr"], 2);
    const acks = await within(done.promise, 3000, "acknowledgements");
    assert.deepEqual(
      acks.map((p) =>
        `${p.type} ${"packetId" in p ? p.packetId : ""} ${
          "reasonCode" in p ? p.reasonCode ?? 0 : 0
        }`
      ),
      [
        "puback 10 0",
        "puback 11 0",
        "puback 12 0",
        "puback 13 0",
        "pubrec 20 0",
        "pubrec 21 0",
        "pubcomp 20 0",
        "pubcomp 21 0",
        "puback 10 0",
        "pubrec 20 0",
        "pubcomp 20 0",
      ],
    );
    assert.deepEqual(got.filter((g) => g.endsWith("again")), [
      "r:again",
      "r:again",
    ]);
    assert.ok(got.includes("\ufeffr:x"));
    await client.disconnect();
  });

  Deno.test(`MQTT ${v} client: PUBRELs go out in the order the PUBRECs arrive v3:[MQTT-4.6.0-4] v5:[MQTT-4.6.0-4]`, async () => {
    const order = Promise.withResolvers<number[]>();
    await using broker = new FakeBroker(async (c) => {
      await accept(c, version);
      const a = await c.next("publish");
      const b = await c.next("publish");
      await c.send({ type: "pubrec", packetId: b.packetId! });
      await c.send({ type: "pubrec", packetId: a.packetId! });
      const r1 = await c.next("pubrel");
      const r2 = await c.next("pubrel");
      order.resolve([r1.packetId, r2.packetId, b.packetId!, a.packetId!]);
      await c.send({ type: "pubcomp", packetId: r1.packetId });
      await c.send({ type: "pubcomp", packetId: r2.packetId });
      await c.next("disconnect").catch(() => {});
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      keepAlive: 0,
      reconnect: false,
    });
    await client.connect();
    const sent = [client.publish("a", "1", 2), client.publish("b", "2", 2)];
    const [r1, r2, b, a] = await within(order.promise, 3000, "PUBRELs");
    assert.deepEqual([r1, r2], [b, a]);
    await within(Promise.all(sent), 3000, "PUBCOMPs");
    await client.disconnect();
  });

  Deno.test(`MQTT ${v} client: with a session present, unacknowledged PUBLISHes go again in their order, DUP 1, same packet ids v3:[MQTT-4.6.0-1] v3:[MQTT-4.4.0-1] v3:[MQTT-3.3.1-1] v3:[MQTT-2.3.1-3] v3:[MQTT-3.1.2-4] v3:[MQTT-3.1.3-2] v3:[MQTT-4.1.0-1] v3:[MQTT-4.1.0-2] v5:[MQTT-4.6.0-1] v5:[MQTT-4.4.0-1] v5:[MQTT-3.3.1-1] v5:[MQTT-3.1.2-23] v5:[MQTT-3.1.3-2] v5:[MQTT-4.1.0-1]`, async () => {
    const first: PublishPacket[] = [];
    const again = Promise.withResolvers<PublishPacket[]>();
    await using broker = new FakeBroker(async (c, i) => {
      const connect = await c.next("connect");
      assert.ok(connect.type === "connect");
      assert.equal(connect.clientId, "keeper");
      if (i > 0) assert.equal(connect.cleanStart, false);
      await c.send(
        version === 5
          ? {
            type: "connack",
            sessionPresent: i > 0,
            reasonCode: 0,
            properties: {},
          }
          : { type: "connack", sessionPresent: i > 0, reasonCode: 0 },
      );
      if (i === 0) {
        for (let n = 0; n < 3; n++) first.push(await c.next("publish"));
        c.close();
        return;
      }
      const list: PublishPacket[] = [];
      for (let n = 0; n < 3; n++) list.push(await c.next("publish"));
      again.resolve(list);
      for (const p of list) {
        await c.send({ type: "puback", packetId: p.packetId! });
      }
      await c.next("disconnect").catch(() => {});
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      clientId: "keeper",
      keepAlive: 0,
      reconnect: FAST,
      ...(version === 5
        ? { cleanStart: false, sessionExpiryInterval: 60 }
        : { cleanSession: false }),
    });
    await client.connect();
    const sent = ["a", "b", "c"].map((t) => client.publish(t, t, 1));
    const list = await within(again.promise, 3000, "the resent PUBLISHes");
    assert.deepEqual(list.map((p) => p.topic), ["a", "b", "c"]);
    assert.deepEqual(list.map((p) => p.dup), [true, true, true]);
    assert.deepEqual(
      list.map((p) => p.packetId),
      first.map((p) => p.packetId),
    );
    await within(Promise.all(sent), 3000, "PUBACKs");
    await client.disconnect();
  });

  Deno.test(`MQTT ${v} client: disconnect() sends DISCONNECT, then nothing more, and closes the connection v3:[MQTT-3.14.4-1] v3:[MQTT-3.14.4-2] v5:[MQTT-3.14.4-1] v5:[MQTT-3.14.4-2] v5:[MQTT-3.14.2-1]`, async () => {
    const last = Promise.withResolvers<Packet[]>();
    await using broker = new FakeBroker(async (c) => {
      await accept(c, version);
      await c.next("disconnect");
      await c.closed();
      last.resolve(c.packets);
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      keepAlive: 1,
      reconnect: false,
    });
    await client.connect();
    await client.disconnect();
    const packets = await within(last.promise, 3000, "the close");
    const d = packets.at(-1)!;
    assert.equal(d.type, "disconnect");
    if (d.type === "disconnect") assert.equal(d.reasonCode ?? 0, 0);
  });

  Deno.test(`MQTT ${v} client: keep alive 1 s with nothing to send: PINGREQ in time v3:[MQTT-3.1.2-23] v5:[MQTT-3.1.2-20]`, async () => {
    const ping = Promise.withResolvers<void>();
    await using broker = new FakeBroker(async (c) => {
      await accept(c, version);
      await c.next("pingreq", 1600);
      ping.resolve();
      await c.send({ type: "pingresp" });
      await c.next("disconnect").catch(() => {});
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      keepAlive: 1,
      reconnect: false,
    });
    await client.connect();
    await within(ping.promise, 3000, "the PINGREQ");
    await client.disconnect();
  });

  Deno.test(`MQTT ${v} client: a PUBLISH with QoS 3 from the broker closes the connection v3:[MQTT-3.3.1-4] v3:[MQTT-4.8.0-1] v5:[MQTT-3.3.1-4]`, async () => {
    await using broker = new FakeBroker(async (c) => {
      await accept(c, version);
      // PUBLISH QoS 3 | topic "t" | id 1
      await c.sendRaw(new Uint8Array([0x36, 5, 0, 1, 0x74, 0, 1]));
      await c.closed();
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      keepAlive: 0,
      reconnect: false,
    });
    const gone = Promise.withResolvers<void>();
    client.on("disconnect", () => gone.resolve());
    await client.connect();
    await within(gone.promise, 3000, "the client to drop the connection");
    await client.close();
  });

  Deno.test(`MQTT ${v} client: topic names without wildcards, filters and names as UTF-8, at most 65,535 bytes v3:[MQTT-4.7.1-1] v3:[MQTT-3.3.2-2] v3:[MQTT-3.8.3-1] v3:[MQTT-3.10.3-1] v3:[MQTT-4.7.3-3] v5:[MQTT-4.7.0-1] v5:[MQTT-3.3.2-2] v5:[MQTT-3.8.3-1] v5:[MQTT-3.10.3-1] v5:[MQTT-3.8.3-2] v5:[MQTT-3.10.3-2] v5:[MQTT-4.7.3-3]`, async () => {
    const long = "x".repeat(65535);
    const seen = Promise.withResolvers<string>();
    await using broker = new FakeBroker(async (c) => {
      await accept(c, version);
      seen.resolve((await c.next("publish")).topic);
      await c.next("disconnect").catch(() => {});
    }, version);
    const client = new Client({
      port: broker.port,
      protocolVersion: version,
      keepAlive: 0,
      reconnect: false,
    });
    await client.connect();
    const bad = (e: unknown) => e instanceof MqttError;
    await assert.rejects(client.publish("a/+", "x"), bad);
    await assert.rejects(client.publish("a/#", "x"), bad);
    await assert.rejects(client.publish(long + "x", "x"), bad);
    await assert.rejects(client.subscribe("a\ud800"), bad);
    await assert.rejects(client.unsubscribe("a\udc00"), bad);
    await assert.rejects(client.subscribe([]), bad);
    await assert.rejects(client.unsubscribe([]), bad);
    await client.publish(long, "x");
    assert.equal(await within(seen.promise, 3000, "the PUBLISH"), long);
    await client.disconnect();
  });
}

// ------------------------------------------------------------------ 5.0 only

function connack5(properties: Properties): Packet {
  return { type: "connack", sessionPresent: false, reasonCode: 0, properties };
}

Deno.test("MQTT 5.0 client: the Server Keep Alive replaces the Keep Alive it asked for [MQTT-3.1.2-21] [MQTT-3.2.2-21]", async () => {
  const ping = Promise.withResolvers<void>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({ serverKeepAlive: 1 }));
    await c.next("pingreq", 1600);
    ping.resolve();
    await c.send({ type: "pingresp" });
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 600,
    reconnect: false,
  });
  await client.connect();
  await within(ping.promise, 3000, "the PINGREQ");
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: a PUBLISH over the broker's Maximum Packet Size is refused, not sent [MQTT-3.2.2-15]", async () => {
  const seen = Promise.withResolvers<string>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({ maximumPacketSize: 64 }));
    seen.resolve((await c.next("publish")).topic);
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  await assert.rejects(
    client.publish("big", new Uint8Array(100)),
    (e: unknown) => e instanceof PacketTooLargeError,
  );
  await client.publish("small", "x");
  assert.equal(await within(seen.promise, 3000, "the PUBLISH"), "small");
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: topic aliases only up to the broker's Topic Alias Maximum, none without one, never 0, none carried to a new connection [MQTT-3.2.2-18] [MQTT-3.3.2-7] [MQTT-3.2.2-17] [MQTT-3.3.2-8] [MQTT-3.3.2-9]", async () => {
  const seen = Promise.withResolvers<[string, number | undefined][][]>();
  const all: [string, number | undefined][][] = [];
  await using broker = new FakeBroker(async (c, i) => {
    await c.next("connect");
    await c.send(connack5(i === 1 ? {} : { topicAliasMaximum: 1 }));
    const got: [string, number | undefined][] = [];
    for (let n = 0; n < 3; n++) {
      const p = await c.next("publish");
      got.push([p.topic, p.properties?.topicAlias]);
    }
    all.push(got);
    if (i < 2) c.close();
    else {
      seen.resolve(all);
      await c.next("disconnect").catch(() => {});
    }
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: FAST,
    autoTopicAliases: true,
  });
  const connects: (() => void)[] = [];
  client.on("connect", () => connects.shift()?.());
  const connected = () => new Promise<void>((r) => connects.push(r));
  await client.connect();
  let next = connected();
  for (const t of ["a", "a", "b"]) await client.publish(t, "x");
  for (const round of [1, 2]) {
    await within(next, 3000, `connection ${round}`);
    next = connected();
    for (const t of ["a", "a", "b"]) await client.publish(t, "x");
  }
  const [first, noMax, third] = await within(seen.promise, 3000, "publishes");
  // One alias at most (reused for b), set with its topic, then alone.
  assert.deepEqual(first, [["a", 1], ["", 1], ["b", 1]]);
  // No Topic Alias Maximum: full topics, no alias.
  assert.deepEqual(noMax, [["a", undefined], ["a", undefined], [
    "b",
    undefined,
  ]]);
  // A new connection starts without aliases: the topic is sent again.
  assert.deepEqual(third, [["a", 1], ["", 1], ["b", 1]]);
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: Response Topic, Content Type and user properties go out as UTF-8 strings [MQTT-3.3.2-13] [MQTT-3.3.2-19] [MQTT-1.5.7-1]", async () => {
  const seen = Promise.withResolvers<Properties | undefined>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({}));
    // The scripted broker's decoder refuses strings that are not UTF-8.
    seen.resolve((await c.next("publish")).properties);
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  const properties: Properties = {
    responseTopic: "réponse/é",
    contentType: "text/plain; charset=ütf-8",
    userProperties: [["clé", "välue"]],
  };
  await client.publish("t", "x", { qos: 0, properties });
  assert.deepEqual(await within(seen.promise, 3000, "the PUBLISH"), properties);
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: at the broker's Receive Maximum only PUBLISH waits: SUBSCRIBE goes out and an incoming PUBLISH is acknowledged [MQTT-3.3.4-8] [MQTT-4.9.0-3]", async () => {
  const order = Promise.withResolvers<string[]>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({ receiveMaximum: 1 }));
    const first = await c.next("publish");
    // Quota used up: the SUBSCRIBE still comes, the PUBLISH is acknowledged.
    const sub = await c.next("subscribe");
    await c.send({ type: "suback", packetId: sub.packetId, reasonCodes: [0] });
    await c.send(publish("in", 1, 9));
    await c.next("puback");
    const log = c.packets.map((p) => p.type === "publish" ? p.topic : p.type);
    await c.send({ type: "puback", packetId: first.packetId! });
    const second = await c.next("publish");
    await c.send({ type: "puback", packetId: second.packetId! });
    order.resolve(log);
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  const p1 = client.publish("one", "1", 1);
  const p2 = client.publish("two", "2", 1);
  await client.subscribe("in", 1);
  const log = await within(order.promise, 3000, "the exchange");
  assert.deepEqual(log, ["connect", "one", "subscribe", "puback"]);
  await within(Promise.all([p1, p2]), 3000, "PUBACKs");
  await client.disconnect();
});

for (
  const [what, bytes, ids] of [
    [
      "a DISCONNECT with a reserved bit set",
      new Uint8Array([0xe1, 0]),
      "[MQTT-3.14.1-1]",
    ],
    [
      "an AUTH with a reserved bit set",
      new Uint8Array([0xf1, 0]),
      "[MQTT-3.15.1-1]",
    ],
  ] as const
) {
  Deno.test(`MQTT 5.0 client: ${what} from the broker: DISCONNECT 0x81, closed ${ids}`, async () => {
    const seen = Promise.withResolvers<Packet[]>();
    await using broker = new FakeBroker(async (c) => {
      await c.next("connect");
      await c.send(connack5({}));
      await c.sendRaw(bytes);
      await c.closed();
      seen.resolve(c.packets);
    });
    const client = new Client({
      port: broker.port,
      keepAlive: 0,
      reconnect: false,
    });
    await client.connect();
    const packets = await within(seen.promise, 3000, "the close");
    const last = packets.at(-1)!;
    assert.equal(last.type, "disconnect");
    if (last.type === "disconnect") {
      assert.equal(last.reasonCode, ReasonCode.MalformedPacket);
    }
    await client.close();
  });
}

Deno.test("MQTT 5.0 client: a QoS 2 message that expired meanwhile still gets its PUBREC and PUBCOMP [MQTT-4.3.3-13]", async () => {
  const done = Promise.withResolvers<Packet>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({}));
    const m = publish("t", 2, 4);
    m.properties = { messageExpiryInterval: 1 };
    await c.send(m);
    await c.next("pubrec");
    await c.send({ type: "pubrel", packetId: 4 });
    done.resolve(await c.next("pubcomp"));
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  const comp = await within(done.promise, 3000, "PUBCOMP");
  assert.ok(comp.type === "pubcomp");
  assert.equal(comp.packetId, 4);
  assert.equal(comp.reasonCode ?? 0, 0);
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: a DISCONNECT of 0x80 or more from the broker ends the connection; so does a CONNACK of 0x80 or more [MQTT-4.13.2-1]", async () => {
  await using broker = new FakeBroker(async (c, i) => {
    await c.next("connect");
    if (i === 0) {
      await c.send(connack5({}));
      await c.send({ type: "disconnect", reasonCode: ReasonCode.ServerBusy });
    } else {
      await c.send({
        type: "connack",
        sessionPresent: false,
        reasonCode: ReasonCode.ServerBusy,
        properties: {},
      });
    }
    await c.closed().catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  const gone = Promise.withResolvers<number>();
  client.on("disconnect", (e) => gone.resolve(e.reasonCode));
  await client.connect();
  assert.equal(
    await within(gone.promise, 3000, "the end"),
    ReasonCode.ServerBusy,
  );
  assert.equal(client.connected, false);
  await assert.rejects(
    client.connect(),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.ServerBusy,
  );
  assert.equal(client.connected, false);
  await client.close();
});

Deno.test("MQTT 5.0 client: a PUBLISH never carries a Subscription Identifier, even one passed in from a received message [MQTT-3.3.4-6]", async () => {
  const seen = Promise.withResolvers<Properties | undefined>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({}));
    seen.resolve((await c.next("publish")).properties);
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  await client.publish("t", "x", {
    qos: 0,
    properties: { subscriptionIdentifiers: [3, 4], contentType: "a/b" },
  });
  assert.deepEqual(await within(seen.promise, 3000, "the PUBLISH"), {
    contentType: "a/b",
  });
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: nothing above the broker's Maximum QoS, nothing retained without Retain Available [MQTT-3.2.2-11] [MQTT-3.2.2-14]", async () => {
  const seen = Promise.withResolvers<string>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({ maximumQoS: 1, retainAvailable: 0 }));
    const p = await c.next("publish");
    await c.send({ type: "puback", packetId: p.packetId! });
    seen.resolve(`${p.topic} q${p.qos} r${p.retain}`);
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  await assert.rejects(
    client.publish("q2", "x", 2),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.QoSNotSupported,
  );
  await assert.rejects(
    client.publish("kept", "x", { qos: 0, retain: true }),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.RetainNotSupported,
  );
  await client.publish("ok", "x", 1);
  assert.equal(await within(seen.promise, 3000, "the PUBLISH"), "ok q1 rfalse");
  await client.disconnect();
});

Deno.test("MQTT 3.1.1 client: an empty client identifier goes with Clean Session 1 [MQTT-3.1.3-7]", async () => {
  const seen = Promise.withResolvers<Packet>();
  await using broker = new FakeBroker(async (c) => {
    seen.resolve(await c.next("connect"));
    await c.send({ type: "connack", sessionPresent: false, reasonCode: 0 });
    await c.next("disconnect").catch(() => {});
  }, 4);
  const client = new Client({
    port: broker.port,
    protocolVersion: 4,
    clientId: "",
    cleanSession: false,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  const connect = await within(seen.promise, 3000, "the CONNECT");
  assert.ok(connect.type === "connect");
  assert.equal(connect.clientId, "");
  assert.equal(connect.cleanStart, true);
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: Session Present 1 in answer to Clean Start 1 closes the connection [MQTT-3.2.2-4]", async () => {
  const closed = Promise.withResolvers<void>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send({
      type: "connack",
      sessionPresent: true,
      reasonCode: 0,
      properties: {},
    });
    await c.closed();
    closed.resolve();
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await assert.rejects(
    client.connect(),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.ProtocolError,
  );
  await within(closed.promise, 3000, "the client to close");
  assert.equal(client.connected, false);
  await client.close();
});

Deno.test("MQTT 5.0 client: subscribe() refuses No Local on a shared subscription instead of sending it [MQTT-3.8.3-4]", async () => {
  const seen = Promise.withResolvers<string[]>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({}));
    const sub = await c.next("subscribe");
    await c.send({ type: "suback", packetId: sub.packetId, reasonCodes: [0] });
    seen.resolve(sub.subscriptions.map((x) => x.filter));
    await c.next("disconnect").catch(() => {});
  });
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
  });
  await client.connect();
  await assert.rejects(
    client.subscribe("$share/g/t", { qos: 0, noLocal: true }),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.ProtocolError,
  );
  await client.subscribe("t", { qos: 0, noLocal: true });
  assert.deepEqual(await within(seen.promise, 3000, "the SUBSCRIBE"), ["t"]);
  await client.disconnect();
});

Deno.test("MQTT 5.0 client: disconnect() leaves out a Reason String and User Properties that would pass the broker's Maximum Packet Size [MQTT-3.14.2-3] [MQTT-3.14.2-4]", async () => {
  const seen: Packet[] = [];
  const both = counter(2);
  await using broker = new FakeBroker(async (c, i) => {
    await c.next("connect");
    await c.send(connack5(i === 0 ? { maximumPacketSize: 30 } : {}));
    seen[i] = await c.next("disconnect");
    both.next();
  });
  const options = {
    reasonString: "going away for a while, see you",
    userProperties: [["why", "maintenance"]] as [string, string][],
  };
  for (let i = 0; i < 2; i++) {
    const client = new Client({
      port: broker.port,
      keepAlive: 0,
      reconnect: false,
    });
    await client.connect();
    await client.disconnect(options);
  }
  await within(both.promise, 3000, "both DISCONNECTs");
  const [small, roomy] = seen;
  assert.ok(small!.type === "disconnect" && roomy!.type === "disconnect");
  assert.equal(small.properties, undefined);
  assert.equal(roomy.properties?.reasonString, options.reasonString);
  assert.deepEqual(roomy.properties?.userProperties, options.userProperties);
});

Deno.test("MQTT 5.0 client: a re-authentication its auth callback fails ends with the connection closed [MQTT-4.12.1-2]", async () => {
  const closed = Promise.withResolvers<void>();
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send(connack5({ authenticationMethod: "TOY" }));
    await c.next("auth");
    await c.send({
      type: "auth",
      reasonCode: ReasonCode.ContinueAuthentication,
      properties: { authenticationMethod: "TOY" },
    });
    await c.closed();
    closed.resolve();
  });
  let calls = 0;
  const client = new Client({
    port: broker.port,
    keepAlive: 0,
    reconnect: false,
    authenticationMethod: "TOY",
    auth: () => {
      calls++;
      throw new Error("no credentials any more");
    },
  });
  await client.connect();
  await assert.rejects(
    client.reauthenticate(),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.NotAuthorized,
  );
  await within(closed.promise, 3000, "the client to close");
  assert.equal(calls, 1);
  assert.equal(client.connected, false);
  await client.close();
});
