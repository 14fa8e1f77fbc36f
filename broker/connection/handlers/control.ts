/**
 * PINGREQ and DISCONNECT from the client.
 *
 * @module
 */

import { MqttError } from "../../../codec/errors.ts";
import type { DisconnectPacket } from "../../../codec/packet.ts";
import { ReasonCode } from "../../../codec/reason_code.ts";
import type { ConnectionContext } from "../context.ts";

/** PINGREQ: PINGRESP [MQTT-3.12.4-1]. */
export function onPingreq(c: ConnectionContext): void {
  c.send({ type: "pingresp" });
}

/**
 * DISCONNECT: the will is discarded [MQTT-3.1.2-10] unless v5 0x04 asks for
 * it; a v5 Session Expiry Interval may change (not from 0 [MQTT-3.14.2-2]).
 */
export function onDisconnect(c: ConnectionContext, p: DisconnectPacket): void {
  const session = c.session!;
  if (c.version === 5) {
    const exp = p.properties?.sessionExpiryInterval;
    if (exp !== undefined) {
      if (c.sessionExpiryFromConnect === 0 && exp !== 0) {
        // [MQTT-3.14.2-2]
        throw new MqttError(
          ReasonCode.ProtocolError,
          "session expiry set at DISCONNECT after 0 at CONNECT",
        );
      }
      session.expiryInterval = Math.min(
        exp,
        c.core.settings.sessionExpiryInterval,
      );
      if (!session.persistent) c.core.store.deleteSession(c.clientId);
    }
  }
  const withWill = p.reasonCode === ReasonCode.DisconnectWithWillMessage;
  c.end(undefined, withWill);
}
