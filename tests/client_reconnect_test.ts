/**
 * Automatic reconnect against real brokers (Mosquitto and Kite's): broker
 * restart on the same port, dropped sockets through a proxy, no QoS 1/2
 * loss, QoS 2 exactly once across the reconnect on both sides.
 */

import assert from "node:assert/strict";
import { Client, type ClientOptions, type Message } from "../client/mod.ts";
import {
  type BrokerTarget,
  counter,
  TARGETS,
  targetTest,
  TcpProxy,
  within,
} from "./client_helpers.ts";

const FAST = { initialDelay: 10, maxDelay: 100, jitter: 0.1 };

/**
 * Runs `fn` against a broker of `target` with a `TcpProxy` in front of it,
 * a client straight to the broker (`direct`, no reconnect) and a client
 * through the proxy (`proxied`: a random id starting with `idPrefix`, a
 * 300 s session, `proxiedOptions` on top); closes all of them after.
 */
function proxyTest(
  target: BrokerTarget,
  name: string,
  idPrefix: string,
  proxiedOptions: ClientOptions,
  fn: (
    c: { direct: Client; proxied: Client; proxy: TcpProxy },
  ) => Promise<void>,
): void {
  targetTest(target, name, async (broker) => {
    const proxy = new TcpProxy(broker.port);
    const direct = new Client({ port: broker.port, reconnect: false });
    const proxied = new Client({
      port: proxy.port,
      clientId: `${idPrefix}-${crypto.randomUUID().slice(0, 8)}`,
      sessionExpiryInterval: 300,
      ...proxiedOptions,
    });
    try {
      await fn({ direct, proxied, proxy });
    } finally {
      await proxied.close();
      await direct.close();
      await proxy.close();
    }
  });
}

for (const target of TARGETS) {
  for (const version of [5, 4] as const) {
    const v = version === 5 ? "v5" : "v3.1.1";
    Deno.test({
      name:
        `Client reconnects after a broker restart, resubscribes and sends what was published offline (${v}) [${target.name}]`,
      ignore: !target.available,
      async fn() {
        let broker = await target.start();
        const port = broker.port;
        const client = new Client({
          port,
          protocolVersion: version,
          reconnect: FAST,
        });
        try {
          const got: string[] = [];
          const five = counter(5);
          await client.connect();
          await client.subscribe("rc/#", 1, (m) => {
            got.push(m.payloadText);
            five.next();
          });
          const events: string[] = [];
          const offline = Promise.withResolvers<void>();
          const back = Promise.withResolvers<void>();
          client.on(
            "disconnect",
            (e) => events.push(`disconnect:${e.willReconnect}`),
          );
          client.on("offline", () => {
            events.push("offline");
            offline.resolve();
          });
          client.on("reconnect", () => {
            if (!events.includes("reconnect")) events.push("reconnect");
          });
          client.on("connect", (c) => {
            events.push(`connect:${c.sessionPresent}`);
            back.resolve();
          });
          await broker.stop();
          await within(offline.promise, 3000, "offline");
          assert.equal(client.connected, false);
          const sent = [1, 2, 3, 4, 5].map((i) =>
            client.publish("rc/x", String(i), 1)
          );
          assert.equal(client.queued, 5);
          broker = await target.start({ port });
          await within(back.promise, 5000, "reconnected");
          await within(
            Promise.all(sent),
            3000,
            "queued publishes acknowledged",
          );
          await within(
            five.promise,
            3000,
            "5 messages through the resubscription",
          );
          assert.deepEqual(got, ["1", "2", "3", "4", "5"]);
          assert.deepEqual(events, [
            "disconnect:true",
            "offline",
            "reconnect",
            "connect:false",
          ]);
          await client.disconnect();
        } finally {
          await client.close();
          await broker.stop();
        }
      },
    });
  }

  proxyTest(
    target,
    "Client loses no QoS 1/2 message when the socket drops, and QoS 2 reaches the subscriber once",
    "kite-pub",
    { reconnect: FAST },
    async ({ direct: sub, proxied: pub, proxy }) => {
      await sub.connect();
      const got: Message[] = [];
      const ten = counter(10);
      const end = Promise.withResolvers<void>();
      await sub.subscribe("loss/#", 2, (m) => {
        if (m.topic === "loss/end") end.resolve();
        else got.push(m);
        if (m.qos === 1) ten.next();
      });
      await pub.connect();
      proxy.swallowDown = true; // the broker gets them, the acks get lost
      const sent: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) {
        sent.push(pub.publish("loss/q1", `a${i}`, 1));
        sent.push(pub.publish("loss/q2", `b${i}`, 2));
      }
      await within(ten.promise, 3000, "QoS 1 messages at the subscriber");
      const back = Promise.withResolvers<void>();
      pub.on("connect", (c) => {
        assert.equal(c.sessionPresent, true);
        back.resolve();
      });
      proxy.swallowDown = false;
      await proxy.dropAll();
      await within(back.promise, 3000, "publisher reconnected");
      await within(Promise.all(sent), 3000, "all 20 publishes acknowledged");
      await pub.publish("loss/end", "", 2);
      await within(end.promise, 3000, "end marker");
      const q1 = new Set(
        got.filter((m) => m.qos === 1).map((m) => m.payloadText),
      );
      const q2 = got.filter((m) => m.qos === 2).map((m) => m.payloadText);
      assert.equal(q1.size, 10); // at least once
      assert.deepEqual(
        q2.sort(),
        Array.from({ length: 10 }, (_, i) => `b${i}`),
      ); // exactly once
      await pub.disconnect({ sessionExpiryInterval: 0 });
      await sub.disconnect();
    },
  );

  proxyTest(
    target,
    "Client delivers QoS 2 to the user once when the broker redelivers after a reconnect",
    "kite-sub",
    { reconnect: FAST },
    async ({ direct: pub, proxied: sub, proxy }) => {
      const got: string[] = [];
      const ten = counter(10);
      const end = Promise.withResolvers<void>();
      sub.onMessage((m) => {
        if (m.topic === "once/end") end.resolve();
        else {
          got.push(m.payloadText);
          ten.next();
        }
      });
      await sub.connect();
      await sub.subscribe("once/#", 2);
      await pub.connect();
      proxy.swallowUp = true; // our PUBRECs never reach the broker
      for (let i = 0; i < 10; i++) await pub.publish("once/x", `m${i}`, 2);
      await within(ten.promise, 3000, "10 messages");
      const back = Promise.withResolvers<void>();
      sub.on("connect", (c) => {
        assert.equal(c.sessionPresent, true);
        back.resolve();
      });
      proxy.swallowUp = false;
      await proxy.dropAll();
      await within(back.promise, 3000, "subscriber reconnected");
      await pub.publish("once/end", "", 2);
      await within(end.promise, 3000, "end marker");
      assert.deepEqual(got, Array.from({ length: 10 }, (_, i) => `m${i}`));
      await sub.disconnect({ sessionExpiryInterval: 0 });
      await pub.disconnect();
    },
  );

  proxyTest(
    target,
    "Client keeps QoS 1 at least once and QoS 2 exactly once through repeated socket drops",
    "kite-churn",
    {
      reconnect: { initialDelay: 5, maxDelay: 20, jitter: 0 },
      keepAlive: 0,
    },
    async ({ direct: sub, proxied: pub, proxy }) => {
      const q1 = new Map<string, number>();
      const q2 = new Map<string, number>();
      const end = Promise.withResolvers<void>();
      await sub.connect();
      await sub.subscribe("churn/#", 2, (m) => {
        if (m.topic === "churn/end") return end.resolve();
        const map = m.qos === 1 ? q1 : q2;
        map.set(m.payloadText, (map.get(m.payloadText) ?? 0) + 1);
      });
      await pub.connect();
      let back = Promise.withResolvers<void>();
      pub.on("connect", () => back.resolve());
      const N = 300;
      const sent: Promise<unknown>[] = [];
      for (let i = 0; i < N; i++) {
        sent.push(pub.publish("churn/1", `a${i}`, 1));
        sent.push(pub.publish("churn/2", `b${i}`, 2));
        // Drop the connection three times while messages are in flight,
        // each time once the client is back.
        if (i % 100 === 50) {
          await new Promise((r) => setTimeout(r, 0));
          await proxy.dropAll();
          await within(back.promise, 5000, "reconnect");
          back = Promise.withResolvers<void>();
        }
      }
      await within(
        Promise.all(sent),
        5000,
        `${2 * N} publishes acknowledged`,
      );
      await pub.publish("churn/end", "", 2);
      await within(end.promise, 3000, "end marker");
      assert.equal(q1.size, N, "every QoS 1 message arrived");
      assert.equal(q2.size, N, "every QoS 2 message arrived");
      const dupes = [...q2].filter(([, n]) => n !== 1);
      assert.deepEqual(dupes, [], "QoS 2 exactly once");
      await pub.disconnect({ sessionExpiryInterval: 0 });
      await sub.disconnect();
    },
  );
}

Deno.test("Client.disconnect() while the connection is still being dialed rejects connect() at once (no unhandled rejection)", async () => {
  // Accepts TCP, never answers the TLS handshake: the dial hangs.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted: Deno.Conn[] = [];
  const dialed = Promise.withResolvers<void>();
  const accepting = (async () => {
    for await (const c of listener) {
      accepted.push(c);
      dialed.resolve();
    }
  })();
  try {
    const c = new Client({
      port: (listener.addr as Deno.NetAddr).port,
      tls: true,
      reconnect: false,
    });
    const connecting = c.connect();
    await within(dialed.promise, 5000, "the TCP connection");
    await c.disconnect();
    await assert.rejects(connecting, /disconnect\(\) called/);
  } finally {
    for (const c of accepted) c.close();
    listener.close();
    await accepting;
  }
});
