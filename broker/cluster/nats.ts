/**
 * The NATS side of a node: two connections to the same servers, JetStream
 * and KV handles, and the names of everything a cluster uses.
 *
 * - `pub` (no echo) publishes, holds the plain subscriptions (a node never
 *   gets its own messages back on them) and answers control requests;
 * - `queue` holds the queue subscriptions of shared groups: a message this
 *   node published must be able to reach its own members through NATS's
 *   choice, which no-echo would prevent.
 *
 * @module
 */

import {
  connect,
  type NatsConnection,
  type Status,
} from "@nats-io/transport-node";
import {
  DeliverPolicy,
  jetstream,
  type JetStreamClient,
  type JetStreamManager,
  jetstreamManager,
  type JsMsg,
} from "@nats-io/jetstream";
import { Kvm } from "@nats-io/kv";

/** A cluster could not start: one line a person can act on. */
export class ClusterError extends Error {
  /** Wraps `message` (and its `cause`). */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "ClusterError";
  }
}

/** Every NATS name a cluster uses, from its name. */
export class ClusterNames {
  /** The cluster name (prefix of MQTT subjects). */
  readonly name: string;
  /** Root of the internal subjects. */
  readonly internal: string;
  /** Carries topics NATS cannot (see subjects.ts). */
  readonly raw: string;
  /** Node heartbeats. */
  readonly heartbeat: string;
  /** Stream of session state (JetStreamStore). */
  readonly stateStream: string;
  /** Stream of the nodes' inboxes (durable QoS 1/2 between nodes). */
  readonly inboxStream: string;
  /** KV bucket of retained messages. */
  readonly retainedBucket: string;
  /** KV bucket of the session registry. */
  readonly clientsBucket: string;
  /** KV bucket of the route table. */
  readonly routesBucket: string;

  /** Names for cluster `name`. */
  constructor(name: string) {
    this.name = name;
    this.internal = `_kite.${name}`;
    this.raw = `${this.internal}.raw`;
    this.heartbeat = `${this.internal}.hb`;
    this.stateStream = `${name}_state`;
    this.inboxStream = `${name}_inbox`;
    this.retainedBucket = `${name}_retained`;
    this.clientsBucket = `${name}_clients`;
    this.routesBucket = `${name}_routes`;
  }

  /** The control subject of a node (ping, takeover). */
  control(node: string): string {
    return `${this.internal}.ctl.${node}`;
  }

  /** The subject shared messages of a leaving member go to. */
  group(queue: string): string {
    return `${this.internal}.g.${queue}`;
  }

  /** A node's inbox subject (`inbox` is `node.boot`). */
  inbox(inbox: string): string {
    return `${this.internal}.in.${inbox}`;
  }

  /** The subject prefix of the state records of a client (token). */
  state(clientToken: string): string {
    return `${this.internal}.s.${clientToken}`;
  }
}

/** The NATS connections and handles of one node. */
export interface NatsHandles {
  readonly pub: NatsConnection;
  readonly queue: NatsConnection;
  readonly js: JetStreamClient;
  readonly jsm: JetStreamManager;
  readonly kvm: Kvm;
  /**
   * Replicas of every stream and bucket: 3 on a NATS cluster of three
   * servers or more, else as many servers as there are (1 on one server).
   */
  readonly replicas: number;
}

/**
 * Connects to `urls` (twice, see the module doc) and checks JetStream.
 * Throws a `ClusterError` saying what is wrong: NATS unreachable, or
 * without JetStream.
 */
export async function connectNats(
  urls: readonly string[],
  nodeId: string,
): Promise<NatsHandles> {
  const servers = urls.map((u) => u.replace(/^nats:\/\//, ""));
  const where = urls.join(", ");
  const options = {
    servers,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 250,
    reconnectJitter: 100,
    pingInterval: 5000,
    maxPingOut: 3,
    timeout: 5000,
    // The first URL first (a node near its NATS server), the rest on
    // failover.
    noRandomize: true,
    // Each request would otherwise make two Errors (stack traces) up
    // front: a JetStream publish is a request.
    noAsyncTraces: true,
  };
  let pub: NatsConnection | undefined;
  let queue: NatsConnection | undefined;
  try {
    pub = await connect({ ...options, name: `kite-${nodeId}`, noEcho: true });
    queue = await connect({ ...options, name: `kite-${nodeId}-queue` });
  } catch (e) {
    await pub?.close().catch(() => {});
    throw new ClusterError(
      `cannot reach NATS at ${where}: ${(e as Error).message}`,
      { cause: e },
    );
  }
  // A NATS cluster that is starting elects its JetStream leader first.
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const jsm = await jetstreamManager(pub, { timeout: 5000 });
      const servers = pub.info?.cluster === undefined
        ? 1
        : Math.max(1, pub.info.connect_urls?.length ?? 1);
      return {
        pub,
        queue,
        js: jetstream(pub, { timeout: 5000 }),
        jsm,
        kvm: new Kvm(pub),
        replicas: Math.min(3, servers),
      };
    } catch (e) {
      const message = (e as Error).message;
      const notYet = /timeout|temporarily unavailable|503/i.test(message) &&
        !/not enabled/i.test(message);
      if (notYet && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      await pub.close().catch(() => {});
      await queue.close().catch(() => {});
      throw new ClusterError(
        `NATS at ${where} has no JetStream (start nats-server with -js): ${message}`,
        { cause: e },
      );
    }
  }
}

/** Closes both connections (what is buffered is sent first). */
export async function closeNats(h: NatsHandles): Promise<void> {
  await Promise.allSettled([h.pub.drain(), h.queue.drain()]);
  await Promise.allSettled([h.pub.closed(), h.queue.closed()]);
}

/** Calls `onStatus` for each status event of `nc` until it closes. */
export function watchStatus(
  nc: NatsConnection,
  onStatus: (s: Status) => void,
): Promise<void> {
  return (async () => {
    for await (const s of nc.status()) onStatus(s);
  })();
}

/**
 * Every message of `stream` on `filter`, in order (an ordered consumer
 * read to the end).
 */
export async function readAll(
  js: JetStreamClient,
  stream: string,
  filter: string,
  lastPerSubject = false,
): Promise<JsMsg[]> {
  const c = await js.consumers.get(stream, {
    filter_subjects: filter,
    ...(lastPerSubject ? { deliver_policy: DeliverPolicy.LastPerSubject } : {}),
  });
  const info = await c.info(true);
  if (info.num_pending === 0) {
    await c.delete().catch(() => {});
    return [];
  }
  const out: JsMsg[] = [];
  const messages = await c.consume();
  for await (const m of messages) {
    out.push(m);
    if (m.info.pending === 0) break;
  }
  await messages.close();
  return out;
}
