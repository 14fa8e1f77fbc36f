/**
 * `kite pub` / `kite sub` (client/cli.ts): the flag parser directly, and the
 * tools as subprocesses against Kite's broker (in-process, port 0) and
 * Mosquitto.
 */

import assert from "node:assert/strict";
import { Client, type Message } from "../client/mod.ts";
import {
  EXIT_TIMEOUT,
  EXIT_USAGE,
  formatMessage,
  parseCliArgs,
  UsageError,
} from "../client/cli.ts";
import { Message as Msg } from "../client/message.ts";
import {
  freePort,
  HAVE_MOSQUITTO,
  startMosquitto,
  startMosquittoTransports,
} from "./_mosquitto.ts";
import { makeCerts as makeTestCerts } from "./_certs.ts";
import {
  type BrokerTarget,
  TARGETS,
  targetTest,
  type TestBroker,
  within,
} from "./client_helpers.ts";
import { DenoProcess, type ProcessResult } from "./_subprocess.ts";

const CLI = new URL("../client/cli.ts", import.meta.url).pathname;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** A running `kite pub|sub`, its output collected. */
class Tool extends DenoProcess {
  constructor(args: string[], stdin: "piped" | "null" = "null") {
    super([CLI, ...args], { stdin });
  }

  /** Resolves once stdout+stderr match `re` (bounded). */
  async waitFor(re: RegExp, ms = 10_000): Promise<void> {
    const what = `output matching ${re}:\n${this.stderr}`;
    await this.waitForOutput(re, "all", ms, what);
  }

  /** The exit status and output (bounded). */
  result(ms = 15_000): Promise<ProcessResult> {
    return this.exit(ms, `kite to exit:\n${this.stderr}`);
  }
}

/** Runs `kite ...args` to the end. */
function run(args: string[], stdin?: string) {
  const t = new Tool(args, stdin === undefined ? "null" : "piped");
  if (stdin !== undefined) t.input(stdin);
  return t.result();
}

/** Starts `kite sub` and waits until it has subscribed. */
async function startSub(args: string[]): Promise<Tool> {
  const t = new Tool(["sub", "-d", ...args]);
  try {
    await t.waitFor(/kite sub: subscribed/);
  } catch (e) {
    await t.kill();
    throw e;
  }
  return t;
}

function test(
  target: BrokerTarget,
  name: string,
  fn: (b: TestBroker) => Promise<void>,
  start: Parameters<BrokerTarget["start"]>[0] = {},
): void {
  targetTest(target, name, fn, start);
}

/** An async subscriber in this process, collecting messages. */
async function collector(port: number, filter: string) {
  const c = new Client({ port, reconnect: false });
  await c.connect();
  const got: Message[] = [];
  const waiters: { n: number; resolve(): void }[] = [];
  await c.subscribe(filter, 2, (m) => {
    got.push(m);
    for (const w of waiters) if (got.length >= w.n) w.resolve();
  });
  return {
    got,
    until(n: number): Promise<void> {
      const { promise, resolve } = Promise.withResolvers<void>();
      waiters.push({ n, resolve });
      if (got.length >= n) resolve();
      return within(promise, 10_000, `${n} messages on ${filter}`);
    },
    async [Symbol.asyncDispose]() {
      await c.disconnect();
    },
  };
}

// ------------------------------------------------------------- the parser

Deno.test("parseCliArgs() reads the Mosquitto-style pub flags", () => {
  const o = parseCliArgs([
    "pub",
    "-h",
    "broker.local",
    "-p",
    "1884",
    "-t",
    "a/b",
    "-m",
    "hi",
    "-q",
    "2",
    "-r",
    "-i",
    "me",
    "-u",
    "user",
    "-P",
    "secret",
    "-k",
    "30",
    "-c",
    "-x",
    "600",
    "--will-topic",
    "w",
    "--will-payload",
    "bye",
    "--will-qos",
    "1",
    "--will-retain",
    "-D",
    "publish",
    "user-property",
    "k",
    "v",
    "-D",
    "publish",
    "content-type",
    "text/plain",
    "-D",
    "publish",
    "message-expiry-interval",
    "60",
    "--user-property",
    "a=b=c",
  ]);
  assert.equal(o.command, "pub");
  if (o.command !== "pub") return;
  assert.equal(o.topic, "a/b");
  assert.equal(o.qos, 2);
  assert.equal(o.retain, true);
  assert.deepEqual(o.source, { kind: "message", payload: enc.encode("hi") });
  assert.deepEqual(o.client, {
    reconnect: false,
    host: "broker.local",
    port: 1884,
    clientId: "me",
    username: "user",
    password: "secret",
    keepAlive: 30,
    cleanStart: false,
    sessionExpiryInterval: 600,
    will: { topic: "w", payload: "bye", qos: 1, retain: true },
  });
  assert.deepEqual(o.properties, {
    userProperties: [["k", "v"], ["a", "b=c"]],
    contentType: "text/plain",
    messageExpiryInterval: 60,
  });
});

Deno.test("parseCliArgs() takes -V 5, mqttv5, 311 and mqttv311", () => {
  for (
    const [v, want] of [["5", 5], ["mqttv5", 5], ["311", 4], ["mqttv311", 4]]
  ) {
    const o = parseCliArgs(["sub", "-t", "#", "-V", String(v)]);
    assert.equal(o.command === "sub" && o.client.protocolVersion, want);
  }
});

Deno.test("parseCliArgs() rejects bad flags with one-line UsageErrors", () => {
  const bad: [string[], RegExp][] = [
    [["sub", "-t", "a", "--bogus"], /unknown option "--bogus"/],
    [["pub", "-t", "a"], /one of -m, -f, -s, -l or -n/],
    [["pub", "-t", "a", "-m", "x", "-n"], /only one of/],
    [["pub", "-t", "a/#", "-m", "x"], /^-t: .*wildcard/],
    [["sub", "-t", "a/#/b"], /^-t: /],
    [["sub", "-t", "a", "-q", "3"], /-q must be 0\.\.2/],
    [["sub", "-t", "a", "-V", "4"], /-V must be 5 or 311/],
    [["sub", "-t", "a", "-V", "mqttv31"], /3\.1 is not supported/],
    [["sub", "-t", "a", "-c"], /-c needs a client id/],
    [["sub"], /-t TOPIC is needed/],
    [["sub", "-t", "a", "-m", "x"], /"kite pub" flag/],
    [["pub", "-t", "a", "-m", "x", "-C", "1"], /"kite sub" flag/],
    [[
      "pub",
      "-t",
      "a",
      "-m",
      "x",
      "-V",
      "311",
      "-D",
      "publish",
      "content-type",
      "x",
    ], /need MQTT 5/],
    [
      ["pub", "-t", "a", "-m", "x", "-D", "publish", "nope", "x"],
      /unknown property "nope"/,
    ],
    [["pub", "-t", "a", "-m", "x", "-p"], /-p needs a value/],
    [["ship"], /unknown command "ship"/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseCliArgs(args),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("formatMessage() expands the -F codes", () => {
  const m = new Msg({
    type: "publish",
    topic: "s/t",
    payload: enc.encode("hi"),
    qos: 1,
    retain: true,
    dup: false,
    properties: {
      contentType: "text/plain",
      userProperties: [["a", "1"], ["b", "2"]],
      correlationData: new Uint8Array([0xab]),
    },
  });
  assert.equal(
    formatMessage("%t %p %q %r %i %m %l %x %X %C %P %D %%", m, 7, "me"),
    "s/t hi 1 1 me 7 2 6869 6869 text/plain a:1,b:2 ab %",
  );
  const j = JSON.parse(formatMessage("%j", m, 1, "me"));
  assert.equal(j.topic, "s/t");
  assert.equal(j.payload, "hi");
  assert.equal(j.retain, true);
});

// ----------------------------------------------------------- subprocesses

for (const target of TARGETS) {
  test(target, "kite sub -C 2 -v receives what kite pub sends", async (b) => {
    const p = String(b.port);
    const sub = await startSub([
      "-p",
      p,
      "-t",
      "cli/#",
      "-v",
      "-C",
      "2",
      "-q",
      "1",
    ]);
    const r1 = await run([
      "pub",
      "-p",
      p,
      "-t",
      "cli/a",
      "-m",
      "one",
      "-q",
      "1",
    ]);
    assert.equal(r1.code, 0, r1.stderr);
    const r2 = await run([
      "pub",
      "-p",
      p,
      "-t",
      "cli/b",
      "-m",
      "two",
      "-q",
      "2",
    ]);
    assert.equal(r2.code, 0, r2.stderr);
    const r = await sub.result();
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "cli/a one\ncli/b two\n");
  });

  test(
    target,
    "kite sub -F prints the format; --json one object per line",
    async (b) => {
      const p = String(b.port);
      const f = await startSub([
        "-p",
        p,
        "-t",
        "fmt/+",
        "-C",
        "1",
        "-F",
        "%t|%p|%q|%r|%l|%x",
        "-q",
        "1",
      ]);
      const j = await startSub([
        "-p",
        p,
        "-t",
        "fmt/+",
        "-C",
        "1",
        "--json",
        "-q",
        "1",
      ]);
      const r = await run([
        "pub",
        "-p",
        p,
        "-t",
        "fmt/x",
        "-m",
        "hey",
        "-q",
        "1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await f.result()).stdout, "fmt/x|hey|1|0|3|686579\n");
      const out = (await j.result()).stdout;
      const lines = out.trim().split("\n");
      assert.equal(lines.length, 1);
      const o = JSON.parse(lines[0]!);
      assert.equal(o.topic, "fmt/x");
      assert.equal(o.payload, "hey");
      assert.equal(o.qos, 1);
      assert.equal(o.retain, false);
    },
  );

  test(
    target,
    "kite pub -r retains; a later kite sub gets it flagged, -R hides it",
    async (b) => {
      const p = String(b.port);
      const r = await run([
        "pub",
        "-p",
        p,
        "-t",
        "ret/t",
        "-m",
        "kept",
        "-r",
        "-q",
        "1",
      ]);
      assert.equal(r.code, 0, r.stderr);
      const s = await run([
        "sub",
        "-p",
        p,
        "-t",
        "ret/t",
        "-C",
        "1",
        "-W",
        "5",
        "-F",
        "%r %p",
      ]);
      assert.equal(s.code, 0, s.stderr);
      assert.equal(s.stdout, "1 kept\n"); // RETAIN set on a retained message sent on subscribe
      const hidden = await run([
        "sub",
        "-p",
        p,
        "-t",
        "ret/t",
        "-R",
        "-W",
        "1",
      ]);
      assert.equal(hidden.code, EXIT_TIMEOUT);
      assert.equal(hidden.stdout, "");
      // An empty retained message clears it v5:[MQTT-3.3.1-6].
      const clear = await run([
        "pub",
        "-p",
        p,
        "-t",
        "ret/t",
        "-n",
        "-r",
        "-q",
        "1",
      ]);
      assert.equal(clear.code, 0, clear.stderr);
    },
  );

  test(
    target,
    "kite pub -l sends one message per stdin line, -s all of stdin",
    async (b) => {
      await using c = await collector(b.port, "lines/#");
      const p = String(b.port);
      const l = await run(
        ["pub", "-p", p, "-t", "lines/l", "-l", "-q", "1"],
        "a\nb\n\nc",
      );
      assert.equal(l.code, 0, l.stderr);
      await c.until(3);
      const s = await run(
        ["pub", "-p", p, "-t", "lines/s", "-s", "-q", "1"],
        "x\ny\n",
      );
      assert.equal(s.code, 0, s.stderr);
      await c.until(4);
      assert.deepEqual(c.got.map((m) => [m.topic, m.payloadText]), [
        ["lines/l", "a"],
        ["lines/l", "b"],
        ["lines/l", "c"],
        ["lines/s", "x\ny\n"],
      ]);
    },
  );

  test(
    target,
    "kite pub -f sends a file; -D/--user-property set v5 properties",
    async (b) => {
      await using c = await collector(b.port, "props/#");
      const file = await Deno.makeTempFile();
      try {
        await Deno.writeFile(file, new Uint8Array([0, 1, 2, 255]));
        const r = await run([
          "pub",
          "-p",
          String(b.port),
          "-t",
          "props/f",
          "-f",
          file,
          "-q",
          "1",
          "-D",
          "publish",
          "user-property",
          "k",
          "v",
          "-D",
          "publish",
          "content-type",
          "application/octet-stream",
          "-D",
          "publish",
          "response-topic",
          "props/reply",
          "-D",
          "publish",
          "correlation-data",
          "id-1",
          "-D",
          "publish",
          "message-expiry-interval",
          "300",
          "--user-property",
          "x=y",
        ]);
        assert.equal(r.code, 0, r.stderr);
      } finally {
        await Deno.remove(file);
      }
      await c.until(1);
      const m = c.got[0]!;
      assert.deepEqual(m.payload, new Uint8Array([0, 1, 2, 255]));
      assert.deepEqual(m.userProperties, [["k", "v"], ["x", "y"]]);
      assert.equal(m.properties.contentType, "application/octet-stream");
      assert.equal(m.responseTopic, "props/reply");
      assert.equal(dec.decode(m.correlationData), "id-1");
      assert.ok((m.properties.messageExpiryInterval ?? 0) > 290);
    },
  );

  test(target, "kite pub -V 311 works with MQTT 3.1.1", async (b) => {
    await using c = await collector(b.port, "v311/#");
    const r = await run([
      "pub",
      "-p",
      String(b.port),
      "-V",
      "mqttv311",
      "-t",
      "v311/a",
      "-m",
      "old",
      "-q",
      "1",
    ]);
    assert.equal(r.code, 0, r.stderr);
    await c.until(1);
    assert.equal(c.got[0]?.payloadText, "old");
  });

  test(
    target,
    "kite sub --will-* : the broker publishes the will when it dies",
    async (b) => {
      await using c = await collector(b.port, "wills/#");
      const sub = await startSub([
        "-p",
        String(b.port),
        "-t",
        "nothing",
        "--will-topic",
        "wills/sub",
        "--will-payload",
        "sub died",
        "--will-qos",
        "1",
      ]);
      await sub.kill(); // no DISCONNECT: the will is due v5:[MQTT-3.1.2-8]
      await c.until(1);
      assert.equal(c.got[0]?.payloadText, "sub died");
    },
  );

  test(
    target,
    "kite pub exits 1 with one line when the broker refuses",
    async (b) => {
      const r = await run(["pub", "-p", String(b.port), "-t", "a", "-m", "x"]);
      assert.equal(r.code, 1);
      const lines = r.stderr.trim().split("\n");
      assert.equal(lines.length, 1, r.stderr);
      assert.match(
        lines[0]!,
        /^kite pub: .*(0x87|NotAuthorized|not authorized)/i,
      );
      assert.equal(r.stdout, "");
    },
    { refuseAll: true },
  );
}

Deno.test("kite pub exits 1 with one line when nothing listens", async () => {
  const r = await run(["pub", "-p", String(freePort()), "-t", "a", "-m", "x"]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr.trim(),
    /^kite pub: cannot connect to 127\.0\.0\.1:\d+: .*0x88\)$/,
  );
});

Deno.test("kite sub exits 2 with one line for a bad flag", async () => {
  const r = await run(["sub", "-t", "a", "--bogus"]);
  assert.equal(r.code, EXIT_USAGE);
  assert.equal(
    r.stderr,
    'kite sub: unknown option "--bogus" (see kite sub --help)\n',
  );
});

Deno.test("kite pub --help prints the usage and exits 0", async () => {
  const r = await run(["pub", "--help"]);
  assert.equal(r.code, 0);
  assert.match(r.stdout, /Usage: kite pub -t TOPIC/);
  assert.match(r.stdout, /--will-topic/);
});

/** A throwaway CA and a server certificate for 127.0.0.1 (openssl). */
async function makeCerts(dir: string): Promise<void> {
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
  const steps = [
    ["req", "-x509", ...ec, "-nodes", "-keyout", "ca.key", "-out", "ca.crt"]
      .concat(["-days", "1", "-subj", "/CN=Kite CLI Test CA"])
      .concat(["-addext", "basicConstraints=critical,CA:TRUE"])
      .concat(["-addext", "keyUsage=critical,keyCertSign"]),
    ["req", ...ec, "-nodes", "-keyout", "server.key", "-out", "server.csr"]
      .concat(["-subj", "/CN=127.0.0.1"]),
    ["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key"]
      .concat(["-CAcreateserial", "-out", "server.crt", "-days", "1"])
      .concat(["-extfile", "ext.cnf"]),
  ];
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
  );
  for (const args of steps) {
    const out = await new Deno.Command("/usr/bin/openssl", {
      args,
      cwd: dir,
      stdout: "null",
      stderr: "piped",
    }).output();
    if (!out.success) throw new Error(dec.decode(out.stderr));
  }
  for (const f of ["ca.crt", "server.crt", "server.key"]) {
    await Deno.chmod(`${dir}/${f}`, 0o644); // mosquitto may drop privileges
  }
}

const HAVE_OPENSSL = (() => {
  try {
    return Deno.statSync("/usr/bin/openssl").isFile;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "kite pub/sub --cafile connect over TLS [mosquitto]",
  ignore: !HAVE_MOSQUITTO || !HAVE_OPENSSL,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "kite-cli-tls-" });
    try {
      await Deno.chmod(dir, 0o755);
      await makeCerts(dir);
      await using m = await startMosquitto({
        extraConfig: `certfile ${dir}/server.crt\nkeyfile ${dir}/server.key`,
      });
      const tls = ["-p", String(m.port), "--cafile", `${dir}/ca.crt`];
      const sub = await startSub([...tls, "-t", "tls/#", "-C", "1", "-v"]);
      const r = await run(["pub", ...tls, "-t", "tls/a", "-m", "sealed"]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await sub.result()).stdout, "tls/a sealed\n");
      // Without the CA the handshake fails: one line, exit 1.
      const bad = await run([
        "pub",
        "-p",
        String(m.port),
        "--tls",
        "-t",
        "a",
        "-m",
        "x",
      ]);
      assert.equal(bad.code, 1);
      assert.equal(bad.stderr.trim().split("\n").length, 1, bad.stderr);
      assert.match(bad.stderr, /^kite pub: .*certificate.*0x88\)$/m);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

// ------------------------------------------------ -L URL, TLS, WebSocket

Deno.test("parseCliArgs() reads -L mqtt(s)://user:pass@host:port/topic as mosquitto_pub does", () => {
  const o = parseCliArgs([
    "pub",
    "-L",
    "mqtt://al%40ice:pw@broker.local:1884/a/b c",
    "-m",
    "x",
  ]);
  assert.equal(o.command, "pub");
  if (o.command !== "pub") return;
  assert.equal(o.topic, "a/b c");
  assert.equal(o.client.url, "mqtt://broker.local:1884");
  assert.equal(o.client.username, "al@ice");
  assert.equal(o.client.password, "pw");
  // -u wins over the URL's user; mqtts:// defaults to 8883.
  const s = parseCliArgs(["sub", "-L", "mqtts://u@h/t/#", "-u", "bob"]);
  assert.equal(s.command === "sub" && s.client.url, "mqtts://h:8883");
  assert.equal(s.command === "sub" && s.client.username, "bob");
  assert.deepEqual(s.command === "sub" && s.topics, ["t/#"]);
});

Deno.test("parseCliArgs() takes ws:// and wss:// URLs (the path is the endpoint) and the TLS flags", async () => {
  const s = parseCliArgs(["sub", "-L", "ws://h:8080/mqtt", "-t", "a/#"]);
  assert.equal(s.command === "sub" && s.client.url, "ws://h:8080/mqtt");
  assert.deepEqual(s.command === "sub" && s.topics, ["a/#"]);
  const dir = await Deno.makeTempDir({ prefix: "kite-cli-pem-" });
  try {
    for (const f of ["ca", "cert", "key"]) {
      await Deno.writeTextFile(`${dir}/${f}.pem`, `${f} text`);
    }
    const o = parseCliArgs([
      "sub",
      ...["-L", "wss://h/mqtt", "-t", "a"],
      ...["--cafile", `${dir}/ca.pem`, "--cert", `${dir}/cert.pem`],
      ...["--key", `${dir}/key.pem`, "--insecure"],
    ]);
    assert.deepEqual(o.command === "sub" && o.client.tls, {
      caCerts: ["ca text"],
      cert: "cert text",
      key: "key text",
      insecure: true,
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("parseCliArgs() rejects -L with -h, TLS flags on a plain URL, --cert without --key, a bad URL", () => {
  const bad: [string[], RegExp][] = [
    [["sub", "-L", "mqtt://h/t", "-h", "x"], /-L cannot be combined with -h/],
    [
      ["sub", "-L", "mqtt://h/t", "--insecure"],
      /need an mqtts:\/\/ or wss:\/\//,
    ],
    [["sub", "-t", "a", "--cert", "c.pem"], /--cert and --key go together/],
    [["sub", "-L", "http://h/t"], /^-L: unsupported broker URL scheme/],
    [["sub", "-L", "ws://h/mqtt"], /-t TOPIC is needed/],
    [["pub", "-L", "mqtt://h/a", "-t", "b", "-m", "x"], /takes one topic/],
    [["sub", "-t", "a", "--cafile", "/nonexistent.pem"], /^--cafile /],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseCliArgs(args),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test({
  name:
    "kite pub/sub -L over mqtts://, wss:// and ws://, with --cafile [mosquitto]",
  ignore: !HAVE_MOSQUITTO || !HAVE_OPENSSL,
  async fn() {
    await using certs = await makeTestCerts({ serverNames: ["localhost"] });
    await using m = await startMosquittoTransports(certs);
    const ca = ["--cafile", certs.caFile];
    for (
      const [subUrl, pubUrl, tls] of [
        [`wss://localhost:${m.wss}/mqtt`, `mqtts://localhost:${m.mqtts}`, ca],
        [`ws://127.0.0.1:${m.ws}/mqtt`, `mqtt://127.0.0.1:${m.port}`, []],
      ] as const
    ) {
      const sub = await startSub([
        ...["-L", subUrl, ...tls, "-t", "cli/#", "-C", "1", "-v", "-q", "1"],
      ]);
      const r = await run([
        "pub",
        ...["-L", `${pubUrl}/cli/x`, ...tls, "-m", `via ${subUrl}`, "-q", "1"],
      ]);
      assert.equal(r.code, 0, r.stderr);
      assert.equal((await sub.result()).stdout, `cli/x via ${subUrl}\n`);
    }
    // --insecure: the certificate names localhost, not 127.0.0.1.
    const args = ["-L", `mqtts://127.0.0.1:${m.mqtts}/cli/i`, ...ca, "-m", "i"];
    const refused = await run(["pub", ...args]);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
    assert.equal((await run(["pub", ...args, "--insecure"])).code, 0);
  },
});

Deno.test({
  name:
    "kite pub --cert/--key passes mutual TLS; without them it exits 1 with one line [mosquitto]",
  ignore: !HAVE_MOSQUITTO || !HAVE_OPENSSL,
  async fn() {
    await using certs = await makeTestCerts();
    await using m = await startMosquittoTransports(certs);
    const base = [
      "pub",
      ...["-L", `mqtts://127.0.0.1:${m.mqttsMutual}/mtls`, "--cafile"],
      ...[certs.caFile, "-m", "x"],
    ];
    const ok = await run([
      ...base,
      ...["--cert", certs.clientCertFile, "--key", certs.clientKeyFile],
    ]);
    assert.equal(ok.code, 0, ok.stderr);
    const refused = await run(base);
    assert.equal(refused.code, 1);
    assert.equal(refused.stderr.trim().split("\n").length, 1, refused.stderr);
    assert.match(refused.stderr, /^kite pub: /);
  },
});
