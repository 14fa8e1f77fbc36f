/**
 * A walk over a Set in slices: each `step` visits the next `count`
 * members and remembers where it stopped, so one round over a large Set
 * is spread over several calls. A Set iterator sees members added later
 * and skips removed ones, so the Set may change between steps.
 *
 * @module
 */

/** Where a sliced walk over one Set goes on. */
export class SliceWalk<T> {
  #it: IterableIterator<T> | undefined;
  readonly #set: Set<T>;
  readonly #slices: number;

  /** Walks `set` once every `slices` calls of `step`. */
  constructor(set: Set<T>, slices: number) {
    this.#set = set;
    this.#slices = slices;
  }

  /** Calls `visit` on the next slice of members. */
  step(visit: (member: T) => void): void {
    let n = Math.ceil(this.#set.size / this.#slices);
    const it = this.#it ?? this.#set.values();
    this.#it = undefined;
    for (const m of it) {
      visit(m);
      if (--n <= 0) {
        this.#it = it;
        return;
      }
    }
  }
}
