/**
 * Output per turn (private to connection/): the connections that queued
 * output during this turn of the event loop are flushed at its end (in the
 * turn's one microtask, codec/_turn_end.ts; no callback kept per
 * connection), or right after a socket's read when it is the only one read
 * this turn and the turn before. What a connection needs only while bytes
 * move, the `OutputQueue` while output waits and, once connected, the
 * `PacketDecoder` while a packet is incomplete, is reused from bounded free
 * lists, so an idle connection holds neither.
 *
 * @module
 */

import { OutputQueue } from "../../codec/_output.ts";
import { PacketDecoder } from "../../codec/decode.ts";
import type { ProtocolVersion } from "../../codec/packet.ts";
import type { Duplex } from "../../codec/duplex.ts";
import { setAfterSparseRead } from "../../codec/_handle_io.ts";
import { atEndOfTurn } from "../../codec/_turn_end.ts";

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

// A lone read's output is written before the runtime reads again (see
// `setAfterSparseRead`); the microtask queued for it then finds nothing due.
setAfterSparseRead(() => {
  if (dueCount > 0) flushAll();
});

/** Flushes `c` at the end of this turn (call once until it is flushed). */
export function flushThisTurn(c: TurnFlushed): void {
  due[dueCount] = c;
  if (dueCount++ === 0) atEndOfTurn(flushAll);
}

/**
 * Writes `out` and calls `done` with the outcome: through the duplex's
 * `writeRaw` when it has one (`done` gets the count written, which may be
 * short: the caller writes the rest), else `write` (`done` gets undefined),
 * or the error. No async function and no closure per write.
 */
export function writeOut(
  duplex: Duplex,
  out: Uint8Array,
  done: (r?: unknown) => void,
): void {
  const raw = duplex.raw;
  if (raw?.writePush !== undefined) raw.writePush(out, done);
  else if (raw?.writeRaw !== undefined) raw.writeRaw(out).then(done, done);
  else duplex.write(out).then(done, done);
}

/** Queues (and decoders) kept for reuse; past this many, they are garbage. */
const MAX_FREE = 1024;
const freeQueues: OutputQueue[] = [];

/** An empty output queue. */
export function takeQueue(): OutputQueue {
  return freeQueues.pop() ?? new OutputQueue();
}

/** Gives back `queue`, emptied (`take()` or `clear()`). */
export function giveQueue(queue: OutputQueue): void {
  if (freeQueues.length < MAX_FREE) freeQueues.push(queue);
}

const freeDecoders: PacketDecoder[] = [];

/**
 * A decoder with no packet in progress, for `version` (undefined: a new
 * connection, which must send CONNECT first) and `maxPacketSize`.
 */
export function takeDecoder(
  version: ProtocolVersion | undefined,
  maxPacketSize: number,
): PacketDecoder {
  const d = freeDecoders.pop() ?? new PacketDecoder({ maxPacketSize });
  d.version = version;
  d.maxPacketSize = maxPacketSize;
  return d;
}

/** Gives back `decoder`: it holds no partial packet and has not failed. */
export function giveDecoder(decoder: PacketDecoder): void {
  if (freeDecoders.length < MAX_FREE) freeDecoders.push(decoder);
}
