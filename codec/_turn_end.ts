/**
 * Work at the end of a turn (private to the package): everything queued
 * with `atEndOfTurn` during one turn of the event loop runs in one
 * microtask, in the order queued. The runtime's `queueMicrotask` wraps each
 * callback in a closure of its own (about 130 bytes a call with the task),
 * and a message read alone used to queue three (the end of the read turn,
 * the connections' flush and the batch of completed writes).
 *
 * @module
 */

const queued: (() => void)[] = [];
let queuedCount = 0;

function runQueued(): void {
  // What a callback queues runs in this loop, after the ones before it.
  for (let i = 0; i < queuedCount; i++) {
    const fn = queued[i]!;
    queued[i] = noop;
    try {
      fn();
    } catch (e) {
      // Reported as uncaught (an "error" event); the rest still run.
      reportError(e);
    }
  }
  queuedCount = 0;
}

function noop(): void {}

/**
 * Runs `fn` in this turn's end-of-turn microtask (queued by the first call
 * of the turn). The caller queues a function once per turn: a module-level
 * function and a count of its own, not a closure per call.
 */
export function atEndOfTurn(fn: () => void): void {
  queued[queuedCount] = fn;
  if (queuedCount++ === 0) queueMicrotask(runQueued);
}
