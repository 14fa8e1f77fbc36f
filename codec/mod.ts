/**
 * The Kite MQTT codec: one packet model for MQTT 3.1, 3.1.1 and 5.0,
 * encoding, incremental decoding, web stream wrappers, reason codes and typed
 * errors, the v5 property table, and topic name/filter rules with the topic
 * matcher shared by the broker and the client.
 *
 * @example
 * ```ts
 * import { encode, PacketDecoder, type Packet } from "@kite/mqtt/codec";
 *
 * const bytes = encode({
 *   type: "publish",
 *   topic: "sensors/kitchen",
 *   payload: new TextEncoder().encode("21.5"),
 *   qos: 1,
 *   packetId: 7,
 *   retain: false,
 *   dup: false,
 * }, { version: 5 });
 *
 * const decoder = new PacketDecoder({ version: 5 });
 * const packets: Packet[] = [];
 * decoder.push(bytes, (p) => packets.push(p));
 * console.log(packets[0]?.type); // "publish"
 * ```
 *
 * @module
 */

export * from "./packet.ts";
export * from "./errors.ts";
export * from "./reason_code.ts";
export {
  PROPERTY_TABLE,
  type PropertyContext,
  type PropertyDefinition,
  type PropertyRow,
  type PropertyValue,
  type PropertyWireType,
  type TableProperties,
} from "./properties.ts";
export * from "./encode.ts";
export * from "./decode.ts";
export * from "./stream.ts";
export * from "./duplex.ts";
export * from "./topic.ts";
