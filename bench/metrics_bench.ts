/**
 * What one scrape of `/metrics` costs the broker: `renderPrometheus()` over
 * a core with 10,000 sessions (1,000 of them with a subscription), which
 * walks the sessions once for the queued and in-flight gauges. At one
 * scrape a second, the share of one CPU it takes is the time per scrape
 * divided by a second. Run with `deno task bench` or
 * `deno bench -P bench/metrics_bench.ts`.
 *
 * @module
 */

import { BrokerCore } from "../broker/core.ts";
import { renderPrometheus } from "../broker/http/prometheus.ts";
import { Session } from "../broker/session.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import { SysTree } from "../broker/sys.ts";

const core = new BrokerCore({ sysInterval: 0 }, new MemoryStore());
for (let i = 0; i < 10_000; i++) {
  const id = `client-${i}`;
  const s = new Session(id, 4, 3600, core.sessionContext);
  if (i % 10 === 0) {
    const sub = { filter: `devices/${id}/#`, qos: 1 as const };
    s.subscriptions.set(sub.filter, sub);
    core.dispatcher.subscribe(s, sub);
  }
  core.sessions.set(id, s);
}
core.metrics.messagesReceived = 123_456_789;

Deno.bench("renderPrometheus() with 10,000 sessions", () => {
  renderPrometheus(core.metrics);
});

const tree = new SysTree(core.metrics, () => {});
let now = Date.now();
Deno.bench(
  "SysTree.update() with 10,000 sessions ($SYS, every sysInterval)",
  () => {
    tree.update(now += 10_000);
  },
);
