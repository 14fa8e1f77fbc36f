/**
 * PUBACK, PUBREC, PUBREL and PUBCOMP from the client: the QoS 1/2 flows of
 * messages the broker sent (PUBACK, PUBREC, PUBCOMP) and of messages the
 * client sent (PUBREL).
 *
 * @module
 */

import type { AckPacket } from "../../../codec/packet.ts";
import { ReasonCode } from "../../../codec/reason_code.ts";
import type { ConnectionContext } from "../context.ts";

/** PUBACK: a QoS 1 message to the client is done. */
export function onPuback(c: ConnectionContext, p: AckPacket): void {
  c.session!.onPuback(p.packetId);
}

/** PUBREC: a QoS 2 message to the client was received; PUBREL follows. */
export function onPubrec(c: ConnectionContext, p: AckPacket): void {
  const failed = (p.reasonCode ?? 0) >= 0x80;
  const known = c.session!.onPubrec(p.packetId, failed);
  if (failed) return;
  const rel: AckPacket = { type: "pubrel", packetId: p.packetId };
  if (!known && c.version === 5) {
    rel.reasonCode = ReasonCode.PacketIdentifierNotFound;
  }
  // After the "pubrec" state is durable: a crash must not make the broker
  // resend a PUBLISH the client already released.
  c.send(rel, true);
}

/** PUBREL: the client releases a QoS 2 message; PUBCOMP answers. */
export function onPubrel(c: ConnectionContext, p: AckPacket): void {
  const session = c.session!;
  const known = session.incomingQos2.delete(p.packetId);
  if (known && session.persistent) {
    c.core.store.deleteIncomingQos2(c.clientId, p.packetId);
  }
  const comp: AckPacket = { type: "pubcomp", packetId: p.packetId };
  if (!known && c.version === 5) {
    comp.reasonCode = ReasonCode.PacketIdentifierNotFound;
  }
  // After the id is durably forgotten: the client may reuse it at once.
  c.send(comp, true);
}

/** PUBCOMP: a QoS 2 message to the client is done. */
export function onPubcomp(c: ConnectionContext, p: AckPacket): void {
  c.session!.onPubcomp(p.packetId);
}
