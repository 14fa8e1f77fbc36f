import assert from "node:assert/strict";
import { join } from "node:path";
import { configure, type LogRecord, reset } from "@logtape/logtape";
import { type ClientInfo, fileAuth } from "../broker/auth.ts";
import { AuthFileError, PasswordFile } from "../broker/password_file.ts";
import { ReasonCode } from "../codec/reason_code.ts";

const enc = new TextEncoder();
const FAST = { iterations: 1000 };

interface Fixture {
  dir: string;
  passwordFile: string;
  aclFile: string;
  [Symbol.asyncDispose](): Promise<void>;
}

async function fixture(
  users: Record<string, string>,
  acl: string,
): Promise<Fixture> {
  const dir = await Deno.makeTempDir();
  const passwordFile = join(dir, "kite.passwd");
  const aclFile = join(dir, "kite.acl");
  const file = new PasswordFile(FAST);
  for (const [user, pw] of Object.entries(users)) await file.setUser(user, pw);
  await file.save(passwordFile);
  await Deno.writeTextFile(aclFile, acl);
  return {
    dir,
    passwordFile,
    aclFile,
    [Symbol.asyncDispose]: () => Deno.remove(dir, { recursive: true }),
  };
}

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

function render(r: LogRecord): string {
  return r.message.map((part) =>
    typeof part === "string" ? part : JSON.stringify(part)
  ).join("") + JSON.stringify(r.properties);
}

const ACL = `
topic read public/#
user alice
topic readwrite alice/#
pattern write devices/%c/status
`;

function client(
  clientId: string,
  username?: string,
  protocolVersion: 4 | 5 = 5,
): ClientInfo {
  return {
    clientId,
    protocolVersion,
    remoteAddress: "127.0.0.1:50123",
    ...(username === undefined ? {} : { username }),
  };
}

Deno.test("fileAuth() authenticate accepts a right password and refuses a wrong one or an unknown user with 0x86", async () => {
  await using f = await fixture({ alice: "wonderland" }, ACL);
  const auth = await fileAuth({
    passwordFile: f.passwordFile,
    aclFile: f.aclFile,
  });
  const ctx = (username: string, password: string) => ({
    ...client("c1", username),
    password: enc.encode(password),
  });
  assert.equal(
    await auth.authenticate(ctx("alice", "wonderland")),
    ReasonCode.Success,
  );
  assert.equal(
    await auth.authenticate(ctx("alice", "looking-glass")),
    ReasonCode.BadUserNameOrPassword,
  );
  assert.equal(
    await auth.authenticate(ctx("mallory", "wonderland")),
    ReasonCode.BadUserNameOrPassword,
  );
  assert.equal(
    await auth.authenticate(client("c1", "alice")), // no password
    ReasonCode.BadUserNameOrPassword,
  );
});

Deno.test("fileAuth() authenticate refuses anonymous clients with 0x87 unless allowAnonymous", async () => {
  await using f = await fixture({ alice: "pw" }, ACL);
  const strict = await fileAuth({ passwordFile: f.passwordFile });
  assert.equal(
    await strict.authenticate(client("c1")),
    ReasonCode.NotAuthorized,
  );
  const open = await fileAuth({
    passwordFile: f.passwordFile,
    allowAnonymous: true,
  });
  assert.equal(await open.authenticate(client("c1")), ReasonCode.Success);
  // A user name is still checked when anonymous clients are allowed.
  assert.equal(
    await open.authenticate({
      ...client("c1", "alice"),
      password: enc.encode("x"),
    }),
    ReasonCode.BadUserNameOrPassword,
  );
});

Deno.test("fileAuth() without a password file takes user names as given", async () => {
  await withLogs(async () => {
    const auth = await fileAuth({});
    assert.equal(
      await auth.authenticate(client("c1", "anyone")),
      ReasonCode.Success,
    );
    assert.equal(
      await auth.authenticate(client("c1")),
      ReasonCode.NotAuthorized,
    );
    // Without an ACL file everything is allowed.
    assert.equal(auth.authorizePublish(client("c1"), "x/y", 1, false), 0);
    assert.equal(auth.authorizeSubscribe(client("c1"), "#", 2), 2);
  });
});

Deno.test("fileAuth() logs a failed login with the client's address and user name, never the password", async () => {
  await using f = await fixture({ alice: "wonderland" }, ACL);
  await withLogs(async (records) => {
    const auth = await fileAuth({ passwordFile: f.passwordFile });
    await auth.authenticate({
      ...client("c1", "alice"),
      password: enc.encode("TopSecret-42"),
    });
    await auth.authenticate({
      ...client("c2", "nobody"),
      password: enc.encode("TopSecret-43"),
    });
    await auth.authenticate(client("c3"));
    const warnings = records.filter((r) => r.level === "warning");
    assert.equal(warnings.length, 3);
    for (const r of warnings) {
      const text = render(r);
      assert.match(text, /127\.0\.0\.1:50123/);
      assert.doesNotMatch(text, /TopSecret/);
    }
    assert.match(render(warnings[0]!), /alice/);
    assert.match(render(warnings[1]!), /nobody/);
  });
});

Deno.test("fileAuth() authorizePublish returns 0 or 0x87 from the ACL", async () => {
  await using f = await fixture({ alice: "pw" }, ACL);
  const auth = await fileAuth({
    passwordFile: f.passwordFile,
    aclFile: f.aclFile,
  });
  const alice = client("dev1", "alice");
  assert.equal(auth.authorizePublish(alice, "alice/x", 1, false), 0);
  assert.equal(auth.authorizePublish(alice, "devices/dev1/status", 0, true), 0);
  assert.equal(
    auth.authorizePublish(alice, "devices/dev2/status", 0, false),
    ReasonCode.NotAuthorized,
  );
  assert.equal(
    auth.authorizePublish(client("c1"), "public/x", 0, false),
    ReasonCode.NotAuthorized,
  );
});

Deno.test("fileAuth() authorizeSubscribe grants every filter; authorizeRead decides per topic", async () => {
  await using f = await fixture({ alice: "pw" }, ACL);
  const auth = await fileAuth({ aclFile: f.aclFile });
  const alice = client("c1", "alice");
  const anonymous = client("c1", undefined, 4);
  // Was: "#" for alice and "alice/#" for an anonymous client refused with
  // 0x87. Now granted (as Mosquitto 2 does); what they may not read is not
  // delivered, which authorizeRead decides.
  assert.equal(auth.authorizeSubscribe(alice, "alice/#", 2), 2);
  assert.equal(auth.authorizeSubscribe(alice, "alice/+/t", 1), 1);
  assert.equal(auth.authorizeSubscribe(alice, "#", 0), 0);
  assert.equal(auth.authorizeSubscribe(anonymous, "public/#", 1), 1);
  assert.equal(auth.authorizeSubscribe(anonymous, "alice/#", 1), 1);
  const read = auth.authorizeRead!;
  assert.equal(read(alice, "alice/x/t"), true);
  assert.equal(read(alice, "public/news"), false);
  assert.equal(read(alice, "devices/c1/status"), false); // write only
  assert.equal(read(anonymous, "public/news"), true);
  assert.equal(read(anonymous, "alice/x"), false);
});

Deno.test("fileAuth() without an ACL file has no authorizeRead", async () => {
  const auth = await fileAuth({ allowAnonymous: true });
  assert.equal(auth.authorizeRead, undefined);
});

Deno.test("fileAuth() reload() bumps authorizationEpoch and tightens authorizeRead; a failed reload does not", async () => {
  await using f = await fixture({}, "user alice\ntopic read a/#\n");
  await withLogs(async () => {
    const auth = await fileAuth({ aclFile: f.aclFile });
    const alice = client("c1", "alice");
    const e0 = auth.authorizationEpoch();
    assert.equal(auth.authorizeRead!(alice, "a/1"), true);
    await Deno.writeTextFile(f.aclFile, "user alice\ntopic read b/#\n");
    await auth.reload();
    const e1 = auth.authorizationEpoch();
    assert.notEqual(e1, e0);
    assert.equal(auth.authorizeRead!(alice, "a/1"), false);
    assert.equal(auth.authorizeRead!(alice, "b/1"), true);
    await Deno.writeTextFile(f.aclFile, "topic sometimes b\n");
    await assert.rejects(auth.reload(), AuthFileError);
    assert.equal(auth.authorizationEpoch(), e1);
    assert.equal(auth.authorizeRead!(alice, "b/1"), true);
  });
});

Deno.test("fileAuth() reload() picks up changed password and ACL files", async () => {
  await using f = await fixture({ alice: "old" }, ACL);
  await withLogs(async () => {
    const auth = await fileAuth({
      passwordFile: f.passwordFile,
      aclFile: f.aclFile,
    });
    const alice = { ...client("c1", "alice"), password: enc.encode("new") };
    assert.equal(
      await auth.authenticate(alice),
      ReasonCode.BadUserNameOrPassword,
    );
    assert.equal(
      auth.authorizePublish(client("c1", "alice"), "news", 0, false),
      ReasonCode.NotAuthorized,
    );

    const file = await PasswordFile.load(f.passwordFile, FAST);
    await file.setUser("alice", "new");
    await file.save(f.passwordFile);
    await Deno.writeTextFile(f.aclFile, "user alice\ntopic write news\n");
    await auth.reload();

    assert.equal(await auth.authenticate(alice), ReasonCode.Success);
    assert.equal(
      auth.authorizePublish(client("c1", "alice"), "news", 0, false),
      0,
    );
    assert.equal(
      auth.authorizePublish(client("c1", "alice"), "alice/x", 0, false),
      ReasonCode.NotAuthorized,
    );
  });
});

Deno.test("fileAuth() reload() keeps the previous rules when a file is broken", async () => {
  await using f = await fixture({ alice: "pw" }, ACL);
  await withLogs(async (records) => {
    const auth = await fileAuth({
      passwordFile: f.passwordFile,
      aclFile: f.aclFile,
    });
    await Deno.writeTextFile(f.aclFile, "topic sometimes a\n");
    await assert.rejects(auth.reload(), AuthFileError);
    assert.ok(records.some((r) => r.level === "error"));
    assert.equal(
      auth.authorizePublish(client("c1", "alice"), "alice/x", 0, false),
      0,
    );
    const alice = { ...client("c1", "alice"), password: enc.encode("pw") };
    assert.equal(await auth.authenticate(alice), ReasonCode.Success);
  });
});

Deno.test("fileAuth() reload() loads each file on its own: a broken ACL keeps the old rules but a good new password file applies, and the failure is logged once", async () => {
  await using f = await fixture({ alice: "old" }, ACL);
  await withLogs(async (records) => {
    const auth = await fileAuth({
      passwordFile: f.passwordFile,
      aclFile: f.aclFile,
    });
    const epoch = auth.authorizationEpoch();
    const file = await PasswordFile.load(f.passwordFile, FAST);
    await file.setUser("bob", "new");
    await file.save(f.passwordFile);
    await Deno.writeTextFile(f.aclFile, "topic sometimes a\n");
    const from = records.length;
    await assert.rejects(auth.reload(), AuthFileError);
    const bob = { ...client("c2", "bob"), password: enc.encode("new") };
    assert.equal(await auth.authenticate(bob), ReasonCode.Success);
    // The ACL is the old one (alice may still write alice/x).
    assert.equal(
      auth.authorizePublish(client("c1", "alice"), "alice/x", 0, false),
      0,
    );
    assert.equal(auth.authorizationEpoch(), epoch);
    const errors = records.slice(from).filter((r) => r.level === "error");
    assert.equal(errors.length, 1, errors.map(render).join("\n"));
    assert.match(render(errors[0]!), /ACL file reload failed/);
    assert.ok(
      records.slice(from).some((r) =>
        r.level === "info" && /password file/.test(render(r))
      ),
    );

    // And the other way round: a broken password file, a good new ACL.
    await Deno.writeTextFile(f.passwordFile, "bob:not-a-hash\n");
    await Deno.writeTextFile(f.aclFile, "user alice\ntopic write news\n");
    const from2 = records.length;
    await assert.rejects(auth.reload(), AuthFileError);
    assert.equal(await auth.authenticate(bob), ReasonCode.Success);
    assert.equal(
      auth.authorizePublish(client("c1", "alice"), "alice/x", 0, false),
      ReasonCode.NotAuthorized,
    );
    assert.notEqual(auth.authorizationEpoch(), epoch);
    const errors2 = records.slice(from2).filter((r) => r.level === "error");
    assert.equal(errors2.length, 1, errors2.map(render).join("\n"));
    assert.match(render(errors2[0]!), /password file reload failed/);
  });
});

Deno.test("fileAuth() rejects a missing file at start-up", async () => {
  await assert.rejects(
    fileAuth({ passwordFile: "/nonexistent/kite.passwd" }),
    AuthFileError,
  );
  await assert.rejects(
    fileAuth({ aclFile: "/nonexistent/kite.acl" }),
    AuthFileError,
  );
});

Deno.test("fileAuth() rules kept per ClientInfo follow a reload and a change of user name", async () => {
  await using f = await fixture(
    {},
    "user alice\ntopic write a\nuser bob\ntopic write b\n",
  );
  await withLogs(async () => {
    const auth = await fileAuth({ aclFile: f.aclFile });
    const conn: ClientInfo = client("c1", "alice");
    assert.equal(auth.authorizePublish(conn, "a", 0, false), 0);
    assert.equal(auth.authorizePublish(conn, "b", 0, false), 0x87);
    conn.username = "bob"; // e.g. after a v5 re-authentication
    assert.equal(auth.authorizePublish(conn, "a", 0, false), 0x87);
    assert.equal(auth.authorizePublish(conn, "b", 0, false), 0);
    await Deno.writeTextFile(f.aclFile, "user bob\ntopic write c\n");
    await auth.reload();
    assert.equal(auth.authorizePublish(conn, "b", 0, false), 0x87);
    assert.equal(auth.authorizePublish(conn, "c", 0, false), 0);
  });
});
