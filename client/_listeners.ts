/**
 * Typed listener lists shared by `Client` and `SyncClient` (private).
 *
 * @module
 */

/**
 * Appends `item` to `list`; returns a function that removes it again (a
 * second call does nothing).
 */
export function addToList<T>(list: T[], item: T): () => void {
  list.push(item);
  return () => {
    const i = list.indexOf(item);
    if (i !== -1) list.splice(i, 1);
  };
}

/** One list of listeners per event name of the event map `E`. */
export class ListenerLists<E> {
  #lists: { [K in keyof E]?: ((event: E[K]) => void)[] } = {};

  #list<K extends keyof E>(name: K): ((event: E[K]) => void)[] {
    return (this.#lists[name] ??= []);
  }

  /** Adds a listener of `name`; returns a function that removes it. */
  on<K extends keyof E>(name: K, listener: (event: E[K]) => void): () => void {
    return addToList(this.#list(name), listener);
  }

  /** How many listeners `name` has. */
  count(name: keyof E): number {
    return this.#lists[name]?.length ?? 0;
  }

  /**
   * Calls every listener of `name` with `event`, in the order added, over a
   * copy of the list (a listener may remove itself). A listener that throws
   * does not stop the others: its error goes to `onThrow`.
   */
  emit<K extends keyof E>(
    name: K,
    event: E[K],
    onThrow: (error: unknown) => void,
  ): void {
    const list = this.#lists[name];
    if (!list || list.length === 0) return;
    for (const l of list.slice()) {
      try {
        l(event);
      } catch (e) {
        onThrow(e);
      }
    }
  }
}
