/**
 * Typed MQTT errors. Callers branch on the class or on `reasonCode`, never on
 * the message text.
 *
 * @module
 */

import { ReasonCode, reasonCodeName } from "./reason_code.ts";

/**
 * An MQTT error carrying a v5 reason code (used internally for 3.1.1 too).
 *
 * @example
 * ```ts
 * import { MqttError, ReasonCode } from "@kite/mqtt/codec";
 * try {
 *   throw new MqttError(ReasonCode.NotAuthorized, "publish to a/b denied");
 * } catch (e) {
 *   if (e instanceof MqttError) console.log(e.reasonCode); // 135
 * }
 * ```
 */
export class MqttError extends Error {
  /** The v5 reason code that describes this error. */
  readonly reasonCode: number;

  /** Creates an error with a reason code and a message a person can act on. */
  constructor(reasonCode: number, message?: string, options?: ErrorOptions) {
    super(message ?? reasonCodeName(reasonCode), options);
    this.name = "MqttError";
    this.reasonCode = reasonCode;
  }
}

/** A packet that does not follow the wire format (0x81). */
export class MalformedPacketError extends MqttError {
  /** Creates a malformed-packet error. */
  constructor(message: string, options?: ErrorOptions) {
    super(ReasonCode.MalformedPacket, message, options);
    this.name = "MalformedPacketError";
  }
}

/** A well-formed packet that breaks a protocol rule (0x82). */
export class ProtocolError extends MqttError {
  /** Creates a protocol error. */
  constructor(message: string, options?: ErrorOptions) {
    super(ReasonCode.ProtocolError, message, options);
    this.name = "ProtocolError";
  }
}

/** A packet larger than the agreed maximum packet size (0x95). */
export class PacketTooLargeError extends MqttError {
  /** Creates a packet-too-large error. */
  constructor(message: string, options?: ErrorOptions) {
    super(ReasonCode.PacketTooLarge, message, options);
    this.name = "PacketTooLargeError";
  }
}

/**
 * A CONNECT whose protocol name or level the codec does not support (0x84).
 * `protocolLevel` is the level byte the CONNECT carried, so that a server
 * can answer a level-5 CONNECT with a v5 CONNACK [MQTT-3.1.2-1] and any
 * other with the 3.1.1 return code 0x01 [MQTT-3.1.2-2].
 *
 * @example
 * ```ts
 * import { decode, UnsupportedProtocolError } from "@kite/mqtt/codec";
 * // CONNECT with protocol name "MQTX", level 5.
 * const bytes = new Uint8Array([
 *   0x10, 0x0d, 0, 4, 0x4d, 0x51, 0x54, 0x58, 5, 2, 0, 0, 0, 0, 0,
 * ]);
 * try {
 *   decode(bytes);
 * } catch (e) {
 *   if (e instanceof UnsupportedProtocolError) console.log(e.protocolLevel); // 5
 * }
 * ```
 */
export class UnsupportedProtocolError extends MqttError {
  /** The protocol level byte of the CONNECT. */
  readonly protocolLevel: number;

  /** Creates an unsupported-protocol error for a CONNECT of `protocolLevel`. */
  constructor(protocolLevel: number, message: string, options?: ErrorOptions) {
    super(ReasonCode.UnsupportedProtocolVersion, message, options);
    this.name = "UnsupportedProtocolError";
    this.protocolLevel = protocolLevel;
  }
}

/** An operation refused by authorization (0x87). */
export class NotAuthorizedError extends MqttError {
  /** Creates a not-authorized error. */
  constructor(message: string, options?: ErrorOptions) {
    super(ReasonCode.NotAuthorized, message, options);
    this.name = "NotAuthorizedError";
  }
}

/** A limit was reached (0x97). */
export class QuotaExceededError extends MqttError {
  /** Creates a quota-exceeded error. */
  constructor(message: string, options?: ErrorOptions) {
    super(ReasonCode.QuotaExceeded, message, options);
    this.name = "QuotaExceededError";
  }
}
