/**
 * Kite's MQTT 3.1.1 and 5.0 broker.
 *
 * ```ts
 * import { Broker } from "@kite/mqtt/broker";
 * const broker = new Broker({ host: "127.0.0.1", port: 0, sysInterval: 0 });
 * await broker.listen();
 * console.log(broker.addr.port);
 * await broker.close();
 * ```
 *
 * @module
 */

export {
  Broker,
  type BrokerInit,
  type BrokerStats,
  type CertificateReload,
} from "./broker.ts";
export * from "./options.ts";
export { type FileAuth, fileAuth, type FileAuthOptions } from "./auth.ts";
export { Acl, AclClient, type AclRule } from "./acl.ts";
export {
  AuthFileError,
  type KeyDeriver,
  PasswordFile,
  type PasswordFileOptions,
  pbkdf2Sha256,
  type VerifyOptions,
} from "./password_file.ts";
export type { LoginThrottleOptions } from "./login_throttle.ts";
export { RetainedMessages } from "./retained.ts";
export { KITE_VERSION, SYS_TOPICS } from "./sys.ts";
export type {
  BridgeDirection,
  BridgeOptions,
  BridgeStatus,
  BridgeTlsOptions,
  BridgeTopic,
} from "./bridge/types.ts";
export { checkBridges } from "./bridge/config.ts";
export { connTransport, type Transport } from "./transport.ts";
export {
  type IdentifiedDuplex,
  type Listener,
  type ListenerAddr,
  type ListenerProtocol,
  listenerUrl,
} from "./listen/listener.ts";
export { TcpListener, type TcpListenOptions } from "./listen/tcp.ts";
export { TlsListener, type TlsListenOptions } from "./listen/tls.ts";
export {
  DEFAULT_WS_PATH,
  WebSocketListener,
  type WebSocketListenOptions,
} from "./listen/websocket.ts";
export { openListener, type OpenListenerDefaults } from "./listen/open.ts";
export { ListenError } from "./listen/listen_error.ts";
export * from "./store/mod.ts";
