/**
 * `$SYS/broker/...` topics: the broker's vital signs, published as retained
 * messages every `sysInterval` seconds (names as Mosquitto uses them).
 *
 * @module
 */

import type { Broker, BrokerCore } from "./broker.ts";

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

/** Publishes the `$SYS` topics once. */
export function publishSys(broker: Broker, core: BrokerCore): void {
  const now = Date.now();
  const values: [string, string][] = [
    [SYS_TOPICS.version, KITE_VERSION],
    [
      SYS_TOPICS.uptime,
      `${Math.floor((now - core.startedAt) / 1000)} seconds`,
    ],
    [SYS_TOPICS.clientsConnected, String(core.connectedCount)],
    [SYS_TOPICS.clientsTotal, String(core.sessions.size)],
    [SYS_TOPICS.messagesReceived, String(core.stats.messagesReceived)],
    [SYS_TOPICS.messagesSent, String(core.stats.messagesSent)],
    [SYS_TOPICS.bytesReceived, String(core.stats.bytesReceived)],
    [SYS_TOPICS.bytesSent, String(core.stats.bytesSent)],
    [SYS_TOPICS.subscriptions, String(core.router.size)],
    // Counted before this round's own $SYS topics are (re)stored.
    [SYS_TOPICS.retained, String(core.retained.size)],
  ];
  for (const [topic, value] of values) {
    broker.publish(topic, value, { retain: true });
  }
}

/** Publishes the `$SYS` topics now and every `sysInterval` seconds; returns a stop function. */
export function startSys(broker: Broker, core: BrokerCore): () => void {
  publishSys(broker, core);
  const timer = setInterval(
    () => publishSys(broker, core),
    core.settings.sysInterval * 1000,
  );
  return () => clearInterval(timer);
}
