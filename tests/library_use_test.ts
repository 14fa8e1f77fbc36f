/**
 * Using Kite from another project, as README's "Using Kite from another
 * project" says: an application of its own whose deno.json links a local
 * clone (`"links"`) and imports `@kite/mqtt/broker` and `@kite/mqtt/client`.
 * With an empty Deno cache it runs a persistent broker and a client, and
 * fetches only the broker's npm dependencies (not the test tools Kite's own
 * deno.json lists). Without `"unstable": ["kv"]` persistence fails with
 * `KvUnavailableError`.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { within } from "./client_helpers.ts";

const ROOT = new URL("..", import.meta.url).pathname;

const APP = `import { Broker, KvUnavailableError } from "@kite/mqtt/broker";
import { Client } from "@kite/mqtt/client";
const broker = new Broker({
  host: "127.0.0.1",
  port: 0,
  sysInterval: 0,
  enablePersistence: true,
  persistencePath: "./data",
});
try {
  await broker.listen();
} catch (e) {
  console.log(e instanceof KvUnavailableError ? "no kv: " + (e as Error).message : "failed: " + e);
  Deno.exit(3);
}
const client = new Client({ port: broker.addr.port });
await client.connect();
await client.publish("app/t", "hello", { qos: 1, retain: true });
await client.disconnect();
console.log("retained", broker.retainedCount);
await broker.close();
`;

async function runApp(deno: object) {
  const dir = await Deno.makeTempDir({ prefix: "kite-app-" });
  const cache = await Deno.makeTempDir({ prefix: "kite-app-cache-" });
  try {
    await Deno.writeTextFile(join(dir, "deno.json"), JSON.stringify(deno));
    await Deno.writeTextFile(join(dir, "main.ts"), APP);
    const out = await within(
      new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", "main.ts"],
        cwd: dir,
        env: { DENO_DIR: cache, NO_COLOR: "1" },
        stdout: "piped",
        stderr: "piped",
      }).output(),
      120_000,
      "the application",
    );
    const dec = new TextDecoder();
    const fetched: string[] = [];
    try {
      for await (
        const e of Deno.readDir(join(cache, "npm/registry.npmjs.org"))
      ) {
        fetched.push(e.name);
      }
    } catch {
      // nothing fetched
    }
    return {
      code: out.code,
      stdout: dec.decode(out.stdout),
      stderr: dec.decode(out.stderr),
      fetched,
    };
  } finally {
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(cache, { recursive: true });
  }
}

Deno.test("An application linking a clone of Kite runs a persistent broker and a client, fetching only the broker's npm dependencies", async () => {
  const r = await runApp({
    imports: { "@kite/mqtt": "jsr:@kite/mqtt@^0.1.0" },
    links: [ROOT],
    unstable: ["kv"],
  });
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.equal(r.stdout.trim(), "retained 1");
  assert.ok(r.fetched.includes("@logtape"), r.fetched.join(" "));
  assert.ok(!r.fetched.includes("mqtt"), r.fetched.join(" "));
  assert.ok(!r.fetched.includes("mqtt-packet"), r.fetched.join(" "));
});

Deno.test('An application without "unstable": ["kv"] gets KvUnavailableError for persistence, saying what to add', async () => {
  const r = await runApp({
    imports: { "@kite/mqtt": "jsr:@kite/mqtt@^0.1.0" },
    links: [ROOT],
  });
  assert.equal(r.code, 3, r.stdout + r.stderr);
  assert.match(r.stdout, /^no kv: persistence needs Deno KV/);
  assert.match(r.stdout, /"unstable": \["kv"\]/);
});
