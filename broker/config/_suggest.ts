/**
 * What the checks of settings share for their messages: "Did you mean
 * ...?" for unknown option names, keys and flags ({@linkcode suggest},
 * {@linkcode didYouMean}), the key spellings a config accepts
 * ({@linkcode toCamel}) and a value as a message shows it
 * ({@linkcode describeValue}).
 *
 * @module
 */

/** `max_connections` or `max-connections` -> `maxConnections`. */
export function toCamel(name: string): string {
  return name.replace(/[_-]+([a-zA-Z0-9])/g, (_, c: string) => c.toUpperCase());
}

/** A value in a message: a string quoted, `a list`, `a mapping`, ... */
export function describeValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (value === null) return "null";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  return String(value);
}

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

/**
 * ` (did you mean "NAME"?)` with the candidate closest to `name`, or "" when
 * none is close.
 */
export function didYouMean(
  name: string,
  candidates: readonly string[],
): string {
  const hint = suggest(name, candidates);
  return hint === undefined ? "" : ` (did you mean "${hint}"?)`;
}
