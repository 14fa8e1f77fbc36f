/**
 * Acknowledgements the application sends itself (private): with the
 * client's `manualAcks`, each QoS 1/2 message gets the `ConnectionAcks` of
 * the connection it came on, and `Message.ack()` ends up in `ackPacket()`,
 * which says what to send.
 *
 * @module
 */

import type { AckPacket, ProtocolVersion } from "../codec/packet.ts";
import type { Message, MessageAcks } from "./message.ts";
import type { ClientState } from "./state.ts";

/** Where `ConnectionAcks` sends (the client's connection). */
export interface AckSink {
  /** `message`, received on connection `epoch`, is acknowledged. */
  ackReceived(epoch: number, message: Message, reasonCode: number): void;
}

/**
 * The `MessageAcks` of one connection: one object per connection, shared by
 * its messages.
 *
 * @example
 * ```ts ignore
 * const acks = new ConnectionAcks(epoch, connection);
 * new Message(packet, acks).ack(); // connection.ackReceived(epoch, m, 0)
 * ```
 */
export class ConnectionAcks implements MessageAcks {
  readonly #epoch: number;
  readonly #sink: AckSink;

  /** The acks of connection `epoch`, sent through `sink`. */
  constructor(epoch: number, sink: AckSink) {
    this.#epoch = epoch;
    this.#sink = sink;
  }

  /** Hands the acknowledgement to the connection. */
  ack(message: Message, reasonCode: number): void {
    this.#sink.ackReceived(this.#epoch, message, reasonCode);
  }
}

// Reused: encoded at once by the caller.
const puback: AckPacket = { type: "puback", packetId: 0 };
const pubrec: AckPacket = { type: "pubrec", packetId: 0 };

/**
 * What to send when the application acknowledges `message`, or undefined:
 * a QoS 1 message only on the connection it came on (`sameConnection`;
 * otherwise the broker sends it again), a QoS 2 one whenever the session
 * still holds its id (see `ClientState.ackQos2`). v5 only: `reasonCode`.
 * The packet returned is reused by the next call.
 */
export function ackPacket(
  state: ClientState,
  message: Message,
  reasonCode: number,
  sameConnection: boolean,
  version: ProtocolVersion,
): AckPacket | undefined {
  const id = message.packetId;
  if (id === undefined || message.qos === 0) return undefined;
  let p: AckPacket;
  if (message.qos === 1) {
    if (!sameConnection) return undefined;
    p = puback;
  } else {
    if (!state.ackQos2(id, reasonCode)) return undefined;
    p = pubrec;
  }
  p.packetId = id;
  if (version === 5 && reasonCode !== 0) p.reasonCode = reasonCode;
  else delete p.reasonCode;
  return p;
}
