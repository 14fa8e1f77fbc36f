/**
 * Test helper: runs `nats-server` (Debian's, 2.9) with JetStream on a free
 * loopback port, alone or as a cluster of servers, in a throwaway storage
 * directory. Tests that need it call `requireNats()` at module level: when
 * the binary is missing they are skipped with a message, or fail when
 * KITE_REQUIRE_INTEROP=1 (CI).
 *
 * ```ts ignore
 * await using nats = await startNats();
 * // connect to nats.url ...
 * ```
 *
 * @module
 */

import { within } from "./client_helpers.ts";
import { freePorts } from "./_ports.ts";
export { freePorts };

const BIN = ["/usr/sbin/nats-server", "/usr/bin/nats-server"].find((p) => {
  try {
    return Deno.statSync(p).isFile;
  } catch {
    return false;
  }
});

/** Whether nats-server is installed. */
export const natsAvailable: boolean = BIN !== undefined;

/**
 * Call at module level: false (with a warning) when nats-server is
 * missing, so the module's tests can be `ignore`d; throws when CI requires
 * it (KITE_REQUIRE_INTEROP=1).
 */
export function requireNats(module: string): boolean {
  if (natsAvailable) return true;
  if (Deno.env.get("KITE_REQUIRE_INTEROP") === "1") {
    throw new Error(
      "nats-server not found and KITE_REQUIRE_INTEROP=1: apt-get install nats-server",
    );
  }
  console.warn(
    `${module}: nats-server not found, skipping (apt-get install nats-server)`,
  );
  return false;
}

/** A running nats-server. */
export interface NatsServer extends AsyncDisposable {
  /** `nats://127.0.0.1:PORT`. */
  readonly url: string;
  readonly port: number;
  /** Its cluster (route) port, when started as part of a cluster. */
  readonly clusterPort: number | undefined;
  /** Its own MQTT listener's port, when started with `mqtt`. */
  readonly mqttPort: number | undefined;
  /** What it logged. */
  log(): string;
  /** Stops it (SIGTERM, then SIGKILL) and waits for the exit. */
  stop(): Promise<void>;
  /** Kills it (SIGKILL: no leadership handed over) and waits for the exit. */
  kill(): Promise<void>;
  /** Starts it again on the same ports and storage. */
  restart(): Promise<void>;
}

interface Spawned {
  child: Deno.ChildProcess;
  text: () => string;
  done: Promise<unknown>;
  /** Resolves with the first match of `re` in the output so far or later. */
  match(re: RegExp): Promise<RegExpMatchArray>;
}

function spawn(args: string[]): Spawned {
  const child = new Deno.Command(BIN!, {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let text = "";
  let waiters: { re: RegExp; resolve(m: RegExpMatchArray): void }[] = [];
  const check = () => {
    waiters = waiters.filter((w) => {
      const m = text.match(w.re);
      if (m) w.resolve(m);
      return !m;
    });
  };
  const read = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      text += chunk;
      check();
    }
  };
  const done = Promise.all([
    child.status,
    read(child.stdout),
    read(child.stderr),
  ]);
  return {
    child,
    text: () => text,
    done,
    match: (re) => {
      const { promise, resolve } = Promise.withResolvers<RegExpMatchArray>();
      waiters.push({ re, resolve });
      check();
      return promise;
    },
  };
}

/** The first match of `re` in the output of `s`, within `ms`. */
async function waitFor(
  s: Spawned,
  re: RegExp,
  what: string,
  ms = 15_000,
): Promise<RegExpMatchArray> {
  const exited = s.done.then(() => {
    throw new Error(`nats-server exited before ${what}:\n${s.text()}`);
  });
  exited.catch(() => {});
  try {
    return await within(Promise.race([s.match(re), exited]), ms, what);
  } catch (e) {
    throw new Error(`nats-server: ${what} not seen:\n${s.text()}`, {
      cause: e,
    });
  }
}

/**
 * Starts `names.length` nats-servers with JetStream as one NATS cluster
 * (each routes to all; JetStream needs the routes configured).
 * `clientAdvertise`: the client URL each server tells clients about
 * (default its own), e.g. closed ports, so that a client knows only the
 * servers it was given. `plain`: the servers (by index) without JetStream
 * (they route to the others).
 */
export async function startNatsCluster(
  names: string[],
  options: { clientAdvertise?: string[]; plain?: number[] } = {},
): Promise<NatsServer[]> {
  const routes = freePorts(names.length);
  const servers = await Promise.allSettled(names.map((server, i) => {
    const advertise = options.clientAdvertise?.[i];
    return startNats({
      cluster: { name: "kitenats", server, routes },
      clusterPort: routes[i]!,
      ...(advertise === undefined ? {} : { clientAdvertise: advertise }),
      ...(options.plain?.includes(i) ? { jetstream: false } : {}),
    });
  }));
  const ok = servers.flatMap((s) => s.status === "fulfilled" ? [s.value] : []);
  const failed = servers.find((s) => s.status === "rejected");
  if (failed !== undefined) {
    for (const s of ok) await s[Symbol.asyncDispose]();
    throw (failed as PromiseRejectedResult).reason;
  }
  return ok;
}

/**
 * Starts one nats-server with JetStream. `cluster`: join a NATS cluster
 * (`name`, this server's name, routes to the others' cluster ports).
 */
export async function startNats(
  options: {
    cluster?: { name: string; server: string; routes: number[] };
    port?: number;
    clusterPort?: number;
    dir?: string;
    /** Also listen for MQTT (nats-server's own MQTT, for comparisons). */
    mqtt?: boolean;
    /** The client URL advertised to clients (`--client_advertise`). */
    clientAdvertise?: string;
    /** With JetStream (default true). */
    jetstream?: boolean;
  } = {},
): Promise<NatsServer> {
  const dir = options.dir ?? await Deno.makeTempDir({ prefix: "kite-nats-" });
  const ownDir = options.dir === undefined;
  let port = options.port ?? -1;
  let clusterPort = options.clusterPort ?? -1;
  let mqttPort: number | undefined;
  if (options.mqtt) {
    await Deno.writeTextFile(
      `${dir}/mqtt.conf`,
      "server_name: kite_test\nmqtt { host: 127.0.0.1, port: -1 }\n",
    );
  }
  const args = () => {
    const a = ["-a", "127.0.0.1", "-p", String(port)];
    if (options.jetstream !== false) a.push("-js", "-sd", dir);
    if (options.mqtt) a.push("-c", `${dir}/mqtt.conf`);
    if (options.clientAdvertise !== undefined) {
      a.push("--client_advertise", options.clientAdvertise);
    }
    const c = options.cluster;
    if (c !== undefined) {
      a.push(
        "-n",
        c.server,
        "--cluster_name",
        c.name,
        "-cluster",
        `nats://127.0.0.1:${clusterPort}`,
      );
      if (c.routes.length > 0) {
        a.push(
          "-routes",
          c.routes.map((p) => `nats://127.0.0.1:${p}`).join(","),
        );
      }
    }
    return a;
  };
  let s = spawn(args());
  const started = async () => {
    const m = await waitFor(
      s,
      /Listening for client connections on [\d.]+:(\d+)/,
      "client port",
    );
    port = Number(m[1]);
    if (options.cluster !== undefined) {
      const c = await waitFor(
        s,
        /Listening for route connections on [\d.]+:(\d+)/,
        "route port",
      );
      clusterPort = Number(c[1]);
    }
    if (options.mqtt) {
      const m = await waitFor(
        s,
        /Listening for MQTT clients on mqtt:\/\/[\d.]+:(\d+)/,
        "MQTT port",
      );
      mqttPort = Number(m[1]);
    }
    await waitFor(s, /Server is ready/, "ready");
  };
  try {
    await started();
  } catch (e) {
    try {
      s.child.kill("SIGKILL");
    } catch { /* exited by itself */ }
    await s.done;
    if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
  let log = "";
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    try {
      s.child.kill(signal);
    } catch { /* gone */ }
    const timer = setTimeout(() => {
      try {
        s.child.kill("SIGKILL");
      } catch { /* gone */ }
    }, 5000);
    await s.done;
    clearTimeout(timer);
    log += s.text();
  };
  let stopped = false;
  const server: NatsServer = {
    get url() {
      return `nats://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get clusterPort() {
      return options.cluster === undefined ? undefined : clusterPort;
    },
    get mqttPort() {
      return mqttPort;
    },
    log: () => log + s.text(),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await stop();
    },
    kill: async () => {
      if (stopped) return;
      stopped = true;
      await stop("SIGKILL");
    },
    restart: async () => {
      if (!stopped) await stop();
      stopped = false;
      s = spawn(args());
      await started();
    },
    [Symbol.asyncDispose]: async () => {
      await server.stop();
      if (ownDir) await Deno.remove(dir, { recursive: true }).catch(() => {});
    },
  };
  return server;
}
