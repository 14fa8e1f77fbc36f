/**
 * The packet handlers of a broker connection: one module per packet type,
 * each a plain function of the connection context and the packet (no
 * closure per connection). `handlePacket` picks the handler by the
 * connection's state and the packet's type. A handler sends what it answers
 * through the connection, throws `MqttError` for a protocol violation (the
 * connection turns it into CONNACK, DISCONNECT or a closed socket), and
 * returns a promise only when it waits for an async hook (reading pauses
 * until it settles).
 *
 * @module
 */

import { MqttError } from "../../../codec/errors.ts";
import type { Packet } from "../../../codec/packet.ts";
import { ReasonCode } from "../../../codec/reason_code.ts";
import { CONNECTING, type ConnectionContext } from "../context.ts";
import { onPuback, onPubcomp, onPubrec, onPubrel } from "./acks.ts";
import { onAuth, onConnect } from "./connect.ts";
import { onDisconnect, onPingreq } from "./control.ts";
import { onPublish } from "./publish.ts";
import { onSubscribe, onUnsubscribe } from "./subscribe.ts";

/** Handles one packet from the client. */
export function handlePacket(
  c: ConnectionContext,
  p: Packet,
): Promise<void> | undefined {
  if (c.state === CONNECTING) {
    if (c.authFlow !== undefined) {
      // Between CONNECT and CONNACK only AUTH and DISCONNECT [MQTT-4.12.0-6].
      if (p.type === "auth") return onAuth(c, p);
      if (p.type === "disconnect") {
        c.end(undefined, false);
        return;
      }
      throw new MqttError(
        ReasonCode.ProtocolError,
        `${p.type} during the authentication exchange [MQTT-4.12.0-6]`,
      );
    }
    if (p.type !== "connect") {
      throw new MqttError(
        ReasonCode.ProtocolError,
        `first packet must be CONNECT, got ${p.type} [MQTT-3.1.0-1]`,
      );
    }
    return onConnect(c, p);
  }
  switch (p.type) {
    case "publish":
      return onPublish(c, p);
    case "puback":
      onPuback(c, p);
      return;
    case "pubrec":
      onPubrec(c, p);
      return;
    case "pubrel":
      onPubrel(c, p);
      return;
    case "pubcomp":
      onPubcomp(c, p);
      return;
    case "subscribe":
      return onSubscribe(c, p);
    case "unsubscribe":
      onUnsubscribe(c, p);
      return;
    case "pingreq":
      onPingreq(c);
      return;
    case "disconnect":
      onDisconnect(c, p);
      return;
    case "connect":
      throw new MqttError(
        ReasonCode.ProtocolError,
        "second CONNECT on a connection [MQTT-3.1.0-2]",
      );
    case "auth":
      if (c.authFlow === undefined) {
        throw new MqttError(
          ReasonCode.ProtocolError,
          "AUTH without an authentication method in CONNECT [MQTT-4.12.0-7]",
        );
      }
      // Re-authentication [MQTT-4.12.1-1].
      return onAuth(c, p);
    default:
      throw new MqttError(
        ReasonCode.ProtocolError,
        `a client must not send ${p.type}`,
      );
  }
}
