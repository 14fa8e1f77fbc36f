/**
 * The client's features end to end, against each broker target (Mosquitto
 * and Kite's broker), for MQTT 5.0 and 3.1.1 where the feature exists in both.
 */

import assert from "node:assert/strict";
import { Client, ClientOfflineError, type Message } from "../client/mod.ts";
import { MqttError, PacketTooLargeError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { freePort } from "./_mosquitto.ts";
import {
  type BrokerTarget,
  counter,
  type StartOptions,
  TARGETS,
  targetTest,
  type TestBroker,
  within,
} from "./client_helpers.ts";

const enc = new TextEncoder();
const clients: Client[] = [];

function client(
  broker: TestBroker,
  options: ConstructorParameters<typeof Client>[0] = {},
): Client {
  const c = new Client({ port: broker.port, reconnect: false, ...options });
  clients.push(c);
  return c;
}

function test(
  target: BrokerTarget,
  name: string,
  fn: (broker: TestBroker) => Promise<void>,
  start: StartOptions = {},
): void {
  targetTest(target, name, fn, start, async () => {
    for (const c of clients.splice(0)) await c.close();
  });
}

for (const target of TARGETS) {
  for (const version of [5, 4] as const) {
    const v = `v${version === 5 ? "5" : "3.1.1"}`;

    test(
      target,
      `Client.connect() resolves with the CONNACK (${v})`,
      async (b) => {
        const c = client(b, { protocolVersion: version });
        const connack = await c.connect();
        assert.equal(connack.type, "connack");
        assert.equal(connack.reasonCode, 0);
        assert.equal(connack.sessionPresent, false);
        assert.equal(c.connected, true);
        assert.match(c.clientId, /^kite-[0-9a-f]{16}$/);
        await c.disconnect();
        assert.equal(c.connected, false);
      },
    );

    test(
      target,
      `Client.connect() rejects with 0x87 NotAuthorized when refused (${v})`,
      async (b) => {
        const c = client(b, { protocolVersion: version });
        // 3.1.1 return code 5 is mapped to the v5 code 0x87.
        await assert.rejects(c.connect(), (e: unknown) => {
          assert.ok(e instanceof MqttError);
          assert.equal(e.reasonCode, ReasonCode.NotAuthorized);
          return true;
        });
        assert.equal(c.connected, false);
      },
      { refuseAll: true },
    );

    test(
      target,
      `Client.publish() QoS 0/1/2 reach a per-filter handler, onMessage and messages() (${v}) v3:[MQTT-7.0.0-2]`,
      async (b) => {
        const c = client(b, { protocolVersion: version });
        await c.connect();
        const perFilter: Message[] = [];
        const all: Message[] = [];
        const done = counter(6);
        const granted = await c.subscribe("t/+/x", 2, (m) => {
          perFilter.push(m);
          done.next();
        });
        assert.deepEqual(granted, [2]);
        c.onMessage((m) => {
          all.push(m);
          done.next();
        });
        const it = c.messages();
        for (const qos of [0, 1, 2] as const) {
          const r = await c.publish(`t/${qos}/x`, `m${qos}`, { qos });
          assert.equal(r.reasonCode, 0);
        }
        await within(done.promise, 3000, "6 deliveries");
        const iterated: Message[] = [];
        for await (const m of it) {
          iterated.push(m);
          if (iterated.length === 3) break;
        }
        for (const list of [perFilter, all, iterated]) {
          assert.deepEqual(
            list.map((m) => [m.topic, m.payloadText, m.qos, m.retain, m.dup]),
            [
              ["t/0/x", "m0", 0, false, false],
              ["t/1/x", "m1", 1, false, false],
              ["t/2/x", "m2", 2, false, false],
            ],
          );
        }
        await c.disconnect();
      },
    );

    test(target, `Message.json() and retained messages (${v})`, async (b) => {
      const c = client(b, { protocolVersion: version });
      await c.connect();
      await c.publish("r/json", JSON.stringify({ t: 21.5 }), {
        qos: 1,
        retain: true,
      });
      const got = Promise.withResolvers<Message>();
      await c.subscribe("r/#", 1, (m) => got.resolve(m));
      const m = await within(got.promise, 3000, "retained message");
      // A retained message sent on subscribe has RETAIN set v3:[MQTT-3.3.1-8].
      assert.equal(m.retain, true);
      assert.deepEqual(m.json(), { t: 21.5 });
      await c.publish("r/json", "", { qos: 1, retain: true });
      await c.disconnect();
    });

    test(
      target,
      `Client.unsubscribe() stops delivery and removes the handler (${v})`,
      async (b) => {
        const c = client(b, { protocolVersion: version });
        await c.connect();
        const got: string[] = [];
        await c.subscribe(["u/a", "u/b"], 1, (m) => {
          got.push(m.topic);
        });
        const codes = await c.unsubscribe("u/a");
        assert.deepEqual(codes, [0]);
        await c.publish("u/a", "x", 1);
        await c.publish("u/b", "y", 1);
        // u/b arrives after u/a would have (same connection, in order).
        await within(
          (async () => {
            while (!got.includes("u/b")) {
              await new Promise((r) => setTimeout(r, 5));
            }
          })(),
          3000,
          "u/b",
        );
        assert.deepEqual(got, ["u/b"]);
        await c.disconnect();
      },
    );

    test(
      target,
      `Client.subscribe() with several filters resolves with a code per filter (${v})`,
      async (b) => {
        const c = client(b, { protocolVersion: version });
        await c.connect();
        const codes = await c.subscribe(["s/a", "s/b/#", "s/+/c"], 1);
        assert.deepEqual(codes, [1, 1, 1]);
        await assert.rejects(
          c.subscribe("s/#/bad", 1),
          (e: unknown) =>
            e instanceof MqttError &&
            e.reasonCode === ReasonCode.TopicFilterInvalid,
        );
        await c.disconnect();
      },
    );

    test(
      target,
      `Client.close() leaves the will to the broker (${v})`,
      async (b) => {
        const watcher = client(b, { protocolVersion: version });
        await watcher.connect();
        const will = Promise.withResolvers<Message>();
        await watcher.subscribe("will/+", 1, (m) => will.resolve(m));
        const c = client(b, {
          protocolVersion: version,
          will: { topic: "will/x", payload: "gone", qos: 1 },
        });
        await c.connect();
        await c.close();
        const m = await within(will.promise, 3000, "will message");
        assert.equal(m.payloadText, "gone");
        await watcher.disconnect();
      },
    );

    test(
      target,
      `Client.publish() QoS 0 while offline is queued or rejected per option (${v})`,
      async (b) => {
        const c = client(b, {
          protocolVersion: version,
          queueQoS0Offline: false,
        });
        // Not connected at all: closed.
        await assert.rejects(c.publish("a", "x"), ClientOfflineError);
        await c.connect();
        await c.publish("a", "x");
        await c.disconnect();
      },
    );

    test(
      target,
      `Client.subscribe() resubscribes and persistent sessions resume (${v})`,
      async (b) => {
        const id = `kite-persist-${version}-${crypto.randomUUID().slice(0, 8)}`;
        const opts = version === 5
          ? { cleanStart: true, sessionExpiryInterval: 300 }
          : { cleanSession: false };
        const c = client(b, {
          protocolVersion: version,
          clientId: id,
          ...opts,
        });
        await c.connect();
        await c.subscribe("p/#", 1);
        await c.disconnect();
        const c2 = client(b, {
          protocolVersion: version,
          clientId: id,
          ...opts,
          cleanStart: false,
          cleanSession: false,
        });
        const got = Promise.withResolvers<Message>();
        c2.onMessage((m) => got.resolve(m));
        const connack = await c2.connect();
        assert.equal(connack.sessionPresent, true);
        await c2.publish("p/1", "hello", 1);
        assert.equal((await within(got.promise, 3000, "message")).topic, "p/1");
        await c2.disconnect(version === 5 ? { sessionExpiryInterval: 0 } : {});
        if (version === 4) {
          const c3 = client(b, {
            protocolVersion: 4,
            clientId: id,
            cleanSession: true,
          });
          await c3.connect();
          await c3.disconnect();
        }
      },
    );
  }

  // ------------------------------------------------------------ v5 only

  test(
    target,
    "Client.publish() carries v5 properties to the subscriber",
    async (b) => {
      const c = client(b);
      await c.connect();
      const got = Promise.withResolvers<Message>();
      await c.subscribe("props/#", 1, (m) => got.resolve(m));
      await c.publish("props/a", "{}", {
        qos: 1,
        properties: {
          contentType: "application/json",
          payloadFormatIndicator: 1,
          messageExpiryInterval: 60,
          responseTopic: "props/reply",
          correlationData: enc.encode("abc"),
          userProperties: [["k", "v"], ["k", "w"]],
        },
      });
      const m = await within(got.promise, 3000, "message");
      assert.equal(m.properties.contentType, "application/json");
      assert.equal(m.properties.payloadFormatIndicator, 1);
      assert.ok((m.properties.messageExpiryInterval ?? 0) <= 60);
      assert.equal(m.responseTopic, "props/reply");
      assert.deepEqual(m.correlationData, enc.encode("abc"));
      assert.deepEqual(m.userProperties, [["k", "v"], ["k", "w"]]);
      await c.disconnect();
    },
  );

  test(
    target,
    "Client.subscribe() v5 options: noLocal, retainHandling, subscription identifier",
    async (b) => {
      const c = client(b);
      await c.connect();
      await c.publish("o/ret", "kept", { qos: 1, retain: true });
      const got: Message[] = [];
      const one = counter(1);
      await c.subscribe("o/#", {
        qos: 1,
        noLocal: true,
        retainHandling: 2,
        subscriptionIdentifier: 42,
      }, (m) => {
        got.push(m);
        one.next();
      });
      const other = client(b);
      await other.connect();
      await c.publish("o/mine", "own", 1); // not delivered back: noLocal
      await other.publish("o/theirs", "x", 1);
      await within(one.promise, 3000, "message from the other client");
      assert.deepEqual(got.map((m) => m.topic), ["o/theirs"]); // no retained, no own
      assert.deepEqual(got[0]!.properties.subscriptionIdentifiers, [42]);
      await c.publish("o/ret", "", { qos: 1, retain: true });
      await other.disconnect();
      await c.disconnect();
    },
  );

  test(
    target,
    "Client.publish() with manual and automatic topic aliases",
    async (b) => {
      const sub = client(b);
      await sub.connect();
      const topics: string[] = [];
      const manual = client(b);
      const connack = await manual.connect();
      const max = connack.properties?.topicAliasMaximum ?? 0;
      const expected = max >= 2 ? 7 : 5;
      const done = counter(expected);
      await sub.subscribe("alias/#", 1, (m) => {
        topics.push(`${m.topic}=${m.payloadText}`);
        done.next();
      });
      if (max >= 2) {
        await manual.publish("alias/one", "1", { qos: 1, topicAlias: 1 });
        await manual.publish("", "2", { qos: 1, topicAlias: 1 }); // topic from the alias
        await assert.rejects(
          manual.publish("", "x", { qos: 1, topicAlias: 2 }), // never set
          (e: unknown) =>
            e instanceof MqttError &&
            e.reasonCode === ReasonCode.TopicAliasInvalid,
        );
      } else {
        // The broker takes no aliases: a manual one is refused up front.
        await assert.rejects(
          manual.publish("alias/one", "1", { qos: 1, topicAlias: 1 }),
          (e: unknown) =>
            e instanceof MqttError &&
            e.reasonCode === ReasonCode.TopicAliasInvalid,
        );
      }
      // Automatic aliases fall back to full topics when the broker has none.
      const auto = client(b, { autoTopicAliases: true });
      await auto.connect();
      for (const t of ["alias/a", "alias/b", "alias/a", "alias/a", "alias/b"]) {
        await auto.publish(t, "a", 1);
      }
      await within(done.promise, 3000, `${expected} messages`);
      assert.deepEqual(topics, [
        ...(max >= 2 ? ["alias/one=1", "alias/one=2"] : []),
        "alias/a=a",
        "alias/b=a",
        "alias/a=a",
        "alias/a=a",
        "alias/b=a",
      ]);
      await Promise.all([
        sub.disconnect(),
        manual.disconnect(),
        auto.disconnect(),
      ]);
    },
  );

  test(
    target,
    "Client.publish() over the broker's Maximum Packet Size rejects with 0x95",
    async (b) => {
      const c = client(b);
      const connack = await c.connect();
      assert.equal(connack.properties?.maximumPacketSize, 1000);
      await assert.rejects(
        c.publish("big", new Uint8Array(2000), 1),
        (e: unknown) =>
          e instanceof PacketTooLargeError &&
          e.reasonCode === ReasonCode.PacketTooLarge,
      );
      await c.publish("small", new Uint8Array(100), 1); // still usable
      await c.disconnect();
    },
    { maxPacketSize: 1000 },
  );

  test(
    target,
    "Client.publish() keeps at most the broker's Receive Maximum in flight",
    async (b) => {
      const c = client(b);
      const connack = await c.connect();
      assert.equal(connack.properties?.receiveMaximum, 2);
      let maxInFlight = 0;
      const all: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) {
        all.push(
          c.publish("flow", String(i), (i % 2 + 1) as 1 | 2).then(() => {
            maxInFlight = Math.max(maxInFlight, c.inFlight);
          }),
        );
        maxInFlight = Math.max(maxInFlight, c.inFlight);
      }
      assert.equal(c.inFlight, 2);
      assert.equal(c.queued, 48);
      await within(Promise.all(all), 5000, "50 publishes");
      assert.ok(maxInFlight <= 2, `in flight reached ${maxInFlight}`);
      await c.disconnect();
    },
    { receiveMaximum: 2 },
  );

  test(
    target,
    "Client.request() gets the response matched by correlation data",
    async (b) => {
      const server = client(b);
      await server.connect();
      await server.respond("svc/echo", (m) => `echo:${m.payloadText}`);
      const c = client(b);
      await c.connect();
      const [r1, r2] = await Promise.all([
        c.request("svc/echo", "a", { timeout: 3000 }),
        c.request("svc/echo", "b", { timeout: 3000 }),
      ]);
      assert.equal(r1.payloadText, "echo:a");
      assert.equal(r2.payloadText, "echo:b");
      await assert.rejects(
        c.request("svc/nobody", "x", { timeout: 100 }),
        (e: unknown) => e instanceof MqttError && e.name === "TimeoutError",
      );
      await Promise.all([server.disconnect(), c.disconnect()]);
    },
  );

  test(
    target,
    "Client.on('error') reports a rejected async handler",
    async (b) => {
      const c = client(b);
      await c.connect();
      const error = Promise.withResolvers<Error>();
      const off = c.on("error", (e) => error.resolve(e));
      await c.subscribe("err/#", 0, async () => {
        await Promise.resolve();
        throw new Error("handler failed");
      });
      await c.publish("err/x", "boom");
      const e = await within(error.promise, 3000, "error event");
      assert.equal(e.message, "handler failed");
      off();
      await c.disconnect();
    },
  );

  test(
    target,
    "Client.messages() applies backpressure without losing messages",
    async (b) => {
      const c = client(b, { messageBufferSize: 4 });
      await c.connect();
      await c.subscribe("bp/#", 1);
      const it = c.messages();
      const other = client(b);
      await other.connect();
      const sent: Promise<unknown>[] = [];
      for (let i = 0; i < 40; i++) {
        sent.push(other.publish("bp/x", String(i), 1));
      }
      const got: string[] = [];
      for await (const m of it) {
        got.push(m.payloadText);
        // A slow consumer: yield to the event loop between messages.
        await new Promise((r) => setTimeout(r, 0));
        if (got.length === 40) break;
      }
      await Promise.all(sent);
      assert.deepEqual(got, Array.from({ length: 40 }, (_, i) => String(i)));
      await Promise.all([c.disconnect(), other.disconnect()]);
    },
  );

  test(
    target,
    "Client.subscribe() dispatches a shared subscription to its handler",
    async (b) => {
      const c = client(b);
      await c.connect();
      const got = Promise.withResolvers<Message>();
      const [code] = await c.subscribe(
        "$share/g1/sh/+",
        1,
        (m) => got.resolve(m),
      );
      assert.equal(code, 1);
      await c.publish("sh/a", "shared", 1);
      const m = await within(got.promise, 3000, "shared message");
      assert.equal(m.topic, "sh/a");
      await c.disconnect();
    },
  );

  test(
    target,
    "Client.disconnect() with 0x04 has the will published",
    async (b) => {
      const watcher = client(b);
      await watcher.connect();
      const will = Promise.withResolvers<Message>();
      await watcher.subscribe("will5/+", 1, (m) => will.resolve(m));
      const c = client(b, {
        will: { topic: "will5/x", payload: "bye", qos: 1 },
      });
      await c.connect();
      const events: string[] = [];
      c.on(
        "disconnect",
        (e) =>
          events.push(
            `disconnect:${e.initiator}:${e.reasonCode}:${e.willReconnect}`,
          ),
      );
      c.on("close", () => events.push("close"));
      await c.disconnect({ reasonCode: ReasonCode.DisconnectWithWillMessage });
      assert.equal(
        (await within(will.promise, 3000, "will")).payloadText,
        "bye",
      );
      assert.deepEqual(events, ["disconnect:client:4:false", "close"]);
      await watcher.disconnect();
    },
  );

  test(
    target,
    "Client.publish() rejects with the v5 reason code of a refusing PUBACK/PUBREC",
    async (b) => {
      const c = client(b);
      await c.connect();
      for (const qos of [1, 2] as const) {
        await assert.rejects(c.publish("denied/x", "no", qos), (e: unknown) => {
          assert.ok(e instanceof MqttError);
          assert.equal(e.reasonCode, ReasonCode.NotAuthorized);
          assert.match(e.message, /denied\/x/);
          return true;
        });
      }
      const ok = await c.publish("allowed/x", "yes", 1);
      assert.ok(
        ok.reasonCode === 0 ||
          ok.reasonCode === ReasonCode.NoMatchingSubscribers,
      );
      await c.disconnect();
    },
    { denyPublishUnderDenied: true },
  );

  test(target, "Client will carries v5 properties", async (b) => {
    const watcher = client(b);
    await watcher.connect();
    const will = Promise.withResolvers<Message>();
    await watcher.subscribe("willp/+", 1, (m) => will.resolve(m));
    const c = client(b, {
      will: {
        topic: "willp/x",
        payload: "{}",
        qos: 1,
        properties: {
          contentType: "application/json",
          userProperties: [["why", "test"]],
        },
      },
    });
    await c.connect();
    await c.close();
    const m = await within(will.promise, 3000, "will");
    assert.equal(m.properties.contentType, "application/json");
    assert.deepEqual(m.userProperties, [["why", "test"]]);
    await watcher.disconnect();
  });
}

Deno.test("Client.connect() rejects with 0x88 when nothing listens", async () => {
  const c = new Client({ port: freePort(), reconnect: false });
  await assert.rejects(c.connect(), (e: unknown) => {
    assert.ok(e instanceof MqttError);
    assert.equal(e.reasonCode, ReasonCode.ServerUnavailable);
    return true;
  });
  await c.close();
});
