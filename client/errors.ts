/**
 * The client's own error classes (both `MqttError`s, reason code 0x80):
 * `ClientOfflineError` and `TimeoutError`. `client.ts` re-exports them.
 *
 * @module
 */

import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";

/**
 * A request that cannot be done because the client is offline (QoS 0 with
 * `queueQoS0Offline: false`) or closed. Reason code 0x80.
 *
 * @example
 * ```ts
 * import { ClientOfflineError } from "@kite/mqtt/client";
 * const e = new ClientOfflineError("offline: QoS 0 message not queued");
 * e.reasonCode; // 0x80
 * ```
 */
export class ClientOfflineError extends MqttError {
  /** Creates the error. */
  constructor(message: string, options?: ErrorOptions) {
    super(ReasonCode.UnspecifiedError, message, options);
    this.name = "ClientOfflineError";
  }
}

/**
 * A request that got no answer in time (connect, request). Reason code 0x80.
 *
 * @example
 * ```ts
 * import { TimeoutError } from "@kite/mqtt/client";
 * const e = new TimeoutError("no CONNACK within 30000 ms");
 * e instanceof Error; // true
 * ```
 */
export class TimeoutError extends MqttError {
  /** Creates the error. */
  constructor(message: string) {
    super(ReasonCode.UnspecifiedError, message);
    this.name = "TimeoutError";
  }
}
