/**
 * The incoming side of a bridge (private to the bridge): what the remote
 * sends under the `in`/`both` rules, published into this broker.
 *
 * - Under the first matching rule, its remote prefix replaced by the local
 *   one, at the lower of the message's and the rule's QoS, with its retain
 *   flag (where retained messages are available here) and v5 properties
 *   (the Message Expiry Interval counting from now; Subscription
 *   Identifiers, the remote's business, dropped).
 * - With `localUsername`, each is authorized as a client's PUBLISH would be:
 *   the `authorizePublish` hook (an ACL file is one) is asked about that
 *   user name and the client id `local.<clientId>`. A refused message is
 *   dropped (still acknowledged to the remote), counted, and logged at most
 *   every ten seconds. Without it, bridged messages are trusted (as
 *   configuration, as Mosquitto does). Decisions keep the order of arrival,
 *   also when the hook answers with a promise.
 * - A QoS 1/2 message is acknowledged to the remote (the client's
 *   `manualAcks`) only once what its local publish stored is committed, as
 *   a connection's PUBACK waits for the `CommitGate`: a crash before that
 *   makes the remote send it again, nothing is lost (v5 [MQTT-4.3.2-4]
 *   [MQTT-4.3.3-8]: acknowledged once it is owned). Acknowledgements keep
 *   the order of arrival [MQTT-4.6.0-2] [MQTT-4.6.0-3].
 * - With a durable store, the packet id of each QoS 2 message published
 *   here is stored with it (as a session's received QoS 2 ids) until the
 *   remote releases it (PUBREL): after a crash between the commit and the
 *   PUBREC reaching the remote, its resend (DUP) is acknowledged, not
 *   published twice (v5 [MQTT-4.3.3-10], 3.1.1 [MQTT-4.3.3-2]).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Message } from "../../client/message.ts";
import { Fifo } from "../../codec/_fifo.ts";
import type { CommitWaiter } from "../commit_gate.ts";
import type { AuthorizePublishHook, ClientInfo } from "../hooks.ts";
import { DropReason } from "../metrics.ts";
import type { DropCounters } from "../metrics.ts";
import { countDrop } from "../_session_drops.ts";
import type { LoadedSession, Store, StoredMessage } from "../store/store.ts";
import type { CommitGateLike } from "./_outgoing.ts";
import { type RuleMatcher, toLocal } from "./_rules.ts";

const log = getLogger(["kite", "bridge"]);

/** How often, at most, refused messages are logged. */
const REFUSED_LOG_MS = 10_000;

/** What the incoming side needs of the broker (the core has it). */
export interface IncomingHost {
  /** The broker's group commit. */
  readonly gate: CommitGateLike;
  /** The authorization hook, asked with `localUsername`. */
  readonly hooks: { readonly authorizePublish?: AuthorizePublishHook };
  /** Whether retained messages are supported here. */
  readonly settings: { readonly retainAvailable: boolean };
  /** Where dropped messages are counted. */
  readonly metrics: DropCounters;
  /** Publishes into the broker (retained store, then routing). */
  publish(message: StoredMessage, publisherId: string | undefined): number;
}

/** A message whose authorization is pending (an asynchronous hook). */
interface Pending {
  m: Message;
  message: StoredMessage;
  /** The decision; -1 until it is known. */
  code: number;
}

/**
 * The incoming side of one bridge: `onMessage` is the client's message
 * handler.
 *
 * @example
 * ```ts ignore
 * const incoming = new Incoming("cloud", bridgeId("cloud"), rules, core, undefined);
 * client.onMessage(incoming.onMessage); // a client with manualAcks
 * ```
 */
export class Incoming implements CommitWaiter {
  /** Messages received from the remote under a rule. */
  received = 0;
  /** Of those, refused by `authorizePublish` (dropped). */
  refused = 0;
  readonly #name: string;
  readonly #publisherId: string;
  readonly #rules: RuleMatcher;
  readonly #host: IncomingHost;
  readonly #identity: ClientInfo | undefined;
  /** Where QoS 2 ids are kept (undefined: not durable), under `#id`. */
  readonly #store: Store | undefined;
  readonly #id: string;
  /** Ids of QoS 2 messages published here and not yet released. */
  readonly #taken = new Set<number>();
  /** Waiting for an asynchronous authorization, in order of arrival. */
  readonly #pending = new Fifo<Pending>();
  /** Acknowledgements waiting for a commit, and its generation. */
  readonly #acks = new Fifo<Message>();
  readonly #gens = new Fifo<number>();
  #waitGen = 0;
  #refusedLoggedAt = -Infinity;
  #refusedUnlogged = 0;

  /**
   * The incoming side of bridge `name`: publishes as `publisherId` what
   * `rules` (remote filters of in/both rules) match; `identity` (with
   * `localUsername`) is what `authorizePublish` is asked about; QoS 2 ids
   * are kept in `store` (if any) under the bridge's id `publisherId`.
   */
  constructor(
    name: string,
    publisherId: string,
    rules: RuleMatcher,
    host: IncomingHost,
    identity: ClientInfo | undefined,
    store: Store | undefined,
  ) {
    this.#name = name;
    this.#publisherId = publisherId;
    this.#id = publisherId;
    this.#rules = rules;
    this.#host = host;
    this.#identity = identity;
    this.#store = store;
  }

  /** Takes back the QoS 2 ids stored before a restart. */
  restore(state: LoadedSession | undefined): void {
    for (const id of state?.incomingQos2 ?? []) this.#taken.add(id);
  }

  /** The client's "released" event: the remote's PUBREL of `packetId`. */
  released = (e: { packetId: number }): void => {
    if (this.#taken.delete(e.packetId)) {
      this.#store?.deleteIncomingQos2(this.#id, e.packetId);
    }
  };

  /** A new session on the remote: no id of the old one comes again. */
  sessionLost(): void {
    for (const id of this.#taken) this.#store?.deleteIncomingQos2(this.#id, id);
    this.#taken.clear();
  }

  /** Messages held: waiting for authorization or for a commit to be acknowledged. */
  get waiting(): number {
    return this.#pending.length + this.#acks.length;
  }

  /** The client's message handler: a message from the remote. */
  onMessage = (m: Message): void => {
    const r = this.#rules.match(m.topic)[0];
    if (
      r === undefined || // not for a rule here (the remote sent it anyway)
      (m.dup && m.qos === 2 && this.#taken.has(m.packetId!)) // published
    ) {
      this.#ack(m);
      return;
    }
    this.received++;
    const message: StoredMessage = {
      topic: toLocal(r, m.topic),
      payload: m.payload,
      qos: m.qos < r.qos ? m.qos : r.qos,
      retain: m.retain && this.#host.settings.retainAvailable,
    };
    const props = m.properties;
    for (const _ in props) {
      let p = props;
      if (p.subscriptionIdentifiers !== undefined) {
        p = { ...p };
        delete p.subscriptionIdentifiers;
      }
      const mei = p.messageExpiryInterval;
      if (mei !== undefined) message.expiresAt = Date.now() + mei * 1000;
      message.properties = p;
      break;
    }
    const identity = this.#identity;
    const authz = identity === undefined
      ? undefined
      : this.#host.hooks.authorizePublish;
    if (authz === undefined) {
      if (this.#pending.length === 0) this.#publish(m, message);
      else this.#pending.push({ m, message, code: 0 });
      return;
    }
    let code: number | Promise<number>;
    try {
      code = authz(identity!, message.topic, message.qos, message.retain);
    } catch (e) {
      log.error("authorizePublish failed: {error}", { error: e });
      code = 0x80;
    }
    if (typeof code === "number" && this.#pending.length === 0) {
      this.#decided(m, message, code);
      return;
    }
    const p: Pending = {
      m,
      message,
      code: typeof code === "number" ? code : -1,
    };
    this.#pending.push(p);
    if (typeof code !== "number") {
      code.then((c) => {
        p.code = c;
        this.#drain();
      }, (e) => {
        log.error("authorizePublish failed: {error}", { error: e });
        p.code = 0x80;
        this.#drain();
      });
    }
  };

  /** Decides what is at the head of the pending queue, in order. */
  #drain(): void {
    const pending = this.#pending;
    for (let p = pending.peek(); p !== undefined; p = pending.peek()) {
      if (p.code < 0) return;
      pending.shift();
      this.#decided(p.m, p.message, p.code);
    }
  }

  #decided(m: Message, message: StoredMessage, code: number): void {
    if (code < 0x80) {
      this.#publish(m, message);
      return;
    }
    this.refused++;
    countDrop(this.#host.metrics, DropReason.Refused);
    this.#logRefused(message.topic, code);
    this.#ack(m);
  }

  #publish(m: Message, message: StoredMessage): void {
    this.#host.publish(message, this.#publisherId);
    const store = this.#store;
    if (m.qos === 2 && store !== undefined) {
      // In the same commit as the publish (the PUBREC waits for it).
      const id = m.packetId!;
      this.#taken.add(id);
      store.putIncomingQos2(this.#id, id);
    }
    this.#ack(m);
  }

  /**
   * Acknowledges `m` to the remote once what is pending in the store is
   * committed (at once when nothing is), in order.
   */
  #ack(m: Message): void {
    if (m.qos === 0) return;
    const gate = this.#host.gate;
    if (this.#acks.length === 0 && !gate.dirty) {
      m.ack();
      return;
    }
    const gen = gate.generation;
    this.#acks.push(m);
    this.#gens.push(gen);
    if (this.#waitGen !== gen) {
      this.#waitGen = gen;
      gate.wait(this);
    }
  }

  /** CommitWaiter: the commit of `gen` is done; acknowledges what it covers. */
  committed(gen: number): void {
    const acks = this.#acks;
    const gens = this.#gens;
    for (let g = gens.peek(); g !== undefined && g <= gen; g = gens.peek()) {
      gens.shift();
      acks.shift()!.ack();
    }
  }

  /**
   * CommitWaiter: the commit failed (logged by the gate). What waited is
   * not acknowledged: the remote sends it again after a reconnect.
   */
  commitFailed(): void {
    this.#acks.clear();
    this.#gens.clear();
  }

  #logRefused(topic: string, code: number): void {
    const now = Date.now();
    if (now - this.#refusedLoggedAt < REFUSED_LOG_MS) {
      this.#refusedUnlogged++;
      return;
    }
    log.warn(
      "Bridge {name}: message to {topic} refused by authorizePublish for {username} ({code}), dropped{more}",
      {
        name: this.#name,
        topic,
        username: this.#identity?.username,
        code,
        more: this.#refusedUnlogged === 0
          ? ""
          : ` (and ${this.#refusedUnlogged} more since the last report)`,
      },
    );
    this.#refusedLoggedAt = now;
    this.#refusedUnlogged = 0;
  }
}
