/**
 * PINGREQ and DISCONNECT from the client, and the timers that end a
 * connection: the connect timeout and the keep alive.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { MqttError } from "../../../codec/errors.ts";
import type { DisconnectPacket } from "../../../codec/packet.ts";
import { ReasonCode } from "../../../codec/reason_code.ts";
import { debugEnabled } from "../../_log.ts";
import { CONNECTED, CONNECTING, type ConnectionContext } from "../context.ts";

const log = getLogger(["kite", "broker", "connection"]);

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

/**
 * The broker's sweep: a connection without CONNECT after `connectTimeout`
 * is closed; a connected client silent for one and a half times its keep
 * alive is closed as if the network had failed (v5 DISCONNECT 0x8D first;
 * the will is published) [MQTT-3.1.2-24] ([MQTT-3.1.2-22] in v5).
 */
export function checkTimeouts(c: ConnectionContext, now: number): void {
  if (c.state === CONNECTING) {
    if (now - c.openedAt > c.core.settings.connectTimeout * 1000) {
      if (debugEnabled()) {
        log.debug("connection from {remote}: no CONNECT in time", {
          remote: c.remoteAddress,
        });
      }
      c.end(undefined, false, true);
    }
    return;
  }
  if (
    c.state === CONNECTED && c.keepAlive > 0 &&
    now - c.lastRx > c.keepAlive * 1500
  ) {
    if (debugEnabled()) {
      log.debug("{clientId}: keep alive timeout", { clientId: c.clientId });
    }
    c.end(ReasonCode.KeepAliveTimeout, true);
  }
}
