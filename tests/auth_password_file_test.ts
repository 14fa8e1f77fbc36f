import assert from "node:assert/strict";
import { join } from "node:path";
import {
  AuthFileError,
  DEFAULT_ITERATIONS,
  type KeyDeriver,
  PasswordFile,
  pbkdf2Sha256,
  timingSafeEqual,
} from "../broker/password_file.ts";

/** Fast enough for tests; the format and code path are the same. */
const FAST = { iterations: 1000 };

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** A deriver that records each call and delegates to PBKDF2. */
function countingDeriver(): {
  deriver: KeyDeriver;
  calls: { iterations: number; saltLength: number }[];
} {
  const calls: { iterations: number; saltLength: number }[] = [];
  const deriver: KeyDeriver = (password, salt, iterations) => {
    calls.push({ iterations, saltLength: salt.length });
    return pbkdf2Sha256(password, salt, iterations);
  };
  return { deriver, calls };
}

Deno.test("pbkdf2Sha256() matches the RFC 7914 PBKDF2-HMAC-SHA-256 vector", async () => {
  const enc = new TextEncoder();
  const key = await pbkdf2Sha256(enc.encode("passwd"), enc.encode("salt"), 1);
  assert.equal(
    hex(key),
    "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc",
  );
});

Deno.test("PasswordFile.parse() reads a hand-written line in the documented format", async () => {
  // hash = PBKDF2-SHA-256("passwd", "salt", 1), from the RFC 7914 vector.
  const bytes =
    "55ac046e56e3089fec1691c22544b605f94185216dde0465e68b9d57c20dacbc"
      .match(/../g)!.map((h) => parseInt(h, 16));
  const hash = btoa(String.fromCharCode(...bytes));
  const file = PasswordFile.parse(
    `u:$kite$pbkdf2-sha256$1$${btoa("salt")}$${hash}\n`,
  );
  assert.equal(await file.verify("u", "passwd"), true);
  assert.equal(await file.verify("u", "passwd2"), false);
});

Deno.test("PasswordFile.setUser() then verify() accepts the password, also as bytes", async () => {
  const file = new PasswordFile(FAST);
  await file.setUser("alice", "s3cret ünïcode");
  assert.equal(await file.verify("alice", "s3cret ünïcode"), true);
  assert.equal(
    await file.verify("alice", new TextEncoder().encode("s3cret ünïcode")),
    true,
  );
});

Deno.test("PasswordFile.verify() refuses a wrong password", async () => {
  const file = new PasswordFile(FAST);
  await file.setUser("alice", "right");
  assert.equal(await file.verify("alice", "wrong"), false);
  assert.equal(await file.verify("alice", ""), false);
  assert.equal(await file.verify("Alice", "right"), false);
});

Deno.test("PasswordFile.verify() refuses an unknown user", async () => {
  const file = new PasswordFile(FAST);
  await file.setUser("alice", "pw");
  assert.equal(await file.verify("bob", "pw"), false);
  assert.equal(await new PasswordFile(FAST).verify("bob", ""), false);
});

Deno.test("PasswordFile.verify() derives one key with the same cost for an unknown user as for a known one", async () => {
  const { deriver, calls } = countingDeriver();
  const file = new PasswordFile({ iterations: 1234, deriver });
  await file.setUser("alice", "pw");
  calls.length = 0;

  assert.equal(await file.verify("alice", "wrong"), false);
  assert.equal(await file.verify("nobody", "wrong"), false);
  assert.equal(await file.verify("alice", "pw"), true);
  assert.deepEqual(calls, [
    { iterations: 1234, saltLength: 16 },
    { iterations: 1234, saltLength: 16 },
    { iterations: 1234, saltLength: 16 },
  ]);
});

Deno.test("PasswordFile.verify() of an unknown user uses the file's iteration count", async () => {
  const { deriver, calls } = countingDeriver();
  const written = new PasswordFile({ iterations: 2000 });
  await written.setUser("alice", "pw");
  // Loaded with a different default: the unknown user must still cost 2000.
  const file = PasswordFile.parse(written.toString(), {
    iterations: 1000,
    deriver,
  });
  await file.verify("alice", "x");
  await file.verify("ghost", "x");
  assert.deepEqual(calls.map((c) => c.iterations), [2000, 2000]);
});

Deno.test("PasswordFile.save() and load() round trip users, comments and blank lines", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "passwd");
    await Deno.writeTextFile(path, "# users of kite\n\n");
    const file = await PasswordFile.load(path, FAST);
    await file.setUser("alice", "a-pw");
    await file.setUser("bob", "b-pw");
    await file.save(path);

    const text = await Deno.readTextFile(path);
    assert.match(
      text,
      /^# users of kite\n\nalice:\$kite\$pbkdf2-sha256\$1000\$/,
    );
    assert.match(
      text,
      /\nbob:\$kite\$pbkdf2-sha256\$1000\$[A-Za-z0-9+/=]+\$[A-Za-z0-9+/=]+\n$/,
    );
    if (Deno.build.os !== "windows") {
      assert.equal((await Deno.stat(path)).mode! & 0o777, 0o600);
    }

    const again = await PasswordFile.load(path, FAST);
    assert.deepEqual(again.users, ["alice", "bob"]);
    assert.equal(await again.verify("alice", "a-pw"), true);
    assert.equal(await again.verify("bob", "b-pw"), true);
    assert.equal(await again.verify("bob", "a-pw"), false);
    assert.equal(again.toString(), text);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("PasswordFile.setUser() changes a password with a new salt; deleteUser() removes the line", async () => {
  const file = new PasswordFile(FAST);
  await file.setUser("alice", "one");
  const before = file.toString();
  await file.setUser("alice", "two");
  assert.notEqual(file.toString(), before);
  assert.equal(await file.verify("alice", "one"), false);
  assert.equal(await file.verify("alice", "two"), true);
  assert.deepEqual(file.users, ["alice"]);
  assert.equal(file.deleteUser("alice"), true);
  assert.equal(file.deleteUser("alice"), false);
  assert.equal(file.toString(), "");
});

Deno.test("PasswordFile.setUser() rejects user names the format cannot hold", async () => {
  const file = new PasswordFile(FAST);
  for (const bad of ["", "a:b", "a\nb", " alice"]) {
    await assert.rejects(file.setUser(bad, "pw"), AuthFileError);
  }
});

Deno.test("PasswordFile.parse() names the line of a bad entry", () => {
  const good = "$kite$pbkdf2-sha256$1000$c2FsdA==$" + btoa("x".repeat(32));
  const rows: [string, RegExp][] = [
    ["alice", /expected "user:/],
    ["alice:plaintext", /unknown password scheme/],
    ["alice:$kite$pbkdf2-sha256$1000$c2FsdA==", /expected \$<iterations>/],
    ["alice:$kite$pbkdf2-sha256$0$c2FsdA==$AAAA", /bad iteration count/],
    [
      "alice:$kite$pbkdf2-sha256$99999999$c2FsdA==$AAAA",
      /iteration count above/,
    ],
    ["alice:$kite$pbkdf2-sha256$1000$!!$AAAA", /bad salt/],
    ["alice:$kite$pbkdf2-sha256$1000$c2FsdA==$AAAA", /bad hash/],
    [`alice:${good}\nalice:${good}`, /appears twice/],
  ];
  for (const [line, message] of rows) {
    assert.throws(
      () => PasswordFile.parse(`# header\n${line}\n`, {}, "pw.txt"),
      (e) => {
        assert.ok(e instanceof AuthFileError, line);
        assert.equal(e.path, "pw.txt");
        assert.equal(e.line, line.includes("\n") ? 3 : 2, line);
        assert.match(e.message, message);
        assert.match(e.message, /^pw\.txt:\d+: /);
        return true;
      },
    );
  }
});

Deno.test("PasswordFile.load() of a missing file throws AuthFileError with the path", async () => {
  await assert.rejects(
    PasswordFile.load("/nonexistent/kite.passwd"),
    (e) => e instanceof AuthFileError && e.path === "/nonexistent/kite.passwd",
  );
});

Deno.test("timingSafeEqual() compares contents and lengths", () => {
  const a = new Uint8Array([1, 2, 3]);
  assert.equal(timingSafeEqual(a, new Uint8Array([1, 2, 3])), true);
  assert.equal(timingSafeEqual(a, new Uint8Array([1, 2, 4])), false);
  assert.equal(timingSafeEqual(a, new Uint8Array([1, 2])), false);
  assert.equal(timingSafeEqual(new Uint8Array(0), new Uint8Array(0)), true);
});

Deno.test("DEFAULT_ITERATIONS is at least 100,000", () => {
  assert.ok(DEFAULT_ITERATIONS >= 100_000);
});

Deno.test("PasswordFile.verify() runs at most maxConcurrent derivations at once", async () => {
  let active = 0;
  let peak = 0;
  const deriver: KeyDeriver = async (password, salt, iterations) => {
    active++;
    peak = Math.max(peak, active);
    try {
      return await pbkdf2Sha256(password, salt, iterations);
    } finally {
      active--;
    }
  };
  const file = new PasswordFile({
    iterations: 1000,
    deriver,
    maxConcurrent: 2,
  });
  await file.setUser("alice", "pw"); // setUser is not limited; it ran alone
  peak = 0;
  const results = await Promise.all(
    ["pw", "x", "pw", "y", "pw", "z"].map((pw, i) =>
      file.verify(i % 2 ? "ghost" : "alice", pw)
    ),
  );
  assert.deepEqual(results, [true, false, true, false, true, false]);
  assert.equal(peak, 2);
  assert.equal(active, 0);
});
