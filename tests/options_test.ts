import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type BrokerSettings,
  ConfigError,
  DEFAULT_OPTIONS,
  helpText,
  loadConfigFile,
  MAIN_DEFAULT_OPTIONS,
  parseArgs,
  parseConfigText,
  resolveOptions,
  SETTING_KEYS,
  SETTINGS,
  toFlagName,
  validateOptions,
} from "../broker/options.ts";

/** Runs `fn`, expects a ConfigError, returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e;
  }
  assert.fail("expected a ConfigError");
}

async function configErrorAsync(fn: () => Promise<unknown>) {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof ConfigError, `expected ConfigError, got ${e}`);
    return e;
  }
  assert.fail("expected a ConfigError");
}

const noEnv = new Map<string, string>();

// --- the table --------------------------------------------------------------

const MAIN_ONLY_KEYS = ["aclFile", "logFormat", "passwordFile"];

Deno.test("SETTINGS has one row for every default and for main's files", () => {
  assert.deepEqual(
    [...SETTING_KEYS].sort(),
    [...Object.keys(DEFAULT_OPTIONS), ...MAIN_ONLY_KEYS].sort(),
  );
  for (const key of Object.keys(DEFAULT_OPTIONS) as (keyof BrokerSettings)[]) {
    const spec = SETTINGS[key];
    const value = DEFAULT_OPTIONS[key];
    if (spec.type === "listeners") {
      assert.ok(Array.isArray(value), `default of ${key}`);
    } else {
      const expected = spec.type === "integer" || spec.type === "number"
        ? "number"
        : spec.type === "list" || spec.type === "cluster"
        ? "object"
        : spec.type;
      assert.equal(typeof value, expected, `default of ${key}`);
    }
    // Every default passes its own validation.
    assert.deepEqual(validateOptions({ [key]: value }), { [key]: value });
  }
});

Deno.test("MAIN_DEFAULT_OPTIONS turns persistence on and listens on loopback only, the library keeps its defaults", () => {
  assert.equal(DEFAULT_OPTIONS.enablePersistence, false);
  assert.equal(MAIN_DEFAULT_OPTIONS.enablePersistence, true);
  // Secure defaults (issue 19): main.ts without authentication is loopback
  // only; the library keeps 0.0.0.0.
  assert.equal(MAIN_DEFAULT_OPTIONS.host, "127.0.0.1");
  assert.equal(DEFAULT_OPTIONS.host, "0.0.0.0");
  assert.deepEqual(
    { ...MAIN_DEFAULT_OPTIONS, enablePersistence: false, host: "0.0.0.0" },
    { ...DEFAULT_OPTIONS },
  );
  assert.equal("passwordFile" in MAIN_DEFAULT_OPTIONS, false);
});

Deno.test("toFlagName() kebab-cases camelCase keys", () => {
  assert.equal(toFlagName("maxConnections"), "max-connections");
  assert.equal(toFlagName("maxQos"), "max-qos");
  assert.equal(toFlagName("port"), "port");
});

// --- parseArgs ----------------------------------------------------------------

Deno.test("parseArgs() reads --flag value and --flag=value", () => {
  const { options, help, configPath } = parseArgs([
    "--port",
    "1884",
    "--max-connections=5000",
    "--persistence-path",
    "./data",
    "--host=127.0.0.1",
    "--sys-interval",
    "0.5",
  ]);
  assert.deepEqual(options, {
    port: 1884,
    maxConnections: 5000,
    persistencePath: "./data",
    host: "127.0.0.1",
    sysInterval: 0.5,
  });
  assert.equal(help, false);
  assert.equal(configPath, undefined);
});

Deno.test("parseArgs() reads booleans bare, negated and with a value", () => {
  assert.deepEqual(
    parseArgs([
      "--retain-available",
      "--no-allow-anonymous",
      "--enable-persistence=false",
      "--shared-subscription-available=no",
      "--wildcard-subscription-available",
      "false",
      "--queue-qos0-messages=1",
    ]).options,
    {
      retainAvailable: true,
      allowAnonymous: false,
      enablePersistence: false,
      sharedSubscriptionAvailable: false,
      wildcardSubscriptionAvailable: false,
      queueQos0Messages: true,
    },
  );
});

Deno.test("parseArgs() reads main's --password-file and --acl-file", () => {
  assert.deepEqual(
    parseArgs(["--password-file", "kite.passwd", "--acl-file=kite.acl"])
      .options,
    { passwordFile: "kite.passwd", aclFile: "kite.acl" },
  );
});

Deno.test("parseArgs() lets the last of a repeated flag win", () => {
  assert.deepEqual(parseArgs(["--port", "1", "--port=2"]).options, {
    port: 2,
  });
});

Deno.test("parseArgs() reads --config, --log-level and --help/-h", () => {
  const parsed = parseArgs(["--config", "kite.yaml", "--log-level=debug"]);
  assert.equal(parsed.configPath, "kite.yaml");
  assert.equal(parsed.logLevel, "debug");
  assert.equal(parseArgs(["--help"]).help, true);
  assert.equal(parseArgs(["-h"]).help, true);
  assert.equal(parseArgs(["--log-level", "warn"]).logLevel, "warning");
});

Deno.test("parseArgs() rejects an unknown flag with a suggestion", () => {
  const e = configError(() => parseArgs(["--max-conections", "5"]));
  assert.equal(e.key, "max-conections");
  assert.match(e.message, /unknown option --max-conections/);
  assert.match(e.message, /did you mean --max-connections\?/);
  assert.match(
    configError(() => parseArgs(["--prot=1"])).message,
    /did you mean --port\?/,
  );
  // camelCase flags are not flags, but the suggestion leads to the right one.
  assert.match(
    configError(() => parseArgs(["--maxQos", "1"])).message,
    /did you mean --max-qos\?/,
  );
  assert.doesNotMatch(
    configError(() => parseArgs(["--zzzzzzzzzz"])).message,
    /did you mean/,
  );
});

Deno.test("parseArgs() rejects wrong types and values out of range, naming the flag", () => {
  const cases: [string[], string, RegExp][] = [
    [
      ["--port", "abc"],
      "port",
      /--port must be an integer from 0 to 65535, got "abc"/,
    ],
    [["--port", "65536"], "port", /--port .* got 65536/],
    [["--port", "-1"], "port", /--port .* got -1/],
    [["--port", "1.5"], "port", /--port must be an integer/],
    [["--max-qos", "3"], "maxQos", /--max-qos must be an integer from 0 to 2/],
    [["--max-packet-size", "0"], "maxPacketSize", /from 1 to 268435455/],
    [["--max-packet-size", "268435456"], "maxPacketSize", /got 268435456/],
    [["--receive-maximum", "0"], "receiveMaximum", /from 1 to 65535/],
    [["--receive-maximum", "65536"], "receiveMaximum", /from 1 to 65535/],
    [["--server-keep-alive", "65536"], "serverKeepAlive", /from 0 to 65535/],
    [["--max-connections", "0"], "maxConnections", /a positive integer, got 0/],
    [["--max-queued-messages", "-3"], "maxQueuedMessages", /positive integer/],
    [
      ["--session-expiry-interval", "4294967296"],
      "sessionExpiryInterval",
      /from 0 to 4294967295/,
    ],
    [["--connect-timeout", "0"], "connectTimeout", /above 0/],
    [["--sys-interval", "-1"], "sysInterval", />= 0/],
    [
      ["--enable-persistence=maybe"],
      "enablePersistence",
      /true or false, got "maybe"/,
    ],
    [["--host="], "host", /--host must not be empty/],
    [["--port"], "port", /--port needs a value/],
    [["--port", "--max-qos", "1"], "port", /--port needs a value/],
    [["--no-port"], "port", /--no- only applies to true\/false options/],
    [["--no-retain-available=true"], "retainAvailable", /takes no value/],
    [
      ["--log-level", "loud"],
      "logLevel",
      /--log-level must be one of trace, debug/,
    ],
  ];
  for (const [argv, key, pattern] of cases) {
    const e = configError(() => parseArgs(argv));
    assert.equal(e.key, key, argv.join(" "));
    assert.match(e.message, pattern, argv.join(" "));
  }
  // Edge values are accepted.
  assert.deepEqual(
    parseArgs([
      "--port=0",
      "--max-qos=0",
      "--max-packet-size=268435455",
      "--session-expiry-interval=4294967295",
      "--server-keep-alive=65535",
    ]).options,
    {
      port: 0,
      maxQos: 0,
      maxPacketSize: 268435455,
      sessionExpiryInterval: 4294967295,
      serverKeepAlive: 65535,
    },
  );
});

Deno.test("parseArgs() rejects an empty --config", () => {
  const e = configError(() => parseArgs(["--config="]));
  assert.equal(e.key, "config");
  assert.match(e.message, /--config needs a file name/);
});

Deno.test("parseArgs() rejects a stray positional argument", () => {
  const e = configError(() => parseArgs(["--port", "1", "oops"]));
  assert.match(e.message, /unexpected argument "oops"/);
});

// --- validateOptions ------------------------------------------------------------

Deno.test("validateOptions() accepts camelCase, snake_case and kebab-case keys", () => {
  assert.deepEqual(
    validateOptions({
      port: 1884,
      max_connections: 5,
      "max-packet-size": 1024,
      retain_available: false,
    }),
    {
      port: 1884,
      maxConnections: 5,
      maxPacketSize: 1024,
      retainAvailable: false,
    },
  );
  assert.deepEqual(validateOptions(null), {});
  assert.deepEqual(validateOptions(undefined), {});
});

Deno.test("validateOptions() keeps hook functions and rejects non-functions", () => {
  const authenticate = () => 0;
  assert.equal(validateOptions({ authenticate }).authenticate, authenticate);
  const e = configError(() => validateOptions({ authorizePublish: true }));
  assert.equal(e.key, "authorizePublish");
  assert.match(e.message, /must be a function/);
});

Deno.test("validateOptions() is strict about types (no strings for numbers)", () => {
  const cases: [Record<string, unknown>, string, RegExp][] = [
    [{ port: "1884" }, "port", /port must be an integer .* got "1884"/],
    [{ port: 1.5 }, "port", /got 1\.5/],
    [{ maxQos: 3 }, "maxQos", /from 0 to 2, got 3/],
    [{ retainAvailable: "yes" }, "retainAvailable", /true or false, got "yes"/],
    [{ host: 5 }, "host", /must be a string, got 5/],
    [{ host: ["a"] }, "host", /got a list/],
    [{ persistencePath: { a: 1 } }, "persistencePath", /got a mapping/],
    [{ maxConnections: Infinity }, "maxConnections", /positive integer/],
    [{ port: NaN }, "port", /integer/],
  ];
  for (const [obj, key, pattern] of cases) {
    const e = configError(() => validateOptions(obj));
    assert.equal(e.key, key, JSON.stringify(obj));
    assert.match(e.message, pattern);
  }
});

Deno.test("validateOptions() rejects an unknown key with a suggestion", () => {
  const e = configError(() => validateOptions({ maxConection: 5 }));
  assert.equal(e.key, "maxConection");
  assert.match(e.message, /unknown option "maxConection".*"maxConnections"/);
});

Deno.test("validateOptions() rejects a key given twice in two spellings", () => {
  const e = configError(() =>
    validateOptions({ maxConnections: 1, max_connections: 2 })
  );
  assert.equal(e.key, "maxConnections");
  assert.match(e.message, /max_connections repeats maxConnections/);
});

Deno.test("validateOptions() rejects a non-mapping", () => {
  assert.match(
    configError(() => validateOptions([1, 2])).message,
    /must be a mapping/,
  );
  assert.match(configError(() => validateOptions(5)).message, /mapping/);
});

// --- YAML -----------------------------------------------------------------------

Deno.test("parseConfigText() reads camelCase and snake_case keys", () => {
  const options = parseConfigText(
    [
      "# Kite",
      "host: 127.0.0.1",
      "port: 1884",
      "max_connections: 100",
      "maxQos: 1",
      "enable_persistence: false",
      "sysInterval: 0",
      "password_file: /etc/kite/passwd",
      "",
    ].join("\n"),
    "kite.yaml",
  );
  assert.deepEqual(options, {
    host: "127.0.0.1",
    port: 1884,
    maxConnections: 100,
    maxQos: 1,
    enablePersistence: false,
    sysInterval: 0,
    passwordFile: "/etc/kite/passwd",
  });
  assert.deepEqual(parseConfigText("", "empty.yaml"), {});
  assert.deepEqual(parseConfigText("# nothing\n", "empty.yaml"), {});
});

Deno.test("parseConfigText() names the file and line of a bad value", () => {
  const e = configError(() =>
    parseConfigText("port: 1884\n\nmax_qos: 7\n", "conf/kite.yaml")
  );
  assert.equal(e.key, "maxQos");
  assert.equal(e.file, "conf/kite.yaml");
  assert.equal(e.line, 3);
  assert.equal(
    e.message,
    "conf/kite.yaml:3: max_qos must be an integer from 0 to 2, got 7",
  );
});

Deno.test("parseConfigText() names the file and line of an unknown key", () => {
  const e = configError(() =>
    parseConfigText("port: 1884\nmax_conections: 1\n", "kite.yaml")
  );
  assert.equal(e.line, 2);
  assert.equal(
    e.message,
    'kite.yaml:2: unknown key "max_conections" (did you mean "maxConnections"?)',
  );
});

Deno.test("parseConfigText() reports invalid YAML with the file and line", () => {
  const e = configError(() =>
    parseConfigText("port: 1884\nhost: [unclosed\n", "bad.yaml")
  );
  assert.equal(e.file, "bad.yaml");
  assert.equal(typeof e.line, "number");
  assert.match(e.message, /^bad\.yaml:\d+: invalid YAML: /);

  const dup = configError(() =>
    parseConfigText("port: 1\nport: 2\n", "dup.yaml")
  );
  assert.match(dup.message, /^dup\.yaml:2: invalid YAML: .*unique/);

  const tab = configError(() =>
    parseConfigText("port: 1\n\tmaxQos: 2\n", "tab.yaml")
  );
  assert.match(tab.message, /^tab\.yaml:2: invalid YAML/);
});

Deno.test("parseConfigText() wants a mapping at the top", () => {
  const e = configError(() => parseConfigText("- port\n- 1\n", "list.yaml"));
  assert.match(e.message, /^list\.yaml: must be a mapping/);
  assert.match(
    configError(() => parseConfigText("just text\n", "s.yaml")).message,
    /must be a mapping.*"just text"/,
  );
});

Deno.test("loadConfigFile() reads a file and names it when it cannot", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "kite.yaml");
    await Deno.writeTextFile(path, "port: 1999\nallow_anonymous: false\n");
    assert.deepEqual(await loadConfigFile(path), {
      port: 1999,
      allowAnonymous: false,
    });
    const missing = join(dir, "nope.yaml");
    const e = await configErrorAsync(() => loadConfigFile(missing));
    assert.equal(e.file, missing);
    assert.equal(e.message, `cannot read config file ${missing}: no such file`);
    const isDir = await configErrorAsync(() => loadConfigFile(dir));
    assert.match(isDir.message, /cannot read config file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfigFile() reads examples/kite.yaml: every option at its default, but host and allowAnonymous (commented: they depend on passwordFile)", async () => {
  const path = new URL("../examples/kite.yaml", import.meta.url);
  const options = await loadConfigFile(path.pathname);
  // Setting host or allowAnonymous in a file makes them explicit, which
  // turns the secure defaults off (issue 19): the example leaves them out.
  const { host: _host, allowAnonymous: _anonymous, ...rest } =
    MAIN_DEFAULT_OPTIONS;
  assert.deepEqual(options, rest);
});

// --- resolveOptions ----------------------------------------------------------------

Deno.test("resolveOptions() gives flags > file > main defaults", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "kite.yaml");
    await Deno.writeTextFile(
      path,
      "port: 1999\nmax_connections: 50\nmaxQos: 1\n",
    );
    const { options, configPath } = await resolveOptions(
      ["--config", path, "--port", "2000", "--max-qos=0"],
      noEnv,
    );
    assert.equal(configPath, path);
    assert.equal(options.port, 2000); // flag over file
    assert.equal(options.maxQos, 0); // flag over file
    assert.equal(options.maxConnections, 50); // file over default
    assert.equal(options.enablePersistence, true); // main default
    assert.equal(options.host, MAIN_DEFAULT_OPTIONS.host); // main: loopback
    assert.deepEqual(
      Object.keys(options).sort(),
      Object.keys(DEFAULT_OPTIONS).sort(),
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("resolveOptions() with no arguments gives the main defaults", async () => {
  const resolved = await resolveOptions([], noEnv);
  assert.deepEqual(resolved, {
    options: MAIN_DEFAULT_OPTIONS,
    help: false,
    logLevel: "info",
  });
});

Deno.test("resolveOptions() takes the log level from the flag, then KITE_LOG_LEVEL", async () => {
  const env = new Map([["KITE_LOG_LEVEL", "error"]]);
  assert.equal((await resolveOptions([], env)).logLevel, "error");
  assert.equal(
    (await resolveOptions(["--log-level", "debug"], env)).logLevel,
    "debug",
  );
  const e = await configErrorAsync(() =>
    resolveOptions([], new Map([["KITE_LOG_LEVEL", "chatty"]]))
  );
  assert.match(e.message, /^KITE_LOG_LEVEL must be one of/);
});

Deno.test("resolveOptions() does not read the config file for --help", async () => {
  const resolved = await resolveOptions(
    ["--config", "/nonexistent/kite.yaml", "--help"],
    noEnv,
  );
  assert.equal(resolved.help, true);
});

Deno.test("resolveOptions() fails on a missing config file", async () => {
  const e = await configErrorAsync(() =>
    resolveOptions(["--config", "/nonexistent/kite.yaml"], noEnv)
  );
  assert.match(e.message, /cannot read config file \/nonexistent\/kite\.yaml/);
});

// --- secure defaults (issue 19, finding 6) -----------------------------------------

Deno.test("resolveOptions() with a password file refuses anonymous clients unless allowAnonymous is given", async () => {
  const strict = await resolveOptions(["--password-file", "p"], noEnv);
  assert.equal(strict.options.allowAnonymous, false);
  assert.equal(strict.options.host, "0.0.0.0");
  const open = await resolveOptions(
    ["--password-file", "p", "--allow-anonymous"],
    noEnv,
  );
  assert.equal(open.options.allowAnonymous, true);
  const host = await resolveOptions(
    ["--password-file", "p", "--host", "127.0.0.2"],
    noEnv,
  );
  assert.equal(host.options.host, "127.0.0.2");
});

Deno.test("resolveOptions() without authentication listens on loopback only unless --host and --allow-anonymous are both given", async () => {
  assert.equal((await resolveOptions([], noEnv)).options.host, "127.0.0.1");
  const anon = await resolveOptions(["--allow-anonymous"], noEnv);
  assert.equal(anon.options.host, "127.0.0.1");
  for (const host of ["127.0.0.1", "127.1.2.3", "::1", "localhost"]) {
    const r = await resolveOptions(["--host", host], noEnv);
    assert.equal(r.options.host, host);
    assert.equal(r.options.allowAnonymous, true);
  }
  const open = await resolveOptions(
    ["--host", "0.0.0.0", "--allow-anonymous"],
    noEnv,
  );
  assert.equal(open.options.host, "0.0.0.0");
  for (
    const args of [
      ["--host", "0.0.0.0"],
      ["--host", "192.168.1.5", "--no-allow-anonymous"],
      ["--host", "0.0.0.0", "--acl-file", "a"],
    ]
  ) {
    const e = await configErrorAsync(() => resolveOptions(args, noEnv));
    assert.equal(e.key, "host", args.join(" "));
    assert.match(e.message, /without authentication/);
    assert.match(e.message, /--password-file/);
    assert.match(e.message, /--allow-anonymous/);
    assert.ok(!e.message.includes("\n"));
  }
  // The config file counts as explicit, like a flag.
  const dir = await Deno.makeTempDir();
  try {
    const path = join(dir, "kite.yaml");
    await Deno.writeTextFile(path, "host: 0.0.0.0\n");
    await configErrorAsync(() => resolveOptions(["--config", path], noEnv));
    await Deno.writeTextFile(path, "host: 0.0.0.0\nallowAnonymous: true\n");
    const fromFile = await resolveOptions(["--config", path], noEnv);
    assert.equal(fromFile.options.host, "0.0.0.0");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// --- help ---------------------------------------------------------------------------

Deno.test("helpText() lists every option with flag, type, default and description", () => {
  const text = helpText();
  for (const key of SETTING_KEYS) {
    const spec = SETTINGS[key];
    const flag = toFlagName(key);
    const at = text.indexOf(
      spec.type === "listeners"
        ? `(${key}: YAML only)`
        : spec.type === "boolean"
        ? `--[no-]${flag} `
        : spec.type === "list"
        ? `${key}: [...]` // a list is set in a config file only
        : spec.type === "cluster"
        ? `(YAML ${key})` // a mapping: its keys have flags of their own
        : `--${flag} <`,
    );
    assert.ok(at >= 0, `flag of ${key} missing`);
    const entry = text.slice(
      at,
      text.indexOf("\n", text.indexOf("\n", at) + 1),
    );
    assert.ok(entry.includes(spec.description), `description of ${key}`);
    const value = (MAIN_DEFAULT_OPTIONS as Record<string, unknown>)[key];
    assert.ok(
      entry.includes(
        `default ${value === undefined ? "none" : JSON.stringify(value)}`,
      ),
      `default of ${key}`,
    );
    assert.ok(entry.includes(`YAML key ${key}`), `YAML key of ${key}`);
  }
  assert.match(text, /--port <n>.*\n.*integer 0\.\.65535, default 1883/);
  assert.match(text, /--\[no-\]enable-persistence.*\n.*boolean, default true/);
  for (
    const flag of [
      "--config",
      "--log-level",
      "--help",
      "--cluster-url <url>",
      "--node-id <id>",
      "--cluster-name <name>",
    ]
  ) {
    assert.ok(text.includes(flag), flag);
  }
  assert.match(text, /passwd/);
});
