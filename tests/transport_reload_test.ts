/**
 * Certificate reload: `Broker.reloadCertificates()` and SIGHUP to
 * `broker/main.ts`. A connection made before the reload keeps working, a
 * new one is served the new certificate (its SHA-256 fingerprint, read with
 * `node:tls`, is the new file's), files that cannot be used keep the old
 * certificate. Certificates come from a throwaway CA made with openssl.
 */

import assert from "node:assert/strict";
import * as tls from "node:tls";
import { HAVE_OPENSSL, makeCerts, type TestCerts } from "./_broker_certs.ts";
import { startBroker, withTimeout } from "./_helpers.ts";
import { endMqttjs, openMqttjs } from "./_mqttjs.ts";
import { spawnBroker } from "./_subprocess.ts";

/** The SHA-256 fingerprint (lower-case hex) of the certificate at `port`. */
function servedFingerprint(
  port: number,
  ca: string,
  client?: { cert: string; key: string },
): Promise<string> {
  return withTimeout(
    new Promise<string>((resolve, reject) => {
      const s = tls.connect({
        host: "127.0.0.1",
        port,
        ca,
        ...(client === undefined ? {} : {
          cert: Deno.readTextFileSync(client.cert),
          key: Deno.readTextFileSync(client.key),
        }),
      }, () => {
        const fp = s.getPeerCertificate().fingerprint256;
        s.destroy();
        resolve(fp.replaceAll(":", "").toLowerCase());
      });
      s.on("error", reject);
    }),
    5000,
    "the served certificate",
  );
}

/** Copies the server certificate and key to files a test may overwrite. */
async function liveFiles(
  certs: TestCerts,
): Promise<{ certFile: string; keyFile: string }> {
  const certFile = `${certs.dir}/live-${crypto.randomUUID()}.crt`;
  const keyFile = `${certs.dir}/live-${crypto.randomUUID()}.key`;
  await Deno.copyFile(certs.serverCert, certFile);
  await Deno.copyFile(certs.serverKey, keyFile);
  return { certFile, keyFile };
}

/** Overwrites the live files with `next` (a certificate and its key). */
async function replace(
  live: { certFile: string; keyFile: string },
  next: { cert: string; key: string },
): Promise<void> {
  await Deno.copyFile(next.cert, live.certFile);
  await Deno.copyFile(next.key, live.keyFile);
}

Deno.test({
  name:
    "Broker.reloadCertificates(): open mqtts, wss and mutual TLS connections stay, new ones get the new certificate",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using certs = await makeCerts();
    const alice = await certs.client("alice");
    const live = await liveFiles(certs);
    const broker = await startBroker({
      listeners: [
        { protocol: "mqtts", port: 0, ...live },
        { protocol: "wss", port: 0, ...live },
        {
          protocol: "mqtts",
          port: 0,
          ...live,
          caFile: certs.caCert,
          requireClientCertificate: true,
        },
      ],
    });
    const [, mqtts, wss, mutual] = broker.listeners.map((l) => l.addr.port);
    const ca = certs.caPem;
    const pem = (f: string) => Deno.readTextFileSync(f);
    const open = (protocol: "mqtts" | "wss", port: number, cert = false) =>
      openMqttjs(broker, {
        protocol,
        port,
        ca,
        path: "/mqtt",
        protocolVersion: 5,
        ...(cert ? { cert: pem(alice.cert), key: pem(alice.key) } : {}),
      }, (topic, payload) => `${topic} ${payload}`);
    const before = await Promise.all([
      open("mqtts", mqtts!),
      open("wss", wss!),
      open("mqtts", mutual!, true),
    ]);
    try {
      const oldFp = await certs.fingerprint(certs.serverCert);
      assert.equal(await servedFingerprint(mqtts!, ca), oldFp);
      // Unchanged files: nothing to do.
      assert.deepEqual(
        (await broker.reloadCertificates()).map((r) => r.changed),
        [false, false, false],
      );
      const next = await certs.issue("server2", { server: true });
      await replace(live, next);
      const results = await broker.reloadCertificates();
      assert.deepEqual(results.map((r) => [r.changed, r.error]), [
        [true, undefined],
        [true, undefined],
        [true, undefined],
      ]);
      const newFp = await certs.fingerprint(next.cert);
      assert.notEqual(newFp, oldFp);
      assert.equal(await servedFingerprint(mqtts!, ca), newFp);
      assert.equal(await servedFingerprint(wss!, ca), newFp);
      assert.equal(await servedFingerprint(mutual!, ca, alice), newFp);
      // The connections made before still work, each way.
      for (const [i, c] of before.entries()) {
        await c.client.subscribeAsync(`reload/${i}`, { qos: 1 });
        await c.client.publishAsync(`reload/${i}`, "still here", { qos: 1 });
        assert.equal(await c.next(), `reload/${i} still here`);
      }
      // A key that is not the certificate's: refused, the old one stays.
      await Deno.copyFile(alice.key, live.keyFile);
      const bad = await broker.reloadCertificates();
      for (const r of bad) {
        assert.equal(r.changed, false);
        assert.match(r.error?.message ?? "", /is not the key of certFile/);
      }
      assert.equal(await servedFingerprint(mqtts!, ca), newFp);
    } finally {
      for (const c of before) await endMqttjs(c.client);
      await broker.close();
    }
  },
});

/** A raw TLS MQTT connection: CONNECT sent, CONNACK read. */
async function tlsClient(port: number, ca: string): Promise<Deno.TlsConn> {
  const conn = await Deno.connectTls({
    hostname: "127.0.0.1",
    port,
    caCerts: [ca],
  });
  // CONNECT 3.1.1, clean session, keep alive 0, client id "h".
  await conn.write(
    new Uint8Array([
      0x10,
      13,
      0,
      4,
      0x4d,
      0x51,
      0x54,
      0x54,
      4,
      2,
      0,
      0,
      0,
      1,
      0x68,
    ]),
  );
  const buf = new Uint8Array(4);
  let got = 0;
  while (got < 4) {
    const n = await withTimeout(conn.read(buf.subarray(got)), 5000, "CONNACK");
    if (n === null) throw new Error("closed before CONNACK");
    got += n;
  }
  assert.deepEqual([...buf], [0x20, 2, 0, 0]);
  return conn;
}

Deno.test({
  name:
    "broker/main.ts: SIGHUP reloads the certificate of --tls-port; the open connection stays, a new one sees the new certificate",
  ignore: !HAVE_OPENSSL || Deno.build.os === "windows",
  async fn() {
    await using certs = await makeCerts();
    const live = await liveFiles(certs);
    await using broker = await spawnBroker([
      "--tls-port",
      "0",
      "--cert-file",
      live.certFile,
      "--key-file",
      live.keyFile,
    ]);
    const m = await broker.process.waitForOutput(
      /listening on mqtts:\/\/127\.0\.0\.1:(\d+)/,
      "all",
      10_000,
      "the mqtts line",
    );
    const port = Number(m[1]);
    const ca = certs.caPem;
    const conn = await tlsClient(port, ca);
    try {
      assert.equal(
        await servedFingerprint(port, ca),
        await certs.fingerprint(certs.serverCert),
      );
      const next = await certs.issue("server3", { server: true });
      await replace(live, next);
      broker.process.child.kill("SIGHUP");
      await broker.process.waitForOutput(
        /mqtts:\/\/127\.0\.0\.1:\d+: new certificate loaded/,
        "all",
        10_000,
        "the reload",
      );
      assert.equal(
        await servedFingerprint(port, ca),
        await certs.fingerprint(next.cert),
      );
      // PINGREQ -> PINGRESP on the connection made before the reload.
      await conn.write(new Uint8Array([0xc0, 0]));
      const buf = new Uint8Array(2);
      assert.equal(await withTimeout(conn.read(buf), 5000, "PINGRESP"), 2);
      assert.deepEqual([...buf], [0xd0, 0]);
      // A broken file: logged, the new certificate stays.
      await Deno.writeTextFile(live.certFile, "not a certificate\n");
      broker.process.child.kill("SIGHUP");
      await broker.process.waitForOutput(
        /certificate not reloaded, the old one is served: certFile .* holds no PEM certificate/,
        "all",
        10_000,
        "the failed reload",
      );
      assert.equal(
        await servedFingerprint(port, ca),
        await certs.fingerprint(next.cert),
      );
    } finally {
      conn.close();
    }
  },
});
