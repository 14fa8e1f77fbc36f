/**
 * `Outbox`: what the client sends on its own initiative (private): publishes
 * (the QoS 0 hot path without an entry or promise of its own), SUBSCRIBE and
 * UNSUBSCRIBE requests, the queue as the broker's Receive Maximum allows,
 * and after a CONNACK the resubscription and the resends that `ClientState`
 * decides. It encodes publishes for the current connection (topic aliases,
 * the broker's Maximum Packet Size) and writes them to its `Link`.
 *
 * @module
 */

import type {
  AckPacket,
  ConnackPacket,
  Packet,
  ProtocolVersion,
  PublishPacket,
  SubackPacket,
  UnsubackPacket,
} from "../codec/packet.ts";
import {
  MqttError,
  PacketTooLargeError,
  QuotaExceededError,
} from "../codec/errors.ts";
import { ReasonCode, reasonCodeName } from "../codec/reason_code.ts";
import { encode } from "../codec/encode.ts";
import {
  ClientState,
  type Entry,
  type PublishEntry,
  type PublishResult,
  type SubscribeEntry,
  TopicAliasSender,
} from "./state.ts";
import type { ClientOptions, PublishTracker } from "./options.ts";
import type { Link } from "./link.ts";
import { ClientOfflineError } from "./errors.ts";
import { Subscriptions } from "./_subscriptions.ts";
import { noop, toError } from "./_util.ts";

/**
 * The sending side of one client, across its connections.
 *
 * @example
 * ```ts ignore
 * const outbox = new Outbox(client, (e) => report(e));
 * outbox.connected(link, connack, 5); // after CONNACK
 * await outbox.publish(packet, 0);
 * ```
 */
export class Outbox {
  /** The protocol state (packet ids, queue, in flight). */
  readonly state: ClientState;
  /** Outgoing topic aliases of the current connection. */
  readonly aliasOut: TopicAliasSender;
  /** What to subscribe to again when a session is lost. */
  readonly subscriptions: Subscriptions = new Subscriptions();
  #owner: { readonly options: ClientOptions };
  #onError: (e: Error) => void;
  /** The link of the connection, while connected (CONNACK received). */
  #link: Link | undefined;
  #version: ProtocolVersion = 5;
  /** The broker's Maximum Packet Size. */
  #maxPacketSize = Infinity;
  /** The broker's Maximum QoS. */
  #maxQos = 2;
  /** The broker's Retain Available. */
  #retainAvailable = true;

  /**
   * `owner` is the client (its options are read when used); `onError` gets
   * a refused resubscription.
   */
  constructor(
    owner: { readonly options: ClientOptions },
    onError: (e: Error) => void,
  ) {
    const options = owner.options;
    this.#owner = owner;
    this.#onError = onError;
    this.state = new ClientState({
      maxQueued: options.maxQueued ?? 10_000,
      manualAcks: options.manualAcks === true,
    });
    this.aliasOut = new TopicAliasSender(options.autoTopicAliases === true);
  }

  /**
   * A connection is up on `link`: applies the broker's limits, subscribes
   * again when the session is gone, resends what `ClientState` says, then
   * sends what is queued.
   */
  connected(
    link: Link,
    connack: ConnackPacket,
    version: ProtocolVersion,
  ): void {
    const props = connack.properties ?? {};
    this.#link = link;
    this.#version = version;
    this.#maxPacketSize = props.maximumPacketSize ?? Infinity;
    this.#maxQos = props.maximumQoS ?? 2;
    this.#retainAvailable = props.retainAvailable !== 0;
    this.aliasOut.reset(props.topicAliasMaximum ?? 0);
    // What was in flight on the last connection, taken before the
    // resubscription below is in flight too: it is sent once, not again as
    // a resend with the same packet id [MQTT-2.2.1-3].
    const resend = this.state.onConnack(
      connack.sessionPresent,
      props.receiveMaximum ?? 65535,
    );
    // Session gone: subscribe again, then resend in flight, then the queue.
    if (
      !connack.sessionPresent && this.subscriptions.size > 0 &&
      this.#owner.options.resubscribe !== false
    ) {
      this.#resubscribe();
    }
    for (const r of resend) {
      if (r.packet.type === "publish") {
        this.#sendPublish(r.entry as PublishEntry);
      } else if (
        r.packet.type !== "pubrel" ||
        this.state.held(r.packet.packetId) === undefined
      ) {
        this.#sendPacket(r.packet);
      } // else: a PUBREL written once its tracker's hold settles
    }
    this.pump();
  }

  /**
   * An acknowledgement from the broker: settles what it completes, answers
   * (PUBREL, once a tracker's hold settles; PUBCOMP), then sends what the
   * queue may.
   */
  onAck(packet: AckPacket | SubackPacket | UnsubackPacket): void {
    const reply = this.state.handleAck(packet);
    if (reply !== undefined) {
      const e = reply.type === "pubrel"
        ? this.state.held(reply.packetId)
        : undefined;
      if (e !== undefined) this.#afterHold(e);
      else this.#sendPacket(reply);
    }
    if (this.state.queued > 0) this.pump();
  }

  /**
   * Writes the next packet of `e` (its PUBLISH or PUBREL) once its
   * tracker's hold settles, if it is still in flight and connected (else a
   * reconnect resends it).
   */
  #afterHold(e: PublishEntry): void {
    const release = () => {
      e.trackerStage = 1;
      e.hold = undefined;
      if (this.#link === undefined || !this.state.isInFlight(e)) return;
      if (e.stage === 1) this.#sendPublish(e);
      else this.#sendPacket({ type: "pubrel", packetId: e.packet.packetId! });
    };
    e.hold!.then(release, release);
  }

  /** The connection is gone: requests wait in the queue from now on. */
  disconnected(): void {
    this.#link = undefined;
  }

  /**
   * Sends a validated publish: at once when connected and nothing waits
   * before it, else queued. QoS 0 publishes written in the same turn share
   * one promise. A QoS 1/2 one may have a `tracker`, and be `resume`d (put
   * in flight with its old packet id, while not connected).
   */
  publish(
    packet: PublishPacket,
    alias: number,
    tracker?: PublishTracker,
    resume?: { packetId: number; released?: boolean },
  ): Promise<PublishResult> {
    const qos = packet.qos;
    const link = this.#link;
    if (qos === 0 && link !== undefined && this.state.canSendNow(0)) {
      // Hot path: no entry, no promise of its own.
      let bytes: Uint8Array;
      try {
        bytes = this.#wire(packet, alias);
      } catch (e) {
        return handledRejection(e);
      }
      link.send(bytes);
      return link.batchPromise();
    }
    const { promise, resolve, reject } = Promise.withResolvers<PublishResult>();
    if (qos === 0) promise.catch(noop); // fire and forget is fine for QoS 0
    const entry: PublishEntry = {
      kind: "publish",
      packet,
      alias,
      stage: 0,
      resolve,
      reject,
    };
    if (qos > 0 && tracker !== undefined) {
      entry.tracker = tracker;
      entry.trackerStage = 0;
      promise.catch(noop); // the tracker hears of a failure
    }
    if (qos > 0 && resume !== undefined) {
      return this.#resume(entry, promise, resume.packetId, resume.released);
    }
    if (link !== undefined && this.state.canSendNow(qos)) {
      this.state.track(entry);
      this.#sendPublish(entry);
      return promise;
    }
    if (
      link === undefined && qos === 0 &&
      this.#owner.options.queueQoS0Offline === false
    ) {
      return handledRejection(
        new ClientOfflineError("offline: QoS 0 message not queued"),
      );
    }
    return this.#enqueue(entry, promise);
  }

  /** Puts `entry` back in flight with `packetId` (see `publish`). */
  #resume(
    entry: PublishEntry,
    promise: Promise<PublishResult>,
    packetId: number,
    released = false,
  ): Promise<PublishResult> {
    let why: MqttError | undefined;
    if (this.#link !== undefined) {
      why = new MqttError(
        ReasonCode.ProtocolError,
        "resume: only while the client is not connected",
      );
    } else if (
      !Number.isInteger(packetId) || packetId < 1 || packetId > 0xffff ||
      !this.state.resume(entry, packetId, released)
    ) {
      why = new MqttError(
        ReasonCode.PacketIdentifierInUse,
        `resume: packet id ${packetId} is in use or not in 1..65535`,
      );
    }
    if (why !== undefined) return handledRejection(why);
    if (entry.tracker !== undefined) entry.trackerStage = 1;
    return promise;
  }

  /**
   * Queues the SUBSCRIBE or UNSUBSCRIBE entry that `make` builds and sends
   * what may go now; resolves with its acknowledgement.
   */
  request<T>(
    make: (resolve: (v: T) => void, reject: (e: Error) => void) => Entry,
  ): Promise<T> {
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    return this.#enqueue(make(resolve, reject), promise);
  }

  /**
   * Queues `entry` and sends what may go now; `promise` is its outcome.
   * Rejects with 0x97 instead when the queue is full.
   */
  #enqueue<T>(entry: Entry, promise: Promise<T>): Promise<T> {
    if (!this.state.enqueue(entry)) {
      return Promise.reject(
        new QuotaExceededError(
          `the queue is full (${this.state.maxQueued} requests waiting)`,
        ),
      );
    }
    this.pump();
    return promise;
  }

  /** Sends what the queue holds, as far as flow control allows. */
  pump(): void {
    if (this.#link === undefined || this.state.queued === 0) return;
    const out: Entry[] = [];
    this.state.takeSendable(out);
    for (const e of out) {
      if (e.kind === "publish") this.#sendPublish(e);
      else {
        try {
          this.#sendPacket(e.packet);
        } catch (err) {
          // Not encodable (e.g. a bad subscription identifier): give the
          // packet id back and fail this request only.
          this.state.forget(e);
          e.reject(toError(err));
        }
      }
    }
  }

  #sendPacket(p: Packet): void {
    this.#link?.send(encode(p, { version: this.#version }));
  }

  /** Encodes and writes a publish that is tracked (QoS > 0) or QoS 0. */
  #sendPublish(e: PublishEntry): void {
    const tracker = e.tracker;
    if (tracker !== undefined && e.trackerStage !== 1) {
      if (e.trackerStage === 2) return; // written once `sent()` settles
      e.trackerStage = 1;
      const hold = tracker.sent(e.packet.packetId!);
      if (hold !== undefined) {
        e.trackerStage = 2;
        e.hold = hold;
        this.#afterHold(e);
        return;
      }
    }
    let bytes: Uint8Array;
    try {
      bytes = this.#wire(e.packet, e.alias);
    } catch (err) {
      this.#abandon(e, toError(err));
      return;
    }
    const link = this.#link!;
    link.send(bytes);
    if (e.packet.qos === 0) link.batchPromise().then(e.resolve, e.reject);
  }

  /**
   * The bytes of a publish on this connection: topic alias applied (v5), and
   * checked against the broker's Maximum QoS, Retain Available and Maximum
   * Packet Size. Throws MqttError 0x9B above the Maximum QoS [MQTT-3.2.2-11],
   * 0x9A for a retained message without Retain Available [MQTT-3.2.2-14],
   * 0x94 for a bad alias and PacketTooLargeError (0x95).
   */
  #wire(p: PublishPacket, alias: number): Uint8Array {
    if (p.qos > this.#maxQos) {
      throw new MqttError(
        ReasonCode.QoSNotSupported,
        `QoS ${p.qos} is above the broker's Maximum QoS ${this.#maxQos}`,
      );
    }
    if (p.retain && !this.#retainAvailable) {
      throw new MqttError(
        ReasonCode.RetainNotSupported,
        "the broker does not take retained messages (Retain Available 0)",
      );
    }
    let wire = p;
    let newAlias = false;
    if (this.#version === 5 && (alias !== 0 || this.aliasOut.auto)) {
      const r = this.aliasOut.resolve(p.topic, alias);
      if (r.alias !== 0) {
        newAlias = r.topic !== "";
        wire = {
          ...p,
          topic: r.topic,
          properties: { ...p.properties, topicAlias: r.alias },
        };
      }
    }
    const bytes = encode(wire, { version: this.#version });
    if (bytes.byteLength > this.#maxPacketSize) {
      // The broker never saw this alias: forget every alias (each topic is
      // then sent in full once more).
      if (newAlias) this.aliasOut.reset(this.aliasOut.max);
      throw new PacketTooLargeError(
        `publish to "${p.topic}" is ${bytes.byteLength} bytes, over the ` +
          `broker's Maximum Packet Size of ${this.#maxPacketSize}`,
      );
    }
    return bytes;
  }

  #abandon(e: PublishEntry, err: Error): void {
    this.state.forget(e);
    e.reject(err);
    e.tracker?.done(err);
    if (this.state.queued > 0) this.pump();
  }

  #resubscribe(): void {
    for (const packet of this.subscriptions.resubscribePackets()) {
      const e: SubscribeEntry = {
        kind: "subscribe",
        packet,
        stage: 0,
        resolve: (suback) => {
          const codes = suback.reasonCodes;
          const bad = codes.findIndex((c) => c >= 0x80);
          if (bad === -1) return;
          this.#onError(
            new MqttError(
              codes[bad]!,
              `resubscribe to "${packet.subscriptions[bad]?.filter}" ` +
                `refused: ${reasonCodeName(codes[bad]!)}`,
            ),
          );
        },
        reject: noop,
      };
      this.state.track(e);
      this.#sendPacket(e.packet);
    }
  }
}

/**
 * A rejected promise already marked handled: a QoS 0 publish that nobody
 * awaits must not become an unhandled rejection (see `Client.publish`).
 */
function handledRejection<T>(e: unknown): Promise<T> {
  const p = Promise.reject(e);
  p.catch(noop);
  return p;
}
