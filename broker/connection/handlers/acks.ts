/**
 * PUBACK, PUBREC, PUBREL and PUBCOMP from the client: the QoS 1/2 flows of
 * messages the broker sent (PUBACK, PUBREC, PUBCOMP) and of messages the
 * client sent (PUBREL).
 *
 * @module
 */

import { MqttError } from "../../../codec/errors.ts";
import type { AckPacket } from "../../../codec/packet.ts";
import { ReasonCode } from "../../../codec/reason_code.ts";
import type { ConnectionContext } from "../context.ts";

/**
 * Throws a protocol error when `p` acknowledges a message in flight to the
 * client that is not in the state `p` answers: PUBACK for a QoS 2 message,
 * PUBREC for a QoS 1 one, PUBCOMP for a QoS 1 message or for a QoS 2 one
 * not yet PUBREC'd. The connection then closes: 3.1.1 [MQTT-4.8.0-1];
 * v5 with DISCONNECT 0x82 [MQTT-4.13.1-1]. An unknown packet id is no
 * error (an acknowledgement that crossed a resend, or a session the broker
 * no longer has): PUBACK and PUBCOMP are ignored, PUBREC gets PUBREL.
 */
function checkKind(c: ConnectionContext, p: AckPacket): void {
  const session = c.session!;
  if (session.inflightCount === 0) return;
  const m = session.inflightMessage(p.packetId);
  if (m === undefined) return;
  const ok = p.type === "puback"
    ? m.qos === 1
    : p.type === "pubrec"
    ? m.qos === 2
    : m.qos === 2 && m.state === "pubrec";
  if (ok) return;
  throw new MqttError(
    ReasonCode.ProtocolError,
    `${p.type.toUpperCase()} for packet id ${p.packetId}, a QoS ${m.qos} ` +
      `message ${m.state === "pubrec" ? "released (PUBREL sent)" : "sent"}`,
  );
}

/** PUBACK: a QoS 1 message to the client is done. */
export function onPuback(c: ConnectionContext, p: AckPacket): void {
  checkKind(c, p);
  c.session!.onPuback(p.packetId);
}

/** PUBREC: a QoS 2 message to the client was received; PUBREL follows. */
export function onPubrec(c: ConnectionContext, p: AckPacket): void {
  checkKind(c, p);
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
  const known = session.releaseIncomingQos2(p.packetId);
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
  checkKind(c, p);
  c.session!.onPubcomp(p.packetId);
}
