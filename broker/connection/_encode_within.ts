/**
 * Encoding a packet (other than a shared PUBLISH) for one connection,
 * within the client's v5 Maximum Packet Size (private to connection/).
 *
 * @module
 */

import { encode } from "../../codec/encode.ts";
import type {
  Packet,
  Properties,
  ProtocolVersion,
} from "../../codec/packet.ts";

/**
 * Encodes `p`; when that is above `max`, again without its reason string
 * and user properties: they must not take a packet past the client's
 * Maximum Packet Size [MQTT-3.2.2-19] (and the same rule for the other
 * packets).
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
