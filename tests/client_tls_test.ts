/**
 * The client over TLS, against Mosquitto with a throwaway CA and server
 * certificate made by `openssl` (skipped when either is missing).
 */

import assert from "node:assert/strict";
import { Client, type Message } from "../client/mod.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";
import { within } from "./client_helpers.ts";

const HAVE_OPENSSL = (() => {
  try {
    return Deno.statSync("/usr/bin/openssl").isFile;
  } catch {
    return false;
  }
})();

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command("/usr/bin/openssl", {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

/** A CA and a server certificate for IP 127.0.0.1, in a new temp dir. */
async function makeCerts(): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "kite-tls-" });
  await Deno.chmod(dir, 0o755); // mosquitto may drop root privileges
  const ec = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
  ];
  await openssl(
    dir,
    "req",
    "-x509",
    ...ec,
    "-keyout",
    "ca.key",
    "-out",
    "ca.crt",
    "-days",
    "1",
    "-subj",
    "/CN=Kite Test CA",
    "-addext",
    "basicConstraints=critical,CA:TRUE",
    "-addext",
    "keyUsage=critical,keyCertSign",
  );
  await openssl(
    dir,
    "req",
    ...ec,
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
    "-subj",
    "/CN=127.0.0.1",
  );
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  await openssl(
    dir,
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    "server.crt",
    "-days",
    "1",
    "-extfile",
    "ext.cnf",
  );
  for (const f of ["ca.crt", "server.crt", "server.key"]) {
    await Deno.chmod(`${dir}/${f}`, 0o644);
  }
  return dir;
}

Deno.test({
  name: "Client connects over TLS with tls.caCerts [mosquitto]",
  ignore: !HAVE_MOSQUITTO || !HAVE_OPENSSL,
  async fn() {
    const dir = await makeCerts();
    try {
      await using broker = await startMosquitto({
        extraConfig: `certfile ${dir}/server.crt\nkeyfile ${dir}/server.key`,
      });
      const ca = await Deno.readTextFile(`${dir}/ca.crt`);
      const client = new Client({
        port: broker.port,
        tls: { caCerts: [ca] },
        reconnect: false,
      });
      await client.connect();
      const got = Promise.withResolvers<Message>();
      await client.subscribe("tls/#", 1, (m) => got.resolve(m));
      await client.publish("tls/a", "secret", 1);
      assert.equal(
        (await within(got.promise, 3000, "message over TLS")).payloadText,
        "secret",
      );
      await client.disconnect();
      // Without the CA the handshake fails: reported as 0x88 with the cause.
      const untrusted = new Client({
        port: broker.port,
        tls: true,
        reconnect: false,
        connectTimeout: 3000,
      });
      await assert.rejects(untrusted.connect(), (e: unknown) => {
        assert.ok(e instanceof MqttError);
        assert.equal(e.reasonCode, ReasonCode.ServerUnavailable);
        return true;
      });
      await untrusted.close();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
