/**
 * Failed logins are throttled per source address (issue 19, finding 7):
 * `LoginThrottle` (bans, growth, bounds), `sourceOf`, the password checks'
 * priorities, `fileAuth` refusing a banned source with 0x8A without a
 * password check, and a broker under a flood of wrong passwords from
 * several 127.0.0.x addresses (real sockets bound with `node:net`) still
 * letting a valid login from another address in. The timing itself is
 * measured by `bench/login_flood.ts`.
 */

import assert from "node:assert/strict";
import net from "node:net";
import { once } from "node:events";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { fileAuth } from "../broker/auth.ts";
import { LoginThrottle, sourceOf } from "../broker/login_throttle.ts";
import { PasswordFile, pbkdf2Sha256 } from "../broker/password_file.ts";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { ProtocolVersion } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { authFiles, passwordOf } from "./_auth_fixture.ts";
import { startBroker, withTimeout } from "./_helpers.ts";

Deno.test("LoginThrottle bans a source after maxFailures within the window, for a ban that doubles up to maxBanMs", () => {
  let now = 1_000_000;
  const t = new LoginThrottle({
    maxFailures: 3,
    windowMs: 1000,
    banMs: 100,
    maxBanMs: 350,
    now: () => now,
  });
  const s = "192.0.2.1";
  assert.equal(t.suspect(s), false);
  assert.equal(t.failed(s), 0);
  assert.equal(t.suspect(s), true);
  assert.equal(t.failed(s), 0);
  assert.equal(t.banned(s), 0);
  assert.equal(t.failed(s), 100); // third failure: banned
  assert.equal(t.banned(s), 100);
  assert.equal(t.failed(s), 0, "a failure while banned starts no new ban");
  assert.equal(t.banned("192.0.2.2"), 0, "other sources are not affected");
  now += 100;
  assert.equal(t.banned(s), 0);
  for (const ban of [200, 350, 350]) {
    t.failed(s);
    t.failed(s);
    assert.equal(t.failed(s), ban);
    now += ban;
  }
});

Deno.test("LoginThrottle counts failures per window, and forgets a source clean for maxBanMs", () => {
  let now = 0;
  const t = new LoginThrottle({
    maxFailures: 3,
    windowMs: 1000,
    banMs: 100,
    maxBanMs: 5000,
    now: () => now,
  });
  const s = "192.0.2.1";
  t.failed(s);
  t.failed(s);
  now += 1000; // a new window
  assert.equal(t.suspect(s), false);
  assert.equal(t.failed(s), 0);
  assert.equal(t.failed(s), 0);
  assert.equal(t.failed(s), 100);
  now += 100 + 5000; // clean for maxBanMs after the ban: a first offender again
  t.failed(s);
  t.failed(s);
  assert.equal(t.failed(s), 100);
});

Deno.test("LoginThrottle remembers at most maxSources sources", () => {
  const t = new LoginThrottle({ maxSources: 100, now: () => 0 });
  for (let i = 0; i < 1000; i++) t.failed(`10.0.${i >> 8}.${i & 255}`);
  assert.equal(t.size, 100);
  assert.equal(t.suspect("10.0.3.231"), true); // the newest are kept
  assert.equal(t.suspect("10.0.0.0"), false);
});

Deno.test("sourceOf() keys IPv4 by address, IPv6 by /64, IPv4-mapped IPv6 as IPv4", () => {
  const cases: [string | undefined, string | undefined][] = [
    ["192.0.2.1:50123", "192.0.2.1"],
    ["127.0.0.9:1", "127.0.0.9"],
    ["2001:db8:0:1:aaaa::7:443", "2001:db8:0:1::/64"],
    ["[2001:db8:0:1:aaaa::7]:443", "2001:db8:0:1::/64"],
    ["2001:db8::1:80", "2001:db8:0:0::/64"],
    ["::1:1883", "0:0:0:0::/64"],
    ["fe80::1%eth0:1883", "fe80:0:0:0::/64"],
    ["::ffff:192.0.2.1:50123", "192.0.2.1"],
    ["", undefined],
    [undefined, undefined],
  ];
  for (const [address, source] of cases) {
    assert.equal(sourceOf(address), source, String(address));
  }
});

/** Lets every pending promise job run (a timer fires after all of them). */
function settle(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

Deno.test("PasswordFile.verify() runs low-priority checks behind the others and keeps a slot free for them", async () => {
  const started: string[] = [];
  const pending: (() => void)[] = [];
  let hold = false; // derivations finish when the test says so
  const file = new PasswordFile({
    iterations: 1,
    maxConcurrent: 2,
    deriver: (password) => {
      if (!hold) return Promise.resolve(new Uint8Array(32));
      started.push(new TextDecoder().decode(password));
      const { promise, resolve } = Promise.withResolvers<Uint8Array>();
      pending.push(() => resolve(new Uint8Array(32)));
      return promise;
    },
  });
  await file.setUser("u", "x");
  hold = true;
  const low = { lowPriority: () => true };
  const checks = [
    file.verify("u", "bad1", low),
    file.verify("u", "bad2", low),
    file.verify("u", "bad3", low),
  ];
  await settle();
  assert.deepEqual(started, ["bad1"], "low priority never takes the last slot");
  checks.push(file.verify("u", "good"));
  await settle();
  assert.deepEqual(started, ["bad1", "good"], "a normal check starts at once");
  checks.push(file.verify("u", "good2"));
  pending.shift()!(); // bad1 done: good2 goes before bad2
  await settle();
  assert.deepEqual(started, ["bad1", "good", "good2"]);
  while (pending.length > 0) {
    pending.shift()!();
    await settle();
  }
  await Promise.all(checks);
  assert.deepEqual(started, ["bad1", "good", "good2", "bad2", "bad3"]);
});

/** Collects `kite.auth` log records while `fn` runs. */
async function withLogs(
  fn: (records: LogRecord[]) => Promise<void>,
): Promise<void> {
  const records: LogRecord[] = [];
  await configure({
    sinks: { memory: (r: LogRecord) => records.push(r) },
    loggers: [
      { category: ["kite", "auth"], sinks: ["memory"], lowestLevel: "debug" },
      { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
    ],
    reset: true,
  });
  try {
    await fn(records);
  } finally {
    await reset();
  }
}

Deno.test("fileAuth() bans a source after 5 failed logins: 0x8A without a password check, logged once; other sources unaffected", async () => {
  await using files = await authFiles();
  let derivations = 0;
  const auth = await fileAuth({
    ...files.paths,
    deriver: (password, salt, iterations) => {
      derivations++;
      return pbkdf2Sha256(password, salt, iterations);
    },
  });
  const ctx = (address: string, password: string) => ({
    clientId: "c",
    protocolVersion: 5 as const,
    username: "alice",
    password: new TextEncoder().encode(password),
    remoteAddress: address,
  });
  await withLogs(async (records) => {
    for (let i = 0; i < 5; i++) {
      assert.equal(
        await auth.authenticate(ctx(`198.51.100.7:${4000 + i}`, "wrong")),
        ReasonCode.BadUserNameOrPassword,
      );
    }
    assert.equal(derivations, 5);
    for (const password of ["wrong", "alice-pw"]) {
      assert.equal(
        await auth.authenticate(ctx("198.51.100.7:5000", password)),
        ReasonCode.Banned,
      );
    }
    assert.equal(derivations, 5, "a banned source costs no derivation");
    assert.equal(
      await auth.authenticate(ctx("198.51.100.8:4000", "alice-pw")),
      ReasonCode.Success,
    );
    const bans = records.filter((r) =>
      r.message.some((m) => typeof m === "string" && m.includes("banned"))
    );
    assert.equal(bans.length, 1, "one log line per ban");
    assert.equal(bans[0]!.properties.source, "198.51.100.7");
  });
  const off = await fileAuth({ ...files.paths, loginThrottle: false });
  for (let i = 0; i < 7; i++) {
    assert.equal(
      await off.authenticate(ctx("198.51.100.9:1", "wrong")),
      ReasonCode.BadUserNameOrPassword,
    );
  }
});

/** CONNECT from `localAddress` (a 127.0.0.x) over TCP: the CONNACK's code. */
async function connectFrom(
  localAddress: string,
  port: number,
  version: ProtocolVersion,
  user: string,
  password: Uint8Array,
): Promise<number> {
  const socket = net.connect({ host: "127.0.0.1", port, localAddress });
  const closed = new Promise((resolve) => socket.once("close", resolve));
  socket.on("error", () => {}); // surfaces as a close without CONNACK
  try {
    await once(socket, "connect");
    const decoder = new PacketDecoder({ version });
    const connack = new Promise<number>((resolve, reject) => {
      socket.on(
        "data",
        (chunk: Uint8Array) =>
          decoder.push(new Uint8Array(chunk), (p) => {
            if (p.type === "connack") resolve(p.reasonCode);
          }),
      );
      socket.on("close", () => reject(new Error("closed before CONNACK")));
    });
    socket.write(encode({
      type: "connect",
      protocolVersion: version,
      clientId: "",
      cleanStart: true,
      keepAlive: 0,
      username: user,
      password,
    }, { version }));
    return await withTimeout(connack, 10_000, `CONNACK to ${localAddress}`);
  } finally {
    socket.destroy();
    await closed;
  }
}

Deno.test("Broker with fileAuth: a flood of wrong passwords from several addresses gets them banned (v5 0x8A, 3.1.1 0x05) while a valid login from another address gets in", async () => {
  await using files = await authFiles({ iterations: 100_000 });
  const auth = await fileAuth({ ...files.paths });
  const broker = await startBroker({
    authenticate: auth.authenticate,
    authorizePublish: auth.authorizePublish,
    authorizeSubscribe: auth.authorizeSubscribe,
  });
  const port = broker.addr.port;
  const wrong = new TextEncoder().encode("guess");
  try {
    const codes = new Map<string, number[]>();
    // 4 addresses x 4 connections, each trying 4 wrong passwords in turn.
    const flood = [2, 3, 4, 5].flatMap((host) => {
      const address = `127.0.0.${host}`;
      codes.set(address, []);
      return [4, 5, 4, 5].map(async (version) => {
        for (let i = 0; i < 4; i++) {
          const code = await connectFrom(
            address,
            port,
            version as ProtocolVersion,
            "alice",
            wrong,
          );
          codes.get(address)!.push(version === 5 ? code : -code);
        }
      });
    });
    const valid: number[] = [];
    const logins = (async () => {
      for (let i = 0; i < 5; i++) {
        const t0 = performance.now();
        const code = await connectFrom(
          "127.0.0.9",
          port,
          5,
          "bob",
          passwordOf("bob"),
        );
        valid.push(performance.now() - t0);
        assert.equal(code, ReasonCode.Success);
      }
    })();
    await Promise.all([...flood, logins]);
    for (const [address, seen] of codes) {
      // Every attempt was refused; after the first failures, as banned.
      assert.ok(seen.every((c) => c !== 0), address);
      assert.ok(
        seen.includes(ReasonCode.Banned) && seen.includes(-0x05),
        `${address} banned in both versions: ${seen}`,
      );
      const failures = seen.filter((c) =>
        c === ReasonCode.BadUserNameOrPassword || c === -0x04
      );
      // 5 failures ban; at most 3 more were already being checked.
      assert.ok(failures.length <= 8, `${address}: ${seen}`);
    }
    // A sanity bound only; bench/login_flood.ts measures.
    for (const ms of valid) assert.ok(ms < 3000, `valid login took ${ms} ms`);
  } finally {
    await broker.close();
  }
});
