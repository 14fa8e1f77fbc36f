/**
 * `tooDeep()`: whether a topic name or filter has more levels than the
 * broker's `maxTopicLevels` allows. Private to the broker.
 *
 * @module
 */

/**
 * Whether `topic` has more than `max` levels (0: no limit). Counts at most
 * `max` separators, and none for a topic shorter than `max` characters
 * (n characters hold at most n + 1 levels), so a PUBLISH pays nearly
 * nothing.
 *
 * @example
 * ```ts ignore
 * tooDeep("a/b/c", 3); // false
 * tooDeep("a/b/c/d", 3); // true
 * tooDeep("a/b/c/d", 0); // false
 * ```
 */
export function tooDeep(topic: string, max: number): boolean {
  if (max === 0 || topic.length < max) return false;
  let i = -1;
  for (let levels = 1; levels <= max; levels++) {
    i = topic.indexOf("/", i + 1);
    if (i === -1) return false;
  }
  return true;
}
