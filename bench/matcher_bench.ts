/**
 * The topic matcher (a trie) against a naive linear scan over 10,000
 * filters. Run with `deno task bench` or `deno bench bench/matcher_bench.ts`.
 *
 * The filter mix imitates a fleet of devices: per device an exact telemetry
 * filter, a `+` filter across sites and a `#` filter for its subtree, plus a
 * few broad dashboards (`site/+/#`, `+/+/device/+/alarm`, `$SYS/#`).
 *
 * @module
 */

import { TopicMatcher } from "../codec/topic.ts";

const SITES = 20;
const DEVICES_PER_SITE = 166; // 20 * 166 * 3 + extras = 10,000 filters

interface Sub {
  filter: string;
  key: string;
  qos: number;
}

function buildFilters(): Sub[] {
  const subs: Sub[] = [];
  for (let s = 0; s < SITES; s++) {
    for (let d = 0; d < DEVICES_PER_SITE; d++) {
      const dev = `dev${s * DEVICES_PER_SITE + d}`;
      subs.push({
        filter: `site${s}/device/${dev}/temp`,
        key: `c${d}`,
        qos: 1,
      });
      subs.push({ filter: `+/device/${dev}/status`, key: `m${d}`, qos: 0 });
      subs.push({ filter: `site${s}/device/${dev}/#`, key: `l${d}`, qos: 2 });
    }
  }
  let i = 0;
  while (subs.length < 10_000) {
    const extras = [
      `site${i % SITES}/+/#`,
      `+/device/+/alarm`,
      `$SYS/#`,
      `site${i % SITES}/device/+/temp`,
    ];
    subs.push({ filter: extras[i % extras.length]!, key: `x${i}`, qos: 0 });
    i++;
  }
  return subs;
}

const SUBS = buildFilters();

const TOPICS: string[] = [];
for (let i = 0; i < 256; i++) {
  const s = i % SITES;
  const dev = `dev${s * DEVICES_PER_SITE + ((i * 7) % DEVICES_PER_SITE)}`;
  const leaf = ["temp", "status", "alarm", "humidity"][i % 4]!;
  TOPICS.push(`site${s}/device/${dev}/${leaf}`);
}

const trie = new TopicMatcher<number>();
for (const sub of SUBS) trie.set(sub.filter, sub.key, sub.qos);

/** The naive matcher: filters pre-split, every filter tested per topic. */
const naive = SUBS.map((s) => ({ ...s, levels: s.filter.split("/") }));

function naiveMatch(f: string[], t: string[], topic: string): boolean {
  if (topic.charCodeAt(0) === 0x24 && (f[0] === "+" || f[0] === "#")) {
    return false;
  }
  for (let i = 0; i < f.length; i++) {
    const level = f[i];
    if (level === "#") return true;
    if (i >= t.length) return false;
    if (level !== "+" && level !== t[i]) return false;
  }
  return f.length === t.length;
}

// Both must agree before we time them.
{
  const a: string[] = [];
  const b: string[] = [];
  for (const topic of TOPICS) {
    trie.match(topic, (_q, key, filter) => a.push(`${topic} ${filter} ${key}`));
    const t = topic.split("/");
    for (const s of naive) {
      if (naiveMatch(s.levels, t, topic)) {
        b.push(`${topic} ${s.filter} ${s.key}`);
      }
    }
  }
  if (a.sort().join("\n") !== b.sort().join("\n")) {
    throw new Error("trie and naive matcher disagree");
  }
}

let sink = 0;
let next = 0;

Deno.bench({
  name: "TopicMatcher.match(), 10,000 filters",
  group: "match one topic",
  baseline: true,
}, () => {
  const topic = TOPICS[next++ & 255]!;
  trie.match(topic, (qos) => {
    sink += qos;
  });
});

Deno.bench({
  name: "TopicMatcher.match(), 10,000 filters, the same topic again",
  group: "match one topic",
}, () => {
  trie.match(TOPICS[0]!, (qos) => {
    sink += qos;
  });
});

Deno.bench({
  name: "naive linear scan, 10,000 filters",
  group: "match one topic",
}, () => {
  const topic = TOPICS[next++ & 255]!;
  const t = topic.split("/");
  for (let i = 0; i < naive.length; i++) {
    const s = naive[i]!;
    if (naiveMatch(s.levels, t, topic)) sink += s.qos;
  }
});

Deno.bench({
  name: "TopicMatcher.hasMatch(), 10,000 filters",
  group: "match one topic",
}, () => {
  if (trie.hasMatch(TOPICS[next++ & 255]!)) sink++;
});

let churn = 0;
Deno.bench({
  name: "TopicMatcher.set() + delete() of a 4-level filter, 10,000 filters",
  group: "subscribe and unsubscribe",
}, () => {
  const filter = `site${churn % SITES}/device/new${churn & 1023}/+`;
  churn++;
  trie.set(filter, "k", 1);
  trie.delete(filter, "k");
});

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
