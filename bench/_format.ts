/**
 * The text form of a load result.
 *
 * @module
 */

import type { LatencyResult, LoadResult } from "./_load_types.ts";

/** A number with thousands separators and `digits` decimals. */
export const fmt = (n: number, digits = 0): string =>
  n.toLocaleString("en-US", {
    maximumFractionDigits: digits,
    minimumFractionDigits: digits,
  });

/** A few human-readable lines for one result. */
export function formatResult(r: LoadResult): string {
  const lines: string[] = [];
  if (r.shape) {
    const s = r.shape;
    lines.push(
      `${r.scenario}: ${s.publishers} pub -> ${s.subscribers} sub, QoS ${s.qos}` +
        (s.window > 0 ? `, window ${s.window}` : "") +
        (s.persistent ? ", persistent sessions" : "") +
        (s.slowReader
          ? `, subscriber reads ${s.slowReader.bytesPerRead} B per ${s.slowReader.delayMs} ms`
          : "") +
        (s.rate ? `, ${fmt(s.rate)} msg/s` : "") +
        `, broker ${r.host}:${r.port}`,
    );
    lines.push(
      `  delivered  ${fmt(r.deliveredPerSec ?? 0)} msg/s over ${
        fmt(r.seconds, 1)
      } s` +
        `  (sent ${fmt(r.sent ?? 0)}, delivered ${fmt(r.delivered ?? 0)})`,
    );
    if (r.perBrokerCpuSecond !== undefined) {
      lines.push(
        `  per broker CPU second ${fmt(r.perBrokerCpuSecond)} deliveries`,
      );
    }
    if (r.perSecond?.length) {
      lines.push(`  per second ${r.perSecond.map((n) => fmt(n)).join("  ")}`);
    }
    if (r.rssPerSecond?.length) {
      lines.push(
        `  broker RSS MB ${
          r.rssPerSecond.map((n) => fmt(n / 1024, 1)).join("  ")
        }`,
      );
    }
    const counts = (
      [
        ["dropped", r.dropped],
        ["gaps", r.gaps],
        ["duplicates", r.duplicates],
        ["out-of-order", r.outOfOrder],
        ["unacked", r.unacked],
      ] as const
    ).filter(([, v]) => v !== undefined).map(([k, v]) => `${k} ${v}`);
    lines.push(
      (r.undelivered !== undefined
        ? `  undelivered ${r.undelivered} (queued or dropped), dropped ${r.dropped} (seen as gaps)  `
        : `  lost ${r.lost}  `) +
        counts.filter((c) =>
          r.undelivered === undefined || !c.startsWith("dropped")
        ).join("  "),
    );
  }
  if (r.conns) {
    const c = r.conns;
    lines.push(
      `conns: ${fmt(c.count)} idle connections, broker ${r.host}:${r.port}`,
    );
    lines.push(
      `  ${fmt(c.connectsPerSec)} connects/s  (${
        fmt(c.connected)
      } connected in ${fmt(r.seconds, 2)} s, ${c.failed} failed, ${
        fmt(c.alive)
      } alive after idling)`,
    );
    if (c.kbPerConn !== undefined) {
      lines.push(
        `  broker RSS ${fmt(c.rssBeforeKB ?? 0)} KB -> ${
          fmt(c.rssAfterKB ?? 0)
        } KB: ${fmt(c.kbPerConn, 2)} KB per connection`,
      );
    }
    if (c.kbPerConnSecondHalf !== undefined) {
      lines.push(
        `  second half: ${fmt(c.rssMidKB ?? 0)} KB -> ${
          fmt(c.rssAfterKB ?? 0)
        } KB: ${fmt(c.kbPerConnSecondHalf, 2)} KB per connection`,
      );
    }
  }
  const lat = (what: string, l: LatencyResult | undefined) => {
    if (l === undefined) return;
    lines.push(
      `  ${what.padEnd(10)} p50 ${fmt(l.p50)} us  p90 ${fmt(l.p90)} us  p99 ${
        fmt(l.p99)
      } us  p99.9 ${fmt(l.p999 ?? NaN)} us  max ${fmt(l.max)} us  (${
        fmt(l.samples)
      } messages)`,
    );
  };
  lat("latency", r.latency);
  if (r.latencyFromWrite) {
    lat("  written", r.latencyFromWrite);
    lat("  send lag", r.sendLag);
  }
  if (r.idle) {
    lines.push(
      `  idle       ${fmt(r.idle.connected)} of ${
        fmt(r.idle.requested)
      } idle connections held open (${r.idle.failed} failed, opened in ${
        fmt(r.idle.seconds, 1)
      } s)`,
    );
  }
  if (r.fleet) {
    const f = r.fleet;
    lines.push(
      `  fleet      ${fmt(f.devices)} devices, ${
        fmt(f.reconnects)
      } reconnects (${f.reconnectFailures} failed, ${f.sessionLost} without their session)` +
        (f.reconnectTime
          ? `, reconnect p50 ${fmt(f.reconnectTime.p50 / 1000, 1)} ms p99 ${
            fmt(f.reconnectTime.p99 / 1000, 1)
          } ms`
          : ""),
    );
  }
  if (r.scatter) {
    lines.push(
      `  scatter    ${fmt(r.scatter.subscribers)} subscribers, ${
        fmt(r.scatter.subscriptions)
      } subscriptions, ${r.scatter.misrouted} misrouted`,
    );
  }
  if (r.brokerUsPerMessage !== undefined) {
    lines.push(
      `  broker CPU ${fmt(r.brokerUsPerMessage, 2)} us per message delivered`,
    );
  }
  const c = r.cpu;
  lines.push(
    `  cpu        tool ${fmt(c.toolS, 2)} s (${fmt(c.toolPct)}% of a core)` +
      (c.brokerS !== undefined
        ? `  broker ${fmt(c.brokerS, 2)} s (${fmt(c.brokerPct ?? 0)}%)`
        : "  broker n/a (pass --pid)") +
      (r.brokerRssKB !== undefined
        ? `  broker RSS ${fmt(r.brokerRssKB)} KB`
        : ""),
  );
  for (const w of r.warnings) lines.push(`  warning: ${w}`);
  return lines.join("\n");
}
