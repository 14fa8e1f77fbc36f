/**
 * `ConnectionContext`: what the packet handlers (handlers/) see of a
 * connection: its protocol state as plain fields, and the few ways to act
 * (send, refuse, end). `Connection` implements it; a test can drive the
 * handlers with any object that does.
 *
 * @module
 */

import type { Packet, ProtocolVersion } from "../../codec/packet.ts";
import type { ConnectPacket, Properties } from "../../codec/packet.ts";
import type { TopicAliasReceiver } from "../../codec/_topic_alias.ts";
import type { OutgoingAliases } from "../../codec/_publish_template.ts";
import type { EnhancedAuthFlow } from "../auth.ts";
import type { BrokerCore, CoreConnection } from "../core.ts";
import type { ClientInfo } from "../hooks.ts";
import type { Session } from "../session.ts";
import type { StoredMessage } from "../store/store.ts";

/** Waiting for CONNECT (or for the end of an enhanced authentication). */
export const CONNECTING = 0;
/** CONNACK sent. */
export const CONNECTED = 1;
/** Closing: no more packets are read; the last bytes are being written. */
export const CLOSING = 2;
/** Closed: the socket is released. */
export const CLOSED = 3;

/** The connection as its packet handlers see it. */
export interface ConnectionContext extends CoreConnection {
  /** Protocol version (4 until the CONNECT is read). */
  version: ProtocolVersion;
  /** Most unacknowledged QoS 1/2 messages to this client. */
  sendWindow: number;
  /** The client's v5 Maximum Packet Size (Infinity when not given). */
  maxPacketSize: number;
  /** The client identifier, once the CONNECT is read. */
  clientId: string;
  /** The session, once connected. */
  session: Session | undefined;
  /** Keep alive in seconds (0: none). */
  keepAlive: number;
  /** Epoch ms of the last byte received. */
  readonly lastRx: number;
  /** Epoch ms the connection was accepted. */
  readonly openedAt: number;
  /** Epoch ms of the CONNACK (0 before). */
  connectedAt: number;
  /** The broker core. */
  readonly core: BrokerCore;
  /** CONNECTING, CONNECTED, CLOSING or CLOSED. */
  state: number;
  /** The will, published by the broker on an ungraceful close. */
  will: StoredMessage | undefined;
  /** v5 will delay interval in seconds. */
  willDelay: number;
  /** The Session Expiry Interval the CONNECT asked for. */
  sessionExpiryFromConnect: number;
  /** v5 Request Problem Information (false when the client sent 0). */
  problemInfo: boolean;
  /** Topic aliases the client set (v5). */
  aliasIn: TopicAliasReceiver | undefined;
  /** Topic aliases the broker set for the client (v5). */
  aliasOut: OutgoingAliases | undefined;
  /** QoS 1 PUBLISHes received whose PUBACK is not written yet. */
  qos1Unacked: number;
  /** The v5 enhanced authentication exchange, when CONNECT had a method. */
  authFlow: EnhancedAuthFlow | undefined;
  /** The CONNECT, kept during an enhanced authentication exchange. */
  connectPacket: ConnectPacket | undefined;
  /** Whether the broker assigned the client identifier. */
  assigned: boolean;
  /** The user name the client connected (or authenticated) with. */
  username: string | undefined;
  /** Who the hooks are told about (undefined until the CONNECT is read). */
  readonly info: ClientInfo | undefined;
  /** The peer address, if the transport knows it. */
  readonly remoteAddress: string | undefined;
  /**
   * The identity the transport verified (the client certificate's CN on a
   * mutual TLS listener with `useIdentityAsUsername`): the user name.
   */
  readonly peerIdentity: string | undefined;
  /** Queues a packet; `durable`: once the store has committed. */
  send(p: Packet, durable?: boolean): void;
  /**
   * Ends the connection: a v5 DISCONNECT with `code` first (if given), the
   * will published when `ungraceful`, the socket closed once written (at
   * once with `now`); `why` is for the log line.
   */
  end(
    code: number | undefined,
    ungraceful: boolean,
    now?: boolean,
    props?: Properties,
    why?: string,
  ): void;
}

/** Who the hooks are told a connection is (`Connection.info`). */
export function clientInfo(
  c: Pick<ConnectionContext, "clientId" | "version" | "remoteAddress">,
  username: string | undefined,
): ClientInfo {
  const info: ClientInfo = { clientId: c.clientId, protocolVersion: c.version };
  if (username !== undefined) info.username = username;
  const remote = c.remoteAddress;
  if (remote !== undefined) info.remoteAddress = remote;
  return info;
}
