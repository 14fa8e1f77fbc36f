/**
 * `broker/main.ts` with more listeners: the start-up log names every
 * listener with its URL (the first line stays `listening on mqtt://...`),
 * and a listener that cannot open (a missing or bad certificate file, a port
 * in use) stops start-up with one line naming it (exit 1); a bad `listeners`
 * entry in the config file is one line naming the listener and the key (exit
 * 2).
 */

import assert from "node:assert/strict";
import { HAVE_OPENSSL, makeCerts } from "./_broker_certs.ts";
import { DenoProcess, spawnBroker } from "./_subprocess.ts";

const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;

/** Runs main.ts until it exits (at most 20 s): status and output. */
async function runMain(args: string[]) {
  const p = new DenoProcess([
    MAIN,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--enable-persistence=false",
    "--sys-interval",
    "0",
    ...args,
  ]);
  try {
    return await p.exit(20_000, `main.ts ${args.join(" ")}`);
  } finally {
    await p.kill();
  }
}

Deno.test({
  name:
    "main.ts logs every listener with its URL: mqtt first, then mqtts, ws and wss",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using certs = await makeCerts();
    await using broker = await spawnBroker([
      "--tls-port",
      "0",
      "--ws-port",
      "0",
      "--wss-port",
      "0",
      "--ws-path",
      "/ws",
      "--cert-file",
      certs.serverCert,
      "--key-file",
      certs.serverKey,
    ]);
    const out = broker.process;
    const lines = await Promise.all([
      out.waitForOutput(
        /listening on mqtts:\/\/127\.0\.0\.1:(\d+)\n/,
        "all",
        10_000,
        "mqtts",
      ),
      out.waitForOutput(
        /listening on ws:\/\/127\.0\.0\.1:(\d+)\/ws\n/,
        "all",
        10_000,
        "ws",
      ),
      out.waitForOutput(
        /listening on wss:\/\/127\.0\.0\.1:(\d+)\/ws\n/,
        "all",
        10_000,
        "wss",
      ),
    ]);
    const all = out.stdout + out.stderr;
    // The TCP line comes first (tools parse it), and every port is real.
    assert.ok(
      all.indexOf("listening on mqtt://") <
        all.indexOf("listening on mqtts://"),
    );
    for (const m of lines) assert.ok(Number(m[1]) > 0, m[0]);
    assert.notEqual(lines[0][1], lines[1][1]);
  },
});

Deno.test("main.ts: a missing certificate file stops start-up with one line naming the listener", async () => {
  const { code, stdout, stderr } = await runMain([
    "--tls-port",
    "0",
    "--cert-file",
    "/nonexistent/server.crt",
    "--key-file",
    "/nonexistent/server.key",
  ]);
  assert.equal(code, 1);
  const text = stdout + stderr;
  assert.match(
    text,
    /cannot listen on mqtts:\/\/127\.0\.0\.1:0: cannot read certFile \/nonexistent\/server\.crt: no such file/,
  );
  assert.doesNotMatch(text, /^\s+at /m, "no stack trace");
});

Deno.test({
  name:
    "main.ts: a key that is not the certificate's stops start-up with one line",
  ignore: !HAVE_OPENSSL,
  async fn() {
    await using certs = await makeCerts();
    const other = await certs.client("someone");
    const { code, stdout, stderr } = await runMain([
      "--wss-port",
      "0",
      "--cert-file",
      certs.serverCert,
      "--key-file",
      other.key,
    ]);
    assert.equal(code, 1);
    assert.match(
      stdout + stderr,
      /cannot listen on wss:\/\/127\.0\.0\.1:0: keyFile \S+ is not the key of certFile \S+/,
    );
  },
});

Deno.test("main.ts: a WebSocket port in use stops start-up with one line naming the listener", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = taken.addr.port;
  const { code, stdout, stderr } = await runMain(["--ws-port", String(port)]);
  assert.equal(code, 1);
  assert.match(
    stdout + stderr,
    new RegExp(
      `cannot listen on ws://127\\.0\\.0\\.1:${port}: address already in use`,
    ),
  );
});

Deno.test("main.ts: a bad listeners entry in the config file is one line naming the file, line, listener and key (exit 2)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/kite.yaml`;
    await Deno.writeTextFile(
      file,
      [
        "port: 0",
        "listeners:",
        "  - protocol: ws",
        "    port: 8080",
        "  - protocol: wss",
        "    port: 8884",
        "    cert_file: /etc/kite/server.crt",
        "",
      ].join("\n"),
    );
    const { code, stderr } = await runMain(["--config", file]);
    assert.equal(code, 2);
    assert.equal(
      stderr.trim(),
      `kite: ${file}:5: listener #2 (wss port 8884): wss needs certFile and keyFile (PEM files), keyFile is missing`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
