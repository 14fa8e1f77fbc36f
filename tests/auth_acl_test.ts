import assert from "node:assert/strict";
import { join } from "node:path";
import { Acl, filterCovers, filtersOverlap } from "../broker/acl.ts";
import { AuthFileError } from "../broker/password_file.ts";

const FILE = `
# anonymous clients
topic read public/#
topic write public/anon-inbox

user alice
topic readwrite alice/#
topic deny alice/secret
topic read $SYS/#

user bob
topic write bob/out
topic bob/both

# alice again: sections add up
user alice
topic read shared/+/news

pattern write devices/%c/status
pattern read users/%u/inbox/#
pattern readwrite %u/%c/private
pattern deny public/blocked/%c
`;

type Row = [
  op: "read" | "write" | "sub",
  clientId: string,
  user: string | undefined,
  topic: string,
  allowed: boolean,
];

const ROWS: Row[] = [
  // anonymous section: only clients without a user name
  ["read", "c1", undefined, "public/news", true],
  ["read", "c1", undefined, "public", true], // "#" matches the parent level
  ["write", "c1", undefined, "public/news", false],
  ["write", "c1", undefined, "public/anon-inbox", true],
  ["read", "c1", "alice", "public/news", false], // alice is not anonymous
  ["read", "c1", "carol", "public/news", false], // unlisted user: patterns only
  // per user, read/write/readwrite, default readwrite
  ["read", "c1", "alice", "alice/notes", true],
  ["write", "c1", "alice", "alice/notes/today", true],
  ["write", "c1", "bob", "alice/notes", false],
  ["write", "c1", "bob", "bob/out", true],
  ["read", "c1", "bob", "bob/out", false],
  ["read", "c1", "bob", "bob/both", true],
  ["write", "c1", "bob", "bob/both", true],
  ["read", "c1", "alice", "shared/x/news", true],
  ["write", "c1", "alice", "shared/x/news", false],
  // deny wins over a matching allow
  ["read", "c1", "alice", "alice/secret", false],
  ["write", "c1", "alice", "alice/secret", false],
  ["read", "c1", "alice", "alice/secret/x", true], // deny is exact here
  // $ topics need a $ rule [MQTT-4.7.2-1]
  ["read", "c1", "alice", "$SYS/broker/uptime", true],
  ["read", "c1", "bob", "$SYS/broker/uptime", false],
  // patterns: %c and %u
  ["write", "dev1", "bob", "devices/dev1/status", true],
  ["write", "dev1", undefined, "devices/dev1/status", true],
  ["write", "dev1", "bob", "devices/dev2/status", false],
  ["read", "dev1", "bob", "devices/dev1/status", false],
  ["read", "c1", "bob", "users/bob/inbox/1", true],
  ["read", "c1", "bob", "users/alice/inbox/1", false],
  ["read", "c1", undefined, "users//inbox/1", false], // %u needs a user name
  ["write", "c9", "bob", "bob/c9/private", true],
  ["write", "c9", "bob", "bob/c8/private", false],
  // pattern deny applies to anonymous clients too
  ["read", "c1", undefined, "public/blocked/c1", false],
  ["read", "c1", undefined, "public/blocked/c2", true],
  // wildcard or "/" in an id or user name disables the substituting pattern
  ["write", "+", "bob", "devices/+/status", false],
  ["write", "#", "bob", "devices/#/status", false],
  ["write", "a/b", "bob", "devices/a/b/status", false],
  ["read", "c1", "b/o", "users/b/o/inbox/x", false],
  ["read", "c1", "+", "users/+/inbox/x", false],
  // subscribe: covered by a read rule, no overlapping deny
  ["sub", "c1", "alice", "alice/#", false], // overlaps "deny alice/secret"
  ["sub", "c1", "alice", "alice/notes/#", true],
  ["sub", "c1", "alice", "alice/+/x", true],
  ["sub", "c1", "alice", "alice/+", false], // "alice/+" matches alice/secret
  ["sub", "c1", "alice", "shared/+/news", true],
  ["sub", "c1", "alice", "shared/#", false], // not covered by shared/+/news
  ["sub", "c1", "alice", "#", false],
  ["sub", "c1", "alice", "$SYS/#", true],
  ["sub", "c1", "bob", "$SYS/#", false],
  ["sub", "c1", "bob", "bob/out", false], // write only
  ["sub", "c1", "bob", "bob/both", true],
  ["sub", "c1", "bob", "users/bob/inbox/#", true],
  ["sub", "c1", "bob", "$share/g/users/bob/inbox/+", true],
  ["sub", "c1", "bob", "$share/g/users/alice/inbox/+", false],
  ["sub", "c1", undefined, "public/#", false], // overlaps public/blocked/c1
  ["sub", "c1", undefined, "public/news/#", true],
  ["sub", "c1", undefined, "public/+", true],
  ["sub", "c1", undefined, "public/blocked/+", false],
  ["sub", "c1", undefined, "a/#/b", false], // invalid filter
];

Deno.test("Acl.parse() decides read, write and subscribe per user, pattern and anonymous section", () => {
  const acl = Acl.parse(FILE);
  for (const [op, clientId, user, topic, allowed] of ROWS) {
    const got = op === "read"
      ? acl.canRead(clientId, user, topic)
      : op === "write"
      ? acl.canWrite(clientId, user, topic)
      : acl.canSubscribe(clientId, user, topic);
    assert.equal(got, allowed, `${op} ${clientId}/${user} ${topic}`);
  }
});

Deno.test("Acl.canRead() and canWrite() give the same answers from the cache", () => {
  const acl = Acl.parse(FILE);
  for (let i = 0; i < 3; i++) {
    assert.equal(acl.canWrite("dev1", "bob", "devices/dev1/status"), true);
    assert.equal(acl.canWrite("dev2", "bob", "devices/dev1/status"), false);
    assert.equal(acl.canRead("c1", "alice", "alice/x"), true);
    assert.equal(acl.canRead("c1", undefined, "alice/x"), false);
  }
});

Deno.test("Acl.parse() of an empty file refuses everything", () => {
  const acl = Acl.parse("# nothing\n");
  assert.equal(acl.canRead("c", undefined, "a"), false);
  assert.equal(acl.canWrite("c", "u", "a"), false);
  assert.equal(acl.canSubscribe("c", "u", "a"), false);
});

Deno.test("Acl.parse() takes a filter without access word as readwrite, and the rest of the line as the filter", () => {
  const acl = Acl.parse("topic a/b\ntopic read with space/#\n");
  assert.equal(acl.canWrite("c", undefined, "a/b"), true);
  assert.equal(acl.canRead("c", undefined, "a/b"), true);
  assert.equal(acl.canRead("c", undefined, "with space/x"), true);
  assert.equal(acl.canWrite("c", undefined, "with space/x"), false);
});

Deno.test("Acl.parse() names the line of a bad rule", () => {
  const rows: [string, RegExp][] = [
    ["topic", /"topic" needs a filter/],
    ["topic sometimes a/b", /unknown access "sometimes"/],
    ["topic read a/#/b", /invalid topic filter "a\/#\/b"/],
    ["pattern write x+/%c", /invalid topic filter/],
    ["user", /"user" needs a user name/],
    ["allow all", /unknown keyword "allow"/],
  ];
  for (const [line, message] of rows) {
    assert.throws(
      () => Acl.parse(`# header\n\n${line}\n`, "kite.acl"),
      (e) => {
        assert.ok(e instanceof AuthFileError, line);
        assert.equal(e.line, 3, line);
        assert.equal(e.path, "kite.acl");
        assert.match(e.message, message);
        return true;
      },
    );
  }
});

Deno.test("Acl.load() reads a file and reports a missing one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "kite.acl");
    await Deno.writeTextFile(path, "user u\r\ntopic read a/#\r\n");
    const acl = await Acl.load(path);
    assert.equal(acl.canRead("c", "u", "a/b"), true);
    await assert.rejects(
      Acl.load(join(dir, "missing.acl")),
      (e) => e instanceof AuthFileError && e.path === join(dir, "missing.acl"),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("filterCovers() holds when every topic of the filter matches the rule", () => {
  const rows: [rule: string, filter: string, covers: boolean][] = [
    ["#", "a/b", true],
    ["#", "#", true],
    ["#", "+/x", true],
    ["#", "$SYS/x", false], // [MQTT-4.7.2-1]
    ["+/#", "$SYS/#", false],
    ["$SYS/#", "$SYS/#", true],
    ["a/#", "a", true], // a/# matches the parent level
    ["a/#", "a/#", true],
    ["a/#", "a/+/c", true],
    ["a/#", "b", false],
    ["a/+", "a/b", true],
    ["a/+", "a/+", true],
    ["a/+", "a/#", false],
    ["a/+", "a", false],
    ["a/+", "a/b/c", false],
    ["+", "#", false],
    ["+", "+", true],
    ["a/b", "a/+", false],
    ["a/b", "a/b", true],
    ["a/b", "a/b/c", false],
    ["a//b", "a/+/b", false],
    ["a/+/b", "a//b", true], // "+" matches the empty level
  ];
  for (const [rule, filter, covers] of rows) {
    assert.equal(
      filterCovers(rule, filter),
      covers,
      `${rule} covers ${filter}`,
    );
  }
});

Deno.test("filtersOverlap() holds when some topic matches both filters", () => {
  const rows: [a: string, b: string, overlap: boolean][] = [
    ["#", "a/b", true],
    ["#", "$SYS/x", false], // [MQTT-4.7.2-1]
    ["+/x", "$SYS/x", false],
    ["$SYS/#", "$SYS/x", true],
    ["a/#", "a", true],
    ["a/+", "a", false],
    ["a/+", "+/b", true],
    ["a/b", "a/c", false],
    ["a/+/c", "a/b/#", true],
    ["a/+/c", "a/b/d", false],
    ["a/b/c", "a/b", false],
    ["+", "+", true],
  ];
  for (const [a, b, overlap] of rows) {
    assert.equal(filtersOverlap(a, b), overlap, `${a} ~ ${b}`);
    assert.equal(filtersOverlap(b, a), overlap, `${b} ~ ${a}`);
  }
});

Deno.test("Acl.forClient() compiles one client's rules for repeated checks", () => {
  const acl = Acl.parse(FILE);
  const dev1 = acl.forClient("dev1", "bob");
  assert.equal(dev1.canWrite("devices/dev1/status"), true);
  assert.equal(dev1.canWrite("devices/dev2/status"), false);
  assert.equal(dev1.canRead("bob/both"), true);
  assert.equal(dev1.canSubscribe("users/bob/inbox/#"), true);
  const anon = acl.forClient("c1");
  assert.equal(anon.canRead("public/news"), true);
  assert.equal(anon.canRead("bob/both"), false);
});
