// broker/cluster/_setting_up.ts: which set-up errors a cluster node waits
// out. Seen in tests/cluster_interop_test.ts: of two nodes started together,
// one failed with "subjects overlap with an existing stream" while the
// other created the same stream.

import assert from "node:assert/strict";
import { settingUp } from "../broker/cluster/_setting_up.ts";

/** A step that fails with `errors` in turn, then returns `value`. */
function failing<T>(errors: string[], value: T) {
  let calls = 0;
  return {
    get calls() {
      return calls;
    },
    step: () => {
      const e = errors[calls++];
      return e === undefined
        ? Promise.resolve(value)
        : Promise.reject(new Error(e));
    },
  };
}

const FAST = { pauseMs: 1 };

Deno.test("settingUp() tries again while another node creates the same stream", async () => {
  const s = failing([
    "subjects overlap with an existing stream",
    "stream name already in use",
  ], 7);
  assert.equal(await settingUp(s.step, FAST), 7);
  assert.equal(s.calls, 3);
});

Deno.test("settingUp() gives up on a stream that keeps overlapping after 5 tries", async () => {
  const s = failing(
    Array(10).fill("subjects overlap with an existing stream"),
    0,
  );
  await assert.rejects(settingUp(s.step, FAST), /subjects overlap/);
  assert.equal(s.calls, 5);
});

Deno.test("settingUp() waits while JetStream is not ready, until the deadline", async () => {
  const s = failing([
    "no suitable peers for placement",
    "JetStream system temporarily unavailable",
  ], "ok");
  assert.equal(await settingUp(s.step, FAST), "ok");
  assert.equal(s.calls, 3);
  const never = failing(Array(1000).fill("no suitable peers for placement"), 0);
  // A deadline already past: the first failure is the last.
  await assert.rejects(
    settingUp(never.step, { pauseMs: 1, deadlineMs: -1 }),
    /no suitable peers/,
  );
  assert.equal(never.calls, 1);
});

Deno.test("settingUp() throws any other error at once", async () => {
  const s = failing(["authorization violation"], 0);
  await assert.rejects(settingUp(s.step, FAST), /authorization violation/);
  assert.equal(s.calls, 1);
});
