/**
 * `broker/main.ts` as a subprocess: --help, bad options (exit 2 with one
 * line naming the key), start-up on port 0, graceful shutdown on SIGTERM and
 * SIGINT (v5 clients get DISCONNECT 0x8B, exit 0).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Packet } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { SETTING_KEYS, toFlagName } from "../broker/options.ts";
import { PasswordFile } from "../broker/password_file.ts";

const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;
const TIMEOUT_MS = 15_000;

/** Rejects with a message naming `what` if `promise` takes over `ms`. */
async function withTimeout<T>(
  promise: Promise<T>,
  what: string,
  ms = TIMEOUT_MS,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`timed out after ${ms} ms: ${what}`)),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Writes all of `bytes` (a socket write may take only part). */
async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  while (bytes.length > 0) bytes = bytes.subarray(await conn.write(bytes));
}

/** Runs main.ts to completion and returns its status and output. */
async function runMain(args: string[], env: Record<string, string> = {}) {
  const out = await withTimeout(
    new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, ...args],
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output(),
    `main.ts ${args.join(" ")}`,
  );
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

/** Collects a stream's text and lets a test wait for a pattern in it. */
class TextCollector {
  text = "";
  #waiters: { pattern: RegExp; resolve: (m: RegExpMatchArray) => void }[] = [];
  readonly done: Promise<void>;

  constructor(stream: ReadableStream<Uint8Array>) {
    this.done = (async () => {
      for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
        this.text += chunk;
        this.#check();
      }
    })();
  }

  #check() {
    this.#waiters = this.#waiters.filter(({ pattern, resolve }) => {
      const m = this.text.match(pattern);
      if (m) resolve(m);
      return !m;
    });
  }

  waitFor(pattern: RegExp): Promise<RegExpMatchArray> {
    const { promise, resolve } = Promise.withResolvers<RegExpMatchArray>();
    this.#waiters.push({ pattern, resolve });
    this.#check();
    return withTimeout(promise, `output matching ${pattern}`);
  }
}

/** Spawns `main.ts ...args` (stdin closed), its output collected. */
function spawnMain(args: string[]) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = new TextCollector(child.stdout);
  const stderr = new TextCollector(child.stderr);
  return { child, stdout, stderr };
}

/** A broker subprocess started on 127.0.0.1 port 0 without persistence. */
async function startBroker(extra: string[] = []) {
  const { child, stdout, stderr } = spawnMain([
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--enable-persistence=false",
    "--sys-interval",
    "0",
    ...extra,
  ]);
  try {
    const m = await stdout.waitFor(/listening on mqtt:\/\/(\S+):(\d+)/);
    return { child, stdout, stderr, hostname: m[1]!, port: Number(m[2]) };
  } catch (e) {
    child.kill("SIGKILL");
    await child.status;
    await Promise.all([stdout.done, stderr.done]);
    throw new Error(`broker did not start: ${stdout.text}${stderr.text}`, {
      cause: e,
    });
  }
}

/** A raw v5 client: CONNECT, then packets read through the codec. */
async function connectV5(
  port: number,
  credentials: { username?: string; password?: Uint8Array } = {},
) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const packets: Packet[] = [];
  let notify: (() => void) | undefined;
  const decoder = new PacketDecoder({ version: 5 });
  let closed = false;
  let readError: unknown;
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    try {
      while (true) {
        const n = await conn.read(buf);
        if (n === null) break;
        decoder.push(buf.subarray(0, n), (p) => packets.push(p));
        notify?.();
      }
    } catch (e) {
      // A reset or our own close ends the stream like EOF; keep the rest.
      if (!(e instanceof Deno.errors.ConnectionReset)) readError = e;
    }
    closed = true;
    notify?.();
  })();
  /** The next packet, or `undefined` once the broker closed the socket. */
  const next = async (): Promise<Packet | undefined> => {
    while (packets.length === 0 && !closed) {
      const { promise, resolve } = Promise.withResolvers<void>();
      notify = resolve;
      await withTimeout(promise, "a packet from the broker");
    }
    return packets.shift();
  };
  await writeAll(
    conn,
    encode({
      type: "connect",
      protocolVersion: 5,
      clientId: "main-test",
      cleanStart: true,
      keepAlive: 60,
      ...credentials,
    }),
  );
  return { conn, next, reading, readError: () => readError };
}

Deno.test("main.ts --help lists every option and exits 0", async () => {
  const { code, stdout, stderr } = await runMain(["--help"]);
  assert.equal(code, 0, stderr);
  for (const key of SETTING_KEYS) {
    assert.ok(stdout.includes(toFlagName(key)), `--help lacks ${key}`);
  }
  assert.match(
    stdout,
    /--port <n>[^\n]*\n[^\n]*integer 0\.\.65535, default 1883/,
  );
  assert.match(stdout, /--config <file>/);
});

Deno.test("main.ts with a bad option prints one line naming the key and exits 2", async () => {
  const cases: [string[], RegExp][] = [
    [
      ["--port", "70000"],
      /^kite: --port must be an integer from 0 to 65535, got 70000$/,
    ],
    [
      ["--max-conections", "5"],
      /^kite: unknown option --max-conections \(did you mean --max-connections\?\)$/,
    ],
    [
      ["--max-qos=3"],
      /^kite: --max-qos must be an integer from 0 to 2, got 3$/,
    ],
    [
      ["--config", "/nonexistent/kite.yaml"],
      /^kite: cannot read config file \/nonexistent\/kite\.yaml: no such file$/,
    ],
  ];
  await Promise.all(cases.map(async ([args, pattern]) => {
    const { code, stdout, stderr } = await runMain(args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "");
    assert.match(stderr.trimEnd(), pattern);
    assert.equal(stderr.trimEnd().split("\n").length, 1, stderr);
  }));
});

Deno.test("main.ts with a bad config file names the file and line and exits 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "kite.yaml");
    await Deno.writeTextFile(path, "port: 0\nreceive_maximum: 0\n");
    const bad = await runMain(["--config", path]);
    assert.equal(bad.code, 2);
    assert.equal(
      bad.stderr.trimEnd(),
      `kite: ${path}:2: receive_maximum must be an integer from 1 to 65535, got 0`,
    );
    await Deno.writeTextFile(path, "port: 0\nhost: [oops\n");
    const yaml = await runMain(["--config", path]);
    assert.equal(yaml.code, 2);
    assert.match(yaml.stderr, new RegExp(`^kite: ${path}:\\d+: invalid YAML`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts with a bad KITE_LOG_LEVEL exits 2", async () => {
  const { code, stderr } = await runMain(["--port", "0"], {
    KITE_LOG_LEVEL: "loud",
  });
  assert.equal(code, 2);
  assert.match(stderr, /^kite: KITE_LOG_LEVEL must be one of/);
});

Deno.test("main.ts with a missing password file exits 2 naming it", async () => {
  const { code, stderr } = await runMain([
    "--port",
    "0",
    "--enable-persistence=false",
    "--password-file",
    "/nonexistent/kite.passwd",
  ]);
  assert.equal(code, 2);
  assert.match(stderr, /^kite: \/nonexistent\/kite\.passwd: cannot read/);
});

Deno.test("main.ts passwd FILE USER adds a user from stdin", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = join(dir, "kite.passwd");
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", MAIN, "passwd", "-c", file, "alice"],
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode("s3cret\ns3cret\n"));
    await writer.close();
    const out = await withTimeout(child.output(), "passwd");
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const passwords = await PasswordFile.load(file);
    assert.equal(await passwords.verify("alice", "s3cret"), true);
    assert.equal(await passwords.verify("alice", "wrong"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs `fn` with a broker subprocess that requires the password file `file`
 * (user alice, password s3cret); stops the broker (SIGTERM) and removes the
 * file after.
 */
async function withPasswordBroker(
  fn: (
    broker: Awaited<ReturnType<typeof startBroker>>,
    passwords: PasswordFile,
    file: string,
  ) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "kite.passwd");
  const passwords = new PasswordFile();
  await passwords.setUser("alice", "s3cret");
  await passwords.save(file);
  const broker = await startBroker([
    "--password-file",
    file,
    "--no-allow-anonymous",
  ]);
  try {
    await fn(broker, passwords, file);
  } finally {
    broker.child.kill("SIGTERM");
    await withTimeout(broker.child.status, "broker exit");
    await Promise.all([broker.stdout.done, broker.stderr.done]);
    await Deno.remove(dir, { recursive: true });
  }
}

/** Connects as a v5 client with `credentials`; asserts the CONNACK's code. */
async function assertConnack(
  port: number,
  credentials: { username: string; password: Uint8Array },
  expected: number,
): Promise<void> {
  const client = await connectV5(port, credentials);
  try {
    const connack = await client.next();
    assert.ok(connack?.type === "connack", `got ${connack?.type}`);
    assert.equal(connack.reasonCode, expected);
  } finally {
    client.conn.close();
    await client.reading;
  }
}

Deno.test("main.ts --password-file refuses a wrong password (v5 CONNACK 0x86)", async () => {
  await withPasswordBroker(async (broker) => {
    const enc = new TextEncoder();
    const cases: [Uint8Array, number][] = [
      [enc.encode("wrong"), ReasonCode.BadUserNameOrPassword],
      [enc.encode("s3cret"), ReasonCode.Success],
    ];
    for (const [password, expected] of cases) {
      await assertConnack(
        broker.port,
        { username: "alice", password },
        expected,
      );
    }
  });
});

Deno.test("main.ts --password-file refuses anonymous clients by default (v5 CONNACK 0x87)", async () => {
  const dir = await Deno.makeTempDir();
  const file = join(dir, "kite.passwd");
  const passwords = new PasswordFile({ iterations: 1000 });
  await passwords.setUser("alice", "s3cret");
  await passwords.save(file);
  const broker = await startBroker(["--password-file", file]);
  try {
    const client = await connectV5(broker.port);
    const connack = await client.next();
    assert.ok(connack?.type === "connack", `got ${connack?.type}`);
    assert.equal(connack.reasonCode, ReasonCode.NotAuthorized);
    client.conn.close();
    await client.reading;
  } finally {
    broker.child.kill("SIGTERM");
    await withTimeout(broker.child.status, "broker exit");
    await Promise.all([broker.stdout.done, broker.stderr.done]);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts without authentication listens on 127.0.0.1 only and says so", async () => {
  const { child, stdout, stderr } = spawnMain([
    "--port",
    "0",
    "--enable-persistence=false",
    "--sys-interval",
    "0",
  ]);
  try {
    const m = await stdout.waitFor(/listening on mqtt:\/\/(\S+):(\d+)(.*)/);
    assert.equal(m[1], "127.0.0.1");
    assert.match(m[3]!, /loopback only: no authentication configured/);
  } finally {
    child.kill("SIGTERM");
    await withTimeout(child.status, "broker exit");
    await Promise.all([stdout.done, stderr.done]);
  }
});

Deno.test("main.ts --host 0.0.0.0 without authentication stops with one line and exit 2", async () => {
  const { code, stdout, stderr } = await runMain([
    "--host",
    "0.0.0.0",
    "--port",
    "0",
    "--enable-persistence=false",
  ]);
  assert.equal(code, 2);
  assert.equal(stdout, "");
  assert.match(stderr, /^kite: host 0\.0\.0\.0 without authentication/);
  assert.equal(stderr.trimEnd().split("\n").length, 1);
});

Deno.test("main.ts reloads the password file on SIGHUP", async () => {
  await withPasswordBroker(async (broker, passwords, file) => {
    await passwords.setUser("bob", "hunter2");
    await passwords.save(file);
    broker.child.kill("SIGHUP");
    await broker.stdout.waitFor(/SIGHUP: password and ACL files reloaded/);
    await assertConnack(broker.port, {
      username: "bob",
      password: new TextEncoder().encode("hunter2"),
    }, ReasonCode.Success);
  });
});

Deno.test("main.ts persists by default and lets flags override the config file", async () => {
  const dir = await Deno.makeTempDir();
  // The file's port is taken, so only the flag's port 0 can work.
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const config = join(dir, "kite.yaml");
    const data = join(dir, "data");
    await Deno.writeTextFile(
      config,
      `port: ${taken.addr.port}\nmax_connections: 7\npersistence_path: ${data}\n`,
    );
    const { child, stdout, stderr } = spawnMain(
      ["--config", config, "--host", "127.0.0.1"]
        .concat(["--port", "0", "--sys-interval", "0"]),
    );
    try {
      const m = await stdout.waitFor(
        /listening on mqtt:\/\/127\.0\.0\.1:(\d+)/,
      );
      assert.notEqual(Number(m[1]), taken.addr.port);
      assert.match(stdout.text, /options: .*maxConnections=7/);
      // Persistence is on by default: not listed among the changed options.
      assert.doesNotMatch(stdout.text, /enablePersistence=/);
      child.kill("SIGTERM");
      const status = await withTimeout(child.status, "broker exit");
      assert.equal(status.code, 0, stderr.text);
      // The Deno KV store was created under the configured path.
      const entries = await Array.fromAsync(Deno.readDir(data));
      assert.ok(entries.length > 0, "no KV file in persistencePath");
    } finally {
      try {
        child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await child.status;
      await Promise.all([stdout.done, stderr.done]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts exits 1 when its port is taken", async () => {
  using listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { code, stderr } = await runMain([
    "--host",
    "127.0.0.1",
    "--port",
    String(listener.addr.port),
    "--enable-persistence=false",
  ]);
  assert.equal(code, 1);
  assert.match(
    stderr,
    new RegExp(
      `cannot listen on 127\\.0\\.0\\.1:${listener.addr.port}: address already in use`,
    ),
  );
});

for (const signal of ["SIGTERM", "SIGINT"] as const) {
  Deno.test(`main.ts on ${signal} sends v5 clients DISCONNECT 0x8B and exits 0`, async () => {
    const broker = await startBroker();
    try {
      assert.ok(broker.port > 0, "the log states the real port, not 0");
      assert.match(broker.stdout.text, /options: .*port=0/);
      const client = await connectV5(broker.port);
      try {
        const connack = await client.next();
        assert.ok(connack?.type === "connack", `got ${connack?.type}`);
        assert.equal(connack.reasonCode, ReasonCode.Success);

        broker.child.kill(signal);
        const disconnect = await client.next();
        assert.ok(disconnect?.type === "disconnect", `got ${disconnect?.type}`);
        assert.equal(disconnect.reasonCode, ReasonCode.ServerShuttingDown);
        const status = await withTimeout(broker.child.status, "broker exit");
        assert.equal(status.code, 0, broker.stderr.text);
        await withTimeout(client.reading, "socket close");
        assert.equal(client.readError(), undefined);
      } finally {
        client.conn.close();
      }
      await Promise.all([broker.stdout.done, broker.stderr.done]);
      assert.match(broker.stdout.text, new RegExp(`${signal} received`));
    } finally {
      try {
        broker.child.kill("SIGKILL");
      } catch {
        // already exited
      }
      await broker.child.status;
      await Promise.all([broker.stdout.done, broker.stderr.done]);
    }
  });
}

Deno.test("main.ts exits 1 on a second signal while the close is still flushing", async () => {
  const broker = await startBroker();
  // A subscriber that reads its CONNACK and SUBACK, then never reads again.
  const stalled = await Deno.connect({
    hostname: "127.0.0.1",
    port: broker.port,
  });
  const publisher = await Deno.connect({
    hostname: "127.0.0.1",
    port: broker.port,
  });
  try {
    await writeAll(
      stalled,
      new Uint8Array([
        ...encode({
          type: "connect",
          protocolVersion: 5,
          clientId: "stalled",
          cleanStart: true,
          keepAlive: 0,
        }),
        ...encode({
          type: "subscribe",
          packetId: 1,
          subscriptions: [{ filter: "t", qos: 0 }],
        }, { version: 5 }),
      ]),
    );
    const until = async (conn: Deno.Conn, type: Packet["type"]) => {
      const decoder = new PacketDecoder({ version: 5 });
      const buf = new Uint8Array(256);
      let seen = false;
      while (!seen) {
        const n = await withTimeout(conn.read(buf), `${type}`);
        assert.ok(n !== null, `closed before ${type}`);
        decoder.push(buf.subarray(0, n), (p) => (seen ||= p.type === type));
      }
    };
    await until(stalled, "suback");
    // Far more than the socket buffers hold, so the broker's writes to the
    // stalled subscriber block and close() waits for its flush timeout.
    await writeAll(
      publisher,
      encode({
        type: "connect",
        protocolVersion: 5,
        clientId: "publisher",
        cleanStart: true,
        keepAlive: 0,
      }),
    );
    await until(publisher, "connack");
    const publish = encode({
      type: "publish",
      topic: "t",
      payload: new Uint8Array(60_000),
      qos: 0,
      retain: false,
      dup: false,
    }, { version: 5 });
    for (let i = 0; i < 500; i++) await writeAll(publisher, publish);
    await writeAll(publisher, encode({ type: "pingreq" }, { version: 5 }));
    await until(publisher, "pingresp"); // every publish was routed

    broker.child.kill("SIGTERM");
    await broker.stdout.waitFor(/SIGTERM received/);
    broker.child.kill("SIGINT");
    const status = await withTimeout(broker.child.status, "broker exit");
    assert.equal(status.code, 1);
    await Promise.all([broker.stdout.done, broker.stderr.done]);
    assert.match(broker.stderr.text, /SIGINT again: exiting/);
    assert.doesNotMatch(broker.stdout.text, /closed/);
  } finally {
    stalled.close();
    publisher.close();
    try {
      broker.child.kill("SIGKILL");
    } catch {
      // already exited
    }
    await broker.child.status;
    await Promise.all([broker.stdout.done, broker.stderr.done]);
  }
});
