/**
 * `plural(1, "retained message")` -> `retained message`, `plural(2, ...)`
 * -> `retained messages`: for log templates a person reads, with the count
 * itself left a number (`Loaded {retained} ${plural(n, "retained
 * message")}`), so every formatter prints it as one.
 *
 * @module
 */

/**
 * The noun for `n` of it: singular for 1, else plural (`pluralForm` when
 * it is not the noun plus "s"). No braces: it goes into a log template.
 */
export function plural(
  n: number,
  noun: string,
  pluralForm = noun + "s",
): string {
  return n === 1 ? noun : pluralForm;
}
