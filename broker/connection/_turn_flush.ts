/**
 * Output per turn (private to connection/): the connections that queued
 * output during this turn of the event loop are flushed by one microtask
 * (no callback kept per connection), and the empty `OutputQueue`s they
 * hold only while output waits are reused from a bounded free list, so an
 * idle connection holds none.
 *
 * @module
 */

import { OutputQueue } from "../../codec/_output.ts";

/** A connection whose queued output goes out in `flushTurn()`. */
export interface TurnFlushed {
  /** Writes what was queued; handles its own errors. */
  flushTurn(): void;
}

const due: (TurnFlushed | undefined)[] = [];
let dueCount = 0;

function flushAll(): void {
  // Connections queued while this runs are flushed by this loop too.
  for (let i = 0; i < dueCount; i++) {
    const c = due[i]!;
    due[i] = undefined;
    c.flushTurn();
  }
  dueCount = 0;
}

/** Flushes `c` at the end of this turn (call once until it is flushed). */
export function flushThisTurn(c: TurnFlushed): void {
  due[dueCount] = c;
  if (dueCount++ === 0) queueMicrotask(flushAll);
}

/** Empty queues kept for reuse; past this many, they are garbage. */
const MAX_FREE_QUEUES = 1024;
const freeQueues: OutputQueue[] = [];

/** An empty output queue. */
export function takeQueue(): OutputQueue {
  return freeQueues.pop() ?? new OutputQueue();
}

/** Gives back `queue`, emptied (`take()` or `clear()`). */
export function giveQueue(queue: OutputQueue): void {
  if (freeQueues.length < MAX_FREE_QUEUES) freeQueues.push(queue);
}
