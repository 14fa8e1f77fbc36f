/**
 * Test helper: an MQTT.js client connected to a Kite broker (no reconnect,
 * no keep-alive), with its received messages queued for `next()` (bounded
 * waits), and `endMqttjs()` to end it (bounded).
 *
 * ```ts ignore
 * const sub = await openMqttjs(broker, { protocolVersion: 5 }, (topic, p) => ({
 *   topic,
 *   payload: p.toString(),
 * }));
 * await sub.client.subscribeAsync("t", { qos: 1 });
 * const m = await sub.next();
 * await endMqttjs(sub.client);
 * ```
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import mqtt, { type IPublishPacket } from "mqtt";
import type { Broker } from "../broker/mod.ts";
import { withTimeout } from "./_helpers.ts";

/** An MQTT.js client. */
export type MqttjsClient = ReturnType<typeof mqtt.connect>;

/** The arguments of MQTT.js's "message" event. */
type OnMessage = [topic: string, payload: Buffer, packet: IPublishPacket];

/** A connected MQTT.js client and the messages it received. */
export interface MqttjsConnection<M> {
  client: MqttjsClient;
  /** Received and not yet taken by `next()`. */
  messages: M[];
  /** The next message (waits at most 3 s). */
  next(): Promise<M>;
}

/**
 * Connects MQTT.js to `broker` on 127.0.0.1 (`options` go to
 * `mqtt.connect`, after `reconnectPeriod: 0, keepalive: 0`); waits at most
 * 3 s for the CONNACK. Each message is recorded as `toMsg(...)` gives it.
 */
export async function openMqttjs<M>(
  broker: Pick<Broker, "addr">,
  options: Record<string, unknown>,
  toMsg: (...args: OnMessage) => M,
): Promise<MqttjsConnection<M>> {
  const client = mqtt.connect({
    host: "127.0.0.1",
    port: broker.addr.port,
    reconnectPeriod: 0,
    keepalive: 0,
    ...options,
  });
  const messages: M[] = [];
  let wake: (() => void) | undefined;
  client.on("message", (topic, payload, packet) => {
    messages.push(toMsg(topic, payload, packet));
    wake?.();
  });
  await withTimeout(
    new Promise<void>((resolve, reject) => {
      client.once("connect", () => resolve());
      client.once("error", reject);
    }),
    3000,
    "MQTT.js connect",
  );
  const next = () =>
    withTimeout(
      (async () => {
        while (messages.length === 0) {
          await new Promise<void>((r) => wake = r);
        }
        return messages.shift()!;
      })(),
      3000,
      "an MQTT.js message",
    );
  return { client, messages, next };
}

/** Ends an MQTT.js client (`force`: without DISCONNECT); waits at most 3 s. */
export function endMqttjs(
  client: MqttjsClient,
  force = false,
): Promise<void> {
  return withTimeout(
    new Promise<void>((r) => client.end(force, {}, () => r())),
    3000,
    "MQTT.js end",
  );
}
