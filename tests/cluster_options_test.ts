/**
 * The `cluster` setting: flags (`--cluster-url`, repeatable, `--node-id`,
 * `--cluster-name`), the YAML mapping, validation, and flags over the file
 * key by key.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import {
  ConfigError,
  DEFAULT_OPTIONS,
  parseArgs,
  parseConfigText,
  resolveOptions,
  validateOptions,
} from "../broker/options.ts";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e;
  }
  assert.fail("expected a ConfigError");
}

Deno.test("DEFAULT_OPTIONS.cluster has no URL: no cluster", () => {
  assert.deepEqual(DEFAULT_OPTIONS.cluster, { url: [] });
});

Deno.test("parseArgs() reads --cluster-url (repeatable), --node-id and --cluster-name into cluster", () => {
  const { options } = parseArgs([
    "--cluster-url",
    "nats://n1:4222",
    "--cluster-url=nats://n2:4222",
    "--node-id",
    "kite-1",
    "--cluster-name",
    "prod",
  ]);
  assert.deepEqual(options.cluster, {
    url: ["nats://n1:4222", "nats://n2:4222"],
    nodeId: "kite-1",
    name: "prod",
  });
});

Deno.test("parseArgs() refuses a bad NATS URL, node id or cluster name in one line", () => {
  const cases: [string[], RegExp][] = [
    [["--cluster-url", "http://x"], /^--cluster-url must be a nats:\/\/ URL/],
    [["--node-id", "a.b"], /^--node-id must be 1 to 64 letters, digits/],
    [["--cluster-name", "x y"], /^--cluster-name must be 1 to 64 letters/],
    [["--cluster-name", "_kite1"], /must not start with "_kite"/],
    [["--cluster", "x"], /^--cluster must be a mapping \(url, nodeId, name\)/],
  ];
  for (const [args, re] of cases) {
    const e = configError(() => parseArgs(args));
    assert.match(e.message, re, args.join(" "));
  }
});

Deno.test("parseConfigText() reads the cluster mapping: one URL or a list, snake_case keys", () => {
  assert.deepEqual(
    parseConfigText(
      "cluster:\n  url: nats://n1:4222\n  node_id: a\n",
      "kite.yaml",
    ).cluster,
    { url: ["nats://n1:4222"], nodeId: "a" },
  );
  assert.deepEqual(
    parseConfigText(
      "cluster:\n  url: [nats://n1:4222, nats://n2:4222]\n  name: c1\n",
      "kite.yaml",
    ).cluster,
    { url: ["nats://n1:4222", "nats://n2:4222"], name: "c1" },
  );
  const e = configError(() =>
    parseConfigText("cluster:\n  urls: [nats://n1]\n", "kite.yaml")
  );
  assert.match(
    e.message,
    /cluster has an unknown key "urls" \(did you mean "url"\?\)/,
  );
  assert.throws(
    () => validateOptions({ cluster: { url: [4222] } }),
    ConfigError,
  );
});

Deno.test("resolveOptions() lets the cluster flags override the file's cluster keys one by one", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "kite.yaml");
    await Deno.writeTextFile(
      path,
      "cluster:\n  url: [nats://file:4222]\n  name: fromfile\n",
    );
    const { options } = await resolveOptions(
      ["--config", path, "--node-id", "n7"],
      new Map(),
    );
    assert.deepEqual(options.cluster, {
      url: ["nats://file:4222"],
      name: "fromfile",
      nodeId: "n7",
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
