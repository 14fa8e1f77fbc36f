/**
 * Test helper: runs a Mosquitto broker on a free loopback port with a
 * temporary config (`listener PORT 127.0.0.1`, `allow_anonymous true`,
 * `persistence false` by default), waits until it accepts connections, and
 * stops it. Tests skip themselves when Mosquitto is not installed:
 *
 * ```ts
 * import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";
 * Deno.test({
 *   name: "something against mosquitto",
 *   ignore: !HAVE_MOSQUITTO,
 *   async fn() {
 *     await using broker = await startMosquitto();
 *     // connect to 127.0.0.1:broker.port ...
 *   },
 * });
 * ```
 *
 * @module
 */

import { freePorts } from "./_ports.ts";

/** Where the Debian package puts the broker. */
export const MOSQUITTO_PATH = "/usr/sbin/mosquitto";

/**
 * True when interop tests must run: with `KITE_REQUIRE_INTEROP=1` (set by
 * `.ci/run`) a missing Mosquitto is a failure, not a skip.
 */
export const REQUIRE_INTEROP: boolean =
  Deno.env.get("KITE_REQUIRE_INTEROP") === "1";

/** True when `/usr/sbin/mosquitto` exists (use as `ignore: !HAVE_MOSQUITTO`). */
export const HAVE_MOSQUITTO: boolean = (() => {
  try {
    return Deno.statSync(MOSQUITTO_PATH).isFile;
  } catch {
    if (REQUIRE_INTEROP) {
      throw new Error(
        `${MOSQUITTO_PATH} not found and KITE_REQUIRE_INTEROP=1: ` +
          "install it (apt-get install mosquitto)",
      );
    }
    console.warn(
      `${MOSQUITTO_PATH} not found: tests against Mosquitto are skipped ` +
        "(apt-get install mosquitto)",
    );
    return false;
  }
})();

/** Options of `startMosquitto()`. */
export interface MosquittoOptions {
  /** Port to listen on; default a free port picked by the OS. */
  port?: number;
  /** `allow_anonymous`; default true. False refuses every client (0x87/5). */
  allowAnonymous?: boolean;
  /** Extra lines appended to the generated config. */
  extraConfig?: string;
  /**
   * Turns persistence on, kept in this directory (not removed by `stop()`):
   * a Mosquitto started again with the same directory (and port) resumes
   * its sessions and queued messages.
   */
  persistenceDir?: string;
  /** How long to wait for the broker to accept, in ms. Default 5000. */
  startTimeout?: number;
}

/** A running Mosquitto. `stop()` (or `await using`) ends it. */
export interface Mosquitto extends AsyncDisposable {
  /** The port it listens on, on 127.0.0.1. */
  readonly port: number;
  /** Stops the broker and removes its temp dir; safe to call twice. */
  stop(): Promise<void>;
  /** Mosquitto's log so far (for failure messages). */
  log(): string;
}

/** Returns a port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  return freePorts(1)[0]!;
}

/** Mosquitto could not bind a port: another socket took it after the pick. */
class PortTaken extends Error {
  override name = "PortTaken";
}

/**
 * Starts Mosquitto and resolves once it accepts TCP connections. Throws when
 * it exits early or does not accept within `startTimeout`.
 */
export async function startMosquitto(
  options: MosquittoOptions = {},
): Promise<Mosquitto> {
  if (options.port !== undefined) return await startOnce(options.port, options);
  return await withFreshPorts(1, ([port]) => startOnce(port!, options));
}

/**
 * Runs `start` with `n` fresh ports, again with new ones (3 tries in all)
 * when Mosquitto finds one taken: between the pick and Mosquitto's bind,
 * any socket on the machine may be given that port.
 */
async function withFreshPorts<T>(
  n: number,
  start: (ports: number[]) => Promise<T>,
): Promise<T> {
  for (let attempt = 1;; attempt++) {
    try {
      return await start(freePorts(n));
    } catch (e) {
      if (!(e instanceof PortTaken) || attempt === 3) throw e;
    }
  }
}

async function startOnce(
  port: number,
  options: MosquittoOptions,
): Promise<Mosquitto> {
  const dir = await Deno.makeTempDir({ prefix: "kite-mosquitto-" });
  // Started as root, Mosquitto opens its log file as user mosquitto.
  await Deno.chmod(dir, 0o777);
  // Started as root, Mosquitto runs as user mosquitto: it must be able to
  // write its database there.
  if (options.persistenceDir !== undefined) {
    await Deno.chmod(options.persistenceDir, 0o777);
  }
  const logFile = `${dir}/mosquitto.log`;
  const conf = [
    `listener ${port} 127.0.0.1`,
    `allow_anonymous ${options.allowAnonymous ?? true}`,
    ...(options.persistenceDir === undefined ? ["persistence false"] : [
      "persistence true",
      `persistence_location ${options.persistenceDir}/`,
    ]),
    `log_dest file ${logFile}`,
    "log_type error",
    "log_type warning",
    "log_type notice",
    "log_type information",
    options.extraConfig ?? "",
    "",
  ].join("\n");
  await Deno.writeTextFile(`${dir}/mosquitto.conf`, conf);
  const child = new Deno.Command(MOSQUITTO_PATH, {
    args: ["-c", `${dir}/mosquitto.conf`],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const log = () => {
    try {
      return Deno.readTextFileSync(logFile);
    } catch {
      return "";
    }
  };
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    if (!exited) {
      try {
        child.kill("SIGTERM");
      } catch { /* already gone */ }
    }
    await status;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  // Ready when the log says "running": Mosquitto writes it once every
  // listener is open. A port that accepts is not enough: Mosquitto opens
  // listeners one by one and exits when a later one fails, resetting the
  // connections already queued on the earlier ones.
  const deadline = Date.now() + (options.startTimeout ?? 5000);
  for (let delay = 5;; delay = Math.min(delay * 2, 100)) {
    const text = log();
    if (exited) {
      await stop();
      const taken = /Address already in use/.test(text);
      const error = taken ? PortTaken : Error;
      throw new error(`mosquitto exited at start on port ${port}:\n${text}`);
    }
    if (/ running$/m.test(text)) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        break;
      } catch { /* not yet */ }
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`mosquitto did not accept on port ${port}:\n${text}`);
    }
    // Poll with a short, growing back-off; the broker is starting.
    await new Promise((r) => setTimeout(r, delay));
  }
  return { port, stop, log, [Symbol.asyncDispose]: stop };
}

/** The certificate files a TLS listener of Mosquitto needs. */
export interface MosquittoCerts {
  caFile: string;
  serverCertFile: string;
  serverKeyFile: string;
}

/** A Mosquitto with a listener of every transport (all on 127.0.0.1). */
export interface MosquittoTransports extends Mosquitto {
  /** TLS, server certificate only. */
  readonly mqtts: number;
  /** TLS that requires a client certificate signed by the CA. */
  readonly mqttsMutual: number;
  /** WebSocket (`protocol websockets`). */
  readonly ws: number;
  /** WebSocket over TLS. */
  readonly wss: number;
}

/** Resolves once `port` accepts TCP connections (bounded). */
async function waitForPort(port: number, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  for (let delay = 5;; delay = Math.min(delay * 2, 100)) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      // Poll with a short, growing back-off; the listener is opening.
      await new Promise((r) => setTimeout(r, delay));
    }
  }
}

/**
 * Starts Mosquitto with its plain listener (`port`) plus TLS, mutual TLS,
 * WebSocket and secure WebSocket listeners, and waits until each accepts.
 * (Mosquitto 2.0.11 refuses to start with websockets listeners alone, so
 * the plain one stays first.)
 */
export async function startMosquittoTransports(
  certs: MosquittoCerts,
  options: MosquittoOptions = {},
): Promise<MosquittoTransports> {
  return await withFreshPorts(
    5,
    ([port, ...rest]) => startTransportsOnce(certs, port!, rest, options),
  );
}

async function startTransportsOnce(
  certs: MosquittoCerts,
  port: number,
  rest: number[],
  options: MosquittoOptions,
): Promise<MosquittoTransports> {
  const [mqtts, mqttsMutual, ws, wss] = rest as [
    number,
    number,
    number,
    number,
  ];
  const tls = (require: boolean) =>
    [
      `cafile ${certs.caFile}`,
      `certfile ${certs.serverCertFile}`,
      `keyfile ${certs.serverKeyFile}`,
      `require_certificate ${require}`,
    ].join("\n");
  const extraConfig = [
    `listener ${mqtts} 127.0.0.1`,
    tls(false),
    `listener ${mqttsMutual} 127.0.0.1`,
    tls(true),
    `listener ${ws} 127.0.0.1`,
    "protocol websockets",
    `listener ${wss} 127.0.0.1`,
    "protocol websockets",
    tls(false),
    options.extraConfig ?? "",
  ].join("\n");
  const broker = await startOnce(port, { ...options, extraConfig });
  try {
    for (const p of [mqtts, mqttsMutual, ws, wss]) await waitForPort(p);
  } catch (e) {
    const log = broker.log();
    await broker.stop();
    throw new Error(`mosquitto listeners did not open: ${e}\n${log}`);
  }
  return {
    ...broker,
    mqtts,
    mqttsMutual,
    ws,
    wss,
  };
}
