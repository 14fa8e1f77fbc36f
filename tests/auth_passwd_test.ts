import assert from "node:assert/strict";
import { join } from "node:path";
import { PasswordFile } from "../broker/password_file.ts";
import { passwdCommand, type PasswdIo } from "../broker/passwd.ts";

const PASSWD = new URL("../broker/passwd.ts", import.meta.url).pathname;

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `broker/passwd.ts` in a subprocess with `input` on stdin. */
async function run(args: string[], input = ""): Promise<Result> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", PASSWD, ...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(new TextEncoder().encode(input));
  await writer.close();
  const out = await child.output();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
  };
}

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir();
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("passwdCommand() -c creates a file with the user, reading the password from stdin", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "kite.passwd");
    const r = await run(["-c", path, "alice"], "Wonder-1\nWonder-1\n");
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /added user "alice"/);
    assert.doesNotMatch(r.stdout + r.stderr, /Wonder-1/);
    const file = await PasswordFile.load(path);
    assert.deepEqual(file.users, ["alice"]);
    assert.equal(await file.verify("alice", "Wonder-1"), true);
    assert.match(
      await Deno.readTextFile(path),
      /^alice:\$kite\$pbkdf2-sha256\$/,
    );
  });
});

Deno.test("passwdCommand() adds a user to an existing file and changes a password, from a single stdin line", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "kite.passwd");
    assert.equal((await run(["-c", path, "alice"], "a1\n")).code, 0);
    const added = await run([path, "bob"], "b1");
    assert.equal(added.code, 0, added.stderr);
    const changed = await run([path, "alice"], "a2\r\na2\r\n");
    assert.equal(changed.code, 0, changed.stderr);
    assert.match(changed.stdout, /changed the password of user "alice"/);
    const file = await PasswordFile.load(path);
    assert.deepEqual(file.users, ["alice", "bob"]);
    assert.equal(await file.verify("alice", "a2"), true);
    assert.equal(await file.verify("alice", "a1"), false);
    assert.equal(await file.verify("bob", "b1"), true);
  });
});

Deno.test("passwdCommand() exits 1 and changes nothing when the two passwords differ", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "kite.passwd");
    assert.equal((await run(["-c", path, "alice"], "a1\n")).code, 0);
    const before = await Deno.readTextFile(path);
    const r = await run([path, "alice"], "new-1\nnew-2\n");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^kite passwd: the passwords do not match/);
    assert.doesNotMatch(r.stderr, /new-1|new-2/);
    assert.equal(await Deno.readTextFile(path), before);
  });
});

Deno.test("passwdCommand() exits 1 on an empty stdin or an empty password", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "kite.passwd");
    const none = await run(["-c", path, "alice"], "");
    assert.equal(none.code, 1);
    assert.match(none.stderr, /no password given/);
    const empty = await run(["-c", path, "alice"], "\n\n");
    assert.equal(empty.code, 1);
    assert.match(empty.stderr, /password is empty/);
    await assert.rejects(Deno.stat(path), Deno.errors.NotFound);
  });
});

Deno.test("passwdCommand() without -c exits 1 when the file does not exist", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "missing.passwd");
    const r = await run([path, "alice"], "pw\n");
    assert.equal(r.code, 1);
    assert.match(r.stderr, /does not exist \(-c creates it\)/);
  });
});

Deno.test("passwdCommand() -D deletes a user, and exits 1 for an unknown one", async () => {
  await withDir(async (dir) => {
    const path = join(dir, "kite.passwd");
    assert.equal((await run(["-c", path, "alice"], "a\n")).code, 0);
    assert.equal((await run([path, "bob"], "b\n")).code, 0);
    const del = await run(["-D", path, "alice"]);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual((await PasswordFile.load(path)).users, ["bob"]);
    const again = await run(["-D", path, "alice"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /user "alice" is not in/);
  });
});

Deno.test("passwdCommand() exits 2 on usage errors and 1 on a bad user name", async () => {
  const lines: string[] = [];
  const io: PasswdIo = {
    readPasswords: () => Promise.resolve(["pw", "pw"]),
    error: (l) => lines.push(l),
    info: (l) => lines.push(l),
  };
  assert.equal(await passwdCommand([], io), 2);
  assert.equal(await passwdCommand(["only-file"], io), 2);
  assert.equal(await passwdCommand(["-x", "f", "u"], io), 2);
  assert.equal(await passwdCommand(["-c", "-D", "f", "u"], io), 2);
  assert.equal(await passwdCommand(["-c", "f", "a:b"], io), 1);
  assert.equal(await passwdCommand(["-h"], io), 0);
  assert.ok(lines.some((l) => l.startsWith("usage: kite passwd")));
  // The subprocess reports usage errors the same way.
  const r = await run([]);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^kite passwd: expected FILE and USER/);
});

/** A pseudo-terminal is driven through python3's pty module, when present. */
const HAS_PTY = Deno.build.os !== "windows" &&
  await new Deno.Command("python3", { args: ["-c", "import pty"] })
    .output().then((o) => o.success, () => false);

Deno.test({
  name: "passwdCommand() on a terminal asks twice with echo off",
  ignore: !HAS_PTY,
  fn: async () => {
    await withDir(async (dir) => {
      const path = join(dir, "kite.passwd");
      const script = `
import os, pty, sys
pid, fd = pty.fork()
if pid == 0:
    os.execv(sys.argv[1], sys.argv[1:])
out = b""
def until(s):
    global out
    while s not in out:
        d = os.read(fd, 1024)
        if not d: raise SystemExit("eof before " + repr(s))
        out += d
until(b"Password: ")
os.write(fd, "Tty-pw\\u00e9x\\x7f!\\r".encode())
until(b"Reenter password: ")
os.write(fd, "Tty-pw\\u00e9!\\r".encode())
try:
    while True:
        d = os.read(fd, 1024)
        if not d: break
        out += d
except OSError:
    pass
_, st = os.waitpid(pid, 0)
sys.stdout.write(out.decode("utf-8", "replace"))
sys.exit(os.WEXITSTATUS(st))
`;
      const out = await new Deno.Command("python3", {
        args: [
          "-c",
          script,
          Deno.execPath(),
          "run",
          "--allow-read",
          "--allow-write",
          PASSWD,
          "-c",
          path,
          "tty-user",
        ],
        env: { NO_COLOR: "1" },
      }).output();
      const text = new TextDecoder().decode(out.stdout);
      assert.equal(out.code, 0, text + new TextDecoder().decode(out.stderr));
      assert.match(text, /Password: /);
      assert.match(text, /Reenter password: /);
      assert.doesNotMatch(text, /Tty-pw/); // never echoed
      const file = await PasswordFile.load(path);
      // Backspace removed the "x" (one UTF-8 character).
      assert.equal(await file.verify("tty-user", "Tty-pwé!"), true);
    });
  },
});
