/**
 * `GET /metrics`: the broker's `Metrics` in the Prometheus text format
 * (version 0.0.4). Names follow Prometheus' rules and EMQX's set: a `kite_`
 * prefix, counters end in `_total`, units in the name (`_bytes`,
 * `_seconds`), gauges for what goes up and down; dropped messages carry
 * their reason as a label. {@linkcode METRIC_FAMILIES} is the list (the
 * README's table follows it).
 *
 * A scrape reads plain fields and walks the sessions once (queued and
 * in-flight counts): nothing is kept or computed between scrapes.
 *
 * @module
 */

import { KITE_VERSION } from "../sys.ts";
import { DROP_REASONS, type MessageCounts, type Metrics } from "../metrics.ts";

/** The Content-Type of the exposition. */
export const PROMETHEUS_CONTENT_TYPE =
  "text/plain; version=0.0.4; charset=utf-8";

/** What one scrape reads once and several families share. */
interface Scrape {
  now: number;
  messages: MessageCounts;
  memory: { heapUsed: number; heapMaximum: number; rss: number };
}

/** One sample: its labels (if any) and value. */
type Sample = [labels: Record<string, string> | undefined, value: number];

/** A metric family of the exposition. */
export interface MetricFamily {
  /** The metric name (`kite_...`). */
  readonly name: string;
  /** Its Prometheus type. */
  readonly type: "counter" | "gauge" | "histogram";
  /** One line of help. */
  readonly help: string;
  /** The value(s) now (not used for histograms). */
  readonly read?: (m: Metrics, s: Scrape) => number | Sample[];
}

const counter = (
  name: string,
  help: string,
  read: (m: Metrics, s: Scrape) => number | Sample[],
): MetricFamily => ({ name, type: "counter", help, read });
const gauge = (
  name: string,
  help: string,
  read: (m: Metrics, s: Scrape) => number | Sample[],
): MetricFamily => ({ name, type: "gauge", help, read });

/** Every family `GET /metrics` exposes, in order. */
export const METRIC_FAMILIES: readonly MetricFamily[] = [
  gauge("kite_info", "Kite's version (the value is 1).", () => [[{
    version: KITE_VERSION.replace(/^kite /, ""),
  }, 1]]),
  gauge(
    "kite_start_time_seconds",
    "When the broker started, seconds since the epoch.",
    (m) => m.startedAt / 1000,
  ),
  gauge(
    "kite_uptime_seconds",
    "Seconds since the broker started.",
    (m, s) => (s.now - m.startedAt) / 1000,
  ),
  gauge(
    "kite_connections",
    "Sockets open, connected or not yet (before CONNACK).",
    (m) => m.connectionCount,
  ),
  gauge(
    "kite_live_connections",
    "Clients connected (CONNACK sent).",
    (m) => m.connectedClients,
  ),
  gauge(
    "kite_live_connections_max",
    "Most clients connected at once since the start.",
    (m) => m.maxConnected,
  ),
  gauge(
    "kite_sessions",
    "Sessions, connected or offline.",
    (m) => m.sessionCount,
  ),
  gauge(
    "kite_subscriptions",
    "Subscriptions, shared ones included.",
    (m) => m.subscriptionCount,
  ),
  gauge(
    "kite_shared_subscriptions",
    "Shared subscriptions ($share/GROUP/FILTER).",
    (m) => m.sharedSubscriptionCount,
  ),
  gauge(
    "kite_retained_messages",
    "Retained messages.",
    (m) => m.retainedCount,
  ),
  gauge(
    "kite_retained_bytes",
    "Payload bytes of the retained messages.",
    (m) => m.retainedBytes,
  ),
  gauge(
    "kite_queued_messages",
    "Messages waiting in session queues.",
    (_, s) => s.messages.queued,
  ),
  gauge(
    "kite_queued_bytes",
    "Payload and topic bytes of the messages in session queues.",
    (_, s) => s.messages.queuedBytes,
  ),
  gauge(
    "kite_inflight_messages",
    "QoS 1/2 messages sent and not yet acknowledged.",
    (_, s) => s.messages.inflight,
  ),
  gauge(
    "kite_heap_used_bytes",
    "V8 heap in use.",
    (_, s) => s.memory.heapUsed,
  ),
  gauge(
    "kite_resident_memory_bytes",
    "Resident memory of the process.",
    (_, s) => s.memory.rss,
  ),
  counter(
    "kite_connections_total",
    "Sockets accepted.",
    (m) => m.connectionsAccepted,
  ),
  counter(
    "kite_client_connected_total",
    "CONNECTs accepted (CONNACK 0).",
    (m) => m.clientsConnected,
  ),
  counter(
    "kite_client_disconnected_total",
    "Connections of connected clients that ended.",
    (m) => m.clientsDisconnected,
  ),
  counter(
    "kite_client_connect_refused_total",
    "CONNECTs refused with a CONNACK code.",
    (m) => m.connectsRefused,
  ),
  counter(
    "kite_authentication_failures_total",
    "CONNECTs refused by authentication (bad credentials, anonymous).",
    (m) => m.authFailures,
  ),
  counter(
    "kite_session_created_total",
    "Sessions created by a CONNECT.",
    (m) => m.sessionsCreated,
  ),
  counter(
    "kite_session_resumed_total",
    "Sessions resumed by a CONNECT.",
    (m) => m.sessionsResumed,
  ),
  counter(
    "kite_session_takenover_total",
    "Connections closed because a new one took their client id.",
    (m) => m.sessionsTakenOver,
  ),
  counter(
    "kite_session_discarded_total",
    "Sessions discarded by a clean start or an administrator.",
    (m) => m.sessionsDiscarded,
  ),
  counter(
    "kite_session_expired_total",
    "Offline sessions ended by their expiry interval.",
    (m) => m.sessionsExpired,
  ),
  counter(
    "kite_messages_received_total",
    "PUBLISH packets received from clients.",
    (m) => m.messagesReceived,
  ),
  counter(
    "kite_messages_sent_total",
    "PUBLISH packets sent to clients.",
    (m) => m.messagesSent,
  ),
  counter(
    "kite_messages_dropped_total",
    "Messages dropped, by reason.",
    (m) => DROP_REASONS.map((reason, i) => [{ reason }, m.dropped[i]!]),
  ),
  counter(
    "kite_publish_received_bytes_total",
    "Payload bytes of the PUBLISH packets received from clients.",
    (m) => m.publishBytesReceived,
  ),
  counter(
    "kite_publish_sent_bytes_total",
    "Payload bytes of the PUBLISH packets sent to clients.",
    (m) => m.publishBytesSent,
  ),
  counter(
    "kite_received_bytes_total",
    "Bytes read from clients.",
    (m) => m.bytesReceived,
  ),
  counter(
    "kite_sent_bytes_total",
    "Bytes written to clients.",
    (m) => m.bytesSent,
  ),
  counter(
    "kite_packets_received_total",
    "MQTT packets received, any type.",
    (m) => m.packetsReceived,
  ),
  counter(
    "kite_packets_sent_total",
    "MQTT packets sent, any type.",
    (m) => m.packetsSent,
  ),
  {
    name: "kite_store_commit_duration_seconds",
    type: "histogram",
    help: "Store group commits (durable acknowledgements wait for them).",
  },
];

/** A label value with `\`, `"` and newlines escaped. */
function labelValue(v: string): string {
  return v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

function labels(l: Record<string, string> | undefined): string {
  if (l === undefined) return "";
  const parts = Object.entries(l).map(([k, v]) => `${k}="${labelValue(v)}"`);
  return `{${parts.join(",")}}`;
}

/** A sample value as the text format writes it. */
function num(n: number): string {
  if (n === Infinity) return "+Inf";
  if (n === -Infinity) return "-Inf";
  return String(n);
}

/**
 * The exposition of `metrics` now.
 *
 * @example
 * ```ts ignore
 * const text = renderPrometheus(core.metrics);
 * // # HELP kite_live_connections Clients connected (CONNACK sent).
 * // # TYPE kite_live_connections gauge
 * // kite_live_connections 3
 * ```
 */
export function renderPrometheus(metrics: Metrics, now = Date.now()): string {
  const scrape: Scrape = {
    now,
    messages: metrics.messageCounts(),
    memory: metrics.memory(),
  };
  let out = "";
  for (const f of METRIC_FAMILIES) {
    out += `# HELP ${f.name} ${f.help.replace(/\\/g, "\\\\")}\n`;
    out += `# TYPE ${f.name} ${f.type}\n`;
    if (f.type === "histogram") {
      const h = metrics.storeCommit;
      let cumulative = 0;
      for (let i = 0; i <= h.bounds.length; i++) {
        cumulative += h.counts[i]!;
        const le = i < h.bounds.length ? num(h.bounds[i]!) : "+Inf";
        out += `${f.name}_bucket{le="${le}"} ${cumulative}\n`;
      }
      out += `${f.name}_sum ${num(h.sum)}\n`;
      out += `${f.name}_count ${h.count}\n`;
      continue;
    }
    const v = f.read!(metrics, scrape);
    if (typeof v === "number") out += `${f.name} ${num(v)}\n`;
    else {
      for (const [l, x] of v) out += `${f.name}${labels(l)} ${num(x)}\n`;
    }
  }
  return out;
}
