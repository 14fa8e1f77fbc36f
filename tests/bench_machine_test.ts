// bench/_machine.ts: the machine line of `deno task compare`'s header.

import assert from "node:assert/strict";
import { formatMachine, machineCost } from "../bench/_machine.ts";
import { which } from "../bench/_brokers.ts";

Deno.test("machineCost names the kernel and, where dd exists, times a read+write pair", async () => {
  const m = await machineCost(2_000);
  assert.equal(m.kernel, Deno.osRelease());
  if (which("dd") !== undefined) {
    assert.ok(m.syscallPairMicros! > 0, `${m.syscallPairMicros}`);
  }
  const line = formatMachine(m);
  assert.match(line, new RegExp(`^kernel ${m.kernel.replaceAll(".", "\\.")}`));
});

Deno.test("formatMachine leaves out what was not measured", () => {
  assert.equal(formatMachine({ kernel: "6.1" }), "kernel 6.1");
  assert.equal(
    formatMachine({ kernel: "6.1", pti: "on", syscallPairMicros: 2.345 }),
    "kernel 6.1, page table isolation on, a 1-byte read+write system call pair 2.35 µs (dd)",
  );
});
