/**
 * The events of a `Client` (`ClientEvents`, `DisconnectEvent`), their
 * listeners, and message handlers. `client.ts` re-exports them; they live
 * here so that the client's connection layer can emit them without an
 * import cycle.
 *
 * @module
 */

import type { ConnackPacket, DisconnectPacket } from "../codec/packet.ts";
import type { Message } from "./message.ts";

/** A message handler; a returned promise's rejection is reported as "error". */
export type MessageHandler = (message: Message) => void | Promise<void>;

/** Why a connection ended, as given to "disconnect" listeners. */
export interface DisconnectEvent {
  /**
   * The v5 reason code: from the broker's DISCONNECT, the client's own
   * (e.g. 0x8D keep alive timeout), or 0 for a normal disconnect.
   */
  reasonCode: number;
  /** A sentence a person can read. */
  reason: string;
  /** Who ended it. */
  initiator: "client" | "server" | "network";
  /** The broker's DISCONNECT, if it sent one. */
  packet?: DisconnectPacket;
  /** The error that ended it, if any. */
  error?: Error;
  /** True when the client will try to reconnect. */
  willReconnect: boolean;
}

/** The events of a `Client` and what each listener receives. */
export interface ClientEvents {
  /** Each successful connection (the first and every reconnect). */
  connect: ConnackPacket;
  /** A connection ended. */
  disconnect: DisconnectEvent;
  /** A reconnect attempt is scheduled after `delay` ms. */
  reconnect: { attempt: number; delay: number };
  /** The client lost its connection and queues requests until reconnected. */
  offline: { queued: number };
  /** The client is closed for good (disconnect, close, or gave up). */
  close: { reason: string };
  /** A handler failed, a reconnect attempt failed, or the broker misbehaved. */
  error: Error;
  /**
   * The broker released the QoS 2 message it sent with `packetId` (PUBREL,
   * answered with PUBCOMP; also one the client does not know, after a
   * restart): that exchange is over, and the id may come again with a new
   * message. An application that keeps the ids of the QoS 2 messages it
   * took (to recognise a resend after its own restart, when the client's
   * memory of them is gone) forgets this one. (Not sent by `SyncClient`.)
   */
  released: { packetId: number };
}

/** A listener of event `K`. */
export type ClientListener<K extends keyof ClientEvents> = (
  event: ClientEvents[K],
) => void;
