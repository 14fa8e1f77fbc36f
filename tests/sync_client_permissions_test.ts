/**
 * `SyncClient` without the permissions its worker needs: the constructor
 * throws the permission error at once, instead of every call ending in a
 * `TimeoutError` after its timeout (the worker that failed to load cannot
 * answer, and the blocked thread cannot see its error).
 */

import assert from "node:assert/strict";
import { within } from "./client_helpers.ts";

Deno.test("SyncClient without read permission for its worker throws NotCapable at once, naming the flag", async () => {
  const dir = await Deno.makeTempDir({ prefix: "kite-sync-perm-" });
  try {
    const client = new URL("../client/mod.ts", import.meta.url).href;
    await Deno.writeTextFile(
      `${dir}/app.ts`,
      `import { SyncClient } from "${client}";
const t0 = performance.now();
try {
  const c = new SyncClient({ port: 1, timeout: 10_000 });
  c.connect();
  c.close();
  console.log(JSON.stringify({ name: "none" }));
} catch (e) {
  console.log(JSON.stringify({
    name: (e as Error).name,
    capable: e instanceof Deno.errors.NotCapable,
    message: (e as Error).message,
    ms: performance.now() - t0,
  }));
}
`,
    );
    // No permission flags at all (stdin closed: no prompt).
    const out = await within(
      new Deno.Command(Deno.execPath(), {
        args: [
          ...[
            "run",
            "--config",
            new URL("../deno.json", import.meta.url).pathname,
          ],
          `${dir}/app.ts`,
        ],
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output(),
      30_000,
      "the program",
    );
    const dec = new TextDecoder();
    assert.equal(out.code, 0, dec.decode(out.stderr));
    const r = JSON.parse(dec.decode(out.stdout));
    assert.equal(r.capable, true, JSON.stringify(r));
    assert.match(r.message, /--allow-read/);
    assert.ok(r.ms < 2000, `took ${r.ms} ms`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
