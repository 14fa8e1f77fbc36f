/**
 * `kite` (kite.ts), the one command: `kite broker | pub | sub | passwd` as
 * subprocesses, and `deno install -g ... --config deno.json kite.ts` (the
 * command README documents) into a temporary root, with an empty Deno
 * cache: the installed `kite` runs and fetched none of the test tools'
 * npm packages; nor does `deno run -A broker/main.ts` in the clone.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { DenoProcess } from "./_subprocess.ts";
import { within } from "./client_helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const KITE = join(ROOT, "kite.ts");

/** Runs `deno run -A kite.ts ...args` to the end (bounded). */
function kite(args: string[], stdin?: string) {
  const p = new DenoProcess([KITE, ...args], {
    stdin: stdin === undefined ? "null" : "piped",
  });
  if (stdin !== undefined) p.input(stdin);
  return p.exit(20_000, `kite ${args.join(" ")}`);
}

Deno.test("kite --help lists broker, pub, sub and passwd; no command or an unknown one exits 2 with one line", async () => {
  const help = await kite(["--help"]);
  assert.equal(help.code, 0, help.stderr);
  for (const c of ["broker", "pub", "sub", "passwd"]) {
    assert.match(help.stdout, new RegExp(`kite ${c} `));
  }
  const none = await kite([]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /kite broker/);
  const bad = await kite(["brokr"]);
  assert.equal(bad.code, 2);
  assert.equal(
    bad.stderr.trim(),
    'kite: unknown command "brokr" (broker, pub, sub or passwd; see kite --help)',
  );
  const version = await kite(["--version"]);
  assert.match(version.stdout, /^kite \d+\.\d+\.\d+/);
});

Deno.test("kite broker --help is broker/main.ts --help; kite pub/sub --help and kite passwd are the tools'", async () => {
  const broker = await kite(["broker", "--help"]);
  assert.equal(broker.code, 0, broker.stderr);
  assert.match(broker.stdout, /kite broker \[options\]/);
  assert.match(broker.stdout, /--max-keep-alive <n>/);
  assert.match((await kite(["pub", "--help"])).stdout, /Usage: kite pub/);
  assert.match((await kite(["sub", "--help"])).stdout, /Usage: kite sub/);
  const passwd = await kite(["passwd"]);
  assert.equal(passwd.code, 2);
  assert.match(passwd.stderr, /^kite passwd: expected FILE and USER/);
  const bad = await kite(["broker", "--max-keep-alive", "0"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^kite: --max-keep-alive must be/);
});

Deno.test("kite broker serves kite sub and kite pub", async () => {
  const broker = new DenoProcess([
    KITE,
    "broker",
    ...["--host", "127.0.0.1", "--port", "0", "--sys-interval", "0"],
    "--no-enable-persistence",
  ]);
  try {
    const m = await broker.waitForOutput(
      /listening on mqtt:\/\/127\.0\.0\.1:(\d+)/,
      "all",
      15_000,
      "kite broker's start-up line",
    );
    const port = m[1]!;
    const sub = new DenoProcess([
      KITE,
      ...["sub", "-p", port, "-t", "k/#", "-v", "-C", "1", "-d"],
    ]);
    try {
      await sub.waitForOutput(/subscribed/, "all", 15_000, "kite sub");
      const pub = await kite(["pub", "-p", port, "-t", "k/1", "-m", "hello"]);
      assert.equal(pub.code, 0, pub.stderr);
      const r = await sub.exit(15_000, "kite sub -C 1");
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout, "k/1 hello\n");
    } finally {
      await sub.kill();
    }
  } finally {
    broker.child.kill("SIGTERM");
    const r = await broker.exit(15_000, "kite broker to close on SIGTERM");
    assert.equal(r.code, 0, r.stderr);
  }
});

Deno.test("deno install -g -A -n kite --config deno.json kite.ts installs a kite that runs, and fetches no test-only npm package", async () => {
  const root = await Deno.makeTempDir({ prefix: "kite-install-" });
  const cache = await Deno.makeTempDir({ prefix: "kite-deno-dir-" });
  try {
    const env = { DENO_DIR: cache, NO_COLOR: "1" };
    const install = await within(
      new Deno.Command(Deno.execPath(), {
        args: [
          ...["install", "-g", "-A", "-n", "kite", "--root", root],
          ...["--config", join(ROOT, "deno.json"), KITE],
        ],
        cwd: root, // not the clone: the command README gives works anywhere
        env,
        stdout: "piped",
        stderr: "piped",
      }).output(),
      120_000,
      "deno install",
    );
    const dec = new TextDecoder();
    assert.equal(install.code, 0, dec.decode(install.stderr));
    const bin = join(root, "bin", "kite");
    const run = async (args: string[]) => {
      const out = await within(
        new Deno.Command(bin, {
          args,
          env,
          stdout: "piped",
          stderr: "piped",
        }).output(),
        60_000,
        `kite ${args.join(" ")}`,
      );
      return {
        code: out.code,
        stdout: dec.decode(out.stdout),
        stderr: dec.decode(out.stderr),
      };
    };
    const help = await run(["--help"]);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /kite broker \[options\]/);
    const brokerHelp = await run(["broker", "--help"]);
    assert.equal(brokerHelp.code, 0, brokerHelp.stderr);
    assert.match(brokerHelp.stdout, /--persistence-path/);
    // What the broker needs was fetched, the test tools (MQTT.js,
    // mqtt-packet) were not.
    const fetched: string[] = [];
    for await (const e of Deno.readDir(join(cache, "npm/registry.npmjs.org"))) {
      fetched.push(e.name);
    }
    assert.ok(fetched.includes("@logtape"), fetched.join(" "));
    assert.ok(!fetched.includes("mqtt"), fetched.join(" "));
    assert.ok(!fetched.includes("mqtt-packet"), fetched.join(" "));
  } finally {
    await Deno.remove(root, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  }
});

Deno.test("deno run -A broker/main.ts --help in the clone, with an empty Deno cache, fetches no test-only npm package", async () => {
  // Deno installs every npm package of a project's deno.lock at start-up
  // unless npm-lazy-caching is on (deno.json "unstable").
  const cache = await Deno.makeTempDir({ prefix: "kite-deno-dir-" });
  try {
    const out = await within(
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", join(ROOT, "broker/main.ts"), "--help"],
        cwd: ROOT,
        env: { DENO_DIR: cache, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output(),
      120_000,
      "main.ts --help",
    );
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const fetched: string[] = [];
    for await (const e of Deno.readDir(join(cache, "npm/registry.npmjs.org"))) {
      fetched.push(e.name);
    }
    assert.deepEqual(fetched.sort(), ["@logtape", "yaml"]);
  } finally {
    await Deno.remove(cache, { recursive: true });
  }
});
