/**
 * Objects on the hot path keep their layout when a numeric field takes a
 * timestamp, a fraction or a count past 2^30 mid-run (codec/_double.ts):
 * in V8 a changed layout throws away the optimized code of every function
 * that used the class, and in the fleet benchmark the first pause of a
 * read slice did that 8 s into the run (issue 20). Checked with V8's own
 * `%HaveSameMap` in a child process.
 */
import assert from "node:assert/strict";

const FIXTURE = new URL("./fixtures/field_layout.ts", import.meta.url)
  .pathname;

Deno.test("Metrics, LingerPolicy, BrokerCore, Session and Connection keep their layout when counters and clocks grow", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--v8-flags=--allow-natives-syntax",
      FIXTURE,
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assert.ok(out.success, stderr);
  const result = JSON.parse(new TextDecoder().decode(out.stdout).trim());
  assert.deepEqual(result, {
    metrics: true,
    histogram: true,
    linger: true,
    core: true,
    session: true,
    connection: true,
  });
});
