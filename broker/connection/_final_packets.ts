/**
 * Packets the connection builds rather than a handler: the last one it
 * sends on a connection it ends (the CONNACK that refuses a CONNECT it
 * could not read, `refusalConnack`; the v5 DISCONNECT with a reason code,
 * `disconnectPacket`; after either the close lingers, see `Connection.end`),
 * and any packet encoded within the client's Maximum Packet Size
 * (`encodeWithin`).
 *
 * @module
 */

import {
  type MqttError,
  UnsupportedProtocolError,
} from "../../codec/errors.ts";
import { encode } from "../../codec/encode.ts";
import type {
  ConnackPacket,
  DisconnectPacket,
  Packet,
  Properties,
  ProtocolVersion,
} from "../../codec/packet.ts";
import { ReasonCode, toConnackReturnCodeV4 } from "../../codec/reason_code.ts";
import { DISCONNECT_REASONS } from "./_lifecycle_log.ts";

/**
 * The CONNACK for an error before the connection was accepted, in the
 * version it goes out in, or undefined when the socket is just closed (a
 * bad first packet of a 3.1.1 client [MQTT-3.1.0-1]). An unsupported
 * protocol level gets CONNACK 0x01 in the 3.1.1 form [MQTT-3.1.2-2]; a v5
 * CONNECT (level 5 read, or refused for its level) gets the v5 code and
 * the error as reason string [MQTT-3.1.2-1].
 */
export function refusalConnack(
  e: MqttError,
  decoderVersion: ProtocolVersion | undefined,
): { version: ProtocolVersion; packet: ConnackPacket } | undefined {
  const v5 = e instanceof UnsupportedProtocolError && e.protocolLevel === 5;
  // CONNACK 0x01 in the 3.1.1 form [MQTT-3.1.2-2] only for the first
  // CONNECT: a client whose CONNECT was read (and waits for its CONNACK, a
  // second CONNECT arriving meanwhile) is answered in its own version.
  if (
    e.reasonCode === ReasonCode.UnsupportedProtocolVersion && !v5 &&
    decoderVersion !== 5
  ) {
    return {
      version: 4,
      packet: {
        type: "connack",
        sessionPresent: false,
        reasonCode: toConnackReturnCodeV4(e.reasonCode),
      },
    };
  }
  if (decoderVersion !== 5 && !v5) return undefined;
  return {
    version: 5,
    packet: {
      type: "connack",
      sessionPresent: false,
      reasonCode: e.reasonCode >= 0x80
        ? e.reasonCode
        : ReasonCode.UnspecifiedError,
      properties: { reasonString: e.message },
    },
  };
}

/**
 * A v5 DISCONNECT with `code`, the reason string from `props` or the
 * broker's own for codes without an error. A reason string is allowed on
 * DISCONNECT whatever Request Problem Information says [MQTT-3.1.2-29].
 */
export function disconnectPacket(
  code: number,
  props: Properties | undefined,
): DisconnectPacket {
  const d: DisconnectPacket = { type: "disconnect", reasonCode: code };
  const why = props?.reasonString ?? DISCONNECT_REASONS[code];
  if (props !== undefined || why !== undefined) {
    d.properties = { ...props };
    if (why !== undefined) d.properties.reasonString = why;
  }
  return d;
}

/**
 * `p` encoded for a client with Maximum Packet Size `max`: a reason string
 * or user properties must not take a packet past it, so they are left out
 * when they would [MQTT-3.2.2-19] (the same rule for every packet).
 */
export function encodeWithin(
  p: Packet,
  version: ProtocolVersion,
  max: number,
): Uint8Array {
  const bytes = encode(p, { version });
  if (bytes.length <= max || !("properties" in p)) return bytes;
  const props = p.properties as Properties | undefined;
  if (props === undefined) return bytes;
  const { reasonString: _r, userProperties: _u, ...rest } = props;
  return encode({ ...p, properties: rest } as Packet, { version });
}
