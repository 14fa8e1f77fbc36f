/**
 * The `listeners` setting (a list of listener mappings) and the listener
 * shorthand flags: what is accepted, and one clear line for what is not,
 * naming the listener and the key (with the file and line for YAML).
 */

import assert from "node:assert/strict";
import {
  ConfigError,
  helpText,
  parseArgs,
  parseConfigText,
  resolveOptions,
  validateOptions,
} from "../broker/options.ts";

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error("no ConfigError");
}

Deno.test("validateOptions() accepts listeners, snake_case and kebab-case keys too", () => {
  const o = validateOptions({
    listeners: [
      {
        protocol: "mqtts",
        port: 8883,
        cert_file: "c.pem",
        "key-file": "k.pem",
      },
      {
        protocol: "mqtts",
        port: 8884,
        certFile: "c.pem",
        keyFile: "k.pem",
        caFile: "ca.pem",
        requireClientCertificate: true,
        use_identity_as_username: true,
      },
      {
        protocol: "ws",
        host: "127.0.0.1",
        port: 8080,
        path: "/mqtt",
        allowedOrigins: ["https://a.example"],
        maxConnections: 100,
      },
      { protocol: "wss", port: 0, certFile: "c.pem", keyFile: "k.pem" },
      { protocol: "mqtt", port: 1884 },
    ],
  });
  assert.deepEqual(o.listeners?.[0], {
    protocol: "mqtts",
    port: 8883,
    certFile: "c.pem",
    keyFile: "k.pem",
  });
  assert.equal(o.listeners?.[1]?.useIdentityAsUsername, true);
  assert.equal(o.listeners?.length, 5);
});

Deno.test("validateOptions() refuses a bad listener entry with one line naming it and the key", () => {
  const cases: [unknown, string][] = [
    [
      "ws://0.0.0.0:8080",
      'listeners must be a list of listener mappings, got "ws://0.0.0.0:8080"',
    ],
    [[8080], "listener #1 must be a mapping (protocol, port, ...), got 8080"],
    [
      [{ port: 1 }],
      "listener #1 (port 1): protocol is missing (mqtt, mqtts, ws or wss)",
    ],
    [
      [{ protocol: "http", port: 1 }],
      'listener #1 (http port 1): protocol must be mqtt, mqtts, ws or wss, got "http"',
    ],
    [[{ protocol: "ws" }], "listener #1 (ws): port is missing"],
    [
      [{ protocol: "ws", port: 70000 }],
      "listener #1 (ws port 70000): port must be an integer from 0 to 65535, got 70000",
    ],
    [
      [{ protocol: "ws", port: 1 }, { protocol: "ws", port: 2, pth: "/x" }],
      'listener #2 (ws port 2): unknown key "pth" (did you mean "path"?)',
    ],
    [
      [{ protocol: "mqtts", port: 8883, certFile: "c.pem" }],
      "listener #1 (mqtts port 8883): mqtts needs certFile and keyFile (PEM files), keyFile is missing",
    ],
    [
      [{ protocol: "mqtt", port: 1, certFile: "c.pem" }],
      "listener #1 (mqtt port 1): certFile only applies to mqtts and wss listeners",
    ],
    [
      [{ protocol: "mqtts", port: 1, certFile: "c", keyFile: "k", path: "/m" }],
      "listener #1 (mqtts port 1): path only applies to ws and wss listeners",
    ],
    [
      [{
        protocol: "mqtts",
        port: 1,
        certFile: "c",
        keyFile: "k",
        require_client_certificate: true,
      }],
      "listener #1 (mqtts port 1): require_client_certificate needs caFile (the CA that signs client certificates)",
    ],
    [
      [{
        protocol: "mqtts",
        port: 1,
        certFile: "c",
        keyFile: "k",
        useIdentityAsUsername: true,
      }],
      "listener #1 (mqtts port 1): useIdentityAsUsername needs requireClientCertificate: true",
    ],
    [
      [{ protocol: "ws", port: 1, path: "mqtt" }],
      'listener #1 (ws port 1): path must be a path starting with /, got "mqtt"',
    ],
    [
      [{ protocol: "ws", port: 1, allowedOrigins: "https://a" }],
      'listener #1 (ws port 1): allowedOrigins must be a list of origins (https://example.com), got "https://a"',
    ],
    [
      [{ protocol: "ws", port: 1, maxConnections: 0 }],
      "listener #1 (ws port 1): maxConnections must be a positive integer, got 0",
    ],
    [
      [{ protocol: "ws", port: 1, certFile: "c" }],
      "listener #1 (ws port 1): certFile only applies to mqtts and wss listeners",
    ],
  ];
  for (const [listeners, message] of cases) {
    const e = configError(() => validateOptions({ listeners }));
    assert.equal(e.message, message);
    assert.equal(e.key, "listeners");
  }
});

Deno.test("parseConfigText() names the file and the line of the listener's key", () => {
  const text = [
    "port: 1883", // 1
    "listeners:", // 2
    "  - protocol: mqtts", // 3
    "    port: 8883", // 4
    "    certFile: /etc/kite/server.crt", // 5
    "    keyFile: /etc/kite/server.key", // 6
    "  - protocol: wss", // 7
    "    port: 8884", // 8
    "    cert: /etc/kite/server.crt", // 9
    "",
  ].join("\n");
  const e = configError(() => parseConfigText(text, "kite.yaml"));
  assert.equal(
    e.message,
    'kite.yaml:9: listener #2 (wss port 8884): unknown key "cert" (did you mean "certFile"?)',
  );
  assert.equal(e.line, 9);
  // A problem of the whole entry: the entry's line.
  const missing = configError(() =>
    parseConfigText("listeners:\n  - port: 1\n", "k.yaml")
  );
  assert.equal(
    missing.message,
    "k.yaml:2: listener #1 (port 1): protocol is missing (mqtt, mqtts, ws or wss)",
  );
  const ok = parseConfigText(
    "listeners:\n  - protocol: ws\n    port: 8080\n    allowed_origins: [https://a.example]\n",
    "k.yaml",
  );
  assert.deepEqual(ok.listeners, [{
    protocol: "ws",
    port: 8080,
    allowedOrigins: ["https://a.example"],
  }]);
});

Deno.test("parseArgs(): --tls-port, --ws-port, --wss-port, --ws-path, --cert-file, --key-file, --ca-file build listeners", () => {
  const { options } = parseArgs([
    "--tls-port",
    "8883",
    "--cert-file=c.pem",
    "--key-file",
    "k.pem",
    "--ws-port",
    "8080",
    "--wss-port",
    "8081",
    "--ws-path",
    "/ws",
  ]);
  assert.deepEqual(options.listeners, [
    { protocol: "mqtts", port: 8883, certFile: "c.pem", keyFile: "k.pem" },
    { protocol: "ws", port: 8080, path: "/ws" },
    {
      protocol: "wss",
      port: 8081,
      certFile: "c.pem",
      keyFile: "k.pem",
      path: "/ws",
    },
  ]);
  const mutual = parseArgs([
    "--tls-port",
    "8884",
    "--cert-file",
    "c.pem",
    "--key-file",
    "k.pem",
    "--ca-file",
    "ca.pem",
  ]);
  assert.deepEqual(mutual.options.listeners, [{
    protocol: "mqtts",
    port: 8884,
    certFile: "c.pem",
    keyFile: "k.pem",
    caFile: "ca.pem",
    requireClientCertificate: true,
  }]);
  assert.equal(parseArgs(["--port", "1"]).options.listeners, undefined);
});

Deno.test("parseArgs() refuses listener flags that do not fit together, with one line", () => {
  const cases: [string[], string][] = [
    [
      ["--tls-port", "8883"],
      "--tls-port needs --cert-file and --key-file (PEM files)",
    ],
    [
      ["--wss-port", "8883", "--cert-file", "c"],
      "--wss-port needs --cert-file and --key-file (PEM files)",
    ],
    [["--cert-file", "c"], "--cert-file needs --tls-port or --wss-port"],
    [["--ca-file", "c", "--wss-port", "1"], "--ca-file needs --tls-port"],
    [["--ws-path", "/x"], "--ws-path needs --ws-port or --wss-port"],
    [
      ["--ws-port", "1", "--ws-path", "x"],
      '--ws-path must be a path starting with /, got "x"',
    ],
    [
      ["--ws-port", "http"],
      '--ws-port must be an integer from 0 to 65535, got "http"',
    ],
    [["--ws-port"], "--ws-port needs a value"],
    [
      ["--listeners", "[]"],
      "--listeners cannot be a flag: list them in the config file, or use --tls-port, --ws-port, --wss-port",
    ],
    [
      ["--tls-prot", "1"],
      "unknown option --tls-prot (did you mean --tls-port?)",
    ],
  ];
  for (const [argv, message] of cases) {
    assert.equal(configError(() => parseArgs(argv)).message, message);
  }
});

Deno.test("resolveOptions(): the shorthand flags add listeners after those of the config file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const file = `${dir}/kite.yaml`;
    await Deno.writeTextFile(
      file,
      "listeners:\n  - protocol: mqtt\n    port: 1884\n",
    );
    const { options } = await resolveOptions(
      ["--config", file, "--ws-port", "8080"],
      new Map(),
    );
    assert.deepEqual(options.listeners, [
      { protocol: "mqtt", port: 1884 },
      { protocol: "ws", port: 8080 },
    ]);
    const none = await resolveOptions([], new Map());
    assert.deepEqual(none.options.listeners, []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("helpText() lists the listener flags and the listeners key", () => {
  const text = helpText();
  for (
    const flag of [
      "--tls-port",
      "--cert-file",
      "--key-file",
      "--ca-file",
      "--ws-port",
      "--ws-path",
      "--wss-port",
    ]
  ) {
    assert.ok(text.includes(flag), flag);
  }
  assert.match(text, /\(listeners: YAML only\)/);
});
