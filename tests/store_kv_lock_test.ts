/**
 * The `KvStore` directory lock: one process per store directory, released
 * by the kernel when the holder dies, and not to be sidestepped by deleting
 * `kite.lock` (security finding 11).
 *
 * @module
 */

import assert from "node:assert/strict";
import {
  KvStore,
  LOCK_FILE_NAME,
  StoreLockedError,
} from "../broker/store/kv.ts";
import { withTimeout } from "./_helpers.ts";
import { message } from "./store_suite.ts";

const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;
const CONFIG = new URL("../deno.json", import.meta.url).pathname;

/** Runs `fn` with a fresh store directory, removed afterwards. */
async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "kite_kv_" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * Checks that `e` is the `StoreLockedError` for `dir` held by `pid` (0: not
 * known), and that its message says to stop the holder, not to delete files.
 */
function isLockedError(e: unknown, dir: string, pid: number): true {
  assert.ok(e instanceof StoreLockedError, String(e));
  assert.equal(e.path, dir);
  assert.equal(e.pid, pid);
  assert.ok(e.message.includes(dir), e.message);
  if (pid > 0) assert.ok(e.message.includes(`process ${pid}`), e.message);
  assert.match(e.message, /stop/);
  assert.doesNotMatch(e.message, /remove|delete|unlink/i);
  assert.ok(!e.message.includes(LOCK_FILE_NAME), e.message);
  return true;
}

Deno.test("KvStore.open() refuses a directory this process holds", async () => {
  await withDir(async (dir) => {
    const store = await KvStore.open(dir);
    try {
      await assert.rejects(KvStore.open(dir), (e) => {
        assert.ok(e instanceof StoreLockedError);
        assert.equal(e.pid, Deno.pid);
        assert.equal(e.path, dir);
        assert.match(e.message, new RegExp(String(Deno.pid)));
        return isLockedError(e, dir, Deno.pid);
      });
    } finally {
      await store.close();
    }
    // Released by close().
    await (await KvStore.open(dir)).close();
  });
});

/** Starts a process that opens the store in `dir`, once it is open. */
async function holder(dir: string): Promise<Deno.ChildProcess> {
  const storeUrl = new URL("../broker/store/kv.ts", import.meta.url).href;
  const config = new URL("../deno.json", import.meta.url).pathname;
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      "--config",
      config,
      `const { KvStore } = await import(${JSON.stringify(storeUrl)});
       const store = await KvStore.open(${JSON.stringify(dir)});
       console.log("ready");
       for await (const _ of Deno.stdin.readable) { /* until EOF */ }
       await store.close();`,
    ],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let out = "";
  while (!out.includes("ready")) {
    const { value, done } = await reader.read();
    if (done) throw new Error("the holder process exited early");
    out += value;
  }
  await reader.cancel();
  return child;
}

Deno.test("KvStore.open() refuses a directory another broker process holds", async () => {
  await withDir(async (dir) => {
    const child = await holder(dir);
    try {
      await assert.rejects(KvStore.open(dir), (e) => {
        assert.ok(e instanceof StoreLockedError);
        assert.equal(e.pid, child.pid);
        assert.ok(e.message.includes(dir));
        assert.ok(e.message.includes(String(child.pid)));
        return isLockedError(e, dir, child.pid);
      });
    } finally {
      await child.stdin.close();
      await child.status;
    }
    // The child closed the store: the directory is free again.
    await (await KvStore.open(dir)).close();
  });
});

Deno.test("KvStore.open() takes over from a process killed with SIGKILL", async () => {
  await withDir(async (dir) => {
    const child = await holder(dir);
    child.kill("SIGKILL");
    await child.status;
    await child.stdin.close().catch(() => {});
    const store = await KvStore.open(dir);
    assert.equal(
      (await Deno.readTextFile(`${dir}/${LOCK_FILE_NAME}`)).trim(),
      String(Deno.pid),
    );
    await store.close();
  });
});

Deno.test("KvStore.open() refuses a directory whose kite.lock an older broker holds", async () => {
  await withDir(async (dir) => {
    // Brokers before the directory lock held a flock on kite.lock only.
    const old = await Deno.open(`${dir}/${LOCK_FILE_NAME}`, {
      read: true,
      write: true,
      create: true,
    });
    try {
      assert.ok(await old.tryLock(true));
      await old.write(new TextEncoder().encode("4242\n"));
      await assert.rejects(
        KvStore.open(dir),
        (e) => isLockedError(e, dir, 4242),
      );
    } finally {
      old.close();
    }
    await (await KvStore.open(dir)).close();
  });
});

/** A `broker/main.ts` process persisting in a directory. */
interface BrokerProcess {
  child: Deno.ChildProcess;
  /** Resolves with what it printed, once it exited. */
  output: Promise<string>;
}

/** Starts `broker/main.ts` on a free port with persistence in `dir`. */
async function startBroker(dir: string): Promise<BrokerProcess> {
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--config",
      CONFIG,
      MAIN,
      "--host",
      "127.0.0.1",
      "--port",
      "0",
      "--persistence-path",
      dir,
      "--sys-interval",
      "0",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  let text = "";
  const listening = Promise.withResolvers<void>();
  const read = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      if (/listening on mqtt:/.test(text)) listening.resolve();
    }
  };
  const output = Promise.all([read(child.stdout), read(child.stderr)])
    .then(() => text);
  const exited = child.status.then(() => {
    throw new Error(`the broker exited before listening:\n${text}`);
  });
  exited.catch(() => {});
  try {
    await withTimeout(
      Promise.race([listening.promise, exited]),
      15_000,
      "the broker to listen",
    );
  } catch (e) {
    try {
      child.kill("SIGKILL");
    } catch { /* already gone */ }
    await child.status;
    await output;
    throw e;
  }
  return { child, output };
}

Deno.test("KvStore.open() refuses a directory a broker holds after its kite.lock was deleted, and takes it over once the broker is killed", async () => {
  await withDir(async (dir) => {
    const broker = await startBroker(dir);
    try {
      // What the old message advised: delete the lock file while the
      // broker runs.
      await Deno.remove(`${dir}/${LOCK_FILE_NAME}`);
      // The pid note is gone, the lock is not.
      await assert.rejects(KvStore.open(dir), (e) => isLockedError(e, dir, 0));
      // The refused open left the directory as it found it.
      await assert.rejects(
        Deno.stat(`${dir}/${LOCK_FILE_NAME}`),
        Deno.errors.NotFound,
      );
    } finally {
      broker.child.kill("SIGKILL");
      await broker.child.status;
      await broker.output;
    }
    // The kernel released the lock with the process: nothing to delete.
    const store = await KvStore.open(dir);
    try {
      assert.equal(
        (await Deno.readTextFile(`${dir}/${LOCK_FILE_NAME}`)).trim(),
        String(Deno.pid),
      );
      // The KV file works under the directory lock.
      store.putRetained("a", message("a", "x"));
      await store.commit();
      assert.deepEqual((await store.load()).retained, [message("a", "x")]);
    } finally {
      await store.close();
    }
  });
});

Deno.test("KvStore.open() without --unstable-kv throws KvUnavailableError saying what to add, and a persistent Broker does not start", async () => {
  // A program of its own (its deno.json: Kite's imports, no "unstable"),
  // as an application that uses Kite as a library.
  const dir = await Deno.makeTempDir({ prefix: "kite-no-kv-" });
  try {
    const own = JSON.parse(
      await Deno.readTextFile(new URL("../deno.json", import.meta.url)),
    );
    await Deno.writeTextFile(
      `${dir}/deno.json`,
      JSON.stringify({ imports: own.imports }),
    );
    const broker = new URL("../broker/mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/app.ts`,
      `import { Broker, KvStore, KvUnavailableError } from "${broker}";
const report = (e: unknown) =>
  console.log(JSON.stringify({
    typed: e instanceof KvUnavailableError,
    code: (e as KvUnavailableError).reasonCode,
    message: (e as Error).message,
  }));
try { await KvStore.open("${dir}/data"); } catch (e) { report(e); }
const b = new Broker({ port: 0, enablePersistence: true, persistencePath: "${dir}/data", sysInterval: 0 });
try { await b.listen(); } catch (e) { report(e); }
`,
    );
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--config", `${dir}/deno.json`, `${dir}/app.ts`],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const lines = text.trim().split("\n").map((l) => JSON.parse(l));
    assert.equal(lines.length, 2, text);
    for (const r of lines) {
      assert.equal(r.typed, true);
      assert.equal(r.code, 0x88); // Server unavailable
      assert.match(r.message, /--unstable-kv/);
      assert.match(r.message, /"unstable": \["kv"\]/);
    }
    // Nothing was created: the check comes first.
    await assert.rejects(Deno.stat(`${dir}/data`), Deno.errors.NotFound);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
