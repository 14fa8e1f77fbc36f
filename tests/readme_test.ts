/**
 * README and `--help` agree: the configuration table has a row for every
 * setting (flag and key as `kite broker --help` prints them), the flags
 * README gives for `kite pub`/`kite sub` are in their `--help`, and the
 * `kite` section lists the subcommands `kite --help` does.
 */

import assert from "node:assert/strict";
import { SETTING_KEYS, SETTINGS, toFlagName } from "../broker/options.ts";
import { helpText as brokerHelp } from "../broker/config/help.ts";
import { helpText as toolHelp } from "../client/_cli_help.ts";

const README = await Deno.readTextFile(
  new URL("../README.md", import.meta.url),
);

/** The rows of the table whose header starts with `| option`. */
function configRows(): Map<string, string> {
  const lines = README.split("\n");
  const start = lines.findIndex((l) => /^\| option\s+\| flag/.test(l));
  assert.ok(start >= 0, "README has the configuration table");
  const rows = new Map<string, string>();
  for (const line of lines.slice(start + 2)) {
    if (!line.startsWith("|")) break;
    const cells = line.split("|").map((c) => c.trim());
    const key = /^`(\w+)`$/.exec(cells[1]!)?.[1];
    assert.ok(key !== undefined, line);
    rows.set(key, cells[2]!);
  }
  return rows;
}

Deno.test("README's configuration table has a row per setting, with the flag --help prints", () => {
  const rows = configRows();
  const help = brokerHelp();
  for (const key of SETTING_KEYS) {
    const type = SETTINGS[key].type;
    if (type === "listeners" || type === "list" || type === "cluster") {
      // Set in a config file (the cluster's keys also by flags of their
      // own): the row says so, and --help names the key.
      assert.ok(rows.has(key), `README row of ${key}`);
      assert.doesNotMatch(rows.get(key)!, new RegExp(`--${toFlagName(key)}\``));
      assert.ok(help.includes(key), `--help lacks ${key}`);
      continue;
    }
    const flag = type === "boolean"
      ? `--[no-]${toFlagName(key)}`
      : `--${toFlagName(key)}`;
    assert.equal(rows.get(key), `\`${flag}\``, `README row of ${key}`);
    assert.ok(help.includes(flag), `--help lacks ${flag}`);
  }
  for (const key of rows.keys()) {
    assert.ok((SETTING_KEYS as string[]).includes(key), `no setting ${key}`);
  }
});

Deno.test("README's kite pub / kite sub flags are in their --help", () => {
  const lines = README.split("\n");
  const start = lines.findIndex((l) => l.startsWith("| connection "));
  assert.ok(start >= 0);
  const help = toolHelp("pub") + toolHelp("sub");
  let checked = 0;
  for (const line of lines.slice(start)) {
    if (!line.startsWith("|")) break;
    for (const m of line.matchAll(/`(-{1,2}[A-Za-z][\w-]*)/g)) {
      const flag = m[1]!;
      assert.match(help, new RegExp(`(^|[\\s,])${flag}[\\s,]`), flag);
      checked++;
    }
  }
  assert.ok(checked > 30, `only ${checked} flags found`);
});

Deno.test("README's kite section lists what kite --help lists", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../kite.ts", import.meta.url).pathname, "-h"],
    stdout: "piped",
  }).output();
  const help = new TextDecoder().decode(out.stdout);
  for (const command of ["broker", "pub", "sub", "passwd"]) {
    assert.match(help, new RegExp(`kite ${command} `));
    assert.match(README, new RegExp(`\\nkite ${command} `), command);
  }
});
