/**
 * Deliveries: a published message on its way to subscribers. A message is
 * encoded once per wire form (`FanoutCache`, `encodePublish`) and those
 * bytes are shared by every subscriber that gets the same form; what a
 * session queues or keeps in flight is an `OutgoingMessage`.
 *
 * @module
 */

import {
  encode,
  type EncodeOptions,
  publishPacketIdOffset,
} from "../codec/encode.ts";
import type { PublishTemplate } from "../codec/_publish_template.ts";
import { ownBytes } from "../codec/_slab.ts";
import type {
  Properties,
  ProtocolVersion,
  PublishPacket,
  QoS,
} from "../codec/packet.ts";
import type { OutgoingState, StoredMessage } from "./store/store.ts";

/** A PUBLISH encoded once (see codec/_publish_template.ts). */
export type PublishEncoding = PublishTemplate;

/** One message queued for or in flight to a session. */
export interface OutgoingMessage {
  seq: number;
  /** 0 while queued. */
  packetId: number;
  state: OutgoingState;
  qos: QoS;
  /** The retain flag to deliver with. */
  retain: boolean;
  subIds: number[] | undefined;
  message: StoredMessage;
  enc: PublishEncoding | undefined;
  /**
   * The shared subscription group it was routed through, if any (the
   * router may hand it to another member when this one leaves).
   */
  group?: object | undefined;
}

/**
 * The one in-flight entry of every QoS 1 message a non-persistent session
 * has sent: such a session ends with its connection, so nothing it sent is
 * ever resent (3.1.1 [MQTT-3.1.2-6]; v5 3.1.2.11.2, Session Expiry Interval
 * 0), and only the packet id is held until the PUBACK. The message and its
 * payload are let go once written: a slow reader's window of unacknowledged
 * messages holds no copies. A shared subscription's message keeps its own
 * entry (another member may take it over, see `takeShared`).
 */
export const SENT_QOS1: OutgoingMessage = {
  seq: 0,
  packetId: 0,
  state: "sent",
  qos: 1,
  retain: false,
  subIds: undefined,
  message: { topic: "", payload: new Uint8Array(0), qos: 1, retain: false },
  enc: undefined,
};

const AS_V4: EncodeOptions = { version: 4 };
const AS_V5: EncodeOptions = { version: 5 };
const NO_BYTES = new Uint8Array(0);
/** The packet `encodePublish` fills in (its optional fields always set). */
type ScratchPublish = Omit<PublishPacket, "packetId" | "properties"> & {
  packetId: number | undefined;
  properties: Properties | undefined;
};
const SCRATCH: ScratchPublish = {
  type: "publish",
  topic: "",
  payload: NO_BYTES,
  qos: 0,
  retain: false,
  dup: false,
  packetId: undefined,
  properties: undefined,
};

/**
 * Encodes a PUBLISH for one wire form. The packet id is a placeholder to be
 * patched by the connection. A message with an expiry gets the remaining
 * interval [MQTT-3.3.2-6].
 */
export function encodePublish(
  message: StoredMessage,
  version: ProtocolVersion,
  qos: QoS,
  retain: boolean,
  subIds: number[] | undefined,
  now: number,
): PublishEncoding {
  // One packet object for every encoding: `encode` keeps nothing of it.
  const packet = SCRATCH;
  packet.topic = message.topic;
  packet.payload = message.payload;
  packet.qos = qos;
  packet.retain = retain;
  packet.packetId = qos > 0 ? 1 : undefined;
  let props: Properties | undefined;
  if (version === 5) {
    props = message.properties;
    if (message.expiresAt !== undefined || subIds !== undefined) {
      props = { ...props };
      if (message.expiresAt !== undefined) {
        props.messageExpiryInterval = Math.max(
          1,
          Math.ceil((message.expiresAt - now) / 1000),
        );
      }
      if (subIds !== undefined) props.subscriptionIdentifiers = subIds;
    }
  }
  packet.properties = props;
  let bytes: Uint8Array;
  try {
    bytes = encode(packet as PublishPacket, version === 5 ? AS_V5 : AS_V4);
  } finally {
    // Holds nothing of the message until the next encoding.
    packet.topic = "";
    packet.payload = NO_BYTES;
    packet.properties = undefined;
  }
  return {
    bytes,
    idOffset: qos > 0 ? publishPacketIdOffset(bytes) : -1,
    version,
    topic: message.topic,
    payloadBytes: message.payload.length,
  };
}

/**
 * Shares the encodings of one published message among its subscribers: one
 * per (version family, QoS, retain flag) when no subscription identifiers
 * are involved.
 */
export class FanoutCache {
  #firstForm = -1;
  #first: PublishEncoding | undefined;
  #slots: (PublishEncoding | undefined)[] | undefined;
  /** The message being fanned out. */
  readonly message: StoredMessage;
  readonly #now: number;

  /** Creates a cache for `message`. */
  constructor(message: StoredMessage, now: number) {
    this.message = message;
    this.#now = now;
  }

  /** The encoding for one wire form. */
  get(
    version: ProtocolVersion,
    qos: QoS,
    retain: boolean,
    subIds: number[] | undefined,
  ): PublishEncoding {
    if (subIds !== undefined && version === 5) {
      return encodePublish(
        this.message,
        version,
        qos,
        retain,
        subIds,
        this.#now,
      );
    }
    const i = (version === 5 ? 6 : 0) + qos * 2 + (retain ? 1 : 0);
    // Most messages go out in one form: it is kept in fields, and the
    // array is made only for a second one.
    if (i === this.#firstForm) return this.#first!;
    let e = this.#slots?.[i];
    if (e === undefined) {
      e = encodePublish(
        this.message,
        version,
        qos,
        retain,
        undefined,
        this.#now,
      );
      if (this.#firstForm < 0) {
        this.#firstForm = i;
        this.#first = e;
      } else (this.#slots ??= [])[i] = e;
    }
    return e;
  }
}

/**
 * Makes a message safe to keep for long: its payload and v5 Correlation
 * Data, when views of a much larger buffer (a read chunk), are copied out
 * (`ownBytes`), so a queued, retained or will message never pins a whole
 * chunk. Replaces them in place (the message is shared; the bytes are the
 * same).
 */
export function ownPayload(message: StoredMessage): void {
  message.payload = ownBytes(message.payload);
  const props = message.properties;
  const cd = props?.correlationData;
  if (cd !== undefined) {
    const own = ownBytes(cd);
    if (own !== cd) message.properties = { ...props, correlationData: own };
  }
}
