/**
 * Selecting subscriptions by a pattern (private to http/): `?filter=` of
 * `GET /api/v1/subscriptions`.
 *
 * @module
 */

/**
 * Whether the text of the subscription filter `filter` matches `pattern`,
 * level by level: a `+` of the pattern matches any one level of it (a `+`
 * or `#` level too), a final `#` any remaining levels (none included);
 * other levels must be equal. No `$` rule: `#` lists `$SYS/...` filters as
 * well.
 *
 * @example
 * ```ts ignore
 * filterCovers("sensors/#", "sensors/+/temp"); // true
 * filterCovers("a/+", "a/#"); // true
 * filterCovers("a/b", "a/+"); // false
 * ```
 */
export function filterCovers(pattern: string, filter: string): boolean {
  const p = pattern.split("/");
  const f = filter.split("/");
  for (let i = 0; i < p.length; i++) {
    const level = p[i]!;
    if (level === "#") return true;
    if (i >= f.length) return false;
    if (level !== "+" && level !== f[i]) return false;
  }
  return p.length === f.length;
}
