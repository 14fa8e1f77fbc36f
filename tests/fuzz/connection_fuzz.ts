/**
 * Fuzz target 2: a broker (in-process, over in-memory duplexes, options
 * drawn from the seed) fed random packet sequences. Each batch dials 1-4
 * clients that send valid packets in random orders and states (CONNECT
 * first or not, PUBLISH of every QoS, acks with random ids,
 * SUBSCRIBE/UNSUBSCRIBE, AUTH, DISCONNECT, a second CONNECT, random
 * properties and topic aliases) interleaved with mutated packets and
 * garbage, written in random chunkings, concurrently (see _client_plan.ts).
 * Hooks answer now or later (user names and topics `slow`), refuse (`bad`,
 * `deny/`), and run a toy enhanced authentication (`TOY`).
 *
 * Invariants checked after each batch (_client_checks.ts for the output):
 * - nothing escapes the broker: no error logged by it (an exception that is
 *   not an `MqttError` inside a handler is logged as "internal error"), no
 *   unhandled rejection, no uncaught error;
 * - every connection ends or answers: every PINGREQ the broker decoded
 *   (each client sends one last) gets its PINGRESP, or the connection
 *   closes; one whose bytes cannot decode is closed; when a client closes,
 *   the broker releases its end;
 * - what the broker sends decodes, comes in protocol order (CONNACK first,
 *   ...), fits the client's Maximum Packet Size, uses only topic aliases the
 *   client allowed, respects the broker's maximum QoS and retain setting,
 *   and keeps within the send window (Receive Maximum);
 * - a well-behaved canary client on the same broker still gets its QoS 1
 *   message;
 * - memory stays bounded: every other batch, once the fuzzed clients are
 *   gone and their client ids reconnected with a clean session,
 *   `sessionCount`, `subscriptionCount` and `connectedClients` are back to
 *   the canary's (the other batches leave their sessions to the next, so
 *   resumed sessions are fuzzed too); the heap after a GC stays flat.
 *
 * A failure is shrunk on fresh brokers (the batches since the last clean-up,
 * then clients, then steps) and printed as hex.
 *
 * @module
 */

import { configure, type LogRecord, reset } from "@logtape/logtape";
import { ReasonCode } from "../../codec/mod.ts";
import type { Duplex } from "../../codec/duplex.ts";
import { Broker, type BrokerInit } from "../../broker/mod.ts";
import type { Listener, ListenerAddr } from "../../broker/listen/listener.ts";
import { memoryDuplexPair } from "../_memory_duplex.ts";
import { pipePair } from "./_pipe.ts";
import { Gen, prng } from "../codec_random_gen.ts";
import { Peer } from "./_peer.ts";
import {
  type ClientPlan,
  connectionFixture,
  planClient,
  readPause,
  sequenceFixture,
  tick,
  writePlan,
} from "./_client_plan.ts";
import { checkOutput, expectation, type Failure } from "./_client_checks.ts";
import {
  beat,
  type FoundFailure,
  type FuzzRunOptions,
  type FuzzRunResult,
  mixSeed,
  signature,
} from "./decoder_fuzz.ts";

export {
  type ClientPlan,
  connectionFixture,
  sequenceFixture,
} from "./_client_plan.ts";

/** How long an answer may take (in memory it takes microseconds). */
const ANSWER_MS = 3000;

/**
 * A listener that tracks the broker's ends (accepted, and not yet closed).
 * `dial()` makes a `memoryDuplexPair()` (writes resolve at once), or with
 * `backpressure` a `pipePair()` (writes resolve once the client read them:
 * a slow reader holds the broker's writes up).
 */
class TrackingListener implements Listener {
  readonly addr: ListenerAddr = {
    protocol: "mqtt",
    hostname: "memory",
    port: 1,
  };
  readonly open = new Set<Duplex>();
  accepted = 0;
  dialed = 0;
  #pending: Duplex[] = [];
  #waiter: ((d: Duplex | null) => void) | undefined;
  #closed = false;

  dial(backpressure = false): Duplex {
    const n = ++this.dialed;
    const [client, server] = backpressure ? pipePair(n) : memoryDuplexPair({
      remoteAddressA: "memory-broker",
      remoteAddressB: `memory-client:${n}`,
    });
    const w = this.#waiter;
    this.#waiter = undefined;
    if (w !== undefined) w(server);
    else this.#pending.push(server);
    return client;
  }

  async *accept(): AsyncIterable<Duplex> {
    while (true) {
      const d = this.#pending.shift() ??
        (this.#closed
          ? null
          : await new Promise<Duplex | null>((r) => this.#waiter = r));
      if (d === null) return;
      this.accepted++;
      const open = this.open;
      const w: Duplex = {
        remoteAddress: d.remoteAddress,
        read: () => d.read(),
        write: (b) => d.write(b),
        close() {
          open.delete(w);
          d.close();
        },
      };
      open.add(w);
      yield w;
    }
  }

  close(): void {
    this.#closed = true;
    for (const d of this.#pending.splice(0)) d.close();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.(null);
  }
}

/** The options a run's broker gets (drawn from the seed). */
function brokerOptions(g: Gen, hooks: BrokerInit): BrokerInit {
  return {
    sysInterval: 0,
    maxPacketSize: g.pick([64 * 1024, 256 * 1024]),
    topicAliasMaximum: g.pick([10, 10, 2, 0]),
    receiveMaximum: g.pick([20, 65535]),
    maxQueuedMessages: g.pick([10, 100]),
    maxInflightMessages: g.pick([1000, 2]),
    queueQos0Messages: g.bool(0.3),
    maxQos: g.pick([1, 2, 2] as const),
    retainAvailable: g.bool(0.8),
    sharedSubscriptionAvailable: g.bool(0.8),
    wildcardSubscriptionAvailable: g.bool(0.8),
    sessionExpiryInterval: g.pick([3600, 3600, 1]),
    serverKeepAlive: g.pick([0, 0, 30]),
    outputBufferLimit: g.pick([1024 * 1024, 4096]),
    maxConnections: g.pick([10_000, 6]),
    allowAnonymous: g.bool(0.8),
    // The admin API ends sessions owned by another identity (clean-up).
    httpPort: 0,
    ...hooks,
  };
}

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

function renderLog(r: LogRecord): string {
  const msg = r.message.map((part) =>
    typeof part === "string" ? part : describe(part)
  ).join("");
  const err = r.properties.error;
  const stack = err instanceof Error && err.stack ? `\n${err.stack}` : "";
  return `[${r.level}] ${r.category.join(".")}: ${msg}${stack}`;
}

/**
 * A broker under fuzz, with its canary clients; `batch()` runs one batch
 * and returns the first broken invariant.
 */
export class ConnectionFuzzer {
  readonly broker: Broker;
  readonly listener = new TrackingListener();
  /** Client ids the hooks saw during the batch (to clean up). */
  readonly ids = new Set<string>();
  #errors: string[] = [];
  #warnings = new Map<string, number>();
  #sub: Peer | undefined;
  #pub: Peer | undefined;
  #canaryCount = 0;
  #retainedSweep = 0;

  private constructor(seed: number) {
    const g = new Gen(prng(mixSeed(seed, -1)));
    const ids = this.ids;
    const later = <T>(v: T) => new Promise<T>((r) => setTimeout(() => r(v), 0));
    const hooks: BrokerInit = {
      authenticate: (ctx) => {
        ids.add(ctx.clientId);
        if (ctx.username === "bad") return ReasonCode.BadUserNameOrPassword;
        if (ctx.username === "slow") return later(ReasonCode.Success);
        return ReasonCode.Success;
      },
      authorizePublish: (_c, topic) => {
        if (topic.startsWith("deny/")) return ReasonCode.NotAuthorized;
        if (topic.startsWith("slow/")) return later(ReasonCode.Success);
        return ReasonCode.Success;
      },
      authorizeSubscribe: (_c, filter, qos) => {
        if (filter.startsWith("deny/")) return ReasonCode.NotAuthorized;
        if (filter.startsWith("slow/")) return later(qos);
        return qos;
      },
      enhancedAuth: (ctx) => {
        ids.add(ctx.clientId);
        if (ctx.method !== "TOY") return undefined;
        return {
          step: (data) => {
            const text = new TextDecoder().decode(data);
            if (text === "ok") {
              return { reasonCode: ReasonCode.Success, username: "toy" };
            }
            if (text === "more") {
              return later({
                reasonCode: ReasonCode.ContinueAuthentication,
                data: new TextEncoder().encode("again"),
              });
            }
            return { reasonCode: ReasonCode.NotAuthorized };
          },
        };
      },
    };
    this.broker = new Broker(brokerOptions(g, hooks));
  }

  /** The broker's maximum packet size. */
  get maxPacketSize(): number {
    return this.broker.settings.maxPacketSize;
  }

  /** Warnings the broker logged, with counts (not failures). */
  get warnings(): ReadonlyMap<string, number> {
    return this.#warnings;
  }

  #onRejection = (e: PromiseRejectionEvent) => {
    e.preventDefault();
    this.#errors.push(
      `unhandled rejection: ${describe(e.reason)}${
        e.reason instanceof Error && e.reason.stack ? `\n${e.reason.stack}` : ""
      }`,
    );
  };

  #onError = (e: ErrorEvent) => {
    e.preventDefault();
    this.#errors.push(`uncaught error: ${describe(e.error ?? e.message)}`);
  };

  /** Starts a broker with its canary clients (and log capture). */
  static async open(seed: number): Promise<ConnectionFuzzer> {
    const f = new ConnectionFuzzer(seed);
    await configure({
      sinks: {
        capture: (r: LogRecord) => {
          if (r.level === "error" || r.level === "fatal") {
            f.#errors.push(renderLog(r));
          } else if (r.level === "warning") {
            const raw = r.rawMessage;
            const key = `${r.category.join(".")}: ${
              typeof raw === "string" ? raw : raw.join("{}")
            }`;
            f.#warnings.set(key, (f.#warnings.get(key) ?? 0) + 1);
          }
        },
      },
      loggers: [
        { category: ["kite"], sinks: ["capture"], lowestLevel: "warning" },
        { category: ["logtape", "meta"], sinks: [], lowestLevel: "warning" },
      ],
      reset: true,
    });
    globalThis.addEventListener("unhandledrejection", f.#onRejection);
    globalThis.addEventListener("error", f.#onError);
    await f.broker.start();
    f.broker.serve(f.listener);
    const sub = new Peer(f.listener.dial(), 5);
    f.#sub = sub;
    sub.onPacket = (p) => {
      if (p.type === "publish" && p.qos === 1) {
        sub.send({ type: "puback", packetId: p.packetId! });
      }
    };
    await sub.send({
      type: "connect",
      protocolVersion: 5,
      clientId: "canary-sub",
      username: "canary",
      cleanStart: true,
      keepAlive: 0,
    });
    await sub.send({
      type: "subscribe",
      packetId: 1,
      subscriptions: [{ filter: "canary/t", qos: 1 }],
    });
    const pub = new Peer(f.listener.dial(), 4);
    f.#pub = pub;
    await pub.send({
      type: "connect",
      protocolVersion: 4,
      clientId: "canary-pub",
      username: "canary",
      cleanStart: true,
      keepAlive: 0,
    });
    const ok = await sub.expect((p) => p.type === "suback", ANSWER_MS) &&
      await pub.expect((p) => p.type === "connack", ANSWER_MS);
    if (!ok) {
      await f.close();
      throw new Error("the canary clients did not connect");
    }
    f.ids.clear(); // the canaries' own
    return f;
  }

  /** Plans batch `i` of a run with `seed`. */
  static plan(seed: number, i: number): ClientPlan[] {
    const g = new Gen(prng(mixSeed(seed, i)));
    const n = g.int(1, 4);
    const plans: ClientPlan[] = [];
    for (let k = 0; k < n; k++) plans.push(planClient(g));
    return plans;
  }

  /**
   * Runs one batch of clients; returns the first broken invariant. With
   * `clean`, the batch ends by reconnecting every client id seen so far
   * with a clean session and checking the counts; without, sessions (and
   * their queued and in-flight messages) stay for the next batch to resume.
   */
  async batch(
    plans: readonly ClientPlan[],
    clean = true,
  ): Promise<Failure | undefined> {
    const max = this.maxPacketSize;
    const peers = plans.map((plan) => {
      const e = expectation(plan, max);
      return {
        plan,
        e,
        peer: new Peer(
          this.listener.dial((plan.reader ?? "normal") !== "normal"),
          e.outVersion,
          readPause(plan),
        ),
      };
    });
    let failure: Failure | undefined;
    const fail = (kind: string, message: string) => {
      failure ??= { kind, message };
    };
    try {
      await Promise.all(peers.map(async ({ plan, e, peer }, k) => {
        await writePlan(plan, peer);
        if (plan.abrupt || plan.reader === "mute") return;
        const answered = await peer.until(
          () =>
            peer.isClosed || peer.decodeError !== undefined ||
            (e.state === "complete" &&
              peer.received.filter((p) => p.type === "pingresp").length >=
                e.pings),
          e.state === "partial" ? 0 : ANSWER_MS,
        );
        if (!answered && e.state !== "partial") {
          fail(
            "no answer",
            `client ${k}: ${
              e.state === "error"
                ? "bytes the decoder refuses, and the connection stays open"
                : `${e.pings} PINGREQs decoded, ${
                  peer.received.filter((p) => p.type === "pingresp").length
                } PINGRESPs and no close`
            } after ${ANSWER_MS} ms`,
          );
        }
      }));
      for (const [k, { peer, e }] of peers.entries()) {
        const f = checkOutput(peer, e, this.broker.settings);
        if (f !== undefined) fail(f.kind, `client ${k}: ${f.message}`);
      }
    } finally {
      for (const { peer } of peers) await peer.close();
    }
    if (failure === undefined) {
      // Every broker end released once its client closed.
      const released = await this.#settle(
        () =>
          this.listener.accepted === this.listener.dialed &&
          this.listener.open.size === 2,
      );
      if (!released) {
        fail(
          "not released",
          `${
            this.listener.open.size - 2
          } broker end(s) still open after their clients closed`,
        );
      }
    }
    if (failure === undefined && clean) failure = await this.#cleanUp();
    if (failure === undefined) failure = await this.#canary();
    // Unhandled rejections are reported a turn or two later.
    await tick();
    await tick();
    const errors = this.#errors.splice(0);
    if (errors.length > 0) {
      failure = {
        kind: errors[0]!.startsWith("unhandled")
          ? "unhandled rejection"
          : errors[0]!.startsWith("uncaught")
          ? "uncaught error"
          : "error logged",
        message: errors.join("\n"),
      };
    }
    return failure;
  }

  /** Waits (bounded) until `cond` holds, giving the broker turns. */
  async #settle(cond: () => boolean, ms = ANSWER_MS): Promise<boolean> {
    const deadline = Date.now() + ms;
    while (!cond()) {
      if (Date.now() > deadline) return false;
      await tick();
    }
    return true;
  }

  /**
   * Reconnects each client id of the batch with a clean session (session
   * expiry 0) and disconnects: what is left must be the canary's.
   */
  async #cleanUp(): Promise<Failure | undefined> {
    const ids = [...this.ids];
    this.ids.clear();
    for (const clientId of ids) {
      const peer = new Peer(this.listener.dial(), 5);
      try {
        await peer.send({
          type: "connect",
          protocolVersion: 5,
          clientId,
          username: "canary",
          cleanStart: true,
          keepAlive: 0,
        });
        const ack = await peer.expect((p) => p.type === "connack", ANSWER_MS);
        if (
          ack?.type === "connack" && ack.reasonCode === 0x87 &&
          ack.properties?.reasonString === "client identifier in use"
        ) {
          // The session belongs to another identity (a fuzzed user name or
          // an enhanced authentication): end it through the admin API.
          const http = this.broker.httpAddr!;
          const r = await fetch(
            `http://127.0.0.1:${http.port}/api/v1/sessions/${
              encodeURIComponent(clientId)
            }`,
            { method: "DELETE" },
          );
          await r.body?.cancel();
          if (!r.ok) {
            return {
              kind: "clean-up refused",
              message: `DELETE /api/v1/sessions/${clientId}: ${r.status}`,
            };
          }
          continue;
        }
        if (ack?.type !== "connack" || ack.reasonCode !== 0) {
          return {
            kind: "clean-up refused",
            message: `a clean CONNECT for ${clientId} got ${
              ack === undefined ? "no CONNACK" : JSON.stringify(ack)
            }`,
          };
        }
        await peer.send({ type: "disconnect" });
        await peer.until(() => peer.isClosed, ANSWER_MS);
      } finally {
        await peer.close();
      }
    }
    if (++this.#retainedSweep % 20 === 0) await this.#clearRetained();
    const b = this.broker;
    const ok = await this.#settle(() =>
      b.sessionCount === 2 && b.subscriptionCount === 1 &&
      b.connectedClients === 2 && this.listener.open.size === 2
    );
    if (!ok) {
      return {
        kind: "not cleaned up",
        message:
          `after the fuzzed clients left with clean sessions: ${b.sessionCount} sessions (want 2), ${b.subscriptionCount} subscriptions (want 1), ${b.connectedClients} connected (want 2), ${this.listener.open.size} broker ends open (want 2)`,
      };
    }
    return undefined;
  }

  /** Clears the retained messages a `#` subscriber gets. */
  async #clearRetained(): Promise<void> {
    const peer = new Peer(this.listener.dial(), 5);
    try {
      await peer.send({
        type: "connect",
        protocolVersion: 5,
        clientId: "canary-cleaner",
        username: "canary",
        cleanStart: true,
        keepAlive: 0,
      });
      await peer.send({
        type: "subscribe",
        packetId: 1,
        subscriptions: [{ filter: "#", qos: 0 }],
      });
      await peer.expect((p) => p.type === "suback", ANSWER_MS);
      await peer.send({ type: "pingreq" });
      await peer.expect((p) => p.type === "pingresp", ANSWER_MS);
      const topics = new Set<string>();
      for (const p of peer.received) {
        if (p.type === "publish" && p.retain) topics.add(p.topic);
      }
      for (const topic of topics) {
        await peer.send({
          type: "publish",
          topic,
          payload: new Uint8Array(0),
          qos: 0,
          retain: true,
          dup: false,
        });
      }
      await peer.send({ type: "disconnect" });
      await peer.until(() => peer.isClosed, ANSWER_MS);
    } finally {
      await peer.close();
    }
  }

  /** The canary publishes a QoS 1 message; its subscriber must get it. */
  async #canary(): Promise<Failure | undefined> {
    const n = ++this.#canaryCount;
    const sub = this.#sub!;
    const pub = this.#pub!;
    // One topic (wildcards may be off): each message told by its payload.
    const topic = "canary/t";
    const payload = new TextEncoder().encode(String(n));
    const from = sub.received.length;
    const packetId = (n % 65535) + 1;
    await pub.send({
      type: "publish",
      topic,
      payload,
      qos: 1,
      retain: false,
      dup: false,
      packetId,
    });
    const ack = await pub.expect(
      (p) => p.type === "puback" && p.packetId === packetId,
      ANSWER_MS,
    );
    const got = await sub.expect(
      (p) =>
        p.type === "publish" && p.topic === topic &&
        new TextDecoder().decode(p.payload) === String(n),
      ANSWER_MS,
      from,
    );
    if (ack === undefined || got === undefined) {
      return {
        kind: "canary",
        message: `the canary ${
          ack === undefined
            ? "publisher got no PUBACK"
            : "subscriber got nothing"
        } (publisher ${pub.isClosed ? "closed" : "open"}, subscriber ${
          sub.isClosed ? "closed" : "open"
        })`,
      };
    }
    // The canaries live as long as the run: keep what they hold bounded.
    sub.received.length = 0;
    pub.received.length = 0;
    return undefined;
  }

  /** Closes the canaries and the broker, and restores logging. */
  async close(): Promise<void> {
    try {
      await this.#sub?.close();
      await this.#pub?.close();
      await this.broker.close();
      await tick();
      await tick();
    } finally {
      globalThis.removeEventListener("unhandledrejection", this.#onRejection);
      globalThis.removeEventListener("error", this.#onError);
      await reset();
    }
  }
}

/**
 * Runs batches one after the other on a fresh broker (only the last one
 * cleans up, so sessions carry over as in the run); the first failure.
 */
export async function replayBatches(
  seed: number,
  batches: readonly (readonly ClientPlan[])[],
): Promise<Failure | undefined> {
  const f = await ConnectionFuzzer.open(seed);
  try {
    for (let i = 0; i < batches.length; i++) {
      const fail = await f.batch(batches[i]!, i + 1 === batches.length);
      if (fail !== undefined) return fail;
    }
    return undefined;
  } finally {
    await f.close();
  }
}

/**
 * Shrinks a failing sequence of batches on fresh brokers: the last batch
 * alone if it fails alone, else earlier batches dropped; then clients, then
 * steps (each client's sentinel stays). Returns undefined when the
 * sequence does not fail on a fresh broker.
 */
export async function shrinkBatches(
  seed: number,
  batches: readonly ClientPlan[][],
  kind: string,
  budget = 300,
  progress?: Int32Array,
): Promise<ClientPlan[][] | undefined> {
  let tries = 0;
  const fails = async (b: ClientPlan[][]) => {
    if (progress !== undefined) beat(progress);
    return tries++ < budget && (await replayBatches(seed, b))?.kind === kind;
  };
  let cur = batches.map((b) => b.map((p) => ({ ...p })));
  if (cur.length > 1 && await fails([cur[cur.length - 1]!])) {
    cur = [cur[cur.length - 1]!];
  } else if (!(await fails(cur))) return undefined;
  for (let b = 0; b < cur.length - 1;) {
    const cand = cur.filter((_, j) => j !== b);
    if (await fails(cand)) cur = cand;
    else b++;
  }
  for (let b = 0; b < cur.length; b++) {
    for (let k = 0; k < cur[b]!.length && cur[b]!.length > 1;) {
      const cand = cur.slice();
      cand[b] = cur[b]!.filter((_, j) => j !== k);
      if (await fails(cand)) cur = cand;
      else k++;
    }
  }
  for (let b = 0; b < cur.length; b++) {
    for (let k = 0; k < cur[b]!.length; k++) {
      for (let i = 0; i < cur[b]![k]!.segments.length - 1;) {
        const p = cur[b]![k]!;
        const cand = cur.slice();
        cand[b] = cur[b]!.slice();
        cand[b]![k] = {
          ...p,
          segments: p.segments.filter((_, j) => j !== i),
          steps: p.steps.filter((_, j) => j !== i),
        };
        if (await fails(cand)) cur = cand;
        else i++;
      }
    }
  }
  return cur;
}

/** Batches kept for a reproduction: those since the last clean-up. */
const MAX_SEQUENCE = 30;

/** Slack over the heap measured after the first 1000 batches. */
const HEAP_SLACK = 64 * 2 ** 20;

/**
 * The heap after a full GC, every 1000 batches: more than `HEAP_SLACK` over
 * the first measure is a leak (state the broker keeps for clients that are
 * gone). Needs `--v8-flags=--expose-gc` (as `deno task fuzz` runs); without
 * it nothing is measured.
 */
class HeapWatch {
  #baseline: number | undefined;
  #gc = (globalThis as { gc?: () => void }).gc;

  check(batches: number): Failure | undefined {
    const gc = this.#gc;
    if (gc === undefined) return undefined;
    gc();
    const used = Deno.memoryUsage().heapUsed;
    this.#baseline ??= used;
    if (used <= this.#baseline + HEAP_SLACK) return undefined;
    const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;
    return {
      kind: "memory",
      message: `heap ${mib(used)} after ${batches} batches, ${
        mib(this.#baseline)
      } after the first 1000`,
    };
  }
}

/** Runs the connection target. */
export async function fuzzConnection(
  o: FuzzRunOptions,
): Promise<FuzzRunResult & { warnings: ReadonlyMap<string, number> }> {
  const start = o.start ?? 0;
  const end = o.iterations !== undefined ? start + o.iterations : Infinity;
  const deadline = o.seconds !== undefined
    ? Date.now() + o.seconds * 1000
    : Infinity;
  const failures: FoundFailure[] = [];
  const seen = new Set<string>();
  let f = await ConnectionFuzzer.open(o.seed);
  const heap = new HeapWatch();
  /** The first batch since the broker was last clean (or new). */
  let since = start;
  let clean = true;
  const warnings = new Map<string, number>();
  let i = start;
  try {
    for (; i < end && Date.now() < deadline; i++) {
      if (o.progress !== undefined) Atomics.store(o.progress, 0, i);
      const plans = ConnectionFuzzer.plan(o.seed, i);
      let fail: Failure | undefined;
      try {
        // Every other batch (and the last) cleans up; the others leave
        // their sessions to the next batch.
        clean = (mixSeed(o.seed, i) & 1) === 0 || i + 1 === end;
        fail = await f.batch(plans, clean);
      } catch (e) {
        fail = {
          kind: "fuzzer error",
          message: e instanceof Error ? e.stack ?? e.message : String(e),
        };
      }
      if (fail === undefined && (i - start) % 1000 === 999) {
        fail = heap.check(i - start + 1);
      }
      if (fail === undefined) {
        if (clean) since = i + 1;
        continue;
      }
      const sig = signature(fail.kind, fail.message);
      // A broker in an unknown state: start a fresh one.
      for (const [k, n] of f.warnings) {
        warnings.set(k, (warnings.get(k) ?? 0) + n);
      }
      await f.close();
      let reproduction = "";
      if (!seen.has(sig)) {
        const from = Math.max(since, i + 1 - MAX_SEQUENCE);
        const batches: ClientPlan[][] = [];
        for (let j = from; j <= i; j++) {
          batches.push(ConnectionFuzzer.plan(o.seed, j));
        }
        const small = await shrinkBatches(
          o.seed,
          batches,
          fail.kind,
          undefined,
          o.progress,
        );
        reproduction = small === undefined
          ? `(batches ${from}..${i} do not fail on a fresh broker; the broker ran ${
            i - since
          } batches since its last clean-up)\n${connectionFixture(plans)}`
          : sequenceFixture(small);
      }
      f = await ConnectionFuzzer.open(o.seed);
      since = i + 1;
      if (seen.has(sig)) continue;
      seen.add(sig);
      const found: FoundFailure = {
        target: "connection",
        seed: o.seed,
        iteration: i,
        kind: fail.kind,
        message: fail.message,
        reproduction,
      };
      failures.push(found);
      o.onFailure?.(found);
      if (!o.keepGoing) {
        i++;
        break;
      }
    }
  } finally {
    for (const [k, n] of f.warnings) {
      warnings.set(k, (warnings.get(k) ?? 0) + n);
    }
    await f.close();
  }
  return {
    target: "connection",
    seed: o.seed,
    iterations: i - start,
    failures,
    warnings,
  };
}
