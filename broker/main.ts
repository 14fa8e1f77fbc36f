/**
 * The `kite` broker command:
 *
 * ```sh
 * deno run -A broker/main.ts [--config kite.yaml] [--port 1883] [...]
 * deno run -A broker/main.ts --help
 * deno run -A broker/main.ts passwd [-c] [-D] FILE USER
 * ```
 *
 * Options come from flags, a YAML `--config` file and defaults, in that order
 * of precedence (see `resolveOptions` and `helpText` in `options.ts`; here
 * persistence is on by default, and without a password file the broker
 * listens on loopback only: `config/secure_defaults.ts`). A bad option prints one line
 * `kite: <message>` to stderr and exits 2. SIGINT or SIGTERM closes the
 * broker gracefully (v5 clients get DISCONNECT 0x8B) and exits 0; a second
 * signal exits 1 at once.
 *
 * @module
 */

import {
  ansiColorFormatter,
  configure,
  dispose,
  getLogger,
  getTextFormatter,
  type LogLevel,
} from "@logtape/logtape";
import { type FileAuth, fileAuth } from "./auth.ts";
import { Broker } from "./broker.ts";
import { listenerUrl } from "./listen/listener.ts";
import { resolveOptions } from "./config/argv.ts";
import { ConfigError } from "./config/config_error.ts";
import { MAIN_DEFAULT_OPTIONS } from "./config/defaults.ts";
import { helpText } from "./config/help.ts";
import { isLoopbackHost } from "./config/secure_defaults.ts";
import type { BrokerOptions, MainSettings } from "./config/types.ts";
import { passwdCommand } from "./passwd.ts";
import { AuthFileError } from "./password_file.ts";
import { KITE_VERSION } from "./sys.ts";
import { jsonLogFormatter } from "./_log_json.ts";
import { lineSink } from "./_log_sink.ts";
import { setDirectSink } from "./_log.ts";

const log = getLogger(["kite", "main"]);

/** Exit status for a bad option, flag or config file. */
export const EXIT_USAGE = 2;

/**
 * Configures LogTape: one console sink for the `kite` category, as text
 * (colored on a terminal) or, with `json`, one JSON object per line
 * (`@timestamp`, `level`, `message`, `logger`, `properties`).
 */
async function setUpLogging(
  level: LogLevel,
  format: "text" | "json" = "text",
): Promise<void> {
  const plain = getTextFormatter({
    // Strings as they are (no quotes), numbers as text (as inspect would
    // print them, without its call into the runtime: a connect's line has a
    // keep-alive), everything else inspected.
    value: (v, inspect) =>
      typeof v === "string"
        ? v
        : typeof v === "number" && !Object.is(v, -0)
        ? String(v)
        : inspect(v),
  });
  const sink = lineSink(
    format === "json"
      ? jsonLogFormatter
      : Deno.stdout.isTerminal()
      ? ansiColorFormatter
      : plain,
  );
  await configure({
    sinks: { console: sink },
    loggers: [
      { category: ["kite"], lowestLevel: level, sinks: ["console"] },
      {
        category: ["logtape", "meta"],
        lowestLevel: "warning",
        sinks: ["console"],
      },
    ],
  });
  setDirectSink(sink);
}

/**
 * Resolves when the first SIGINT/SIGTERM has closed `broker`, with the exit
 * status: 0 after a clean close, 1 if closing failed. A second signal while
 * closing exits the process with status 1 at once.
 */
function closeOnSignal(broker: Broker): Promise<number> {
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const { promise, resolve } = Promise.withResolvers<number>();
  let closing = false;
  const handlers = signals.map((signal) => {
    const handler = () => {
      if (closing) {
        log.warn("{signal} again: exiting without finishing the close", {
          signal,
        });
        Deno.exit(1);
      }
      closing = true;
      log.info("{signal} received: closing the broker", { signal });
      broker.close().then(
        () => resolve(0),
        (error: unknown) => {
          log.error("closing the broker failed: {error}", { error });
          resolve(1);
        },
      );
    };
    Deno.addSignalListener(signal, handler);
    return () => Deno.removeSignalListener(signal, handler);
  });
  return promise.finally(() => {
    for (const remove of handlers) remove();
  });
}

/**
 * Loads the password and ACL files, if any, as hooks (`fileAuth`), and reloads
 * them on SIGHUP. Returns `undefined` when neither file is configured.
 */
async function setUpFileAuth(
  files: { [K in keyof MainSettings]: MainSettings[K] | undefined },
  allowAnonymous: boolean,
): Promise<{ auth: FileAuth; stop: () => void } | undefined> {
  const { passwordFile, aclFile } = files;
  if (passwordFile === undefined && aclFile === undefined) return undefined;
  const auth = await fileAuth({
    ...(passwordFile === undefined ? {} : { passwordFile }),
    ...(aclFile === undefined ? {} : { aclFile }),
    allowAnonymous,
  });
  if (Deno.build.os === "windows") return { auth, stop: () => {} };
  const onHangUp = () => {
    // Each file is reloaded on its own; fileAuth logs each failure once.
    auth.reload().then(
      () => log.info("SIGHUP: password and ACL files reloaded"),
      () => {},
    );
  };
  Deno.addSignalListener("SIGHUP", onHangUp);
  return {
    auth,
    stop: () => Deno.removeSignalListener("SIGHUP", onHangUp),
  };
}

/**
 * Reloads the TLS listeners' certificates on SIGHUP (see
 * `Broker.reloadCertificates`); returns the function that stops it. Nothing
 * to do without a TLS listener.
 */
function reloadCertificatesOnHangUp(broker: Broker): () => void {
  if (Deno.build.os === "windows") return () => {};
  if (!broker.listeners.some((l) => l.reloadCertificates !== undefined)) {
    return () => {};
  }
  const onHangUp = () => {
    // Each listener's outcome is logged by the broker.
    broker.reloadCertificates().catch((error: unknown) =>
      log.error("SIGHUP: certificate reload failed: {error}", { error })
    );
  };
  Deno.addSignalListener("SIGHUP", onHangUp);
  return () => Deno.removeSignalListener("SIGHUP", onHangUp);
}

/** Settings whose values are secrets: logged as `***` when set. */
const SECRET_SETTINGS = new Set(["httpToken"]);

/**
 * `key=value` pairs of the settings that differ from the defaults of
 * main.ts, for one log line ("" when none does; secrets hidden).
 */
function describeOptions(options: object): string {
  const defaults: Record<string, unknown> = MAIN_DEFAULT_OPTIONS;
  return Object.entries(options)
    .filter(([k, v]) =>
      typeof v !== "function" &&
      (typeof v === "object"
        ? JSON.stringify(v) !== JSON.stringify(defaults[k] ?? [])
        : v !== defaults[k])
    )
    .map(([k, v]) => SECRET_SETTINGS.has(k) && v !== "" ? [k, "***"] : [k, v])
    .map(([k, v]) =>
      `${k}=${
        typeof v === "string" || typeof v === "object" ? JSON.stringify(v) : v
      }`
    )
    .join(" ");
}

/**
 * Runs the command with `args` (without the program name) and returns the
 * exit status; the broker runs until SIGINT/SIGTERM.
 *
 * @example
 * ```ts ignore
 * import { main } from "./main.ts";
 * Deno.exit(await main(["--port", "1884", "--enable-persistence=false"]));
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  if (args[0] === "passwd") return await passwdCommand(args.slice(1));
  let resolved;
  try {
    resolved = await resolveOptions(args, Deno.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      console.error(`kite: ${e.message}`);
      return EXIT_USAGE;
    }
    throw e;
  }
  if (resolved.help) {
    console.log(helpText());
    return 0;
  }
  await setUpLogging(resolved.logLevel, resolved.options.logFormat);
  let fileAuthHandle: Awaited<ReturnType<typeof setUpFileAuth>>;
  try {
    const { passwordFile, aclFile, logFormat: _, ...settings } =
      resolved.options;
    if (resolved.configPath !== undefined) {
      log.info("config file {path}", { path: resolved.configPath });
    }
    const changed = describeOptions(resolved.options);
    if (changed !== "") log.info("options: {options}", { options: changed });
    try {
      fileAuthHandle = await setUpFileAuth(
        { passwordFile, aclFile },
        settings.allowAnonymous,
      );
    } catch (e) {
      if (e instanceof AuthFileError) {
        console.error(`kite: ${e.message}`);
        return EXIT_USAGE;
      }
      throw e;
    }
    const options: BrokerOptions = { ...settings };
    if (fileAuthHandle !== undefined) {
      const {
        authenticate,
        authorizePublish,
        authorizeSubscribe,
        authorizeRead,
        authorizationEpoch,
      } = fileAuthHandle.auth;
      Object.assign(options, {
        authenticate,
        authorizePublish,
        authorizeSubscribe,
      });
      // With an ACL file: each delivery is checked against the read rules
      // (rules reloaded on SIGHUP apply to existing subscriptions at once).
      if (authorizeRead !== undefined) {
        Object.assign(options, { authorizeRead, authorizationEpoch });
      }
    }
    let broker: Broker | undefined;
    try {
      broker = new Broker(options);
      await broker.listen();
    } catch (error) {
      // A valid option the system refuses: port in use, KV file locked, ...
      // ("cannot listen on HOST:PORT: why" says what failed by itself).
      const message = error instanceof Error ? error.message : String(error);
      const line = message.startsWith("cannot ")
        ? "{message}"
        : "cannot start: {message}";
      log.fatal(line, { message, error });
      await broker?.close().catch(() => {});
      return 1;
    }
    const closed = closeOnSignal(broker);
    const stopReload = reloadCertificatesOnHangUp(broker);
    const { hostname } = broker.addr;
    // Secure defaults (config/secure_defaults.ts): say why it is loopback
    // only, or that anyone may connect.
    const open = passwordFile === undefined;
    const note = !open
      ? ""
      : isLoopbackHost(hostname)
      ? " (loopback only: no authentication configured; see --password-file, --host and --allow-anonymous)"
      : " (no authentication: anyone who can reach it may connect)";
    // Every listener by its URL (MQTT ones first), then the HTTP server.
    const urls = broker.listeners.map((l) => listenerUrl(l.addr));
    const http = broker.httpAddr;
    if (http !== undefined) {
      const host = http.hostname.includes(":")
        ? `[${http.hostname}]`
        : http.hostname;
      urls.push(`http://${host}:${http.port}`);
    }
    log.info("{version} listening on {urls}{note}", {
      version: KITE_VERSION,
      urls: urls.join(", "),
      listeners: urls,
      note,
    });
    for (const l of broker.listeners.slice(1)) {
      log.info("listening on {url}", {
        url: l.endpoint ?? listenerUrl(l.addr),
        protocol: l.addr.protocol,
        hostname: l.addr.hostname,
        port: l.addr.port,
      });
    }
    const status = await closed;
    stopReload();
    log.info("closed");
    return status;
  } finally {
    fileAuthHandle?.stop();
    setDirectSink(undefined);
    await dispose();
  }
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
