/**
 * `NatsLink`: the `ClusterLink` of a node, where its dispatcher meets NATS.
 *
 * Out: a message for other nodes is published once on its subject (NATS
 * fans it out to the nodes and queue groups that want it); a QoS 1/2
 * message for a node holding durable subscriptions is also published to
 * that node's JetStream inbox (acknowledged by JetStream before the
 * publisher's PUBACK), and so is one for a durable shared group, to the
 * node the dispatcher picked (with the group's name). The publisher's PUBACK waits for the next commit,
 * which also waits for these (`settle`: inbox acks, then a NATS flush so
 * the server has the core messages).
 *
 * In: plain subscriptions deliver to the local plain subscribers (the
 * copies NATS sends for each of this node's overlapping subjects are
 * dropped by origin and number), queue subscriptions to one local group,
 * and the inbox consumer to the local subscribers, acknowledged once the
 * store has committed what the deliveries queued.
 *
 * QoS 2 from the inbox is delivered exactly once, through a crash: each
 * such message carries its `origin` (sender's boot id and number) into the
 * outgoing records it makes; the inbox message is acknowledged, and the
 * acknowledgement confirmed by JetStream, within the commit that stores
 * them (`beforeCommit`), so a QoS 2 PUBLISH (held until that commit) never
 * reaches a client before. An inbox message that comes again meanwhile (the
 * ack wait passed) is not delivered twice here; one that comes again to
 * the node adopting this one's sessions (it died) is not taken by a
 * session that holds its origin (reaper.ts).
 *
 * While NATS is unreachable, messages for other nodes are dropped (QoS 0)
 * or left to NATS's reconnect buffer, and local delivery goes on.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import {
  headers as natsHeaderSet,
  type Msg,
  type MsgHdrs,
  type Subscription,
} from "@nats-io/transport-node";
import type { ConsumerMessages, JsMsg } from "@nats-io/jetstream";
import type { StoredMessage } from "../store/store.ts";
import type { ClusterDispatcher, ClusterLink } from "./dispatcher.ts";
import type { ClusterNames, NatsHandles } from "./nats.ts";
import type { RouteTable } from "./routes.ts";
import {
  filterToSubjects,
  SubjectCache,
  subjectToTopic,
  topicMatches,
} from "./subjects.ts";
import {
  decodeMessage,
  decodeRaw,
  encodeHeaders,
  headerBlock,
  listHas,
  markOrigin,
  type WireMeta,
  wireMeta,
} from "./_wire.ts";
import { InboxPacker, MAX_PACK, PACK_HEADER, unpack } from "./_inbox_pack.ts";
import { confirmAck, crash, faultPoint } from "./_inbox_ack.ts";
import {
  INBOX_ACK_WAIT_MS,
  inboxConsumerOf,
  inboxEmpty,
  inboxGone,
} from "./_inbox.ts";

const log = getLogger(["kite", "cluster"]);

/** Inbox messages taken at once by the consumer. */
const INBOX_BATCH = 1000;

interface InboxPublish {
  subject: string;
  data: Uint8Array;
  headers: MsgHdrs;
}

/** Counters of what crossed nodes (`$SYS/broker/cluster/...`). */
export interface LinkStats {
  /** Messages sent to other nodes (one per publish, whatever the fan-out). */
  sent: number;
  /** Messages received from other nodes (and plain NATS clients). */
  received: number;
  /** Messages for other nodes dropped while NATS was unreachable. */
  dropped: number;
}

/** The NATS side of a node's dispatcher (see the module doc). */
export class NatsLink implements ClusterLink {
  readonly #h: NatsHandles;
  readonly #names: ClusterNames;
  readonly #routes: RouteTable;
  readonly #boot: string;
  /**
   * This node's inbox id (`node.boot`; `node.boot-N` once renewed after the
   * other nodes found it dead and drained the one before).
   */
  inbox: string;
  readonly #run: string;
  #generation = 0;
  readonly #cache: SubjectCache;
  readonly #prefixLength: number;
  #dispatcher: ClusterDispatcher | undefined;
  #markDirty: () => void = () => {};
  /** NATS subscriptions by subject, with the filters that need them. */
  readonly #plainSubs = new Map<string, { sub: Subscription; refs: number }>();
  /** The plain filters this node announced. */
  readonly #filters = new Set<string>();
  #rawRefs = 0;
  #rawSub: Subscription | undefined;
  readonly #queueSubs = new Map<string, Subscription[]>();
  readonly #lastSeq = new Map<string, number>();
  readonly #meta: WireMeta = wireMeta();
  #seq = 0;
  #up = true;
  #needFlush = false;
  #inboxPending: { p: InboxPublish; ack: Promise<unknown> }[] = [];
  /** Messages for other nodes' inboxes this turn, by inbox. */
  readonly #packers = new Map<string, InboxPacker>();
  #packScheduled = false;
  #inboxMessages: ConsumerMessages | undefined;
  #toAck: JsMsg[] = [];
  #ackScheduled = false;
  /** Inbox messages with QoS 2 deliveries: acknowledged in the next commit. */
  #toConfirm: JsMsg[] = [];
  /** Their stream sequences, until the acknowledgement is confirmed. */
  readonly #unconfirmed = new Set<number>();
  #sawQos2 = false;
  /** A fault to inject, for tests only (`KITE_CLUSTER_FAULT`). */
  #fault = faultPoint();
  #commit: () => Promise<void> = () => Promise.resolve();
  readonly stats: LinkStats = { sent: 0, received: 0, dropped: 0 };

  /** The link of node `node` (boot id `boot`). */
  constructor(
    h: NatsHandles,
    names: ClusterNames,
    routes: RouteTable,
    node: string,
    boot: string,
  ) {
    this.#h = h;
    this.#names = names;
    this.#routes = routes;
    this.#boot = boot;
    this.inbox = this.#run = `${node}.${boot}`;
    this.#cache = new SubjectCache(names.name);
    this.#prefixLength = names.name.length + 1;
  }

  /**
   * Connects the link to its dispatcher and to the broker's commit gate
   * (`markDirty`: a PUBACK waits for what went out; `commit`: the store
   * commit the inbox acknowledgements wait for).
   */
  attach(
    dispatcher: ClusterDispatcher,
    markDirty: () => void,
    commit: () => Promise<void>,
  ): void {
    this.#dispatcher = dispatcher;
    this.#markDirty = markDirty;
    this.#commit = commit;
  }

  /** Whether NATS is reachable (as far as the client knows). */
  get up(): boolean {
    return this.#up;
  }
  set up(up: boolean) {
    this.#up = up;
  }

  // --------------------------------------------------------------- routes

  route(filter: string, present: boolean, durable: boolean): void {
    const subjects = filterToSubjects(filter);
    const had = this.#filters.has(filter);
    if (present && !had) {
      this.#filters.add(filter);
      for (const s of subjects) this.#subscribePlain(s);
      if (this.#rawRefs++ === 0) {
        this.#rawSub = this.#h.pub.subscribe(this.#names.raw, {
          callback: this.#onRaw,
        });
      }
    } else if (!present && had) {
      this.#filters.delete(filter);
      for (const s of subjects) this.#unsubscribePlain(s);
      if (--this.#rawRefs === 0) {
        this.#rawSub?.unsubscribe();
        this.#rawSub = undefined;
      }
    }
    if (present) this.#routes.putFilter(filter, durable);
    else this.#routes.deleteFilter(filter);
    this.#markDirty();
  }

  #subscribePlain(subject: string): void {
    const s = this.#plainSubs.get(subject);
    if (s !== undefined) {
      s.refs++;
      return;
    }
    // One callback per subscription (not per message): a message of a
    // plain NATS client has no number, its copies are told by this.
    const tag = {};
    const sub = this.#h.pub.subscribe(`${this.#names.name}.${subject}`, {
      callback: (err, m) => this.#onPlain(err, m, tag),
    });
    this.#plainSubs.set(subject, { sub, refs: 1 });
  }

  #unsubscribePlain(subject: string): void {
    const s = this.#plainSubs.get(subject);
    if (s === undefined) return;
    if (--s.refs > 0) return;
    s.sub.unsubscribe();
    this.#plainSubs.delete(subject);
  }

  group(
    queue: string,
    filter: string,
    present: boolean,
    durable: boolean,
  ): void {
    if (!present) {
      for (const s of this.#queueSubs.get(queue) ?? []) s.unsubscribe();
      this.#queueSubs.delete(queue);
      this.#routes.deleteQueue(queue);
      this.#markDirty();
      return;
    }
    if (this.#queueSubs.has(queue)) {
      this.#routes.putQueue(queue, filter, durable);
      this.#markDirty();
      return;
    }
    const onQueue = (e: Error | null, m: Msg) => this.#onQueue(queue, e, m);
    const onRawQueue = (e: Error | null, m: Msg) => {
      this.#onQueue(queue, e, m, filter);
    };
    const subs: Subscription[] = [];
    for (const s of filterToSubjects(filter)) {
      subs.push(
        this.#h.queue.subscribe(`${this.#names.name}.${s}`, {
          queue,
          callback: onQueue,
        }),
      );
    }
    subs.push(
      this.#h.queue.subscribe(this.#names.raw, {
        queue,
        callback: onRawQueue,
      }),
      // Redistributed messages of members leaving on other nodes; on the
      // no-echo connection, so never this node's own.
      this.#h.pub.subscribe(this.#names.group(queue), {
        queue,
        callback: onQueue,
      }),
    );
    this.#queueSubs.set(queue, subs);
    this.#routes.putQueue(queue, filter, durable);
    this.#markDirty();
  }

  // ----------------------------------------------------------------- out

  send(
    message: StoredMessage,
    publisherId: string | undefined,
    durable: readonly string[] | undefined,
    handled: readonly string[] | undefined,
    groups: readonly string[] | undefined,
    core: boolean,
  ): void {
    if (!this.#up && message.qos === 0) {
      this.stats.dropped++;
      return;
    }
    const seq = ++this.#seq;
    this.stats.sent++;
    if (core) {
      const subject = this.#cache.get(message.topic);
      const headers = encodeHeaders(
        message,
        this.#boot,
        seq,
        publisherId,
        subject === null || durable !== undefined || handled !== undefined
          ? {
            // The inbox subject does not say the topic: the header does.
            topic: subject === null || durable !== undefined,
            ...(durable === undefined ? {} : { durable }),
            ...(handled === undefined ? {} : { handled }),
          }
          : undefined,
      );
      // While disconnected the client keeps what is published until the
      // reconnect: not a view of a buffer Kite reuses.
      const payload = this.#up ? message.payload : message.payload.slice();
      try {
        this.#h.pub.publish(subject ?? this.#names.raw, payload, { headers });
      } catch (e) {
        this.stats.dropped++;
        log.debug("cross-node publish failed: {e}", { e });
      }
      if (durable !== undefined && message.qos > 0) {
        const block = headerBlock(headers);
        for (const inbox of durable) this.#pack(inbox, block, message);
      }
    }
    if (groups !== undefined) {
      for (let i = 0; i < groups.length; i += 2) {
        const h = encodeHeaders(message, this.#boot, seq, publisherId, {
          topic: true,
          group: groups[i + 1]!,
        });
        this.#pack(groups[i]!, headerBlock(h), message);
      }
    }
    if (message.qos > 0) {
      this.#needFlush = true;
      this.#markDirty();
    }
  }

  /** Adds `message` to this turn's pack for `inbox`. */
  #pack(inbox: string, block: Uint8Array, message: StoredMessage): void {
    let packer = this.#packers.get(inbox);
    if (packer === undefined) {
      packer = new InboxPacker();
      this.#packers.set(inbox, packer);
    }
    packer.add(block, message.payload);
    if (packer.size >= MAX_PACK) this.#flushPack(inbox, packer);
    if (!this.#packScheduled) {
      this.#packScheduled = true;
      queueMicrotask(this.#flushPacks);
    }
  }

  /** Publishes this turn's inbox packs. */
  #flushPacks = (): void => {
    this.#packScheduled = false;
    for (const [inbox, packer] of this.#packers) {
      if (packer.count > 0) this.#flushPack(inbox, packer);
    }
  };

  #flushPack(inbox: string, packer: InboxPacker): void {
    const h = natsHeaderSet();
    h.set(PACK_HEADER, "1");
    this.#inboxPublish({
      subject: this.#names.inbox(inbox),
      data: packer.take(),
      headers: h,
    });
  }

  #inboxPublish(p: InboxPublish): void {
    const ack = this.#h.js.publish(p.subject, p.data, { headers: p.headers });
    ack.catch(() => {}); // settled (and retried) in `settle`
    this.#inboxPending.push({ p, ack });
  }

  sendToGroup(queue: string, message: StoredMessage): void {
    const headers = encodeHeaders(message, this.#boot, ++this.#seq, undefined, {
      topic: true,
    });
    try {
      this.#h.pub.publish(this.#names.group(queue), message.payload, {
        headers,
      });
      this.stats.sent++;
    } catch {
      this.stats.dropped++;
    }
    if (message.qos > 0) {
      this.#needFlush = true;
      this.#markDirty();
    }
  }

  /**
   * Resolves when what was sent so far is with NATS: inbox publishes
   * acknowledged by JetStream (retried after a reconnect), core messages
   * flushed. Called by the store's commit.
   */
  async settle(): Promise<void> {
    this.#flushPacks();
    while (this.#inboxPending.length > 0) {
      const batch = this.#inboxPending;
      this.#inboxPending = [];
      const results = await Promise.allSettled(batch.map((b) => b.ack));
      const failed = batch.filter((_, i) => results[i]!.status === "rejected");
      if (failed.length > 0) {
        log.warn(
          "{count} message(s) to other nodes' inboxes not acknowledged: retrying",
          { count: failed.length },
        );
        await this.#waitUp();
        for (const f of failed) this.#inboxPublish(f.p);
      }
    }
    if (this.#needFlush) {
      this.#needFlush = false;
      try {
        await this.#h.pub.flush();
      } catch {
        // Disconnected: what was buffered goes out on the reconnect.
      }
    }
  }

  async #waitUp(): Promise<void> {
    while (!this.#up && !this.#h.pub.isClosed()) {
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  // ------------------------------------------------------------------ in

  #onPlain(err: Error | null, m: Msg, tag: object): void {
    if (err !== null) return;
    const topic = subjectToTopic(m.subject.slice(this.#prefixLength));
    this.#receivePlain(topic, m, tag);
  }

  #onRaw = (err: Error | null, m: Msg): void => {
    if (err !== null) return;
    this.#receivePlain(undefined, m);
  };

  #receivePlain(topic: string | undefined, m: Msg, tag?: object): void {
    const meta = this.#meta;
    const message = decodeMessage(topic, m, meta);
    if (message === undefined) return;
    if (meta.origin !== undefined) {
      // NATS sends a copy per matching subscription of this node.
      if (this.#lastSeq.get(meta.origin) === meta.seq) return;
      this.#lastSeq.set(meta.origin, meta.seq);
      if (meta.durable !== undefined && listHas(meta.durable, this.inbox)) {
        return; // it comes through the inbox
      }
    } else if (tag !== undefined && this.#copyOfLast(m, tag)) return;
    this.stats.received++;
    this.#dispatcher?.deliverRemote(message, meta.publisherId);
  }

  /** The last message of a plain NATS client, and the subscriptions it came on. */
  #lastPlain: { subject: string; data: Uint8Array; tags: object[] } | undefined;

  /**
   * Whether `m` (from a plain NATS client) is another copy of the message
   * before it: same subject and bytes, on another subscription of this node
   * (NATS sends one per matching subscription, one after the other).
   */
  #copyOfLast(m: Msg, tag: object): boolean {
    const last = this.#lastPlain;
    const subject = m.subject;
    if (
      last !== undefined && last.subject === subject &&
      !last.tags.includes(tag) && sameBytes(last.data, m.data)
    ) {
      last.tags.push(tag);
      return true;
    }
    this.#lastPlain = { subject, data: m.data, tags: [tag] };
    return false;
  }

  #onQueue(queue: string, err: Error | null, m: Msg, rawFilter?: string) {
    if (err !== null) return;
    const meta = this.#meta;
    const topic = rawFilter === undefined && m.subject.startsWith(
        this.#names.name + ".",
      )
      ? subjectToTopic(m.subject.slice(this.#prefixLength))
      : undefined;
    const message = decodeMessage(topic, m, meta);
    if (message === undefined) return;
    if (rawFilter !== undefined && !topicMatches(rawFilter, message.topic)) {
      return;
    }
    if (meta.handled !== undefined && listHas(meta.handled, queue)) return;
    this.stats.received++;
    this.#dispatcher?.deliverToGroup(queue, message, meta.publisherId);
  }

  // --------------------------------------------------------------- inbox

  /** Creates this node's inbox consumer and starts taking its messages. */
  async startInbox(): Promise<void> {
    const c = await inboxConsumerOf(this.#h, this.#names, this.inbox);
    this.#inboxMessages = await c.consume({
      max_messages: INBOX_BATCH,
      // Short pulls: after a NATS failover or a consumer leader change the
      // next pull comes soon.
      expires: 2000,
      idle_heartbeat: 1000,
      callback: this.#onInbox,
    });
  }

  #onInbox = (m: JsMsg): void => {
    if (this.#unconfirmed.size > 0 && this.#unconfirmed.has(m.seq)) {
      // Delivered here already (the ack wait passed before the commit that
      // acknowledges it was done): acknowledged again, not taken twice.
      this.#toConfirm.push(m);
      this.#markDirty();
    } else {
      this.#sawQos2 = false;
      if (m.headers?.get(PACK_HEADER) === "1") unpack(m.data, this.#onPacked);
      else this.#deliverInbox(decodeMessage(undefined, m, this.#meta));
      if (this.#sawQos2) {
        // Acknowledged by the commit that stores what it delivered.
        this.#unconfirmed.add(m.seq);
        this.#toConfirm.push(m);
        this.#markDirty();
      } else this.#toAck.push(m);
    }
    if (!this.#ackScheduled) {
      this.#ackScheduled = true;
      queueMicrotask(this.#ackInbox);
    }
  };

  #onPacked = (block: Uint8Array, payload: Uint8Array): void => {
    this.#deliverInbox(decodeRaw(block, payload, this.#meta));
  };

  #deliverInbox(message: StoredMessage | undefined): void {
    if (message === undefined) return;
    const meta = this.#meta;
    if (markOrigin(message, meta)) this.#sawQos2 = true;
    this.stats.received++;
    if (meta.group === undefined) {
      this.#dispatcher?.deliverRemote(message, meta.publisherId);
    } else {this.#dispatcher?.routeToGroup(
        meta.group,
        message,
        meta.publisherId,
      );}
  }

  /** Acknowledges inbox messages once what they queued is committed. */
  #ackInbox = (): void => {
    this.#ackScheduled = false;
    const batch = this.#toAck;
    this.#toAck = [];
    this.#commit().then(() => {
      for (const m of batch) m.ack();
    }, (e) => {
      log.warn("inbox messages not acknowledged (commit failed): {e}", { e });
      for (const m of batch) m.nak(1000);
    });
  };

  /**
   * The store's `beforeCommit`: the inbox messages with QoS 2 deliveries so
   * far, acknowledged (confirmed) once the commit stored the deliveries.
   */
  takeConfirms = (): (() => Promise<void>) | undefined => {
    if (this.#toConfirm.length === 0) return undefined;
    const batch = this.#toConfirm;
    this.#toConfirm = [];
    return () => this.#confirm(batch);
  };

  async #confirm(batch: JsMsg[]): Promise<void> {
    if (this.#fault === "inbox-ack") crash();
    if (this.#fault === "inbox-ack-late") {
      // Past the ack wait (once): JetStream delivers them here again.
      this.#fault = undefined;
      await new Promise((r) => setTimeout(r, INBOX_ACK_WAIT_MS + 1000));
    }
    await Promise.all(batch.map(async (m) => {
      await confirmAck(this.#h.pub, m, () => this.#waitUp());
      this.#unconfirmed.delete(m.seq);
    }));
  }

  /**
   * Stops taking inbox messages for now (NATS is unreachable: what comes
   * meanwhile may be meant for sessions another node adopts).
   */
  pauseInbox(): void {
    const m = this.#inboxMessages;
    this.#inboxMessages = undefined;
    m?.close().catch(() => {});
  }

  /**
   * Whether this node's inbox consumer is gone (the node that adopted its
   * sessions drained and deleted it). Undefined when NATS cannot say.
   */
  inboxGone(): Promise<boolean | undefined> {
    return inboxGone(this.#h, this.#names, this.inbox);
  }

  /**
   * Moves to a new inbox (`node.boot-N`): the other nodes found this one
   * dead and adopted what it held, so its inbox is theirs to drain.
   */
  renewInbox(): void {
    this.inbox = `${this.#run}-${++this.#generation}`;
  }

  /**
   * Resolves once this node has taken and acknowledged what its inbox
   * holds, or after `ms`: a session about to move to another node first
   * gets what was sent to it here (else it would come after the move, to
   * nobody).
   */
  async caughtUp(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (Date.now() < deadline && this.#inboxMessages !== undefined) {
      if (await inboxEmpty(this.#h, this.#names, this.inbox)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Takes inbox messages again, after an outage. */
  async resumeInbox(): Promise<void> {
    if (this.#inboxMessages !== undefined) return;
    await this.startInbox();
  }

  /** Stops taking inbox messages and unsubscribes (at close). */
  async close(): Promise<void> {
    await this.#inboxMessages?.close().catch(() => {});
    this.#inboxMessages = undefined;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}
