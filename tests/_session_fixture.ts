/**
 * Test helper for I/O-free `Session` tests: a session context over a
 * `MemoryStore`, and the PUBLISH a link would write for a shared encoding
 * (its packet id and DUP patched into a copy, as `OutputQueue.take()` does).
 *
 * @module
 */

import type { PublishEncoding, SessionContext } from "../broker/session.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import { decode } from "../codec/decode.ts";
import type { ProtocolVersion, PublishPacket } from "../codec/packet.ts";

/** A session context: a 100-message queue, QoS 0 not queued, `over` on top. */
export function sessionCtx(over: Partial<SessionContext> = {}): SessionContext {
  return {
    store: new MemoryStore(),
    maxQueuedMessages: 100,
    queueQos0Messages: false,
    ...over,
  };
}

/** The PUBLISH `enc` is on the wire with `packetId` (and DUP when `dup`). */
export function wirePublish(
  enc: PublishEncoding,
  packetId: number,
  dup: boolean,
  version: ProtocolVersion,
): PublishPacket {
  const b = enc.bytes.slice();
  if (enc.idOffset >= 0) {
    b[enc.idOffset] = packetId >> 8;
    b[enc.idOffset + 1] = packetId & 0xff;
    if (dup) b[0] = b[0]! | 0x08;
  }
  return decode(b, { version }) as PublishPacket;
}
