/**
 * Starts and stops the brokers that bench/compare.ts and the load smoke test
 * measure: Kite (broker/main.ts on Deno), Mosquitto and Aedes (on Node).
 * Each is started on a free loopback port, optionally pinned to one CPU with
 * `taskset`, and is ready when a TCP connect to its port succeeds.
 *
 * With `transport: "tls"` or `"ws"` each broker also listens for MQTT over
 * TLS (Kite `--tls-port`, Mosquitto a `listener` with `certfile`/`keyfile`)
 * or over WebSocket (Kite `--ws-port`, Mosquitto a `listener` with
 * `protocol websockets`), and `port` is that listener's; Aedes runs over TCP
 * only.
 *
 * `kite-scraped` is Kite with its HTTP server on (`--http-port`), for
 * compare.ts to scrape `/metrics` while it measures (`--scrape-interval`).
 *
 * `kite-plain` is Kite as the README's first command starts it: `deno run
 * -A broker/main.ts` with every default (Deno KV persistence on, in a
 * temporary directory; V8's default heap; `$SYS` every 10 s; at most 10,000
 * connections; info logging), where `kite` is tuned for the comparison.
 * `bare` is no broker: bench/bare_accept.ts, the ceiling for connects/s;
 * `relay` neither: bench/bare_relay.ts, the ceiling for QoS 0 latency.
 *
 * Every process is started through `sh -c 'ulimit -n <hard limit>'`, so it
 * may open as many files as the machine allows (10,000 connections and
 * more need it where the soft limit is 1,024).
 *
 * `kite-acl` is Kite with a password file and an ACL file (anonymous clients
 * refused): every delivery is authorized against the subscriber's read
 * rules. The load tool connects to it with the flags in
 * `RunningBroker.loadArgs` (the user `bench`, whose rules allow `kite-load/#`
 * among other users' rules, patterns and a deny rule).
 *
 * @module
 */

import { join } from "node:path";
import { fileURLToPath as fromFileUrl } from "node:url";
import { PasswordFile } from "../broker/password_file.ts";

/** A broker process started by {@link startBroker}. */
export interface RunningBroker {
  name: BrokerName;
  /** The port measured: TCP, or the TLS or WebSocket listener's. */
  port: number;
  /** The broker's own pid (taskset execs it). */
  pid: number;
  /** The last few KB of its output, for error messages. */
  output(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
  /** Flags bench/load.ts needs for this broker (credentials, transport). */
  loadArgs: string[];
  /** The port of its HTTP server (`/metrics`), when it has one. */
  httpPort?: number;
}

/** The brokers compare.ts knows. */
export type BrokerName =
  | "kite"
  | "kite-kv"
  | "kite-base"
  | "kite-acl"
  | "kite-scraped"
  | "kite-plain"
  | "bare"
  | "relay"
  | "relay-handles"
  | "mosquitto"
  | "aedes";

/**
 * The checkout `kite-base` runs from: `KITE_BASE` (e.g. a `git worktree` of
 * the commit before a change), so a change and its base run in one compare.
 */
function baseRoot(): string | undefined {
  return Deno.env.get("KITE_BASE");
}

/** The transports a broker can be measured over. */
export type BenchTransport = "tcp" | "tls" | "ws";

/** A certificate for the brokers' TLS listeners and the CA that signed it. */
export interface BenchCerts {
  caFile: string;
  certFile: string;
  keyFile: string;
}

/** Options of {@link startBroker}. */
export interface StartOptions {
  /** The transport measured (default tcp): the broker listens for it too. */
  transport?: BenchTransport;
  /** For `transport: "tls"`: the files. */
  certs?: BenchCerts;
  /** Pin the broker to this CPU with taskset (when taskset exists). */
  cpu?: number;
  /** How long to wait for the port, ms; default 20 s. */
  timeoutMs?: number;
  /** Run under `nice -n N` (negative needs root): favour it over other jobs. */
  nice?: number;
}

const ROOT = fromFileUrl(new URL("../", import.meta.url));

/**
 * The `--v8-flags=...` of deno.json's `start` task in checkout `root`, so
 * that Kite is measured as `deno task start` runs it (`kite-base` with its
 * own checkout's flags).
 */
function startTaskV8Flags(root = ROOT): string[] {
  const config = JSON.parse(
    Deno.readTextFileSync(join(root, "deno.json")),
  ) as { tasks?: Record<string, string> };
  const start = config.tasks?.start ?? "";
  return start.split(/\s+/).filter((a) => a.startsWith("--v8-flags="));
}
export const MOSQUITTO = "/usr/sbin/mosquitto";
export const AEDES_VERSION = "1.2.0";

/** True when the file exists and is a file. */
export function exists(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** Finds an executable on PATH. */
export function which(cmd: string): string | undefined {
  for (const dir of (Deno.env.get("PATH") ?? "").split(":")) {
    const p = join(dir, cmd);
    if (exists(p)) return p;
  }
  return undefined;
}

/** A TCP port that was free a moment ago on 127.0.0.1. */
export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Where Aedes is installed for the benchmark (outside the repository). */
export function aedesPrefix(): string {
  const cache = Deno.env.get("XDG_CACHE_HOME") ??
    join(Deno.env.get("HOME") ?? "/tmp", ".cache");
  return join(cache, "kite-bench", `aedes-${AEDES_VERSION}`);
}

/** Installs aedes with npm into {@link aedesPrefix} unless it is there. */
export async function ensureAedes(): Promise<string> {
  const prefix = aedesPrefix();
  if (exists(join(prefix, "node_modules", "aedes", "aedes.js"))) return prefix;
  await Deno.mkdir(prefix, { recursive: true });
  const out = await new Deno.Command("npm", {
    args: [
      "install",
      "--prefix",
      prefix,
      `aedes@${AEDES_VERSION}`,
      "--no-audit",
      "--no-fund",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `npm install aedes failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
  return prefix;
}

/** Whether a broker can be started here, and why not. */
export function brokerAvailable(
  name: BrokerName,
  transport: BenchTransport = "tcp",
): string | undefined {
  if (
    (name === "aedes" || name === "bare" || name === "relay" ||
      name === "relay-handles" || name === "kite-plain") &&
    transport !== "tcp"
  ) {
    return `measured over tcp only (not ${transport})`;
  }
  switch (name) {
    case "mosquitto":
      return exists(MOSQUITTO) ? undefined : `${MOSQUITTO} not found`;
    case "aedes":
      return which("node") && which("npm") ? undefined : "node/npm not found";
    case "kite":
    case "kite-kv":
    case "kite-acl":
    case "kite-scraped":
    case "kite-plain":
      return exists(join(ROOT, "broker", "main.ts"))
        ? undefined
        : "broker/main.ts does not exist yet";
    case "bare":
    case "relay":
    case "relay-handles":
      return undefined;
    case "kite-base": {
      const base = baseRoot();
      if (base === undefined) {
        return "KITE_BASE (a checkout to compare) not set";
      }
      return exists(join(base, "broker", "main.ts"))
        ? undefined
        : `${base}/broker/main.ts not found`;
    }
  }
}

/** Connects until the port accepts, the process exits, or the timeout. */
async function waitForPort(
  port: number,
  exited: () => boolean,
  timeoutMs: number,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (true) {
    try {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conn.close();
      return;
    } catch {
      if (exited()) throw new Error("broker exited before listening");
      if (performance.now() > deadline) {
        throw new Error(
          `nothing listening on port ${port} after ${timeoutMs} ms`,
        );
      }
      // Poll interval between connect attempts, not a readiness guess.
      await new Promise((r) => setTimeout(r, 25));
    }
  }
}

/** Starts a broker on a free loopback port and waits until it accepts. */
export async function startBroker(
  name: BrokerName,
  opts: StartOptions = {},
): Promise<RunningBroker> {
  const transport = opts.transport ?? "tcp";
  const why = brokerAvailable(name, transport);
  if (why) throw new Error(`cannot start ${name}: ${why}`);
  const certs = opts.certs;
  if (transport === "tls" && certs === undefined) {
    throw new Error("transport tls needs certs");
  }
  const port = freePort();
  // The listener measured: the TCP one, or a second one for TLS/WebSocket.
  const testPort = transport === "tcp" ? port : freePort();
  let httpPort: number | undefined;
  let tmp: string | undefined;
  let cmd: string[];
  switch (name) {
    case "mosquitto": {
      tmp = await Deno.makeTempDir({ prefix: "kite-bench-mosquitto-" });
      const conf = join(tmp, "mosquitto.conf");
      await Deno.writeTextFile(
        conf,
        [
          `listener ${port} 127.0.0.1`,
          "allow_anonymous true",
          "persistence false",
          "max_queued_messages 100000",
          "max_inflight_messages 0",
          "log_dest stderr",
          "log_type error",
          "log_type warning",
          // Mosquitto 2.0.11 needs a plain listener besides a websockets
          // one ("Unable to start any listening sockets" otherwise).
          ...(transport === "tls"
            ? [
              `listener ${testPort} 127.0.0.1`,
              `certfile ${certs!.certFile}`,
              `keyfile ${certs!.keyFile}`,
            ]
            : transport === "ws"
            ? [`listener ${testPort}`, "protocol websockets"]
            : []),
          "",
        ].join("\n"),
      );
      // Mosquitto run as root drops to the mosquitto user: let it read.
      await Deno.chmod(tmp, 0o755);
      await Deno.chmod(conf, 0o644);
      cmd = [MOSQUITTO, "-c", conf];
      break;
    }
    case "aedes": {
      const prefix = await ensureAedes();
      cmd = [
        "node",
        join(ROOT, "bench", "_aedes_server.mjs"),
        String(port),
        prefix,
      ];
      break;
    }
    case "bare":
    case "relay":
    case "relay-handles":
      cmd = [
        Deno.execPath(),
        "run",
        "-A",
        ...startTaskV8Flags(),
        join(
          ROOT,
          "bench",
          name === "bare"
            ? "bare_accept.ts"
            : name === "relay"
            ? "bare_relay.ts"
            : "bare_relay_handles.ts",
        ),
        "--port",
        String(port),
      ];
      break;
    case "kite-plain":
      tmp = await Deno.makeTempDir({ prefix: "kite-bench-plain-" });
      cmd = [
        Deno.execPath(),
        "run",
        "-A",
        join(ROOT, "broker", "main.ts"),
        "--port",
        String(port),
        "--persistence-path",
        tmp,
      ];
      break;
    case "kite":
    case "kite-kv":
    case "kite-base":
    case "kite-acl":
    case "kite-scraped": {
      let auth: string[] = [];
      if (name === "kite-scraped") {
        httpPort = freePort();
        auth = ["--http-port", String(httpPort)];
      }
      if (name === "kite-kv") {
        tmp = await Deno.makeTempDir({ prefix: "kite-bench-kv-" });
      } else if (name === "kite-acl") {
        tmp = await Deno.makeTempDir({ prefix: "kite-bench-acl-" });
        auth = await writeAuthFiles(tmp);
      }
      cmd = [
        Deno.execPath(),
        "run",
        "-A",
        ...startTaskV8Flags(name === "kite-base" ? baseRoot()! : ROOT),
        join(name === "kite-base" ? baseRoot()! : ROOT, "broker", "main.ts"),
        "--port",
        String(port),
        ...(name === "kite-kv"
          ? ["--enable-persistence=true", "--persistence-path", tmp!]
          : ["--enable-persistence=false"]),
        ...auth,
        // The same limits as the Mosquitto config above, and no per-client
        // info logs (Mosquitto logs only errors and warnings too).
        "--host",
        "127.0.0.1",
        "--max-connections",
        "100000",
        "--max-queued-messages",
        "100000",
        "--max-inflight-messages",
        "65535",
        "--log-level",
        "warning",
        ...(transport === "tls"
          ? [
            "--tls-port",
            String(testPort),
            "--cert-file",
            certs!.certFile,
            "--key-file",
            certs!.keyFile,
          ]
          : transport === "ws"
          ? ["--ws-port", String(testPort)]
          : []),
      ];
      break;
    }
  }
  if (opts.cpu !== undefined && which("taskset")) {
    cmd = ["taskset", "-c", String(opts.cpu), ...cmd];
  }
  if (opts.nice !== undefined) cmd = ["nice", "-n", String(opts.nice), ...cmd];
  cmd = withFileLimit(cmd);
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  }).spawn();
  // Keep the tail of the output; draining also keeps the pipes from filling.
  let tail = "";
  const keep = async (s: ReadableStream<Uint8Array>) => {
    for await (const chunk of s.pipeThrough(new TextDecoderStream())) {
      tail = (tail + chunk).slice(-4096);
    }
  };
  const drained = Promise.all([keep(child.stdout), keep(child.stderr)]);
  let done = false;
  const status = child.status.then((s) => {
    done = true;
    return s;
  });
  const stop = async () => {
    if (!done) {
      try {
        child.kill("SIGTERM");
      } catch { /* exited */ }
      const timer = setTimeout(() => {
        try {
          child.kill("SIGKILL");
        } catch { /* exited */ }
      }, 5000);
      await status;
      clearTimeout(timer);
    }
    await drained;
    if (tmp) await Deno.remove(tmp, { recursive: true });
  };
  try {
    await waitForPort(testPort, () => done, opts.timeoutMs ?? 20_000);
  } catch (e) {
    await stop();
    throw new Error(`${name}: ${(e as Error).message}\n${tail}`);
  }
  const loadArgs = name === "kite-acl"
    ? ["--username", BENCH_USER, "--password", BENCH_PASSWORD]
    : [];
  if (transport === "tls") {
    loadArgs.push("--transport", "tls", "--cafile", certs!.caFile);
  } else if (transport === "ws") loadArgs.push("--transport", "ws");
  const running: RunningBroker = {
    name,
    port: testPort,
    pid: child.pid,
    output: () => tail,
    stop,
    loadArgs,
  };
  if (httpPort !== undefined) running.httpPort = httpPort;
  return running;
}

/**
 * `cmd` run with the soft limit of open files raised to the hard limit
 * (`sh` execs it, so the pid stays the command's).
 */
export function withFileLimit(cmd: string[]): string[] {
  if (!exists("/bin/sh")) return cmd;
  return [
    "/bin/sh",
    "-c",
    'ulimit -n "$(ulimit -Hn)" 2>/dev/null; exec "$@"',
    "sh",
    ...cmd,
  ];
}

const BENCH_USER = "bench";
const BENCH_PASSWORD = "bench-password";

/**
 * The ACL of `kite-acl`: the load tool's user may read and write
 * `kite-load/#`; other users, patterns and a deny rule make it look like a
 * real file (the rules of one client are compiled into one matcher).
 */
const BENCH_ACL = `# kite-acl benchmark
topic read public/#

user admin
topic readwrite #

user ${BENCH_USER}
topic readwrite kite-load/#
topic deny kite-load/secret/#
topic read public/#

user sensor
topic write sensors/+/temp

pattern read users/%u/inbox/#
pattern write devices/%c/status
`;

/**
 * Writes a password file (users `bench` and `admin`) and the ACL into
 * `dir`; returns the broker flags that use them.
 */
async function writeAuthFiles(dir: string): Promise<string[]> {
  const passwordFile = join(dir, "kite.passwd");
  const aclFile = join(dir, "kite.acl");
  // Fewer iterations than the default: 51 logins per run, not measured.
  const file = new PasswordFile({ iterations: 10_000 });
  await file.setUser(BENCH_USER, BENCH_PASSWORD);
  await file.setUser("admin", crypto.randomUUID());
  await file.save(passwordFile);
  await Deno.writeTextFile(aclFile, BENCH_ACL);
  return [
    "--password-file",
    passwordFile,
    "--acl-file",
    aclFile,
    "--no-allow-anonymous",
  ];
}
