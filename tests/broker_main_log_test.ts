/**
 * What an operator reads from `broker/main.ts` (subprocesses): start-up
 * errors that name the address, no "Broker closed" before them; the
 * options line with only what differs from the defaults; counts with the
 * right plural; SIGHUP reloading the password file and the ACL file each
 * on its own, each failure logged once.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Broker } from "../broker/mod.ts";
import { PasswordFile } from "../broker/password_file.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { RawClient } from "./_helpers.ts";
import { DenoProcess, spawnBroker } from "./_subprocess.ts";

const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;
const enc = new TextEncoder();

/** main.ts with `args` to its exit (bounded). */
function runMain(args: string[]) {
  return new DenoProcess([MAIN, ...args]).exit(20_000, `main.ts ${args}`);
}

Deno.test("main.ts on a port in use exits 1 with one line naming the address, and no 'Broker closed'", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = taken.addr.port;
  const r = await runMain([
    ...["--host", "127.0.0.1", "--port", String(port)],
    ...["--enable-persistence=false", "--sys-interval", "0"],
  ]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  const errors = r.stderr.trimEnd().split("\n");
  assert.equal(errors.length, 1, r.stderr);
  assert.match(
    errors[0]!,
    new RegExp(
      `cannot listen on 127\\.0\\.0\\.1:${port}: address already in use$`,
    ),
  );
  assert.doesNotMatch(r.stdout + r.stderr, /Broker closed|os error/);
});

Deno.test("main.ts with a host that does not resolve exits 1 naming the host", async () => {
  // .invalid never resolves (RFC 6761).
  const r = await runMain([
    ...["--host", "kite-test.invalid", "--allow-anonymous", "--port", "0"],
    ...["--enable-persistence=false", "--sys-interval", "0"],
  ]);
  assert.equal(r.code, 1, r.stdout + r.stderr);
  assert.equal(r.stderr.trimEnd().split("\n").length, 1, r.stderr);
  assert.match(
    r.stderr,
    /cannot listen on kite-test\.invalid:0: host does not resolve/,
  );
  assert.doesNotMatch(r.stdout, /Broker closed/);
});

Deno.test("main.ts logs only the options that differ from its defaults", async () => {
  await using broker = await spawnBroker([
    ...["--max-qos", "1", "--max-connections", "10000"],
  ]);
  const m = broker.process.stdout.match(/options: (.*)/);
  assert.ok(m !== null, broker.process.stdout);
  // --host 127.0.0.1 and --max-connections 10000 are the defaults.
  assert.equal(m[1], "port=0 enablePersistence=false maxQos=1 sysInterval=0");
});

Deno.test("main.ts says 'Loaded 1 retained message and 0 sessions'", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite-plural-" });
  const start = async () => {
    const p = new DenoProcess([
      MAIN,
      ...["--host", "127.0.0.1", "--port", "0", "--sys-interval", "0"],
      ...["--persistence-path", dir],
    ]);
    const m = await p.waitForOutput(
      /listening on mqtt:\/\/127\.0\.0\.1:(\d+)/,
      "all",
      15_000,
      "the start-up line",
    );
    return { p, port: Number(m[1]) };
  };
  try {
    const first = await start();
    try {
      assert.match(first.p.stdout, /Loaded 0 retained messages and 0 sessions/);
      const { client } = await RawClient.connect(first.port, {
        protocolVersion: 5,
      });
      await client.send({
        type: "publish",
        topic: "plural/t",
        payload: enc.encode("x"),
        qos: 1,
        retain: true,
        dup: false,
        packetId: 1,
      });
      await client.expect("puback"); // after the store commit
      await client.disconnect();
    } finally {
      first.p.child.kill("SIGTERM");
      await first.p.exit(15_000, "the first broker's exit");
    }
    const second = await start();
    try {
      assert.match(
        second.p.stdout,
        /Loaded 1 retained message and 0 sessions \(0 expired\)/,
      );
    } finally {
      second.p.child.kill("SIGTERM");
      await second.p.exit(15_000, "the second broker's exit");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("main.ts on SIGHUP reloads each file on its own: a broken ACL keeps the old rules, the new password file applies, one error line", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite-hup-" });
  try {
    const passwordFile = join(dir, "kite.passwd");
    const aclFile = join(dir, "kite.acl");
    const passwords = new PasswordFile({ iterations: 1000 });
    await passwords.setUser("alice", "a");
    await passwords.save(passwordFile);
    await Deno.writeTextFile(aclFile, "user alice\ntopic readwrite #\n");
    await using broker = await spawnBroker([
      ...["--password-file", passwordFile, "--acl-file", aclFile],
    ]);
    const p = broker.process;
    await passwords.setUser("bob", "b");
    await passwords.save(passwordFile);
    await Deno.writeTextFile(aclFile, "topic sometimes x\n");
    const [outFrom, errFrom] = [p.stdout.length, p.stderr.length];
    broker.process.child.kill("SIGHUP");
    await p.waitForOutput(
      /password file \S+ reloaded/,
      "all",
      10_000,
      "the password file reload",
    );
    await p.waitForOutput(
      /ACL file reload failed/,
      "all",
      10_000,
      "the ACL failure",
    );
    const { client, connack } = await RawClient.connect(broker.port, {
      protocolVersion: 5,
      clientId: "bob",
      username: "bob",
      password: enc.encode("b"),
    });
    assert.equal(connack.reasonCode, ReasonCode.Success);
    await client.disconnect();
    const out = p.stdout.slice(outFrom) + p.stderr.slice(errFrom);
    assert.equal(out.match(/reload failed/g)?.length, 1, out);
    assert.doesNotMatch(out, /SIGHUP: password and ACL files reloaded/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Broker.listen() on a port in use rejects with Deno.errors.AddrInUse naming the address", async () => {
  using taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const broker = new Broker({
    host: "127.0.0.1",
    port: taken.addr.port,
    sysInterval: 0,
  });
  const e = await broker.listen().then(() => undefined, (e: unknown) => e);
  assert.ok(e instanceof Deno.errors.AddrInUse, String(e));
  assert.equal(
    e.message,
    `cannot listen on 127.0.0.1:${taken.addr.port}: address already in use`,
  );
  assert.ok(e.cause instanceof Deno.errors.AddrInUse);
});
