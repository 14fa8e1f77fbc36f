/**
 * Work at the end of a turn (private to the package): everything queued
 * with `atEndOfTurn` during one turn of the event loop runs in one
 * microtask, in the order queued. The runtime's `queueMicrotask` wraps each
 * callback in a closure of its own (about 130 bytes a call with the task),
 * and a message read alone would queue three: the end of the read turn,
 * the connections' flush, and the write the socket took at once.
 *
 * @module
 */

const fns: ((arg: unknown) => void)[] = [];
const args: unknown[] = [];
let queuedCount = 0;

function runQueued(): void {
  // What a callback queues runs in this loop, after the ones before it.
  for (let i = 0; i < queuedCount; i++) {
    const fn = fns[i]!;
    const arg = args[i];
    fns[i] = noop;
    args[i] = undefined;
    try {
      fn(arg);
    } catch (e) {
      // Reported as uncaught (an "error" event); the rest still run.
      reportError(e);
    }
  }
  queuedCount = 0;
}

function noop(): void {}

/**
 * Calls `fn(arg)` in this turn's end-of-turn microtask (queued by the first
 * call of the turn): a function and its argument, not a closure per call.
 */
export function atEndOfTurn<T>(fn: (arg: T) => void, arg: T): void;
/** Calls `fn()` in this turn's end-of-turn microtask. */
export function atEndOfTurn(fn: () => void): void;
export function atEndOfTurn(fn: (arg: unknown) => void, arg?: unknown): void {
  fns[queuedCount] = fn;
  args[queuedCount] = arg;
  if (queuedCount++ === 0) queueMicrotask(runQueued);
}
