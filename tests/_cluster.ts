/**
 * Test helper: a Kite cluster of `broker/main.ts` subprocesses on one
 * nats-server (tests/_nats.ts), each node on its own loopback port. The
 * helper waits until every node has heard every other (heartbeats), so a
 * test starts with the membership complete.
 *
 * ```ts ignore
 * await using nats = await startNats();
 * await using cluster = await startKiteCluster(nats.url, ["a", "b", "c"]);
 * cluster.node("a").port;
 * ```
 *
 * @module
 */

import { type BrokerProcess, spawnBroker } from "./_subprocess.ts";

/** One node of a test cluster. */
export interface KiteNode {
  readonly id: string;
  readonly port: number;
  readonly broker: BrokerProcess;
  /** `{ addr }` for helpers that take a broker (MQTT.js). */
  readonly addr: { hostname: string; port: number };
  /** Everything it logged. */
  log(): string;
  /** Resolves when its log matches `re` (from character `from` on). */
  waitForLog(re: RegExp, ms?: number, from?: number): Promise<void>;
}

/** A running test cluster. */
export interface KiteCluster extends AsyncDisposable {
  readonly nodes: KiteNode[];
  node(id: string): KiteNode;
  /** Starts one more node (same cluster); waits until all know it. */
  add(id: string, extra?: string[]): Promise<KiteNode>;
  /** Kills a node (SIGKILL) and forgets it. */
  kill(id: string): Promise<void>;
  /** Stops a node (SIGTERM, graceful) and forgets it. */
  stop(id: string): Promise<void>;
}

/** The flags of a node of cluster `name` on `url`. */
export function nodeArgs(
  url: string | string[],
  id: string,
  name: string,
): string[] {
  const urls = Array.isArray(url) ? url : [url];
  return [
    ...urls.flatMap((u) => ["--cluster-url", u]),
    "--node-id",
    id,
    "--cluster-name",
    name,
  ];
}

async function spawnNode(
  url: string | string[],
  id: string,
  name: string,
  extra: string[],
  env: Record<string, string> = {},
): Promise<KiteNode> {
  const broker = await spawnBroker([...nodeArgs(url, id, name), ...extra], {
    env: { KITE_LOG_LEVEL: "debug", ...env },
  });
  const p = broker.process;
  return {
    id,
    port: broker.port,
    broker,
    addr: { hostname: "127.0.0.1", port: broker.port },
    log: () => p.stdout + p.stderr,
    waitForLog: async (re, ms = 10_000, from = 0) => {
      const sticky = new RegExp(`[\\s\\S]{${from}}[\\s\\S]*?${re.source}`);
      await p.waitForOutput(sticky, "all", ms, `node ${id}: ${re}`);
    },
  };
}

/** Waits until each node logged that each other node is up. */
async function meshed(nodes: KiteNode[]): Promise<void> {
  await Promise.all(
    nodes.flatMap((n) =>
      nodes.filter((o) => o !== n).map((o) =>
        n.waitForLog(new RegExp(`Cluster node ${o.id} is up`), 10_000)
      )
    ),
  );
}

/**
 * Starts nodes `ids` of a cluster on the NATS at `url` (a fresh cluster
 * name unless `name` is given); `extra` flags go to every node.
 */
export async function startKiteCluster(
  url: string | string[],
  ids: string[],
  options: {
    name?: string;
    extra?: string[];
    /** Each node's NATS URLs (default `url` for all). */
    urlsOf?: (index: number) => string[];
    /** Environment variables of each node (besides its log level). */
    envOf?: (index: number) => Record<string, string>;
  } = {},
): Promise<KiteCluster> {
  const name = options.name ??
    `t${crypto.randomUUID().replaceAll("-", "").slice(0, 10)}`;
  const extra = options.extra ?? [];
  const nodes: KiteNode[] = [];
  const started = await Promise.allSettled(
    ids.map((id, i) =>
      spawnNode(
        options.urlsOf?.(i) ?? url,
        id,
        name,
        extra,
        options.envOf?.(i),
      )
    ),
  );
  for (const s of started) if (s.status === "fulfilled") nodes.push(s.value);
  const failed = started.find((s) => s.status === "rejected");
  if (failed !== undefined) {
    await Promise.all(nodes.map((n) => n.broker.process.kill()));
    throw (failed as PromiseRejectedResult).reason;
  }
  const cluster: KiteCluster = {
    nodes,
    node(id) {
      const n = nodes.find((x) => x.id === id);
      if (n === undefined) throw new Error(`no node ${id}`);
      return n;
    },
    async add(id, more = []) {
      const n = await spawnNode(url, id, name, [...extra, ...more]);
      nodes.push(n);
      await meshed(nodes);
      return n;
    },
    async kill(id) {
      const n = cluster.node(id);
      nodes.splice(nodes.indexOf(n), 1);
      await n.broker.process.kill();
    },
    async stop(id) {
      const n = cluster.node(id);
      nodes.splice(nodes.indexOf(n), 1);
      try {
        n.broker.process.child.kill("SIGTERM");
      } catch { /* gone */ }
      await n.broker.process.exit(15_000, `node ${id} to stop`);
    },
    async [Symbol.asyncDispose]() {
      await Promise.all(nodes.map((n) => n.broker.process.kill()));
    },
  };
  try {
    await meshed(nodes);
  } catch (e) {
    await cluster[Symbol.asyncDispose]();
    throw e;
  }
  return cluster;
}
