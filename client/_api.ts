/**
 * The client API that both the Deno client (client.ts) and the browser
 * build (browser.ts) export (private): `WebClient`, the errors, the option
 * and event types and the portable dialer. Kept in one list so the two
 * entry points cannot drift apart; no Deno APIs are reached from here.
 *
 * @module
 */

export { WebClient } from "./web_client.ts";
export { ClientOfflineError, TimeoutError } from "./errors.ts";
export type {
  AuthChallenge,
  ClientOptions,
  DisconnectOptions,
  PublishOptions,
  PublishTracker,
  RequestOptions,
  SubscribeOptions,
  TlsOptions,
  WillOptions,
} from "./options.ts";
export type {
  ClientEvents,
  ClientListener,
  DisconnectEvent,
  MessageHandler,
} from "./events.ts";
export {
  type Dialer,
  WebSocketDialer,
  type WebSocketDialerOptions,
} from "./dialer.ts";
export type { Duplex, RawReader } from "../codec/duplex.ts";
