/**
 * Interop: Mosquitto's command line clients (mosquitto_pub, mosquitto_sub)
 * against Kite's broker, for MQTT 3.1.1 and 5.0. Skipped with a message when
 * the binaries are absent (Debian package mosquitto-clients).
 */

import assert from "node:assert/strict";
import type { Broker } from "../broker/mod.ts";
import { startBroker, withTimeout } from "./_helpers.ts";
import { hasCommand } from "./_subprocess.ts";

const available = hasCommand("mosquitto_pub") && hasCommand("mosquitto_sub");
if (!available && Deno.env.get("KITE_REQUIRE_INTEROP") === "1") {
  throw new Error(
    "mosquitto_pub/mosquitto_sub not found and KITE_REQUIRE_INTEROP=1: " +
      "install them (apt-get install mosquitto-clients)",
  );
}
if (!available) {
  console.warn(
    "interop_mosquitto_test: mosquitto_pub/mosquitto_sub not found, skipping (apt-get install mosquitto-clients)",
  );
}

const VERSIONS = [["mqttv311", 4], ["mqttv5", 5]] as const;

async function run(bin: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(bin, {
    args,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  if (out.code !== 0) {
    throw new Error(
      `${bin} ${args.join(" ")} exited ${out.code}: ${text}${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
  return text;
}

/** Runs `bin -h 127.0.0.1 -p port -V v ...args` (see `run`). */
function runAt(
  bin: string,
  port: string,
  v: string,
  args: string[],
): Promise<string> {
  return run(bin, ["-h", "127.0.0.1", "-p", port, "-V", v, ...args]);
}

/** Starts mosquitto_sub and resolves once the broker holds its subscription. */
async function subscribe(
  broker: Broker,
  args: string[],
): Promise<Deno.ChildProcess> {
  const before = broker.subscriptionCount;
  const child = new Deno.Command("mosquitto_sub", {
    args: ["-h", "127.0.0.1", "-p", String(broker.addr.port), ...args],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await withTimeout(
    (async () => {
      while (broker.subscriptionCount <= before) {
        await new Promise((r) => setTimeout(r, 10));
      }
    })(),
    3000,
    "mosquitto_sub to subscribe",
  );
  return child;
}

async function output(child: Deno.ChildProcess): Promise<string> {
  const out = await withTimeout(child.output(), 8000, "mosquitto_sub output");
  return new TextDecoder().decode(out.stdout);
}

for (const [v, version] of VERSIONS) {
  Deno.test({
    name: `mosquitto clients ${v}: publish and subscribe at QoS 0, 1 and 2`,
    ignore: !available,
    async fn() {
      const broker = await startBroker();
      const port = String(broker.addr.port);
      const sub = await subscribe(broker, [
        "-V",
        v,
        "-t",
        "mq/#",
        "-q",
        "2",
        "-C",
        "3",
        "-W",
        "8",
        "-v",
      ]);
      for (const qos of ["0", "1", "2"]) {
        await runAt("mosquitto_pub", port, v, [
          "-t",
          `mq/${qos}`,
          "-q",
          qos,
          "-m",
          `hello ${qos}`,
        ]);
      }
      const lines = (await output(sub)).trim().split("\n");
      assert.deepEqual(lines, ["mq/0 hello 0", "mq/1 hello 1", "mq/2 hello 2"]);
      await broker.close();
      void version;
    },
  });

  Deno.test({
    name: `mosquitto clients ${v}: retained message`,
    ignore: !available,
    async fn() {
      const broker = await startBroker();
      const port = String(broker.addr.port);
      await runAt("mosquitto_pub", port, v, [
        "-t",
        "mq/r",
        "-q",
        "1",
        "-r",
        "-m",
        "kept",
      ]);
      const out = await runAt("mosquitto_sub", port, v, [
        "-t",
        "mq/#",
        "-q",
        "1",
        "--retained-only",
        "-C",
        "1",
        "-W",
        "5",
        "-v",
      ]);
      assert.equal(out.trim(), "mq/r kept");
      await broker.close();
    },
  });

  Deno.test({
    name: `mosquitto clients ${v}: will of a killed client`,
    ignore: !available,
    async fn() {
      const broker = await startBroker();
      const watcher = await subscribe(broker, [
        "-V",
        v,
        "-t",
        "mq/will",
        "-q",
        "1",
        "-C",
        "1",
        "-W",
        "8",
      ]);
      const dying = await subscribe(broker, [
        "-V",
        v,
        "-t",
        "mq/nothing",
        "--will-topic",
        "mq/will",
        "--will-payload",
        "gone",
        "--will-qos",
        "1",
      ]);
      dying.kill("SIGKILL");
      await dying.output();
      assert.equal((await output(watcher)).trim(), "gone");
      await broker.close();
    },
  });

  Deno.test({
    name:
      `mosquitto clients ${v}: persistent session resumes with queued messages`,
    ignore: !available,
    async fn() {
      const broker = await startBroker();
      const port = String(broker.addr.port);
      const id = ["-i", `mq-persist-${version}`, "-c"];
      const expiry = version === 5 ? ["-x", "60"] : [];
      await runAt("mosquitto_sub", port, v, [
        ...id,
        ...expiry,
        "-t",
        "mq/q",
        "-q",
        "1",
        "-E",
      ]);
      await runAt("mosquitto_pub", port, v, [
        "-t",
        "mq/q",
        "-q",
        "1",
        "-m",
        "queued",
      ]);
      const out = await runAt("mosquitto_sub", port, v, [
        ...id,
        ...expiry,
        "-t",
        "mq/q",
        "-q",
        "1",
        "-C",
        "1",
        "-W",
        "5",
      ]);
      assert.equal(out.trim(), "queued");
      await broker.close();
    },
  });
}
