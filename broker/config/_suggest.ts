/**
 * "Did you mean ...?" for unknown option names, keys and flags.
 *
 * @module
 */

/** The edit distance between `a` and `b`. */
function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + cost);
    }
    prev = cur;
  }
  return prev[b.length]!;
}

/** The known name closest to `name`, if it is close enough to be a typo. */
export function suggest(
  name: string,
  candidates: readonly string[],
): string | undefined {
  const wanted = name.toLowerCase().replace(/[_-]/g, "");
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const c = candidate.toLowerCase().replace(/[_-]/g, "");
    const d = c.startsWith(wanted) && wanted.length >= 3
      ? 1
      : levenshtein(wanted, c);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(2, Math.floor(wanted.length / 3))
    ? best
    : undefined;
}
