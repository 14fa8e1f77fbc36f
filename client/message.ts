/**
 * `Message`: an application message as the client hands it to the user.
 *
 * @module
 */

import type { Properties, PublishPacket, QoS } from "../codec/packet.ts";

const decoder = new TextDecoder();

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
  #text: string | undefined;

  /** Wraps a PUBLISH packet whose topic is already resolved. */
  constructor(packet: PublishPacket) {
    this.topic = packet.topic;
    this.payload = packet.payload;
    this.qos = packet.qos;
    this.retain = packet.retain;
    this.dup = packet.dup;
    this.properties = packet.properties ?? {};
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
