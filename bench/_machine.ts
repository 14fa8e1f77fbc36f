/**
 * What the machine a comparison ran on costs per system call: ratios between
 * brokers that make different numbers of calls per message (Mosquitto about
 * 8 per fan-in message, Kite one per hundreds) depend on it more than on
 * anything else (see bench/README.md, "This VM's system calls").
 *
 * @module
 */

import { which } from "./_brokers.ts";

/** The machine, in one line for a comparison's header. */
export interface MachineCost {
  /** The kernel's release (`uname -r`). */
  kernel: string;
  /** µs for one 1-byte `read` plus one 1-byte `write` (dd), if measured. */
  syscallPairMicros?: number;
  /** Page table isolation, which makes every system call dearer. */
  pti?: string;
}

/**
 * Times `dd if=/dev/zero of=/dev/null bs=1 count=N` (one read and one write
 * system call per byte) and reads the kernel's release and its `pti` state.
 * Without dd, the cost is left out.
 *
 * @example
 * ```ts
 * const m = await machineCost();
 * console.log(formatMachine(m));
 * ```
 */
export async function machineCost(count = 200_000): Promise<MachineCost> {
  const out: MachineCost = { kernel: Deno.osRelease() };
  try {
    const v = Deno.readTextFileSync(
      "/sys/devices/system/cpu/vulnerabilities/meltdown",
    ).trim();
    out.pti = v.includes("PTI") ? "on" : "off";
  } catch {
    // not Linux, or no such file: unknown
  }
  if (which("dd") === undefined) return out;
  const t0 = performance.now();
  const r = await new Deno.Command("dd", {
    args: ["if=/dev/zero", "of=/dev/null", "bs=1", `count=${count}`],
    stdout: "null",
    stderr: "null",
  }).output();
  const ms = performance.now() - t0;
  if (r.success) out.syscallPairMicros = ms * 1000 / count;
  return out;
}

/** `kernel 6.18.44, page table isolation on, read+write system calls 2.3 µs`. */
export function formatMachine(m: MachineCost): string {
  const parts = [`kernel ${m.kernel}`];
  if (m.pti !== undefined) parts.push(`page table isolation ${m.pti}`);
  if (m.syscallPairMicros !== undefined) {
    parts.push(
      `a 1-byte read+write system call pair ${
        m.syscallPairMicros.toFixed(2)
      } µs (dd)`,
    );
  }
  return parts.join(", ");
}
