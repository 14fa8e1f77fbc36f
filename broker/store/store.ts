/**
 * The `Store` interface between the broker and its durable state. The broker
 * keeps its live state in memory (sessions, the topic matcher) and mirrors
 * every change that must survive a restart into a `Store`. Two
 * implementations: `MemoryStore` (persistence off; also used by tests) and
 * `KvStore` (Deno KV). Both pass one shared test suite.
 *
 * Writes are group-committed: `put*`/`delete*` calls only enqueue a mutation
 * and return at once; `commit()` resolves when every mutation enqueued before
 * the call is durable. The broker acknowledges a QoS 1/2 PUBLISH only after
 * the `commit()` that covers its mutations has resolved.
 *
 * Records handed to `put*` are not copied: a store may read them only when it
 * flushes (KvStore: at the end of the turn, or a few ms later while it waits
 * for acks to cancel puts). Treat them as immutable once handed over.
 *
 * @module
 */

import type {
  Properties,
  ProtocolVersion,
  QoS,
  Subscription,
} from "../../codec/packet.ts";

/** A message as stored: retained, queued for or in flight to a session. */
export interface StoredMessage {
  /** The topic name as published (never empty: aliases are resolved). */
  topic: string;
  /** The application message. */
  payload: Uint8Array;
  /** QoS as published. */
  qos: QoS;
  /** The RETAIN flag as published. */
  retain: boolean;
  /** v5 properties as published (topic alias removed). */
  properties?: Properties;
  /** Epoch milliseconds after which the message must not be delivered. */
  expiresAt?: number;
  /**
   * Where a QoS 2 message came from, on a cluster node: the sending node's
   * boot id and message number. A session that holds it (stored with its
   * outgoing message) does not take it a second time when another node
   * delivers it again after a crash.
   */
  origin?: string;
}

/** A subscription of a session, with its v5 options. */
export interface StoredSubscription extends Subscription {
  /** v5 subscription identifier, when the SUBSCRIBE carried one. */
  subscriptionIdentifier?: number;
}

/** A will kept with a session (v5 will delay pending, or connection open). */
export interface StoredWill extends StoredMessage {
  /** Epoch milliseconds at which the will is due (after the will delay). */
  dueAt?: number;
  /**
   * The v5 Will Delay Interval in seconds, kept while the connection is
   * open: whoever finds the connection lost without its close (the broker
   * restarted after a crash, a cluster node whose peer died) waits that
   * long from then.
   */
  delay?: number;
}

/**
 * Who a session belongs to: the identity that created it. Only a CONNECT
 * with the same identity may resume or take over the session.
 */
export interface SessionOwner {
  /**
   * The user name the client connected with (with enhanced authentication,
   * the identity the method proved); absent for an anonymous client.
   */
  username?: string;
}

/** The metadata of a session that outlives its connection. */
export interface SessionRecord {
  /** The client identifier (assigned by the broker if the client sent none). */
  clientId: string;
  /** Protocol level of the connection that created or last used it. */
  protocolVersion: ProtocolVersion;
  /** Session expiry interval in seconds (0xFFFFFFFF: never). */
  expiryInterval: number;
  /** Epoch ms of the disconnect; absent while connected. */
  disconnectedAt?: number;
  /** The subscriptions of the session. */
  subscriptions: StoredSubscription[];
  /** The will, while it may still be published. */
  will?: StoredWill;
  /**
   * Who the session belongs to; also the identity its will is authorized
   * as. Absent in records written before Kite kept it: the first identity
   * that connects with the client id claims such a session.
   */
  owner?: SessionOwner;
  /**
   * True when its last connection carried Mosquitto's bridge flag (a 3.1.1
   * bridge, `try_private`): messages queued for it keep their retain flag
   * as published, also after a restart, before it connects again.
   */
  bridge?: boolean;
}

/** State of a message queued for or in flight to a session. */
export type OutgoingState = "queued" | "sent" | "pubrec";

/** A message queued for or in flight to a session, kept in order by `seq`. */
export interface OutgoingRecord {
  /** Monotonic per session; defines delivery order. */
  seq: number;
  /** Assigned when sent (state "sent" or "pubrec"). */
  packetId?: number;
  /** Where the delivery stands. */
  state: OutgoingState;
  /** QoS of the delivery to this session (min of publish and grant). */
  qos: QoS;
  /** Subscription identifiers to deliver with the message (v5). */
  subscriptionIdentifiers?: number[];
  /** The message to deliver. */
  message: StoredMessage;
}

/** Everything a store holds, as loaded at start-up. */
export interface LoadedState {
  /** Every retained message. */
  retained: StoredMessage[];
  /** Every stored session. */
  sessions: LoadedSession[];
}

/** One session as loaded at start-up. */
export interface LoadedSession {
  /** The session's metadata and subscriptions. */
  record: SessionRecord;
  /** Sorted by `seq`. */
  outgoing: OutgoingRecord[];
  /** QoS 2 packet ids received from the client, awaiting PUBREL. */
  incomingQos2: number[];
}

/** The durable state of a broker. */
export interface Store {
  /**
   * False for a store whose state does not outlive the process
   * (`MemoryStore`): what only a restart would need is then not written
   * (a bridge's messages for its remote), and acknowledgements are not held
   * until its `commit()` resolves. Absent: durable.
   */
  readonly durable?: boolean;
  /** Sets (or, with `undefined`, clears) the retained message of a topic. */
  putRetained(topic: string, message: StoredMessage | undefined): void;
  /** Creates or replaces a session's metadata and subscriptions. */
  putSession(record: SessionRecord): void;
  /** Removes a session with its outgoing messages and QoS 2 ids. */
  deleteSession(clientId: string): void;
  /** Creates or replaces one outgoing message of a session. */
  putOutgoing(clientId: string, record: OutgoingRecord): void;
  /** Removes one outgoing message of a session. */
  deleteOutgoing(clientId: string, seq: number): void;
  /** Records a QoS 2 packet id received from a client (PUBREC sent). */
  putIncomingQos2(clientId: string, packetId: number): void;
  /** Forgets a QoS 2 packet id (PUBREL received). */
  deleteIncomingQos2(clientId: string, packetId: number): void;
  /** Resolves when every mutation enqueued before this call is durable. */
  commit(): Promise<void>;
  /** Reads everything back (at start-up). */
  load(): Promise<LoadedState>;
  /** Commits what is pending and releases resources. */
  close(): Promise<void>;
}
