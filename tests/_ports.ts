/**
 * Test helper: loopback ports that were free a moment ago.
 *
 * @module
 */

/**
 * Returns `n` different ports that were free a moment ago on 127.0.0.1.
 * The listeners are held open together, so the OS cannot hand out one port
 * twice (picking them one at a time, each closed before the next, can).
 * Another socket may still be given one of them before its user binds it:
 * a caller that can, retries with new ports when its bind fails.
 */
export function freePorts(n: number): number[] {
  const held = Array.from(
    { length: n },
    () => Deno.listen({ hostname: "127.0.0.1", port: 0 }),
  );
  const ports = held.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of held) l.close();
  return ports;
}
