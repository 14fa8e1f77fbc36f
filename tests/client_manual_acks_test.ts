/**
 * The client's `manualAcks` (received QoS 1/2 messages acknowledged by
 * `Message.ack()`) and its publish trackers (`PublishOptions.tracker` and
 * `resume`: a QoS 1/2 publish kept durable by the application and resumed
 * after a restart), against Mosquitto and Kite's broker, and `ClientState`
 * rows for the protocol decisions.
 */

import assert from "node:assert/strict";
import {
  Client,
  ClientState,
  type Message,
  type PublishEntry,
  type PublishTracker,
} from "../client/mod.ts";
import type { PublishPacket } from "../codec/mod.ts";
import {
  type BrokerTarget,
  FakeBroker,
  MOSQUITTO,
  TARGETS,
  targetTest,
  TcpProxy,
  type TestBroker,
  within,
} from "./client_helpers.ts";

const clients: Client[] = [];

function client(
  broker: { port: number },
  options: ConstructorParameters<typeof Client>[0] = {},
): Client {
  const c = new Client({ port: broker.port, reconnect: false, ...options });
  c.on("error", () => {});
  clients.push(c);
  return c;
}

function test(
  target: BrokerTarget,
  name: string,
  fn: (broker: TestBroker) => Promise<void>,
): void {
  targetTest(target, name, fn, {}, async () => {
    for (const c of clients.splice(0)) await c.close();
  });
}

/**
 * Messages a client receives, and a bounded wait for the next ones (after
 * those `next()` returned before).
 */
function inbox(c: Client): {
  got: Message[];
  next(n?: number): Promise<Message[]>;
} {
  const got: Message[] = [];
  let taken = 0;
  let wake: (() => void) | undefined;
  c.onMessage((m) => {
    got.push(m);
    wake?.();
  });
  return {
    got,
    async next(n = 1) {
      const want = taken + n;
      while (got.length < want) {
        await within(
          new Promise<void>((r) => wake = r),
          5000,
          `${want} messages (got ${got.length})`,
        );
      }
      taken = want;
      return got.slice(want - n, want);
    },
  };
}

function persistent(version: 4 | 5, clientId: string) {
  return {
    clientId,
    protocolVersion: version,
    cleanStart: false,
    ...(version === 5 ? { sessionExpiryInterval: 300 } : {}),
  };
}

const publish = (topic: string, qos: 0 | 1 | 2): PublishPacket => ({
  type: "publish",
  topic,
  payload: new Uint8Array(),
  qos,
  retain: false,
  dup: false,
  packetId: 7,
});

Deno.test("ClientState with manualAcks sends no PUBACK/PUBREC on receipt; a QoS 2 resend waits for ackQos2(), then is acknowledged at once v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-10]", () => {
  const s = new ClientState({ manualAcks: true });
  assert.deepEqual(s.receivePublish(publish("a", 1)), {
    deliver: true,
    ack: undefined,
  });
  assert.deepEqual(s.receivePublish(publish("a", 2)), {
    deliver: true,
    ack: undefined,
  });
  // Resent before the application acknowledged it: not delivered again,
  // not acknowledged yet.
  assert.deepEqual(s.receivePublish({ ...publish("a", 2), dup: true }), {
    deliver: false,
    ack: undefined,
  });
  assert.equal(s.ackQos2(7, 0), true);
  assert.equal(s.ackQos2(7, 0), false, "once");
  const again = s.receivePublish({ ...publish("a", 2), dup: true });
  assert.equal(again.deliver, false);
  assert.deepEqual(again.ack, { type: "pubrec", packetId: 7 });
  // A refusal ends the exchange: the id is free again.
  s.handleAck({ type: "pubrel", packetId: 7 });
  s.receivePublish(publish("b", 2));
  assert.equal(s.ackQos2(7, 0x87), true);
  assert.equal(s.incomingQos2.has(7), false);
  // A new session forgets what was not acknowledged.
  s.receivePublish(publish("c", 2));
  s.onConnack(false, 10);
  assert.equal(s.ackQos2(7, 0), false);
});

Deno.test("ClientState.resume() puts a publish back in flight with its id: resent with DUP, or its PUBREL, when the session is present; new, or complete, when not v3:[MQTT-4.4.0-1] v5:[MQTT-4.4.0-1]", () => {
  const entry = (topic: string): PublishEntry => ({
    kind: "publish",
    packet: {
      type: "publish",
      topic,
      payload: new Uint8Array(),
      qos: 2,
      retain: false,
      dup: false,
    },
    alias: 0,
    stage: 0,
    resolve() {},
    reject() {},
  });
  for (const present of [true, false]) {
    const s = new ClientState();
    const sent = entry("sent");
    const released = entry("released");
    assert.equal(s.resume(sent, 40, false), true);
    assert.equal(s.resume(released, 41, true), true);
    assert.equal(s.resume(entry("x"), 40, false), false, "id in use");
    assert.equal(s.publishesInFlight, 2);
    const again = s.onConnack(present, 10);
    if (present) {
      assert.deepEqual(again.map((r) => r.packet), [
        { ...sent.packet, dup: true, packetId: 40 },
        { type: "pubrel", packetId: 41 },
      ]);
    } else {
      // The broker had the released one; the other goes again as new.
      assert.deepEqual(again.map((r) => r.packet), [
        { ...sent.packet, dup: false, packetId: 40 },
      ]);
      assert.equal(s.publishesInFlight, 1);
    }
    // New ids start after the restored ones.
    const fresh = entry("fresh");
    s.track(fresh);
    assert.equal(fresh.packet.packetId, 42);
  }
});

for (const target of TARGETS) {
  for (const version of [5, 4] as const) {
    const v = version === 5 ? "v5" : "v3.1.1";
    test(
      target,
      `Client with manualAcks: a message not acknowledged comes again after a reconnect, an acknowledged one does not (${v}) v3:[MQTT-4.4.0-1] v5:[MQTT-4.4.0-1]`,
      async (b) => {
        const pub = client(b, { protocolVersion: version });
        await pub.connect();
        const s1 = client(b, {
          ...persistent(version, "ma"),
          manualAcks: true,
        });
        const in1 = inbox(s1);
        await s1.connect();
        await s1.subscribe("ma/#", 2);
        await pub.publish("ma/1", "one", 1);
        await pub.publish("ma/2", "two", 2);
        const first = await in1.next(2);
        assert.deepEqual(first.map((m) => m.topic), ["ma/1", "ma/2"]);
        await s1.close(); // neither acknowledged

        const s2 = client(b, {
          ...persistent(version, "ma"),
          manualAcks: true,
        });
        const in2 = inbox(s2);
        assert.equal((await s2.connect()).sessionPresent, true);
        const again = await in2.next(2);
        assert.deepEqual(again.map((m) => [m.topic, m.payloadText]), [
          ["ma/1", "one"],
          ["ma/2", "two"],
        ]);
        for (const m of again) m.ack();
        await pub.publish("ma/3", "three", 1);
        (await in2.next())[0]!.ack();
        await s2.disconnect();

        // Everything was acknowledged: nothing comes again before a marker.
        const s3 = client(b, persistent(version, "ma"));
        const in3 = inbox(s3);
        await s3.connect();
        await pub.publish("ma/marker", "m", 1);
        const after = await in3.next();
        assert.deepEqual(in3.got.map((m) => m.topic), ["ma/marker"]);
        assert.equal(after[0]!.topic, "ma/marker");
      },
    );
  }

  test(
    target,
    "Client with manualAcks: a QoS 2 message acknowledged while the connection is down is acknowledged on the next one, and delivered once v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-10]",
    async (b) => {
      await using proxy = new TcpProxy(b.port);
      const pub = client(b);
      await pub.connect();
      const sub = new Client({
        port: proxy.port,
        ...persistent(5, "ma-q2"),
        manualAcks: true,
        reconnect: { initialDelay: 20, maxDelay: 50 },
      });
      sub.on("error", () => {});
      clients.push(sub);
      const box = inbox(sub);
      await sub.connect();
      await sub.subscribe("q2/#", 2);
      await pub.publish("q2/a", "a", 2);
      const [m] = await box.next();
      const down = Promise.withResolvers<void>();
      const up = Promise.withResolvers<void>();
      sub.on("disconnect", () => down.resolve());
      sub.on("connect", () => up.resolve());
      await proxy.dropAll();
      await within(down.promise, 5000, "the connection to drop");
      m!.ack(); // offline: its PUBREC goes when the broker resends it
      await within(up.promise, 5000, "the reconnect");
      await pub.publish("q2/marker", "m", 2);
      (await box.next())[0]!.ack();
      // A barrier: the SUBACK comes after the broker handled the PUBREC.
      await sub.subscribe("q2/barrier", 0);
      assert.deepEqual(box.got.map((x) => x.topic), ["q2/a", "q2/marker"]);
      await sub.disconnect();
      // Completed: not sent again to the session.
      const again = client(b, persistent(5, "ma-q2"));
      const box2 = inbox(again);
      await again.connect();
      await pub.publish("q2/marker2", "m", 1);
      await box2.next();
      assert.deepEqual(box2.got.map((x) => x.topic), ["q2/marker2"]);
    },
  );
}

/** A tracker that records what it is told. */
class Recorder implements PublishTracker {
  events: string[] = [];
  hold: Promise<void> | undefined;
  holdReceived: Promise<void> | undefined;
  onReceived: (() => void) | undefined;
  sent(packetId: number): Promise<void> | undefined {
    this.events.push(`sent ${packetId}`);
    return this.hold;
  }
  received(packetId: number): Promise<void> | undefined {
    this.events.push(`received ${packetId}`);
    this.onReceived?.();
    return this.holdReceived;
  }
  done(error: Error | undefined): void {
    this.events.push(error === undefined ? "done" : `failed ${error.message}`);
  }
}

test(
  MOSQUITTO,
  "Client publish tracker: sent with the packet id, received at PUBREC, done at PUBCOMP; a promise from sent() holds the PUBLISH, one from received() the PUBREL",
  async (b) => {
    const sub = client(b);
    const box = inbox(sub);
    await sub.connect();
    await sub.subscribe("tr/#", 2);
    const pub = client(b);
    await pub.connect();
    const t = new Recorder();
    const gate = Promise.withResolvers<void>();
    t.hold = gate.promise;
    const held = pub.publish("tr/held", "h", { qos: 2, tracker: t });
    // Not held: a QoS 1 message written after it arrives first.
    await pub.publish("tr/marker", "m", 1);
    await box.next();
    assert.deepEqual(box.got.map((m) => m.topic), ["tr/marker"]);
    assert.equal(t.events.length, 1);
    const id = Number(t.events[0]!.split(" ")[1]);
    gate.resolve();
    await held;
    await box.next();
    assert.deepEqual(t.events, [`sent ${id}`, `received ${id}`, "done"]);
    assert.deepEqual(box.got.map((m) => m.topic), ["tr/marker", "tr/held"]);

    // A promise from received() holds the PUBREL (Mosquitto delivers a
    // QoS 2 message when it is released).
    const t2 = new Recorder();
    const gate2 = Promise.withResolvers<void>();
    t2.holdReceived = gate2.promise;
    const released = Promise.withResolvers<void>();
    t2.onReceived = () => released.resolve();
    const second = pub.publish("tr/rel", "r", { qos: 2, tracker: t2 });
    await within(released.promise, 5000, "the PUBREC");
    await pub.publish("tr/marker2", "m", 1);
    await box.next();
    assert.deepEqual(box.got.map((m) => m.topic).slice(2), ["tr/marker2"]);
    gate2.resolve();
    await second;
    await box.next();
    assert.deepEqual(box.got.map((m) => m.topic).slice(2), [
      "tr/marker2",
      "tr/rel",
    ]);
    assert.deepEqual(t2.events.map((e) => e.split(" ")[0]), [
      "sent",
      "received",
      "done",
    ]);
  },
);

test(
  MOSQUITTO,
  "Client publish resume: a QoS 2 message whose PUBREC came before the client stopped is released by a new client with its id, and delivered once v3:[MQTT-4.3.3-2] v5:[MQTT-4.3.3-10]",
  async (b) => {
    const sub = client(b);
    const box = inbox(sub);
    await sub.connect();
    await sub.subscribe("rs/#", 2);
    // First run: stops at the PUBREC, before its PUBREL is written.
    const first = client(b, persistent(5, "resumer"));
    await first.connect();
    const t = new Recorder();
    t.onReceived = () => void first.close();
    await assert.rejects(first.publish("rs/a", "a", { qos: 2, tracker: t }));
    assert.deepEqual(t.events.map((e) => e.split(" ")[0]), [
      "sent",
      "received",
    ]);
    const id = Number(t.events[0]!.split(" ")[1]);
    // Mosquitto delivers a QoS 2 message at its PUBREL: not yet.
    // Second run: the PUBREL is resent with that id.
    const second = client(b, persistent(5, "resumer"));
    const t2 = new Recorder();
    const done = second.publish("rs/a", "a", {
      qos: 2,
      tracker: t2,
      resume: { packetId: id, released: true },
    });
    await assert.rejects(
      second.publish("rs/b", "b", { qos: 1, resume: { packetId: id } }),
      /in use/,
    );
    assert.equal((await second.connect()).sessionPresent, true);
    await done;
    assert.deepEqual(t2.events, ["done"]);
    await second.publish("rs/marker", "m", 1);
    await box.next(2);
    assert.deepEqual(box.got.map((m) => m.topic), ["rs/a", "rs/marker"]);
    // Resuming while connected is refused.
    await assert.rejects(
      second.publish("rs/c", "c", { qos: 1, resume: { packetId: 9 } }),
      /not connected/,
    );
  },
);

Deno.test("Client publish resume: a QoS 1 message resumed with its id is resent with DUP after a CONNACK with the session present", async () => {
  const seen: PublishPacket[] = [];
  await using broker = new FakeBroker(async (c) => {
    await c.next("connect");
    await c.send({
      type: "connack",
      sessionPresent: true,
      reasonCode: 0,
      properties: {},
    });
    const p = await c.next("publish");
    seen.push(p);
    await c.send({ type: "puback", packetId: p.packetId! });
    await c.next("disconnect").catch(() => {});
  });
  const t = new Recorder();
  const c = new Client({
    port: broker.port,
    reconnect: false,
    cleanStart: false,
  });
  const done = c.publish("a", "x", {
    qos: 1,
    tracker: t,
    resume: { packetId: 300 },
  });
  await c.connect();
  await done;
  await c.disconnect();
  assert.equal(seen.length, 1);
  assert.equal(seen[0]!.packetId, 300);
  assert.equal(seen[0]!.dup, true);
  assert.deepEqual(t.events, ["done"]);
});
