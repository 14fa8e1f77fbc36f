import assert from "node:assert/strict";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { prng } from "./codec_random_gen.ts";
import {
  hasWildcard,
  isValidTopicFilter,
  isValidTopicName,
  parseSharedSubscription,
  TopicMatcher,
  validateTopicFilter,
  validateTopicName,
} from "../codec/topic.ts";

// ---------------------------------------------------------------------------
// Validation rows: [input, valid, why]

const NAME_ROWS: [string, boolean, string][] = [
  ["a", true, "one level"],
  ["a/b/c", true, "three levels"],
  ["/", true, "two empty levels"],
  ["/a", true, "leading empty level"],
  ["a/", true, "trailing empty level"],
  ["a//b", true, "empty middle level"],
  ["$SYS/broker/uptime", true, "$ topics are names"],
  ["sport/tennis player1", true, "spaces are allowed [MQTT-4.7.3-1]"],
  ["ACCOUNTS/accounts", true, "case-sensitive, any case"],
  ["ünïcødé/日本/🙂", true, "non-ASCII"],
  ["", false, "empty [MQTT-4.7.3-1]"],
  ["a/+", false, "+ in a name [MQTT-3.3.2-2]"],
  ["+", false, "+ alone"],
  ["a/#", false, "# in a name [MQTT-3.3.2-2]"],
  ["a#b", false, "# inside a level"],
  ["a+b", false, "+ inside a level"],
  ["a\u0000b", false, "U+0000 [MQTT-4.7.3-2]"],
  ["a\ud800", false, "lone high surrogate v3:[MQTT-1.5.3-1] v5:[MQTT-1.5.4-1]"],
  ["\udc00a", false, "lone low surrogate v3:[MQTT-1.5.3-1] v5:[MQTT-1.5.4-1]"],
  ["x".repeat(65535), true, "65535 bytes"],
  ["x".repeat(65536), false, "65536 bytes"],
  ["é".repeat(32767) + "x", true, "65535 bytes of 2-byte chars"],
  ["é".repeat(32768), false, "65536 bytes of 2-byte chars"],
  ["🙂".repeat(16383) + "xxx", true, "65535 bytes of 4-byte chars"],
  ["🙂".repeat(16384), false, "65536 bytes of 4-byte chars"],
];

const FILTER_ROWS: [string, boolean, string][] = [
  ["a", true, "one level"],
  ["#", true, "# alone v3:[MQTT-4.7.1-2] v5:[MQTT-4.7.1-1]"],
  ["+", true, "+ alone v3:[MQTT-4.7.1-3] v5:[MQTT-4.7.1-2]"],
  ["a/#", true, "# last"],
  ["a/+/b", true, "+ in the middle"],
  ["+/+", true, "two +"],
  ["/+", true, "+ after an empty level"],
  ["+/", true, "+ before an empty level"],
  ["+/tennis/#", true, "+ and #"],
  ["a//b", true, "empty level"],
  ["/", true, "two empty levels"],
  ["$SYS/#", true, "$ filter"],
  ["$share/g/a/#", true, "shared subscription"],
  ["$share/g/#", true, "shared #"],
  ["$share/g//", true, "shared with empty-level inner filter"],
  ["$sharex/a", true, "not $share/"],
  ["$share", true, "no slash: a plain filter"],
  ["", false, "empty [MQTT-4.7.3-1]"],
  ["a/#/b", false, "# not last v3:[MQTT-4.7.1-2] v5:[MQTT-4.7.1-1]"],
  ["a#", false, "# inside a level v3:[MQTT-4.7.1-2] v5:[MQTT-4.7.1-1]"],
  ["#a", false, "# followed by chars"],
  ["a/b#", false, "# after chars"],
  ["##", false, "two #"],
  ["a+", false, "+ after chars v3:[MQTT-4.7.1-3] v5:[MQTT-4.7.1-2]"],
  ["+a", false, "+ before chars v3:[MQTT-4.7.1-3] v5:[MQTT-4.7.1-2]"],
  ["a/+b/c", false, "+ inside a level"],
  ["++", false, "two + in one level"],
  ["a\u0000", false, "U+0000"],
  ["\ud800/a", false, "lone surrogate"],
  ["$share/g", false, "no inner filter [MQTT-4.8.2-2]"],
  ["$share/g/", false, "empty inner filter"],
  ["$share//a", false, "empty share name [MQTT-4.8.2-1]"],
  ["$share/g+/a", false, "+ in share name [MQTT-4.8.2-2]"],
  ["$share/#/a", false, "# in share name [MQTT-4.8.2-2]"],
  ["$share/g/a/#/b", false, "invalid inner filter"],
  ["x".repeat(65535), true, "65535 bytes"],
  ["x".repeat(65536), false, "65536 bytes"],
];

const show = (s: string) =>
  s.length > 40 ? `${s.slice(0, 20)}…(${s.length})` : s;

Deno.test("validateTopicName() accepts and rejects the table rows with 0x90", () => {
  for (const [name, valid, why] of NAME_ROWS) {
    assert.equal(isValidTopicName(name), valid, `${show(name)}: ${why}`);
    if (valid) {
      validateTopicName(name);
    } else {
      assert.throws(
        () => validateTopicName(name),
        (e) =>
          e instanceof MqttError &&
          e.reasonCode === ReasonCode.TopicNameInvalid,
        `${show(name)}: ${why}`,
      );
    }
  }
});

Deno.test("validateTopicName() accepts the empty name only with allowEmpty", () => {
  validateTopicName("", { allowEmpty: true });
  assert.equal(isValidTopicName("", { allowEmpty: true }), true);
  assert.equal(isValidTopicName("", { allowEmpty: false }), false);
  assert.throws(() => validateTopicName("a/+", { allowEmpty: true }));
});

Deno.test("validateTopicFilter() accepts and rejects the table rows with 0x8F", () => {
  for (const [filter, valid, why] of FILTER_ROWS) {
    assert.equal(isValidTopicFilter(filter), valid, `${show(filter)}: ${why}`);
    if (valid) {
      validateTopicFilter(filter);
    } else {
      assert.throws(
        () => validateTopicFilter(filter),
        (e) =>
          e instanceof MqttError &&
          e.reasonCode === ReasonCode.TopicFilterInvalid,
        `${show(filter)}: ${why}`,
      );
    }
  }
});

Deno.test("validateTopicFilter() error messages say what is wrong", () => {
  assert.throws(() => validateTopicFilter("a/#/b"), /"#" must be/);
  assert.throws(() => validateTopicFilter("a+"), /"\+" must occupy/);
  assert.throws(() => validateTopicFilter("$share//a"), /empty share name/);
});

Deno.test("parseSharedSubscription() splits $share/{group}/{filter} [MQTT-4.8.2-1]", () => {
  const rows: [string, { group: string; filter: string } | undefined][] = [
    ["$share/g/a", { group: "g", filter: "a" }],
    ["$share/g1/sensors/+/temp", { group: "g1", filter: "sensors/+/temp" }],
    ["$share/g/#", { group: "g", filter: "#" }],
    ["$share/g//a", { group: "g", filter: "/a" }],
    ["$share/group.with-chars/$SYS/#", {
      group: "group.with-chars",
      filter: "$SYS/#",
    }],
    ["a/b", undefined],
    ["$share", undefined],
    ["$sharex/g/a", undefined],
    ["$SHARE/g/a", undefined],
    ["#", undefined],
  ];
  for (const [input, expected] of rows) {
    assert.deepEqual(parseSharedSubscription(input), expected, input);
  }
});

Deno.test("parseSharedSubscription() throws 0x8F for a malformed share [MQTT-4.8.2-2]", () => {
  for (
    const input of [
      "$share/",
      "$share/g",
      "$share/g/",
      "$share//a",
      "$share/a+/b",
      "$share/#/b",
    ]
  ) {
    assert.throws(
      () => parseSharedSubscription(input),
      (e) =>
        e instanceof MqttError &&
        e.reasonCode === ReasonCode.TopicFilterInvalid,
      input,
    );
  }
});

Deno.test("hasWildcard() finds + and #", () => {
  assert.equal(hasWildcard("a/b"), false);
  assert.equal(hasWildcard(""), false);
  assert.equal(hasWildcard("$SYS/x"), false);
  assert.equal(hasWildcard("a/+"), true);
  assert.equal(hasWildcard("#"), true);
  assert.equal(hasWildcard("$share/g/a/#"), true);
});

// ---------------------------------------------------------------------------
// Matcher

/** The filters that match `topic`, as sorted "filter key" strings. */
function matched<T>(m: TopicMatcher<T>, topic: string): string[] {
  const out: string[] = [];
  m.match(topic, (_value, key, filter) => out.push(`${filter} ${key}`));
  return out.sort();
}

// [filter, topic, matches]
const MATCH_ROWS: [string, string, boolean][] = [
  ["a", "a", true],
  ["a", "b", false],
  ["a", "a/b", false],
  ["a/b", "a", false],
  ["A", "a", false], // case-sensitive [MQTT-4.7.3-4]
  ["+", "a", true],
  ["+", "a/b", false],
  ["+", "/", false],
  ["+/+", "/", true], // v3:[MQTT-4.7.1-3] v5:[MQTT-4.7.1-2] example
  ["/+", "/a", true],
  ["+", "/a", false],
  ["/+", "/", true],
  ["+/", "a/", true],
  ["+/", "a", false],
  ["a/+", "a/", true], // + matches an empty level
  ["a/+", "a", false],
  ["a/+/c", "a/b/c", true],
  ["a/+/c", "a//c", true],
  ["a/+/c", "a/b/d", false],
  ["#", "a", true],
  ["#", "a/b/c", true],
  ["#", "/", true],
  ["#", "/a", true],
  ["a/#", "a", true], // # includes the parent level v3:[MQTT-4.7.1-2] v5:[MQTT-4.7.1-1]
  ["a/#", "a/", true],
  ["a/#", "a/b", true],
  ["a/#", "a/b/c", true],
  ["a/#", "ab", false],
  ["a/#", "b/a", false],
  ["a/+/#", "a/b", true],
  ["a/+/#", "a", false],
  ["a/+/#", "a/b/c/d", true],
  ["+/#", "a", true],
  ["/#", "/", true],
  ["/#", "a", false],
  ["a//b", "a//b", true],
  ["a//b", "a/b", false],
  ["a/b", "a//b", false],
  ["a//#", "a/", true],
  ["a//#", "a//x", true],
  ["/a", "/a", true],
  ["/a", "a", false],
  ["a/", "a/", true],
  ["a/", "a", false],
  // [MQTT-4.7.2-1]: wildcards at the first level do not match $ topics.
  ["#", "$SYS", false],
  ["#", "$SYS/broker", false],
  ["+/broker", "$SYS/broker", false],
  ["+", "$x", false],
  ["+/#", "$SYS/a", false],
  ["$SYS/#", "$SYS/broker/uptime", true],
  ["$SYS/#", "$SYS", true],
  ["$SYS/+", "$SYS/broker", true],
  ["$SYS/+/uptime", "$SYS/broker/uptime", true],
  ["a/+", "a/$x", true], // the rule is about the first level only
  ["a/#", "a/$x/y", true],
  ["#", "a$", true],
  // Shared filters are stored under their inner filter by the broker; the
  // literal `$share/...` filter matches only literally.
  ["$share/g/a", "a", false],
  ["$share/g/a", "$share/g/a", true],
  ["#", "$share/g/a", false],
];

Deno.test("TopicMatcher.match() follows the filter table [MQTT-4.7.1] [MQTT-4.7.2-1]", () => {
  for (const [filter, topic, expected] of MATCH_ROWS) {
    const m = new TopicMatcher<number>();
    m.set(filter, "k", 1);
    const got = matched(m, topic);
    assert.deepEqual(
      got,
      expected ? [`${filter} k`] : [],
      `${filter} vs ${topic}`,
    );
    assert.equal(m.hasMatch(topic), expected, `hasMatch ${filter} vs ${topic}`);
  }
});

Deno.test("TopicMatcher.match() with all table filters at once equals the per-row results", () => {
  const m = new TopicMatcher<number>();
  const filters = [...new Set(MATCH_ROWS.map((r) => r[0]))];
  for (const f of filters) m.set(f, "k", 1);
  for (const topic of new Set(MATCH_ROWS.map((r) => r[1]))) {
    const expected = filters.filter((f) => naiveMatch(f, topic)).map((f) =>
      `${f} k`
    )
      .sort();
    assert.deepEqual(matched(m, topic), expected, topic);
  }
});

Deno.test("TopicMatcher.match() reports one call per filter and key", () => {
  const m = new TopicMatcher<string>();
  m.set("a/b", "c1", "exact");
  m.set("a/+", "c1", "plus");
  m.set("a/#", "c1", "hash");
  m.set("a/#", "c2", "hash2");
  m.set("#", "c3", "all");
  const calls: [string, string, string][] = [];
  m.match("a/b", (value, key, filter) => calls.push([value, key, filter]));
  calls.sort((x, y) => (x.join() < y.join() ? -1 : 1));
  assert.deepEqual(calls, [
    ["all", "c3", "#"],
    ["exact", "c1", "a/b"],
    ["hash", "c1", "a/#"],
    ["hash2", "c2", "a/#"],
    ["plus", "c1", "a/+"],
  ]);
  assert.deepEqual(
    [...m.matches("a/b")].map(([v]) => v).sort(),
    ["all", "exact", "hash", "hash2", "plus"],
  );
});

Deno.test("TopicMatcher.match() sees changes made between matches of the same topic", () => {
  const m = new TopicMatcher<number>();
  const topic = "a/b/c";
  assert.deepEqual(matched(m, topic), []);
  m.set("a/+/c", "k", 1);
  assert.deepEqual(matched(m, topic), ["a/+/c k"]);
  assert.deepEqual(matched(m, "a/b/c"), ["a/+/c k"], "an equal string");
  m.set("a/#", "k", 1);
  assert.deepEqual(matched(m, topic), ["a/# k", "a/+/c k"]);
  m.delete("a/+/c", "k");
  assert.deepEqual(matched(m, topic), ["a/# k"]);
  assert.deepEqual(matched(m, "$a/b/c"), []);
  assert.equal(m.hasMatch(topic), true);
});

Deno.test("TopicMatcher holds shared subscriptions under their inner filter [MQTT-4.8.2]", () => {
  // How the broker is meant to store `$share/{group}/{filter}`: parse it,
  // store the inner filter, put the group in the key.
  const m = new TopicMatcher<{ group?: string; clientId: string }>();
  const subscribe = (filter: string, clientId: string) => {
    const shared = parseSharedSubscription(filter);
    if (shared === undefined) m.set(filter, clientId, { clientId });
    else {
      m.set(shared.filter, `${shared.group}\0${clientId}`, {
        group: shared.group,
        clientId,
      });
    }
  };
  subscribe("$share/g1/jobs/+", "w1");
  subscribe("$share/g1/jobs/+", "w2");
  subscribe("$share/g2/jobs/#", "w1");
  subscribe("jobs/+", "w1");
  const byGroup = new Map<string, string[]>();
  m.match("jobs/42", (v) => {
    const g = v.group ?? "(none)";
    byGroup.set(g, [...(byGroup.get(g) ?? []), v.clientId].sort());
  });
  assert.deepEqual(
    Object.fromEntries(byGroup),
    { g1: ["w1", "w2"], g2: ["w1"], "(none)": ["w1"] },
  );
  // A shared filter starting with a wildcard still obeys [MQTT-4.7.2-1].
  subscribe("$share/g3/#", "w3");
  assert.deepEqual(matched(m, "$SYS/x"), []);
});

Deno.test("TopicMatcher handles 32,768-level filters and topics without deep recursion", () => {
  const m = new TopicMatcher<number>();
  const plusFilter = "+/".repeat(32767) + "+"; // 65,535 bytes
  const emptyLevels = "/".repeat(32767); // 32,768 empty levels
  assert.equal(isValidTopicFilter(plusFilter), true);
  assert.equal(isValidTopicName(emptyLevels), true);
  m.set(plusFilter, "k", 1);
  m.set(emptyLevels, "k", 2);
  m.set("#", "k", 3);
  assert.deepEqual([...m.matches(emptyLevels)].map(([v]) => v).sort(), [
    1,
    2,
    3,
  ]);
  assert.equal(m.hasMatch(emptyLevels), true);
  assert.equal(m.delete(plusFilter, "k"), true);
  assert.equal(m.delete(emptyLevels, "k"), true);
  assert.equal(m.delete("#", "k"), true);
  assert.equal(m.nodeCount, 1);
  assert.equal(m.hasMatch(emptyLevels), false);
});

Deno.test("TopicMatcher.match() may be called again from its callback", () => {
  const m = new TopicMatcher<string>();
  m.set("a/+/+", "k", "outer");
  m.set("a/+/c", "k", "outer2");
  m.set("x/+", "k", "inner");
  m.set("x/#", "k", "inner2");
  const seen: string[] = [];
  m.match("a/b/c", (v) => {
    seen.push(v);
    m.match("x/y", (w) => seen.push(`${v}>${w}`));
  });
  assert.deepEqual(seen.sort(), [
    "outer",
    "outer2",
    "outer2>inner",
    "outer2>inner2",
    "outer>inner",
    "outer>inner2",
  ]);
});

Deno.test("TopicMatcher.match() stays usable after its callback throws", () => {
  const m = new TopicMatcher<number>();
  m.set("a/+/+", "k", 1);
  m.set("a/+/c", "k", 2);
  m.set("+/b/c", "k", 3);
  assert.throws(
    () =>
      m.match("a/b/c", () => {
        throw new Error("boom");
      }),
    /boom/,
  );
  assert.deepEqual(matched(m, "a/b/c"), ["+/b/c k", "a/+/+ k", "a/+/c k"]);
});

Deno.test("TopicMatcher.set() replaces the value for the same filter and key", () => {
  const m = new TopicMatcher<number>();
  m.set("a/+", "c1", 0);
  m.set("a/+", "c1", 2);
  assert.equal(m.size, 1);
  assert.equal(m.get("a/+", "c1"), 2);
  assert.equal(m.has("a/+", "c1"), true);
  assert.equal(m.get("a/+", "c2"), undefined);
  assert.equal(m.get("a/b", "c1"), undefined);
  assert.equal(m.get("a", "c1"), undefined);
  assert.equal(m.has("a/#", "c1"), false);
  const values: number[] = [];
  m.match("a/x", (v) => values.push(v));
  assert.deepEqual(values, [2]);
});

Deno.test("TopicMatcher.get() tells +, # and literal levels apart", () => {
  const m = new TopicMatcher<string>();
  m.set("a/+", "k", "plus");
  m.set("a/#", "k", "hash");
  m.set("a//", "k", "empty");
  assert.equal(m.get("a/+", "k"), "plus");
  assert.equal(m.get("a/#", "k"), "hash");
  assert.equal(m.get("a//", "k"), "empty");
  assert.equal(m.get("a/", "k"), undefined);
  assert.equal(m.get("a/#/x", "k"), undefined);
});

Deno.test("TopicMatcher.set() rejects # that is not the last level with 0x8F", () => {
  const m = new TopicMatcher<number>();
  assert.throws(
    () => m.set("a/#/b", "k", 1),
    (e) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.TopicFilterInvalid,
  );
});

Deno.test("TopicMatcher.delete() removes one entry and prunes empty nodes", () => {
  const m = new TopicMatcher<number>();
  assert.equal(m.nodeCount, 1);
  m.set("a/b/c", "c1", 1);
  m.set("a/b/c", "c2", 1);
  m.set("a/+/#", "c1", 1);
  m.set("a", "c1", 1);
  m.set("x//y", "c1", 1);
  assert.equal(m.size, 5);
  // root, a, b, c, +, #, x, "", y
  assert.equal(m.nodeCount, 9);

  assert.equal(m.delete("a/b/c", "c3"), false, "unknown key");
  assert.equal(m.delete("a/b", "c1"), false, "no filter ends there");
  assert.equal(m.delete("a/b/c/d", "c1"), false, "no such path");
  assert.equal(m.delete("a/#/c", "c1"), false, "# not last");

  assert.equal(m.delete("a/b/c", "c1"), true);
  assert.equal(m.size, 4);
  assert.equal(m.nodeCount, 9, "c2 still needs a/b/c");
  assert.deepEqual(matched(m, "a/b/c"), ["a/+/# c1", "a/b/c c2"]);

  assert.equal(m.delete("a/b/c", "c2"), true);
  assert.equal(m.nodeCount, 7, "b and c pruned");
  assert.deepEqual(matched(m, "a/b/c"), ["a/+/# c1"]);

  assert.equal(m.delete("a/+/#", "c1"), true);
  assert.equal(m.nodeCount, 5, "+ and # pruned");
  assert.deepEqual(matched(m, "a"), ["a c1"]);

  assert.equal(m.delete("a", "c1"), true);
  assert.equal(m.nodeCount, 4, "a pruned");
  assert.equal(m.delete("x//y", "c1"), true);
  assert.equal(m.nodeCount, 1);
  assert.equal(m.size, 0);
  assert.deepEqual(matched(m, "x//y"), []);
  assert.equal(m.delete("x//y", "c1"), false, "already gone");
});

Deno.test("TopicMatcher.delete() keeps a node that ends one filter and leads to another", () => {
  const m = new TopicMatcher<number>();
  m.set("a", "k", 1);
  m.set("a/b", "k", 2);
  m.set("a/#", "k", 3);
  assert.equal(m.delete("a/b", "k"), true);
  assert.deepEqual(matched(m, "a"), ["a k", "a/# k"]);
  assert.equal(m.delete("a/#", "k"), true);
  assert.deepEqual(matched(m, "a"), ["a k"]);
  assert.equal(m.nodeCount, 2);
});

Deno.test("TopicMatcher.size, clear() and entries() list what is stored", () => {
  const m = new TopicMatcher<number>();
  m.set("a/+", "c1", 1);
  m.set("a/+", "c2", 2);
  m.set("#", "c1", 3);
  m.set("", "c1", 4); // the matcher takes even the empty filter literally
  assert.equal(m.size, 4);
  assert.deepEqual(
    [...m.entries()].map((e) => e.join(" ")).sort(),
    [" c1 4", "# c1 3", "a/+ c1 1", "a/+ c2 2"],
  );
  m.clear();
  assert.equal(m.size, 0);
  assert.equal(m.nodeCount, 1);
  assert.deepEqual([...m.entries()], []);
  assert.deepEqual(matched(m, "a/b"), []);
});

// ---------------------------------------------------------------------------
// Randomised comparison with a naive reference matcher.

/** Reference: level-by-level comparison, written independently of the trie. */
function naiveMatch(filter: string, topic: string): boolean {
  const f = filter.split("/");
  const t = topic.split("/");
  if (topic.startsWith("$") && (f[0] === "+" || f[0] === "#")) return false;
  for (let i = 0; i < f.length; i++) {
    if (f[i] === "#") return true;
    if (i >= t.length) return false;
    if (f[i] !== "+" && f[i] !== t[i]) return false;
  }
  return f.length === t.length;
}

const LEVELS = ["a", "b", "c", "", "$x", "$SYS", "ab"];

function randomTopic(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 5);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) {
    levels.push(LEVELS[Math.floor(rand() * LEVELS.length)]!);
  }
  return levels.join("/");
}

function randomFilter(rand: () => number): string {
  const n = 1 + Math.floor(rand() * 5);
  const levels: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = rand();
    if (i === n - 1 && r < 0.2) levels.push("#");
    else if (r < 0.45) levels.push("+");
    else levels.push(LEVELS[Math.floor(rand() * LEVELS.length)]!);
  }
  return levels.join("/");
}

Deno.test("TopicMatcher.match() agrees with a naive matcher on random filters and topics (seeded)", () => {
  interface Entry {
    filter: string;
    key: string;
    value: number;
  }
  for (const seed of [1, 2, 3, 42, 2026]) {
    const rand = prng(seed);
    const m = new TopicMatcher<number>();
    const reference = new Map<string, Entry>(); // "filter\0key" -> entry
    let matchesSeen = 0;
    for (let step = 0; step < 3000; step++) {
      const r = rand();
      if (r < 0.5) {
        const filter = randomFilter(rand);
        const key = `c${Math.floor(rand() * 4)}`;
        m.set(filter, key, step);
        reference.set(`${filter}\0${key}`, { filter, key, value: step });
      } else if (r < 0.65 && reference.size > 0) {
        // Delete an existing entry (exercises pruning).
        const ids = [...reference.keys()];
        const id = ids[Math.floor(rand() * ids.length)]!;
        const { filter, key } = reference.get(id)!;
        reference.delete(id);
        assert.equal(m.delete(filter, key), true, `seed ${seed} delete ${id}`);
      } else if (r < 0.75) {
        // Delete a random, probably absent, entry.
        const filter = randomFilter(rand);
        const key = `c${Math.floor(rand() * 4)}`;
        const id = `${filter}\0${key}`;
        assert.equal(
          m.delete(filter, key),
          reference.delete(id),
          `seed ${seed} delete ${id}`,
        );
      } else {
        const topic = randomTopic(rand);
        const expected: string[] = [];
        for (const { filter, key, value } of reference.values()) {
          if (naiveMatch(filter, topic)) {
            expected.push(`${filter} ${key} ${value}`);
          }
        }
        matchesSeen += expected.length;
        const got: string[] = [];
        m.match(topic, (value, k, f) => got.push(`${f} ${k} ${value}`));
        assert.deepEqual(
          got.sort(),
          expected.sort(),
          `seed ${seed} step ${step} topic ${topic}`,
        );
        assert.equal(m.hasMatch(topic), expected.length > 0);
      }
      assert.equal(m.size, reference.size);
    }
    assert.ok(matchesSeen > 500, `seed ${seed}: only ${matchesSeen} matches`);
    // Removing everything prunes the trie back to its root.
    for (const { filter, key } of reference.values()) {
      assert.equal(m.delete(filter, key), true);
    }
    assert.equal(m.size, 0);
    assert.equal(m.nodeCount, 1, `seed ${seed}: all nodes pruned`);
  }
});

Deno.test("TopicMatcher.hasFirstLevel() tells whether a filter may start with a level: # and + do not count [MQTT-4.7.2-1]", () => {
  const m = new TopicMatcher<number>();
  assert.equal(m.hasFirstLevel("$SYS"), false);
  m.set("#", "a", 1);
  m.set("+/broker/#", "b", 2);
  assert.equal(m.hasFirstLevel("$SYS"), false);
  m.set("$SYS/broker/uptime", "c", 3);
  assert.equal(m.hasFirstLevel("$SYS"), true);
  assert.equal(m.hasFirstLevel("$SY"), false);
});
