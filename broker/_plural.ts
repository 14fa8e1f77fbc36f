/**
 * `counted(1, "retained message")` -> `1 retained message`; `counted(2, ...)`
 * -> `2 retained messages`: counts in log lines a person reads.
 *
 * @module
 */

/**
 * `n` and the noun, singular for 1 and plural otherwise (`plural` when the
 * plural is not the noun plus "s").
 */
export function counted(n: number, noun: string, plural = noun + "s"): string {
  return `${n} ${n === 1 ? noun : plural}`;
}
