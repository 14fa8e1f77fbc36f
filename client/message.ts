/**
 * `Message`: an application message as the client hands it to the user.
 *
 * @module
 */

import type { Properties, PublishPacket, QoS } from "../codec/packet.ts";

const decoder = new TextDecoder();

/**
 * Sends the acknowledgement of a received message when the client's
 * `manualAcks` is on: the client gives one to each QoS 1/2 message it
 * delivers, and `Message.ack()` calls it once.
 *
 * @example
 * ```ts
 * import { Message, type MessageAcks } from "@kite/mqtt/client";
 * const acked: number[] = [];
 * const acks: MessageAcks = { ack: (m, code) => acked.push(m.packetId!, code) };
 * const m = new Message({
 *   type: "publish", topic: "a", payload: new Uint8Array(), qos: 1,
 *   retain: false, dup: false, packetId: 7,
 * }, acks);
 * m.ack();
 * m.ack(); // the first call counts
 * acked; // [7, 0]
 * ```
 */
export interface MessageAcks {
  /** Acknowledges `message` (PUBACK or PUBREC) with v5 `reasonCode`. */
  ack(message: Message, reasonCode: number): void;
}

/**
 * A received application message: its topic (aliases already resolved),
 * payload bytes with text and JSON helpers, QoS, flags and v5 properties.
 *
 * @example
 * ```ts
 * import { Message } from "@kite/mqtt/client";
 * const m = new Message({
 *   type: "publish", topic: "a/b", payload: new TextEncoder().encode('{"t":1}'),
 *   qos: 0, retain: false, dup: false,
 * });
 * m.payloadText; // '{"t":1}'
 * m.json<{ t: number }>().t; // 1
 * ```
 */
export class Message {
  /** The topic name the message was published to. */
  readonly topic: string;
  /** The payload bytes. */
  readonly payload: Uint8Array;
  /** The QoS it was delivered with. */
  readonly qos: QoS;
  /** True for a retained message sent on subscribe (or retain as published). */
  readonly retain: boolean;
  /** True when the broker says this may be a redelivery. */
  readonly dup: boolean;
  /** The v5 properties (empty for 3.1.1), the topic alias removed. */
  readonly properties: Properties;
  /** The packet identifier (QoS 1/2 only). */
  readonly packetId: number | undefined;
  #text: string | undefined;
  #acks: MessageAcks | undefined;

  /**
   * Wraps a PUBLISH packet whose topic is already resolved; `acks`, for a
   * message that `ack()` acknowledges (the client's `manualAcks`).
   */
  constructor(packet: PublishPacket, acks?: MessageAcks) {
    this.topic = packet.topic;
    this.payload = packet.payload;
    this.qos = packet.qos;
    this.retain = packet.retain;
    this.dup = packet.dup;
    this.properties = packet.properties ?? {};
    this.packetId = packet.packetId;
    this.#acks = acks;
  }

  /**
   * With the client's `manualAcks`: acknowledges this QoS 1/2 message, its
   * PUBACK or PUBREC goes out now (v5: with `reasonCode`; one of 0x80 or
   * above refuses the message). Call it once the message is safe, e.g.
   * stored: until then the broker keeps it and sends it again after a
   * reconnect. The first call counts; later calls, and calls on QoS 0
   * messages or on messages of a client without `manualAcks` (acknowledged
   * when they arrive), do nothing.
   *
   * @example
   * ```ts ignore
   * const client = new Client({ manualAcks: true, cleanStart: false, clientId: "c1" });
   * client.onMessage(async (m) => {
   *   await db.save(m.topic, m.payload);
   *   m.ack();
   * });
   * ```
   */
  ack(reasonCode = 0): void {
    const acks = this.#acks;
    if (acks === undefined) return;
    this.#acks = undefined;
    acks.ack(this, reasonCode);
  }

  /** The payload decoded as UTF-8 (cached). */
  get payloadText(): string {
    return this.#text ??= decoder.decode(this.payload);
  }

  /** The payload parsed as JSON; throws a `SyntaxError` when it is not. */
  json<T = unknown>(): T {
    return JSON.parse(this.payloadText) as T;
  }

  /** The v5 response topic, if the publisher asked for a response. */
  get responseTopic(): string | undefined {
    return this.properties.responseTopic;
  }

  /** The v5 correlation data, if any. */
  get correlationData(): Uint8Array | undefined {
    return this.properties.correlationData;
  }

  /** The v5 user properties (an empty array when there are none). */
  get userProperties(): [string, string][] {
    return this.properties.userProperties ?? [];
  }
}
