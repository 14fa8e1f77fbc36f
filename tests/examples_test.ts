/**
 * Every program in examples/ runs as a subprocess against a Kite broker
 * started here (port 0), with a short run length from env vars, and must
 * exit by itself with the output it promises.
 */

import assert from "node:assert/strict";
import { Client, type Message } from "../client/mod.ts";
import { MOSQUITTO, within } from "./client_helpers.ts";
import { startBroker } from "./_helpers.ts";
import { DenoProcess, type ProcessResult } from "./_subprocess.ts";

const EXAMPLES = new URL("../examples/", import.meta.url);

/** A running example, its output collected. */
class Example extends DenoProcess {
  constructor(name: string, env: Record<string, string>) {
    super([new URL(`${name}.ts`, EXAMPLES).pathname], { env });
  }

  /** Resolves with the match once stdout matches `re` (bounded). */
  waitFor(re: RegExp, ms = 15_000): Promise<RegExpMatchArray> {
    return this.waitForOutput(
      re,
      "stdout",
      ms,
      `stdout matching ${re}:\n${this.stdout}\n${this.stderr}`,
    );
  }

  /** Waits for the exit (bounded); kills it if it does not come. */
  async result(ms = 20_000): Promise<ProcessResult> {
    try {
      return await this.exit(
        ms,
        `the example to exit:\n${this.stdout}\n${this.stderr}`,
      );
    } catch (e) {
      await this.kill();
      throw e;
    }
  }
}

async function withBroker(
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const broker = await startBroker();
  try {
    await fn(broker.addr.port);
  } finally {
    await broker.close();
  }
}

/** Runs an example to the end against `port`; asserts exit status 0. */
async function run(
  name: string,
  port: number,
  env: Record<string, string> = {},
): Promise<string> {
  const r = await new Example(name, { KITE_PORT: String(port), ...env })
    .result();
  assert.equal(r.code, 0, `${name} failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

async function client(port: number): Promise<Client & AsyncDisposable> {
  const c = new Client({ port, reconnect: false });
  await c.connect();
  return Object.assign(c, {
    [Symbol.asyncDispose]: () => c.disconnect(),
  });
}

Deno.test("examples/broker.ts serves clients and closes on SIGINT", async () => {
  const ex = new Example("broker", { KITE_PORT: "0" });
  try {
    const [, port] = await ex.waitFor(/broker listening on [\d.]+:(\d+)/);
    {
      await using c = await client(Number(port));
      const got = Promise.withResolvers<Message>();
      await c.subscribe("t", 1, got.resolve);
      await c.publish("t", "through the example broker", 1);
      assert.equal(
        (await within(got.promise, 5000, "the message")).payloadText,
        "through the example broker",
      );
      // Its authorizePublish hook refuses forbidden/... with 0x87.
      await assert.rejects(
        c.publish("forbidden/x", "no", 1),
        (e: unknown) => (e as { reasonCode?: number }).reasonCode === 0x87,
      );
    }
    ex.child.kill("SIGINT");
    const r = await ex.result();
    assert.equal(r.code, 0);
    assert.match(r.stdout, /closing \(signal\)/);
    assert.match(r.stdout, /broker closed\n$/);
  } finally {
    await ex.kill();
  }
});

Deno.test("examples/broker.ts stops by itself after KITE_EXAMPLE_MS", async () => {
  const r = await new Example("broker", {
    KITE_PORT: "0",
    KITE_EXAMPLE_MS: "200",
  }).result();
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /closing \(time is up\)/);
});

Deno.test("examples/basic_client.ts subscribes, publishes QoS 2, receives it", async () => {
  await withBroker(async (port) => {
    const out = await run("basic_client", port);
    assert.match(out, /subscribed to sensor\/# with QoS 2/);
    assert.match(out, /received sensor\/kitchen\/temp: 21\.5 \(QoS 2\)/);
    assert.match(out, /published with QoS 2, reason code 0/);
    assert.match(out, /disconnected\n$/);
  });
});

Deno.test("examples/qos_levels.ts delivers at min(publish, subscription) QoS", async () => {
  await withBroker(async (port) => {
    const out = await run("qos_levels", port);
    for (
      const [sub, sent, got] of [[2, 0, 0], [2, 1, 1], [2, 2, 2], [1, 0, 0], [
        1,
        1,
        1,
      ], [1, 2, 1]]
    ) {
      assert.match(
        out,
        new RegExp(
          `max QoS ${sub} subscription got "sent with QoS ${sent}" with QoS ${got}`,
        ),
      );
    }
    assert.match(out, /QoS 1: publish\(\) resolved on PUBACK/);
    assert.match(out, /QoS 2: publish\(\) resolved on PUBCOMP/);
    assert.match(out, /done: 6 deliveries/);
  });
});

Deno.test("examples/retained.ts: a late subscriber gets the retained message", async () => {
  await withBroker(async (port) => {
    const out = await run("retained", port);
    assert.match(out, /late subscriber got "on" \(retain flag: true\)/);
    assert.match(out, /cleared the retained message/);
    // Cleared for real: a new subscriber gets only the live message.
    await using c = await client(port);
    const first = Promise.withResolvers<Message>();
    await c.subscribe("demo/retained/lamp", 1, first.resolve);
    await c.publish("demo/retained/lamp", "live", 1);
    const m = await within(first.promise, 5000, "the first message");
    assert.equal(m.payloadText, "live");
    assert.equal(m.retain, false);
  });
});

Deno.test("examples/will.ts: the broker publishes the will of a dropped client", async () => {
  await withBroker(async (port) => {
    const out = await run("will", port);
    assert.match(
      out,
      /watcher got the will: demo\/will\/will-demo-device: offline \(unexpectedly\)/,
    );
  });
});

Deno.test("examples/wildcards.ts: + matches one level, # the rest", async () => {
  await withBroker(async (port) => {
    const out = await run("wildcards", port);
    assert.match(
      out,
      /home\/\+\/temp +matched home\/kitchen\/temp, home\/garage\/temp\n/,
    );
    assert.match(
      out,
      /home\/kitchen\/# +matched home\/kitchen\/temp, home\/kitchen\/light, home\/kitchen\/fridge\/temp\n/,
    );
    // `#` also matches the parent level v3:[MQTT-4.7.1-2] v5:[MQTT-4.7.1-1].
    assert.match(out, /home\/# +matched .*home\/kitchen\/fridge\/temp, home\n/);
  });
});

Deno.test("examples/shared_subscription.ts splits the jobs between two workers", async () => {
  await withBroker(async (port) => {
    const out = await run("shared_subscription", port, {
      KITE_EXAMPLE_COUNT: "10",
    });
    const counts = [...out.matchAll(/worker-[ab] handled (\d+) jobs/g)].map((
      m,
    ) => Number(m[1]));
    assert.equal(counts.length, 2);
    assert.equal(counts[0]! + counts[1]!, 10); // each job once
    assert.ok(counts[0]! > 0 && counts[1]! > 0, out);
    assert.match(out, /10 jobs, each handled once/);
  });
});

Deno.test("examples/topic_alias.ts delivers every message with its full topic", async () => {
  await withBroker(async (port) => {
    const out = await run("topic_alias", port, { KITE_EXAMPLE_COUNT: "3" });
    const got = out.match(
      /subscriber got factory\/line-7\/station-42\/spindle\/temperature = /g,
    );
    assert.equal(got?.length, 3, out);
    // Kite accepts topic aliases (topicAliasMaximum, default 10).
    assert.match(out, /broker accepts 10 topic aliases/);
    assert.match(out, /sent 3 messages, the topic only in the first/);
  });
});

Deno.test({
  name:
    "examples/topic_alias.ts uses aliases where the broker allows them [mosquitto]",
  ignore: !MOSQUITTO.available,
  async fn() {
    await using m = await MOSQUITTO.start();
    const out = await run("topic_alias", m.port, { KITE_EXAMPLE_COUNT: "3" });
    assert.match(out, /broker accepts [1-9]\d* topic aliases/);
    assert.match(out, /sent 3 messages, the topic only in the first/);
    assert.equal(out.match(/subscriber got factory\/line-7/g)?.length, 3);
  },
});

Deno.test("examples/reconnect.ts reconnects after its broker restarts", async () => {
  const r = await new Example("reconnect", {}).result();
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout.match(/event connect/g)?.length, 2, r.stdout);
  assert.match(r.stdout, /event disconnect: .*\(will reconnect: true\)/);
  assert.match(r.stdout, /event reconnect: attempt 1 in \d+ ms/);
  assert.match(r.stdout, /queued message delivered/);
});

Deno.test("examples/sync_client.ts publishes and receives without await", async () => {
  await withBroker(async (port) => {
    const out = await run("sync_client", port);
    for (let i = 1; i <= 3; i++) {
      assert.match(out, new RegExp(`published message ${i}: PUBACK 0`));
      assert.match(out, new RegExp(`received demo/sync/${i}: message ${i}`));
    }
    assert.match(out, /disconnected\n$/);
  });
});

Deno.test("examples/sensor.ts publishes JSON and resumes its session", async () => {
  await withBroker(async (port) => {
    await using watcher = await client(port);
    const readings: { sensor: string; temp: number; setpoint: number }[] = [];
    const three = Promise.withResolvers<void>();
    await watcher.subscribe("sensors/test/temp", 1, (m) => {
      readings.push(m.json());
      if (readings.length === 3) three.resolve();
    });
    const env = {
      KITE_SENSOR_ID: "test",
      KITE_INTERVAL_MS: "20",
      KITE_EXAMPLE_COUNT: "2",
    };
    const first = await run("sensor", port, env);
    assert.match(first, /session present: false/);
    assert.equal(first.match(/published \{"sensor":"test"/g)?.length, 2);
    // While the sensor is away, a QoS 1 command waits in its session.
    await watcher.publish("sensors/test/set", "23", 1);
    const second = await run("sensor", port, {
      ...env,
      KITE_EXAMPLE_COUNT: "1",
    });
    assert.match(second, /session present: true/);
    assert.match(second, /setpoint is now 23/);
    assert.match(second, /"setpoint":23/);
    // Our subscriber saw the three JSON readings (QoS 1, in order).
    await within(three.promise, 5000, "three readings");
    assert.deepEqual(readings.map((r) => r.sensor), ["test", "test", "test"]);
    assert.equal(readings[2]?.setpoint, 23);
  });
});

Deno.test("examples/command_device.ts acts on JSON commands and reports status", async () => {
  await withBroker(async (port) => {
    const ex = new Example("command_device", {
      KITE_PORT: String(port),
      KITE_EXAMPLE_COUNT: "3",
    });
    try {
      await ex.waitFor(/ready/);
      await using c = await client(port);
      const statuses: Record<string, unknown>[] = [];
      const three = Promise.withResolvers<void>();
      await c.subscribe("devices/+/status", 1, (m) => {
        statuses.push({ topic: m.topic, ...m.json<Record<string, unknown>>() });
        if (statuses.length === 3) three.resolve();
      });
      await c.publish("devices/lamp-1/command", '{"action":"on"}', 1);
      await c.publish("devices/lamp-2/command", "not json", 1);
      await c.publish(
        "devices/lamp-1/command",
        '{"action":"dim","level":40}',
        1,
      );
      await within(three.promise, 10_000, "three status messages");
      const r = await ex.result();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /handled 3 commands/);
      assert.equal(statuses[0]?.topic, "devices/lamp-1/status");
      assert.equal(statuses[0]?.on, true);
      assert.equal(statuses[1]?.topic, "devices/lamp-2/status");
      assert.match(String(statuses[1]?.error), /JSON/);
      assert.equal(statuses[2]?.level, 40);
    } finally {
      await ex.kill();
    }
  });
});

Deno.test("examples/http_bridge.ts publishes POST bodies and serves retained values", async () => {
  await withBroker(async (port) => {
    const ex = new Example("http_bridge", {
      KITE_PORT: String(port),
      KITE_HTTP_PORT: "0",
      KITE_EXAMPLE_COUNT: "4",
    });
    try {
      const [, http] = await ex.waitFor(/http listening on port (\d+)/);
      const base = `http://127.0.0.1:${http}`;
      await using c = await client(port);
      const got = Promise.withResolvers<Message>();
      await c.subscribe("home/lamp", 1, got.resolve);

      const post = await fetch(`${base}/publish/home/lamp?retain=1&qos=1`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: '{"on":true}',
      });
      assert.equal(post.status, 200);
      assert.deepEqual(await post.json(), {
        topic: "home/lamp",
        bytes: 11,
        reasonCode: 0,
      });
      const m = await within(got.promise, 5000, "the bridged message");
      assert.equal(m.payloadText, '{"on":true}');
      assert.equal(m.properties.contentType, "application/json");

      const get = await fetch(`${base}/retained/home/lamp`);
      assert.equal(get.status, 200);
      const body = await get.json();
      assert.deepEqual(body.value, { on: true });
      assert.equal(body.topic, "home/lamp");

      // A retained message published by someone else is served too, once
      // the bridge's subscription has brought it (it logs that).
      await c.publish("home/door", "closed", { qos: 1, retain: true });
      await ex.waitFor(/retained home\/door/);
      const door = await fetch(`${base}/retained/home/door`);
      assert.equal(door.status, 200);
      assert.deepEqual((await door.json()).value, "closed");

      const missing = await fetch(`${base}/retained/nothing/here`);
      assert.equal(missing.status, 404);
      await missing.body?.cancel();

      const r = await ex.result();
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /served 4 requests/);
    } finally {
      await ex.kill();
    }
  });
});
