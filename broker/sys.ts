/**
 * `$SYS/broker/...` topics: the broker's vital signs, published as retained
 * messages every `sysInterval` seconds (names as Mosquitto uses them).
 *
 * @module
 */

import type { Metrics } from "./metrics.ts";

/** Publishes one retained `$SYS` value. */
export type SysPublish = (topic: string, value: string) => void;

/** The version string published at `$SYS/broker/version`. */
export const KITE_VERSION = "kite 0.1.0";

/** The `$SYS` topics, by what they report. */
export const SYS_TOPICS = {
  version: "$SYS/broker/version",
  uptime: "$SYS/broker/uptime",
  clientsConnected: "$SYS/broker/clients/connected",
  clientsTotal: "$SYS/broker/clients/total",
  messagesReceived: "$SYS/broker/messages/received",
  messagesSent: "$SYS/broker/messages/sent",
  bytesReceived: "$SYS/broker/bytes/received",
  bytesSent: "$SYS/broker/bytes/sent",
  subscriptions: "$SYS/broker/subscriptions/count",
  retained: "$SYS/broker/retained messages/count",
} as const;

/** Publishes the `$SYS` topics once, from the broker's metrics. */
export function publishSys(metrics: Metrics, publish: SysPublish): void {
  const values: [string, string][] = [
    [SYS_TOPICS.version, KITE_VERSION],
    [SYS_TOPICS.uptime, `${metrics.uptimeSeconds()} seconds`],
    [SYS_TOPICS.clientsConnected, String(metrics.connectedClients)],
    [SYS_TOPICS.clientsTotal, String(metrics.sessionCount)],
    [SYS_TOPICS.messagesReceived, String(metrics.messagesReceived)],
    [SYS_TOPICS.messagesSent, String(metrics.messagesSent)],
    [SYS_TOPICS.bytesReceived, String(metrics.bytesReceived)],
    [SYS_TOPICS.bytesSent, String(metrics.bytesSent)],
    [SYS_TOPICS.subscriptions, String(metrics.subscriptionCount)],
    // Counted before this round's own $SYS topics are (re)stored.
    [SYS_TOPICS.retained, String(metrics.retainedCount)],
  ];
  for (const [topic, value] of values) publish(topic, value);
}

/**
 * Publishes the `$SYS` topics now and every `intervalSeconds`; returns a
 * stop function.
 */
export function startSys(
  metrics: Metrics,
  publish: SysPublish,
  intervalSeconds: number,
): () => void {
  publishSys(metrics, publish);
  const timer = setInterval(
    () => publishSys(metrics, publish),
    intervalSeconds * 1000,
  );
  return () => clearInterval(timer);
}
