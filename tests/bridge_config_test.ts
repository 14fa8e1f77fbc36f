/**
 * The `bridges` setting: `checkBridges` (one-line errors naming the bridge
 * and the key), config files, `broker/main.ts` and `new Broker()` refusing
 * a bad entry, and the topic rules (Mosquitto's prefix remapping).
 */

import assert from "node:assert/strict";
import {
  Broker,
  checkBridges,
  ConfigError,
  parseConfigText,
  validateOptions,
} from "../broker/mod.ts";
import { parseBridgeAddress } from "../broker/bridge/_address.ts";
import {
  compileRules,
  RuleMatcher,
  subscriptionsOf,
  toLocal,
  toRemote,
} from "../broker/bridge/_rules.ts";
import { DenoProcess } from "./_subprocess.ts";

/** An `assert.throws` check: the error's message is `text`. */
function says(text: string) {
  return (e: unknown) => {
    assert.equal((e as Error).message, text);
    return true;
  };
}

const ok = {
  name: "cloud",
  addresses: ["mqtt://127.0.0.1:1884"],
  topics: [{ pattern: "#" }],
};

Deno.test("checkBridges() normalises an entry: one address, snake_case keys, 3.1.1", () => {
  const [b] = checkBridges([{
    name: "cloud",
    addresses: "mqtts://broker.example.com",
    protocol_version: "3.1.1",
    round_robin: true,
    topics: [{ pattern: "a/#", direction: "both", qos: 1, local_prefix: "x/" }],
  }]);
  assert.deepEqual(b, {
    name: "cloud",
    addresses: ["mqtts://broker.example.com"],
    protocolVersion: 4,
    roundRobin: true,
    topics: [{ pattern: "a/#", direction: "both", qos: 1, localPrefix: "x/" }],
  });
  assert.equal(
    checkBridges([{ ...ok, protocolVersion: 5 }])[0]!.protocolVersion,
    5,
  );
});

Deno.test("checkBridges() refuses bad entries with one line naming the bridge and the key", () => {
  const cases: [unknown, string][] = [
    [
      { ...ok, adresses: ["mqtt://x"] },
      '[0] "cloud": unknown key "adresses" (did you mean "addresses"?)',
    ],
    [
      { ...ok, addresses: ["mqtt://a", "ftp://b"] },
      '[0] "cloud": addresses[1] "ftp://b" has scheme "ftp": use mqtt://, mqtts://, ws:// or wss://',
    ],
    [
      { ...ok, addresses: ["mqtt://u:p@a"] },
      '[0] "cloud": addresses[0] "mqtt://u:p@a" must not hold credentials: use username and password',
    ],
    [
      { ...ok, addresses: "broker:1883" },
      '[0] "cloud": addresses[0] "broker:1883" must be an mqtt://, mqtts://, ws:// or wss:// URL',
    ],
    [
      { ...ok, topics: [{ pattern: "a" }, { pattern: "#", direction: "inn" }] },
      '[0] "cloud": topics[1].direction must be in, out or both, got "inn"',
    ],
    [
      { ...ok, topics: [{ localPrefix: "x/", direction: "out" }] },
      '[0] "cloud": topics[0].localPrefix without pattern: give a pattern ("" maps the prefixes onto each other)',
    ],
    [
      { ...ok, topics: [{ pattern: null }] },
      '[0] "cloud": topics[0].pattern must be a topic filter, got nothing (quote "#" in YAML: it starts a comment)',
    ],
    [
      { ...ok, topics: [{ pattern: "a", remotePrefix: "r/+/" }] },
      '[0] "cloud": topics[0].remotePrefix must not hold + or # (a prefix is part of a topic)',
    ],
    [
      { ...ok, topics: [{ pattern: "a/#/b" }] },
      '[0] "cloud": topics[0].pattern gives the local filter "a/#/b", which is not a valid topic filter',
    ],
    [
      { ...ok, topics: [{ pattern: "", localPrefix: "a" }] },
      '[0] "cloud": topics[0].pattern "" needs both localPrefix and remotePrefix (the topics mapped onto each other)',
    ],
    [
      { ...ok, topics: [{ pattern: "a", qos: 3 }] },
      '[0] "cloud": topics[0].qos must be an integer from 0 to 2, got 3',
    ],
    [
      { ...ok, topics: [] },
      '[0] "cloud": topics must be a list of topic rules, got a list',
    ],
    [
      { ...ok, tls: { ca_fil: "ca.pem" } },
      '[0] "cloud": unknown key "tls.ca_fil" (did you mean "caFile"?)',
    ],
    [
      { ...ok, protocolVersion: "3.1" },
      '[0] "cloud": protocolVersion must be 5 or 3.1.1, got "3.1"',
    ],
    [
      { addresses: ["mqtt://a"], topics: [{ pattern: "#" }] },
      "[0]: name is required",
    ],
    [
      { ...ok, name: "a/b" },
      '[0] "a/b": name must be letters, digits, ".", "_" or "-", got "a/b"',
    ],
    [
      { name: "x", topics: [{ pattern: "#" }] },
      '[0] "x": addresses is required',
    ],
  ];
  for (const [entry, message] of cases) {
    assert.throws(() => checkBridges([entry]), (e) => {
      assert.equal((e as Error).message, message);
      return true;
    });
  }
  assert.throws(
    () => checkBridges([ok, { ...ok }]),
    says('[1] "cloud": name is given to another bridge too'),
  );
});

Deno.test("parseConfigText() reads bridges, and names the file, line, bridge and key of a bad one", () => {
  const text = [
    "port: 1884",
    "bridges:",
    "  - name: cloud",
    "    addresses: mqtt://10.0.0.1",
    "    topics:",
    '      - { pattern: "sensors/#", direction: out, qos: 1, remote_prefix: edge/ }',
    "",
  ].join("\n");
  const options = parseConfigText(text, "kite.yaml");
  assert.deepEqual(options.bridges, [{
    name: "cloud",
    addresses: ["mqtt://10.0.0.1"],
    topics: [{
      pattern: "sensors/#",
      direction: "out",
      qos: 1,
      remotePrefix: "edge/",
    }],
  }]);
  const bad = text.replace("direction: out", "direction: sideways");
  assert.throws(() => parseConfigText(bad, "kite.yaml"), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(
      e.message,
      'kite.yaml:2: bridges[0] "cloud": topics[0].direction must be in, out or both, got "sideways"',
    );
    assert.equal(e.key, "bridges");
    return true;
  });
  assert.throws(
    () => validateOptions({ bridges: { name: "x" } }),
    says("bridges must be a list of bridges, got a mapping"),
  );
});

Deno.test("main.ts with a bad bridge prints one line naming the bridge and the key, and exits 2", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/kite.yaml`;
    await Deno.writeTextFile(
      path,
      "bridges:\n  - name: cloud\n    addresses: [mqtt://127.0.0.1:1]\n    topics:\n      - { localPrefix: a/ }\n",
    );
    const p = new DenoProcess([
      new URL("../broker/main.ts", import.meta.url).pathname,
      "--config",
      path,
    ]);
    const r = await p.exit(15_000, "main.ts to exit");
    assert.equal(r.code, 2, r.stderr);
    assert.match(
      r.stderr.trim(),
      /^kite: .*kite\.yaml:1: bridges\[0\] "cloud": topics\[0\]\.localPrefix without pattern: give a pattern \(.*\)$/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("new Broker() with a bad bridge refuses to start (ConfigError, nothing left open)", async () => {
  const broker = new Broker({
    host: "127.0.0.1",
    port: 0,
    sysInterval: 0,
    bridges: [{ ...ok, tls: { caFile: "/nonexistent/ca.pem" } }],
  });
  await assert.rejects(() => broker.listen(), (e) => {
    assert.ok(e instanceof ConfigError);
    assert.equal(
      e.message,
      'bridges "cloud": tls.caFile /nonexistent/ca.pem: no such file',
    );
    return true;
  });
  await broker.close();
  const b2 = new Broker({
    port: 0,
    // deno-lint-ignore no-explicit-any
    bridges: [{ ...ok, topics: [{ pattern: "#", direction: "up" as any }] }],
  });
  await assert.rejects(
    () => b2.start(),
    says(
      'bridges[0] "cloud": topics[0].direction must be in, out or both, got "up"',
    ),
  );
  await b2.close();
});

Deno.test("parseBridgeAddress() takes mqtt:// and mqtts:// with their default ports", () => {
  assert.deepEqual(parseBridgeAddress("mqtt://h"), {
    url: "mqtt://h:1883",
    host: "h",
    port: 1883,
    tls: false,
  });
  assert.deepEqual(parseBridgeAddress("MQTTS://h.example.com/"), {
    url: "mqtts://h.example.com:8883",
    host: "h.example.com",
    port: 8883,
    tls: true,
  });
  assert.deepEqual(parseBridgeAddress("mqtt://[::1]:1884"), {
    url: "mqtt://[::1]:1884",
    host: "::1",
    port: 1884,
    tls: false,
  });
  assert.deepEqual(parseBridgeAddress("ws://h:8080"), {
    url: "ws://h:8080/mqtt",
    host: "h",
    port: 8080,
    tls: false,
    path: "/mqtt",
  });
  assert.deepEqual(parseBridgeAddress("WSS://h/ws/mqtt"), {
    url: "wss://h:443/ws/mqtt",
    host: "h",
    port: 443,
    tls: true,
    path: "/ws/mqtt",
  });
  assert.throws(
    () => parseBridgeAddress("mqtt://h/path"),
    /must not have a path/,
  );
  assert.throws(() => parseBridgeAddress("ws://h/p?x=1"), /query/);
  assert.throws(() => parseBridgeAddress("http://h"), /scheme "http"/);
});

Deno.test("Bridge topic rules map prefixes both ways, as Mosquitto's topic lines", () => {
  const rules = compileRules([
    { pattern: "sensors/#", direction: "out", qos: 1, remotePrefix: "edge/" },
    {
      pattern: "cmd/+",
      direction: "in",
      localPrefix: "l/",
      remotePrefix: "r/",
    },
    {
      pattern: "",
      direction: "both",
      qos: 2,
      localPrefix: "a/b",
      remotePrefix: "x/y/z",
    },
    { pattern: "#", localPrefix: "all/", remotePrefix: "all/" },
  ]);
  assert.equal(rules[1]!.qos, 0, "default QoS 0");
  assert.equal(rules[3]!.direction, "out", "default out");
  const out = new RuleMatcher(rules, true);
  const into = new RuleMatcher(rules, false);
  const remoteOf = (t: string) => out.match(t).map((r) => toRemote(r, t));
  const localOf = (t: string) => into.match(t).map((r) => toLocal(r, t));
  assert.deepEqual(remoteOf("sensors/kitchen/t"), ["edge/sensors/kitchen/t"]);
  assert.deepEqual(remoteOf("a/b"), ["x/y/z"]);
  assert.deepEqual(remoteOf("a/b/c"), []);
  assert.deepEqual(remoteOf("l/cmd/go"), [], "an in rule");
  assert.deepEqual(remoteOf("all/x"), ["all/x"]);
  // `all/#` matches `all` too, which has no `all/` prefix to swap.
  assert.deepEqual(remoteOf("all"), []);
  assert.deepEqual(localOf("r/cmd/go"), ["l/cmd/go"]);
  assert.deepEqual(localOf("x/y/z"), ["a/b"]);
  assert.deepEqual(localOf("edge/sensors/x"), [], "an out rule");
  assert.deepEqual(
    [...subscriptionsOf(rules, "local")],
    [["sensors/#", 1], ["a/b", 2], ["all/#", 0]],
  );
  assert.deepEqual(
    [...subscriptionsOf(rules, "remote")],
    [["r/cmd/+", 0], ["x/y/z", 2]],
  );
  // Overlapping rules: in configuration order.
  const two = new RuleMatcher(
    compileRules([
      { pattern: "a/#", remotePrefix: "one/" },
      { pattern: "a/b", remotePrefix: "two/" },
    ]),
    true,
  );
  assert.deepEqual(two.match("a/b").map((r) => toRemote(r, "a/b")), [
    "one/a/b",
    "two/a/b",
  ]);
});
