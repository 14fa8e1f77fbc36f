/**
 * Interop over TLS and WebSocket: MQTT.js (mqtts://, ws://, wss://, MQTT
 * 3.1.1 and 5.0) and Mosquitto's clients (`mosquitto_pub`/`mosquitto_sub`
 * with `--cafile`, and with a client certificate for mutual TLS) against
 * Kite's listeners. Certificates come from a throwaway CA made with openssl.
 * Skipped with a message when openssl or the Mosquitto clients are missing
 * (a failure with KITE_REQUIRE_INTEROP=1).
 */

import assert from "node:assert/strict";
import type { Broker, BrokerInit, ClientInfo } from "../broker/mod.ts";
import { HAVE_OPENSSL, makeCerts, type TestCerts } from "./_broker_certs.ts";
import { startBroker, withTimeout } from "./_helpers.ts";
import { endMqttjs, type MqttjsConnection, openMqttjs } from "./_mqttjs.ts";
import { hasCommand } from "./_subprocess.ts";

const HAVE_MOSQUITTO_CLIENTS = hasCommand("mosquitto_pub") &&
  hasCommand("mosquitto_sub");
if (!HAVE_MOSQUITTO_CLIENTS) {
  if (Deno.env.get("KITE_REQUIRE_INTEROP") === "1") {
    throw new Error(
      "mosquitto_pub/mosquitto_sub not found and KITE_REQUIRE_INTEROP=1: " +
        "install them (apt-get install mosquitto-clients)",
    );
  }
  console.warn(
    "transport_interop_test: mosquitto_pub/mosquitto_sub not found, skipping their tests",
  );
}

const certs: TestCerts | undefined = HAVE_OPENSSL
  ? await makeCerts()
  : undefined;
const alice = certs === undefined ? undefined : await certs.client("alice");
if (certs !== undefined) {
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(certs.dir, { recursive: true });
  });
}

type Msg = { topic: string; payload: string; qos: number };

/** A broker with an mqtts, a ws and a wss listener on free ports. */
function startTransports(options: BrokerInit = {}): Promise<Broker> {
  const c = certs!;
  const tls = { certFile: c.serverCert, keyFile: c.serverKey };
  return startBroker({
    listeners: [
      { protocol: "mqtts", port: 0, ...tls },
      { protocol: "ws", port: 0 },
      { protocol: "wss", port: 0, ...tls },
    ],
    ...options,
  });
}

/** The port of the broker's listener for `protocol`. */
function portOf(broker: Broker, protocol: string): number {
  const l = broker.listeners.find((l) => l.addr.protocol === protocol);
  if (l === undefined) throw new Error(`no ${protocol} listener`);
  return l.addr.port;
}

function mqttjs(
  broker: Broker,
  protocol: "mqtt" | "mqtts" | "ws" | "wss",
  version: 4 | 5,
): Promise<MqttjsConnection<Msg>> {
  return openMqttjs(
    broker,
    {
      protocol,
      port: portOf(broker, protocol),
      protocolVersion: version,
      ca: certs!.caPem,
      ...(protocol === "ws" || protocol === "wss" ? { path: "/mqtt" } : {}),
    },
    (topic, payload, packet) => ({
      topic,
      payload: payload.toString(),
      qos: packet.qos,
    }),
  );
}

for (const protocol of ["mqtts", "ws", "wss"] as const) {
  for (const version of [4, 5] as const) {
    Deno.test({
      name:
        `MQTT.js v${version} over ${protocol}: QoS 0/1/2 and retained messages through Kite`,
      ignore: !HAVE_OPENSSL,
      async fn() {
        const broker = await startTransports();
        const sub = await mqttjs(broker, protocol, version);
        const pub = await mqttjs(broker, protocol, version);
        try {
          await sub.client.subscribeAsync(`${protocol}/#`, { qos: 2 });
          for (const qos of [0, 1, 2] as const) {
            await pub.client.publishAsync(`${protocol}/${qos}`, `m${qos}`, {
              qos,
            });
            assert.deepEqual(await sub.next(), {
              topic: `${protocol}/${qos}`,
              payload: `m${qos}`,
              qos,
            });
          }
          // A retained message, and a payload bigger than a frame's
          // typical size (64 KiB), split across frames and TLS records.
          const big = "x".repeat(200_000);
          await pub.client.publishAsync(`${protocol}/big`, big, {
            qos: 1,
            retain: true,
          });
          assert.equal((await sub.next()).payload.length, big.length);
          const late = await mqttjs(broker, protocol, version);
          await late.client.subscribeAsync(`${protocol}/big`, { qos: 1 });
          assert.equal((await late.next()).payload, big);
          await endMqttjs(late.client);
        } finally {
          await endMqttjs(pub.client);
          await endMqttjs(sub.client);
          await broker.close();
        }
      },
    });
  }
}

Deno.test({
  name:
    "every transport reaches the same sessions: TCP, mqtts, ws and wss clients exchange QoS 1 messages",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const broker = await startTransports();
    const clients = await Promise.all(
      (["mqtt", "mqtts", "ws", "wss"] as const).map((p) =>
        mqttjs(broker, p, 5)
      ),
    );
    try {
      for (const c of clients) {
        await c.client.subscribeAsync("mix/#", { qos: 1 });
      }
      for (const [i, c] of clients.entries()) {
        await c.client.publishAsync(`mix/${i}`, `from ${i}`, { qos: 1 });
      }
      for (const c of clients) {
        const got = [];
        for (let i = 0; i < clients.length; i++) got.push(await c.next());
        assert.deepEqual(
          got.map((m) => m.payload).sort(),
          ["from 0", "from 1", "from 2", "from 3"],
        );
      }
      assert.equal(broker.connectedClients, 4);
    } finally {
      for (const c of clients) await endMqttjs(c.client);
      await broker.close();
    }
  },
});

Deno.test({
  name: "mqtts listener offers ALPN mqtt; a client without ALPN connects too",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const broker = await startTransports();
    try {
      const port = portOf(broker, "mqtts");
      for (const alpn of [["mqtt"], undefined]) {
        const conn = await Deno.connectTls({
          hostname: "127.0.0.1",
          port,
          caCerts: [certs!.caPem],
          ...(alpn === undefined ? {} : { alpnProtocols: alpn }),
        });
        const info = await withTimeout(conn.handshake(), 3000, "handshake");
        assert.equal(info.alpnProtocol, alpn === undefined ? null : "mqtt");
        // CONNECT (3.1.1, clean, keep alive 0, client id "a") -> CONNACK 0.
        await conn.write(
          new Uint8Array([
            0x10,
            13,
            0,
            4,
            ...new TextEncoder().encode("MQTT"),
            4,
            2,
            0,
            0,
            0,
            1,
            0x61,
          ]),
        );
        const buf = new Uint8Array(4);
        let got = 0;
        while (got < 4) {
          const n = await withTimeout(conn.read(buf.subarray(got)), 3000, "");
          if (n === null) break;
          got += n;
        }
        assert.deepEqual([...buf], [0x20, 2, 0, 0]);
        conn.close();
      }
    } finally {
      await broker.close();
    }
  },
});

// --- Mosquitto's clients ---------------------------------------------------

async function run(bin: string, args: string[]): Promise<Deno.CommandOutput> {
  return await withTimeout(
    new Deno.Command(bin, { args, stdout: "piped", stderr: "piped" }).output(),
    10_000,
    `${bin} ${args.join(" ")}`,
  );
}

function text(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Starts mosquitto_sub; resolves once the broker holds its subscription. */
async function subscribe(
  broker: Broker,
  args: string[],
): Promise<Deno.ChildProcess> {
  const before = broker.subscriptionCount;
  const child = new Deno.Command("mosquitto_sub", {
    args,
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  await withTimeout(
    (async () => {
      while (broker.subscriptionCount <= before) {
        await new Promise((r) => setTimeout(r, 10));
      }
    })(),
    5000,
    "mosquitto_sub to subscribe",
  );
  return child;
}

for (const [v, label] of [["mqttv311", "3.1.1"], ["mqttv5", "5.0"]]) {
  Deno.test({
    name:
      `mosquitto_pub/mosquitto_sub ${label} over TLS with --cafile against Kite's mqtts listener`,
    ignore: !HAVE_OPENSSL || !HAVE_MOSQUITTO_CLIENTS,
    async fn() {
      const broker = await startTransports();
      try {
        const tls = [
          "-h",
          "127.0.0.1",
          "-p",
          String(portOf(broker, "mqtts")),
          "--cafile",
          certs!.caCert,
          "-V",
          v!,
        ];
        const sub = await subscribe(broker, [
          ...tls,
          "-t",
          "tls/+",
          "-q",
          "1",
          "-C",
          "2",
          "-v",
        ]);
        for (const [t, m] of [["tls/a", "one"], ["tls/b", "two"]]) {
          const out = await run("mosquitto_pub", [
            ...tls,
            "-t",
            t!,
            "-m",
            m!,
            "-q",
            "1",
          ]);
          assert.equal(out.code, 0, text(out.stderr));
        }
        const out = await withTimeout(sub.output(), 10_000, "mosquitto_sub");
        assert.equal(text(out.stdout), "tls/a one\ntls/b two\n");
        // Trusting another CA, the client refuses Kite's certificate.
        const other = await certs!.selfSigned(`other-ca-${v}`);
        const refused = await run("mosquitto_pub", [
          "-h",
          "127.0.0.1",
          "-p",
          String(portOf(broker, "mqtts")),
          "--cafile",
          other.cert,
          "-t",
          "x",
          "-m",
          "y",
        ]);
        assert.notEqual(refused.code, 0);
        assert.match(text(refused.stderr), /certificate verify failed|TLS/i);
      } finally {
        await broker.close();
      }
    },
  });
}

/** A broker with a mutual TLS listener (client certificates from the CA). */
function startMutual(
  options: BrokerInit & { identity?: boolean } = {},
): Promise<Broker> {
  const c = certs!;
  const { identity, ...rest } = options;
  return startBroker({
    listeners: [{
      protocol: "mqtts",
      port: 0,
      certFile: c.serverCert,
      keyFile: c.serverKey,
      caFile: c.caCert,
      requireClientCertificate: true,
      useIdentityAsUsername: identity ?? false,
    }],
    ...rest,
  });
}

Deno.test({
  name:
    "mutual TLS: mosquitto_pub with a client certificate gets in; without one, or with one from another CA, it is refused",
  ignore: !HAVE_OPENSSL || !HAVE_MOSQUITTO_CLIENTS,
  async fn() {
    const broker = await startMutual();
    try {
      const base = [
        "-h",
        "127.0.0.1",
        "-p",
        String(portOf(broker, "mqtts")),
        "--cafile",
        certs!.caCert,
        "-t",
        "m/t",
        "-q",
        "1",
      ];
      const sub = await subscribe(broker, [
        ...base,
        "--cert",
        alice!.cert,
        "--key",
        alice!.key,
        "-C",
        "1",
      ]);
      const ok = await run("mosquitto_pub", [
        ...base,
        "--cert",
        alice!.cert,
        "--key",
        alice!.key,
        "-m",
        "with a certificate",
      ]);
      assert.equal(ok.code, 0, text(ok.stderr));
      const out = await withTimeout(sub.output(), 10_000, "mosquitto_sub");
      assert.equal(text(out.stdout), "with a certificate\n");
      const without = await run("mosquitto_pub", [...base, "-m", "no"]);
      assert.notEqual(without.code, 0, "no client certificate: refused");
      const stranger = await certs!.selfSigned("stranger");
      const other = await run("mosquitto_pub", [
        ...base,
        "--cert",
        stranger.cert,
        "--key",
        stranger.key,
        "-m",
        "no",
      ]);
      assert.notEqual(other.code, 0, "a certificate of another CA: refused");
      assert.equal(broker.connectedClients, 0);
    } finally {
      await broker.close();
    }
  },
});

Deno.test({
  name:
    "useIdentityAsUsername: the certificate's CN is the user name the hooks see; the CONNECT's does not count",
  ignore: !HAVE_OPENSSL,
  async fn() {
    const seen: (string | undefined)[] = [];
    let authenticateCalls = 0;
    const broker = await startMutual({
      identity: true,
      allowAnonymous: false,
      authenticate: () => {
        authenticateCalls++;
        return 0x86;
      },
      authorizePublish: (client: ClientInfo) => {
        seen.push(client.username);
        return 0;
      },
    });
    try {
      const pem = (f: string) => Deno.readTextFileSync(f);
      for (const username of [undefined, "mallory"]) {
        const c = await openMqttjs(
          broker,
          {
            protocol: "mqtts",
            port: portOf(broker, "mqtts"),
            ca: certs!.caPem,
            cert: pem(alice!.cert),
            key: pem(alice!.key),
            protocolVersion: 5,
            ...(username === undefined ? {} : { username, password: "x" }),
          },
          (topic) => topic,
        );
        await c.client.publishAsync("id/t", "hi", { qos: 1 });
        await endMqttjs(c.client);
      }
      // No password, allowAnonymous false, an authenticate hook that
      // refuses everyone: the certificate is what let alice in.
      assert.deepEqual(seen, ["alice", "alice"]);
      assert.equal(authenticateCalls, 0);
    } finally {
      await broker.close();
    }
  },
});
