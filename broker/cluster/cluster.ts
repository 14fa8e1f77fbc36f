/**
 * `Cluster`: one node of a Kite cluster on NATS JetStream, as the broker
 * sees it: the `Store` (JetStream), the `CorePlugin` (the dispatcher and
 * the session hooks) and the node's life (start, NATS outages, close).
 * See the README ("Running a cluster") for what is consistent and what is
 * eventually consistent.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Status } from "@nats-io/transport-node";
import type {
  BrokerCore,
  BrokerInit,
  CoreConnection,
  CorePlugin,
} from "../core.ts";
import type { Session } from "../session.ts";
import type { Store } from "../store/store.ts";
import { ControlServer } from "./control.ts";
import { ClusterDispatcher } from "./dispatcher.ts";
import { Handover } from "./handover.ts";
import { JetStreamStore } from "./jetstream_store.ts";
import { settingUp } from "./_setting_up.ts";
import { NatsLink } from "./link.ts";
import { HEARTBEAT_MS, Membership } from "./membership.ts";
import {
  closeNats,
  ClusterError,
  ClusterNames,
  connectNats,
  type NatsHandles,
  watchStatus,
} from "./nats.ts";
import { type NodeParts, Reaper } from "./reaper.ts";
import { SessionRegistry } from "./registry.ts";
import { RetainedSync } from "./retained_sync.ts";
import { RouteTable } from "./routes.ts";

const log = getLogger(["kite", "cluster"]);

/** `$SYS` topics of the cluster view (each node publishes its own). */
export const CLUSTER_SYS_TOPICS = {
  nodeId: "$SYS/broker/cluster/node",
  nodes: "$SYS/broker/cluster/nodes",
  nodeList: "$SYS/broker/cluster/nodes/list",
  connected: "$SYS/broker/cluster/connected",
  sent: "$SYS/broker/cluster/messages/sent",
  received: "$SYS/broker/cluster/messages/received",
  dropped: "$SYS/broker/cluster/messages/dropped",
} as const;

/** What the broker holds of a cluster node. */
export interface ClusterNode {
  /** The node id. */
  readonly nodeId: string;
  /** The store to hand the core. */
  readonly store: Store;
  /** The plugin to hand the core. */
  readonly plugin: CorePlugin;
  /** Starts following the cluster once the core is loaded. */
  attach(core: BrokerCore): Promise<void>;
  /** Nodes up (this one included). */
  readonly nodesUp: number;
  /** Leaves the cluster (after the core closed its connections). */
  close(): Promise<void>;
}

/** `host-port`, made a valid node id. */
function defaultNodeId(port: number | undefined, boot: string): string {
  let host = "kite";
  try {
    host = Deno.hostname();
  } catch {
    // no --allow-sys: a generic name
  }
  const p = port === undefined || port === 0 ? boot : String(port);
  return `${host}-${p}`.replace(/[^A-Za-z0-9_-]/g, "-").slice(0, 64);
}

function randomBoot(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Connects to NATS and prepares the node (streams, buckets, names).
 * Throws a `ClusterError` with a readable message when NATS is unreachable,
 * lacks JetStream, or the node id is taken by a running node.
 */
export async function startCluster(init: BrokerInit): Promise<ClusterNode> {
  const cfg = init.cluster ?? {};
  const urls = cfg.url ?? [];
  if (urls.length === 0) throw new ClusterError("cluster.url is empty");
  const boot = randomBoot();
  const nodeId = cfg.nodeId ?? defaultNodeId(init.port, boot);
  const names = new ClusterNames(cfg.name ?? "kite");
  const h = await connectNats(urls, nodeId);
  try {
    const membership = new Membership(h.pub, names, nodeId, boot);
    if ((await membership.ping(nodeId)) === "alive") {
      throw new ClusterError(
        `node id ${nodeId} is in use by a running node of cluster ${names.name}: give each node its own --node-id`,
      );
    }
    // A NATS cluster that is still forming has no JetStream peers yet.
    const store = await settingUp(() => JetStreamStore.open(h, names));
    const [routesKv, clientsKv] = await Promise.all([
      settingUp(() =>
        h.kvm.create(names.routesBucket, { history: 1, replicas: h.replicas })
      ),
      settingUp(() =>
        h.kvm.create(names.clientsBucket, { history: 1, replicas: h.replicas })
      ),
    ]);
    const retainedKv = await settingUp(() => h.kvm.open(names.retainedBucket));
    return new Cluster({
      h,
      names,
      nodeId,
      boot,
      store,
      membership,
      routes: new RouteTable(routesKv, nodeId, `${nodeId}.${boot}`),
      registry: new SessionRegistry(clientsKv, h.js, names.clientsBucket),
      retained: new RetainedSync(retainedKv),
    });
  } catch (e) {
    await closeNats(h);
    if (e instanceof ClusterError) throw e;
    throw new ClusterError(
      `cannot set up the cluster on NATS: ${(e as Error).message}`,
      { cause: e },
    );
  }
}

interface Parts {
  h: NatsHandles;
  names: ClusterNames;
  nodeId: string;
  boot: string;
  store: JetStreamStore;
  membership: Membership;
  routes: RouteTable;
  registry: SessionRegistry;
  retained: RetainedSync;
}

/** A cluster node (see the module doc). */
class Cluster implements ClusterNode, CorePlugin {
  readonly nodeId: string;
  readonly store: JetStreamStore;
  readonly plugin: CorePlugin = this;
  readonly #p: Parts;
  readonly #link: NatsLink;
  readonly #reaper: Reaper;
  readonly #handover: Handover;
  #core: BrokerCore | undefined;
  #dispatcher: ClusterDispatcher | undefined;
  #control: ControlServer | undefined;
  #sysTimer: ReturnType<typeof setInterval> | undefined;
  #orphanTimer: ReturnType<typeof setTimeout> | undefined;
  #statusLoops: Promise<void>[] = [];
  #closing = false;
  /** NATS is back, the sessions adopted elsewhere not dropped yet. */
  #reconciling = false;
  #routesSynced = 0;
  #retainedSynced = 0;

  constructor(p: Parts) {
    this.#p = p;
    this.nodeId = p.nodeId;
    this.store = p.store;
    this.#link = new NatsLink(p.h, p.names, p.routes, p.nodeId, p.boot);
    const node: NodeParts = {
      node: p.nodeId,
      boot: p.boot,
      names: p.names,
      registry: p.registry,
      store: p.store,
      core: () => this.#core!,
      dispatcher: () => this.#dispatcher!,
      up: () => this.#link.up,
    };
    this.#reaper = new Reaper({
      ...node,
      h: p.h,
      routes: p.routes,
      closing: () => this.#closing,
      lastSeen: (node, boot) => p.membership.lastSeen(node, boot),
      alive: (node, boot) => p.membership.bootOf(node) === boot,
    });
    this.#handover = new Handover({
      ...node,
      nc: p.h.pub,
      reaper: this.#reaper,
      inboxCaughtUp: (ms) => this.#link.caughtUp(ms),
    });
    p.store.settleHooks.push(
      () => this.#link.settle(),
      () => this.#syncPeers(),
    );
    // A failed store batch is written again once NATS is back and the
    // sessions other nodes adopted meanwhile are dropped (not written).
    p.store.waitUp = async () => {
      while ((!this.#link.up || this.#reconciling) && !this.#closing) {
        await new Promise((r) => setTimeout(r, 100));
      }
    };
    p.store.startEmpty = true;
    p.store.beforeCommit = this.#link.takeConfirms;
    p.membership.onDead = (node, boot) => {
      if (!this.#closing) this.#reaper.reap(node, boot);
    };
    p.membership.onBack = (node, boot) => this.#reaper.returned(node, boot);
  }

  get nodesUp(): number {
    return this.#p.membership.size;
  }

  // ------------------------------------------------------------ CorePlugin

  dispatcher(core: BrokerCore): ClusterDispatcher {
    const d = new ClusterDispatcher(
      core.settings.maxQos,
      this.#link,
      this.#p.routes,
    );
    this.#dispatcher = d;
    this.#link.attach(d, () => core.gate.markDirty(), () => core.flush());
    return d;
  }

  claim(conn: CoreConnection, cleanStart: boolean, expiry: number) {
    return this.#handover.claim(conn, cleanStart, expiry);
  }

  opened(conn: CoreConnection, session: Session): void {
    this.#handover.opened(conn, session);
  }

  abandoned(conn: CoreConnection): void {
    this.#handover.abandoned(conn);
  }

  closed(conn: CoreConnection, session: Session, discarded: boolean): void {
    this.#handover.closed(conn, session, discarded);
  }

  expired(session: Session): void {
    this.#handover.expired(session);
  }

  /**
   * Waits until the other nodes have what this node wrote to the route
   * table and the retained bucket: a SUBACK here is sent once every node
   * routes to it, a retained message's PUBACK once every node has it.
   */
  async #syncPeers(): Promise<void> {
    const { revision: routes } = await this.#p.routes.settle();
    const retained = this.store.retainedRevision;
    if (
      (routes <= this.#routesSynced && retained <= this.#retainedSynced) ||
      !this.#link.up
    ) return;
    const peers = this.#p.membership.peers();
    const body = new TextEncoder().encode(
      JSON.stringify({ op: "sync", routes, retained }),
    );
    await Promise.all(
      peers.map((peer) =>
        this.#p.h.pub.request(this.#p.names.control(peer.node), body, {
          timeout: 1000,
        }).catch(() => {})
      ),
    );
    if (routes > this.#routesSynced) this.#routesSynced = routes;
    if (retained > this.#retainedSynced) this.#retainedSynced = retained;
  }

  // ------------------------------------------------------------- life

  async attach(core: BrokerCore): Promise<void> {
    this.#core = core;
    const p = this.#p;
    await p.routes.start();
    await p.routes.resync();
    await p.retained.start(core);
    this.#control = new ControlServer(p.h.pub, p.names, p.nodeId, p.boot, {
      release: (id, user) => this.#handover.release(id, user),
      sync: async (routes, retained) => {
        await Promise.all([
          p.routes.waitApplied(routes, 1000),
          p.retained.waitApplied(retained, 1000),
        ]);
      },
    });
    p.membership.clients = () => core.connectedCount;
    p.membership.start();
    await settingUp(() => this.#link.startInbox());
    this.#statusLoops.push(
      watchStatus(p.h.pub, (s) => this.#onStatus(s)),
      watchStatus(p.h.queue, (s) => {
        if (s.type === "disconnect" || s.type === "reconnect") {
          log.debug("NATS queue connection: {type}", { type: s.type });
        }
      }),
    );
    // This node's earlier runs (a restart with the same node id).
    const entries = await p.registry.all();
    const ownRuns = new Set(
      entries.filter((v) => v.entry.n === p.nodeId && v.entry.b !== p.boot)
        .map((v) => v.entry.b),
    );
    for (const b of ownRuns) await this.#reaper.reap(p.nodeId, b);
    // Other nodes' runs that are gone: once heartbeats had time to arrive.
    this.#orphanTimer = setTimeout(() => {
      this.#orphanTimer = undefined;
      this.#reapOrphans().catch((e) =>
        log.warn("looking for orphaned sessions failed: {e}", { e })
      );
    }, 3 * HEARTBEAT_MS);
    const interval = core.settings.sysInterval;
    if (interval > 0) {
      this.#publishSys();
      this.#sysTimer = setInterval(() => this.#publishSys(), interval * 1000);
    }
    log.info(
      "Cluster {cluster}: node {node} joined ({nodes} node(s) up, NATS {url})",
      {
        cluster: p.names.name,
        node: p.nodeId,
        nodes: p.membership.size,
        url: p.h.pub.getServer(),
      },
    );
  }

  async #reapOrphans(): Promise<void> {
    const p = this.#p;
    const runs = new Map<string, string>();
    for (const v of await p.registry.all()) {
      if (v.entry.n === p.nodeId) continue;
      runs.set(`${v.entry.n}.${v.entry.b}`, v.entry.n);
    }
    for (const [run, node] of runs) {
      const boot = run.slice(node.length + 1);
      if (p.membership.bootOf(node) === boot) continue;
      if ((await p.membership.ping(node, boot)) === "dead") {
        await this.#reaper.reap(node, boot);
      }
    }
  }

  #onStatus(s: Status): void {
    if (s.type === "disconnect") {
      this.#link.up = false;
      this.#p.membership.disconnected();
      this.#link.pauseInbox();
      log.warn(
        "NATS connection lost: local clients keep working; messages to other nodes are paused, connects refused (0x88) until it is back",
      );
    } else if (s.type === "reconnect") {
      this.#reconciling = true;
      this.#link.up = true;
      this.#p.membership.reconnected();
      log.info("NATS connection back ({server}): resuming cross-node traffic", {
        server: s.server,
      });
      this.#afterReconnect().catch((e) =>
        log.warn("after the NATS reconnect: {e}", { e })
      );
    }
  }

  async #afterReconnect(): Promise<void> {
    const p = this.#p;
    let lost = 0;
    let renew = false;
    try {
      lost = await this.#handover.reconcile();
      // Found dead meanwhile: another node adopts (or adopted) what this
      // one held, its routes and its inbox; this one starts afresh.
      renew = lost > 0 || await p.routes.ownMissing() ||
        await this.#link.inboxGone() === true ||
        await p.registry.locked(`${p.nodeId}_${p.boot}`);
    } catch (e) {
      log.warn("after the NATS reconnect: {e}", { e });
    } finally {
      this.#reconciling = false;
    }
    if (renew) this.#link.renewInbox();
    await settingUp(() => this.#link.resumeInbox());
    if (renew) {
      p.routes.moveInbox(this.#link.inbox);
      log.warn(
        "The other nodes took this node for dead during the outage: new inbox {inbox}",
        { inbox: this.#link.inbox },
      );
    }
    await p.routes.resync();
    if (lost > 0) {
      log.warn(
        "{count} session(s) were adopted by other nodes during the outage: their clients were disconnected here",
        { count: lost },
      );
    }
  }

  #publishSys(): void {
    const core = this.#core;
    if (core === undefined) return;
    const p = this.#p;
    const stats = this.#link.stats;
    const nodes = [p.nodeId, ...p.membership.peers().map((x) => x.node)]
      .sort();
    const values: [string, string][] = [
      [CLUSTER_SYS_TOPICS.nodeId, p.nodeId],
      [CLUSTER_SYS_TOPICS.nodes, String(nodes.length)],
      [CLUSTER_SYS_TOPICS.nodeList, nodes.join(",")],
      [CLUSTER_SYS_TOPICS.connected, this.#link.up ? "1" : "0"],
      [CLUSTER_SYS_TOPICS.sent, String(stats.sent)],
      [CLUSTER_SYS_TOPICS.received, String(stats.received)],
      [CLUSTER_SYS_TOPICS.dropped, String(stats.dropped)],
    ];
    const enc = new TextEncoder();
    for (const [topic, value] of values) {
      core.publish(
        { topic, payload: enc.encode(value), qos: 0, retain: true },
        undefined,
      );
    }
  }

  async close(): Promise<void> {
    this.#closing = true;
    const p = this.#p;
    if (this.#sysTimer !== undefined) clearInterval(this.#sysTimer);
    if (this.#orphanTimer !== undefined) clearTimeout(this.#orphanTimer);
    p.membership.stop();
    this.#reaper.stop();
    await Promise.allSettled(this.#reaperRuns());
    await p.registry.flush();
    this.#control?.stop();
    await this.#link.close();
    await p.routes.close(false);
    await p.retained.stop();
    await closeNats(p.h);
    await Promise.allSettled(this.#statusLoops);
    log.info("Left cluster {cluster}", { cluster: p.names.name });
  }

  #reaperRuns(): Promise<void>[] {
    return this.#reaper.running();
  }
}
