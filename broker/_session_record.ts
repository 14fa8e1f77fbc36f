/**
 * How a session maps to what the store keeps (private to the broker): the
 * `SessionRecord` of a session, and the `OutgoingMessage` of a stored
 * `OutgoingRecord` (at start-up).
 *
 * @module
 */

import type { ProtocolVersion } from "../codec/packet.ts";
import type { OutgoingMessage } from "./delivery.ts";
import type {
  OutgoingRecord,
  SessionOwner,
  SessionRecord,
  StoredSubscription,
  StoredWill,
} from "./store/store.ts";

/** What a session record is made of (a `Session` has all of it). */
export interface RecordedSession {
  readonly clientId: string;
  readonly protocolVersion: ProtocolVersion;
  readonly expiryInterval: number;
  readonly subscriptionCount: number;
  readonly subscriptions: Map<string, StoredSubscription>;
  readonly disconnectedAt: number | undefined;
  readonly will: StoredWill | undefined;
  readonly owner: SessionOwner | undefined;
  readonly bridge: boolean;
}

/** The record the store keeps for session `s`. */
export function recordOf(s: RecordedSession): SessionRecord {
  const r: SessionRecord = {
    clientId: s.clientId,
    protocolVersion: s.protocolVersion,
    expiryInterval: s.expiryInterval,
    subscriptions: s.subscriptionCount === 0
      ? []
      : [...s.subscriptions.values()],
  };
  if (s.disconnectedAt !== undefined) r.disconnectedAt = s.disconnectedAt;
  if (s.will !== undefined) r.will = s.will;
  if (s.owner !== undefined) r.owner = s.owner;
  if (s.bridge) r.bridge = true;
  return r;
}

/** The record the store keeps for outgoing message `m`. */
export function outgoingRecordOf(m: OutgoingMessage): OutgoingRecord {
  const r: OutgoingRecord = {
    seq: m.seq,
    state: m.state,
    qos: m.qos,
    message: m.message.retain === m.retain
      ? m.message
      : { ...m.message, retain: m.retain },
  };
  if (m.packetId !== 0) r.packetId = m.packetId;
  if (m.subIds !== undefined) r.subscriptionIdentifiers = m.subIds;
  return r;
}

/** The message of a stored outgoing record, queued or in flight as stored. */
export function outgoingOf(r: OutgoingRecord): OutgoingMessage {
  const queued = r.state === "queued" || r.packetId === undefined;
  return {
    seq: r.seq,
    packetId: queued ? 0 : r.packetId!,
    state: queued ? "queued" : r.state,
    qos: r.qos,
    retain: r.message.retain,
    subIds: r.subscriptionIdentifiers,
    message: r.message,
    enc: undefined,
  };
}
