/**
 * Authentication and authorization: {@linkcode EnhancedAuthFlow}, the v5
 * enhanced authentication (AUTH) rules of a connection, and
 * {@linkcode fileAuth}, the out-of-the-box hooks backed by a password file
 * and an ACL file.
 *
 * The hook types (`ClientInfo`, `AuthenticateHook`, `EnhancedAuthHook`, ...)
 * and how the broker calls them are in `hooks.ts`; they are re-exported
 * here.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ReasonCode } from "../codec/reason_code.ts";
import type { AuthPacket, Properties, QoS } from "../codec/packet.ts";
import type {
  AuthenticateContext,
  AuthenticateHook,
  AuthorizationEpochHook,
  AuthorizePublishHook,
  AuthorizeReadHook,
  AuthorizeSubscribeHook,
  AuthStep,
  ClientInfo,
  EnhancedAuthHook,
  EnhancedAuthSession,
} from "./hooks.ts";
import { Acl, type AclClient } from "./acl.ts";
import {
  LoginThrottle,
  type LoginThrottleOptions,
  sourceOf,
} from "./login_throttle.ts";
import { type KeyDeriver, PasswordFile } from "./password_file.ts";

export type * from "./hooks.ts";

const logger = getLogger(["kite", "auth"]);

/**
 * What a connection does after an enhanced authentication event (see
 * {@linkcode EnhancedAuthFlow}):
 * - `auth`: send this AUTH packet (0x18 to continue; 0x00 when a
 *   re-authentication succeeded) and keep going;
 * - `connack`: the CONNECT exchange is over: send CONNACK with this reason
 *   code and properties; on a code >= 0x80 close the connection
 *   [MQTT-4.12.0-4];
 * - `disconnect`: a connected client failed re-authentication or broke the
 *   AUTH rules: send DISCONNECT with this code and close [MQTT-4.12.1-2].
 *
 * `username`, on success, is the identity the method proved: use it as the
 * client's user name for the authorization hooks.
 */
export type AuthAction =
  | { type: "auth"; packet: AuthPacket; username?: string }
  | {
    type: "connack";
    reasonCode: number;
    properties: Properties;
    username?: string;
  }
  | { type: "disconnect"; reasonCode: number; properties: Properties };

/**
 * The enhanced authentication (v5 AUTH) rules of one connection, without
 * I/O: the connection feeds it the CONNECT's properties and each AUTH packet
 * and does what the returned {@linkcode AuthAction} says.
 *
 * - CONNECT with an Authentication Method: no hook, or a hook that declines
 *   the method, gives CONNACK 0x8C [MQTT-4.12.0-1].
 * - Every AUTH and the successful CONNACK carry the CONNECT's method
 *   [MQTT-4.12.0-5]; an AUTH with another method, an AUTH on a connection
 *   whose CONNECT had no method [MQTT-4.12.0-7], an AUTH 0x18 when no
 *   exchange is running, or an AUTH 0x19 during one is a protocol error
 *   (0x82).
 * - AUTH 0x19 after CONNACK re-authenticates with the same method
 *   [MQTT-4.12.1-1]; success answers AUTH 0x00, failure DISCONNECT.
 * - A hook that throws, or answers a code other than 0x00, 0x18 or >= 0x80,
 *   fails the exchange with 0x80 (Unspecified error).
 * - Reason strings go on AUTH packets only when the client did not set
 *   Request Problem Information to 0 [MQTT-3.1.2-29].
 *
 * The connection keeps its connect timeout running over the whole CONNECT
 * exchange, and treats any packet other than AUTH or DISCONNECT before
 * CONNACK as a protocol error.
 *
 * @example
 * ```ts
 * import { EnhancedAuthFlow } from "./auth.ts";
 * const flow = new EnhancedAuthFlow(undefined, {
 *   clientId: "c1",
 *   protocolVersion: 5,
 * });
 * const action = await flow.connect({ authenticationMethod: "SCRAM-SHA-256" });
 * // { type: "connack", reasonCode: 0x8c, ... }: no hook for the method
 * ```
 */
export class EnhancedAuthFlow {
  readonly #hook: EnhancedAuthHook | undefined;
  readonly #client: ClientInfo;
  readonly #problemInfo: boolean;
  #method: string | undefined;
  #session: EnhancedAuthSession | undefined;
  #connected = false;

  /**
   * Creates the flow of one connection. `requestProblemInformation` is the
   * CONNECT's property (false when the client sent 0).
   */
  constructor(
    hook: EnhancedAuthHook | undefined,
    client: ClientInfo,
    options: { requestProblemInformation?: boolean } = {},
  ) {
    this.#hook = hook;
    this.#client = client;
    this.#problemInfo = options.requestProblemInformation ?? true;
  }

  /** The CONNECT's Authentication Method, once `connect` was called. */
  get method(): string | undefined {
    return this.#method;
  }

  /** Whether an exchange is waiting for the client's next AUTH. */
  get inProgress(): boolean {
    return this.#session !== undefined;
  }

  /**
   * Starts the exchange of a v5 CONNECT that has an Authentication Method
   * (`properties.authenticationMethod`).
   */
  connect(properties: Properties): Promise<AuthAction> {
    const method = properties.authenticationMethod;
    if (method === undefined) {
      return Promise.resolve(
        this.#fail(ReasonCode.ProtocolError, "no Authentication Method"),
      );
    }
    this.#method = method;
    return this.#start(method, properties.authenticationData, false);
  }

  /**
   * Handles an AUTH packet from the client. Call {@linkcode
   * EnhancedAuthFlow.connected} once CONNACK 0x00 was sent, so that failures
   * become DISCONNECT rather than CONNACK.
   */
  auth(packet: AuthPacket): Promise<AuthAction> {
    const code = packet.reasonCode ?? ReasonCode.Success;
    const method = packet.properties?.authenticationMethod;
    if (this.#method === undefined) {
      return Promise.resolve(this.#fail(
        ReasonCode.ProtocolError,
        "AUTH on a connection whose CONNECT had no Authentication Method [MQTT-4.12.0-7]",
      ));
    }
    if (method !== this.#method) {
      return Promise.resolve(this.#fail(
        ReasonCode.ProtocolError,
        `AUTH with method ${
          method ?? "(none)"
        } instead of ${this.#method} [MQTT-4.12.0-5]`,
      ));
    }
    const data = packet.properties?.authenticationData;
    if (code === ReasonCode.ContinueAuthentication) {
      if (this.#session === undefined) {
        return Promise.resolve(this.#fail(
          ReasonCode.ProtocolError,
          "AUTH 0x18 with no authentication exchange in progress",
        ));
      }
      return this.#step(this.#session, data);
    }
    if (code === ReasonCode.ReAuthenticate) {
      if (!this.#connected || this.#session !== undefined) {
        return Promise.resolve(this.#fail(
          ReasonCode.ProtocolError,
          "AUTH 0x19 before CONNACK or during an exchange",
        ));
      }
      return this.#start(this.#method, data, true);
    }
    return Promise.resolve(this.#fail(
      ReasonCode.ProtocolError,
      `AUTH with reason code 0x${code.toString(16)} from a client`,
    ));
  }

  /** Notes that CONNACK 0x00 was sent: later failures are DISCONNECTs. */
  connected(): void {
    this.#connected = true;
  }

  #start(
    method: string,
    data: Uint8Array | undefined,
    reauthenticate: boolean,
  ): Promise<AuthAction> {
    let session: EnhancedAuthSession | undefined;
    try {
      session = this.#hook?.({ ...this.#client, method, reauthenticate });
    } catch (e) {
      logger.error("enhancedAuth hook failed: {error}", {
        error: (e as Error).message,
      });
      return Promise.resolve(this.#fail(ReasonCode.UnspecifiedError));
    }
    if (session === undefined) {
      logger.warn(
        "authentication method {method} not supported (client {clientId} from {address})",
        { ...who(this.#client), method },
      );
      return Promise.resolve(this.#fail(
        ReasonCode.BadAuthenticationMethod,
        `authentication method ${method} is not supported`,
      ));
    }
    this.#session = session;
    return this.#step(session, data);
  }

  async #step(
    session: EnhancedAuthSession,
    data: Uint8Array | undefined,
  ): Promise<AuthAction> {
    let step: AuthStep;
    try {
      step = await session.step(data);
    } catch (e) {
      logger.error("enhancedAuth step failed: {error}", {
        error: (e as Error).message,
      });
      return this.#fail(ReasonCode.UnspecifiedError);
    }
    const code = step.reasonCode;
    const properties: Properties = { authenticationMethod: this.#method! };
    if (step.data !== undefined) properties.authenticationData = step.data;
    if (code === ReasonCode.ContinueAuthentication) {
      if (step.reasonString !== undefined && this.#problemInfo) {
        properties.reasonString = step.reasonString;
      }
      return {
        type: "auth",
        packet: { type: "auth", reasonCode: code, properties },
      };
    }
    if (code === ReasonCode.Success) {
      this.#session = undefined;
      const username = step.username === undefined
        ? {}
        : { username: step.username };
      if (!this.#connected) {
        return { type: "connack", reasonCode: code, properties, ...username };
      }
      if (step.reasonString !== undefined && this.#problemInfo) {
        properties.reasonString = step.reasonString;
      }
      return {
        type: "auth",
        packet: { type: "auth", reasonCode: code, properties },
        ...username,
      };
    }
    if (code < 0x80) {
      logger.error("enhancedAuth answered reason code {code}", { code });
      return this.#fail(ReasonCode.UnspecifiedError);
    }
    logger.warn(
      "login refused: {method} authentication failed with 0x{code} (client {clientId} from {address})",
      { ...who(this.#client), method: this.#method, code: code.toString(16) },
    );
    return this.#fail(code, step.reasonString, step.data);
  }

  #fail(
    reasonCode: number,
    reasonString?: string,
    data?: Uint8Array,
  ): AuthAction {
    this.#session = undefined;
    const properties: Properties = {};
    // CONNACK and DISCONNECT may carry a reason string even when Request
    // Problem Information is 0 [MQTT-3.1.2-29].
    if (reasonString !== undefined) properties.reasonString = reasonString;
    if (this.#connected) return { type: "disconnect", reasonCode, properties };
    if (this.#method !== undefined && data !== undefined) {
      properties.authenticationMethod = this.#method;
      properties.authenticationData = data;
    }
    return { type: "connack", reasonCode, properties };
  }
}

/** Options of {@linkcode fileAuth}. */
export interface FileAuthOptions {
  /**
   * A password file (see `password_file.ts`; written by `kite passwd`).
   * Without one, user names are taken as given and not verified (as
   * Mosquitto does); they still select ACL rules.
   */
  passwordFile?: string;
  /** An ACL file (see `acl.ts`). Without one, every client may do anything. */
  aclFile?: string;
  /** Accept clients without a user name. Default false. */
  allowAnonymous?: boolean;
  /** The key derivation of the password file; for tests. */
  deriver?: KeyDeriver;
  /**
   * Throttling of failed logins per source address (see
   * `login_throttle.ts`): by default 5 failures within a minute ban the
   * address for 10 s, doubling with each further ban up to an hour; `false`
   * turns it off.
   */
  loginThrottle?: LoginThrottleOptions | false;
}

/** The hooks returned by {@linkcode fileAuth}, plus `reload`. */
export interface FileAuth {
  /** Checks the user name and password of a CONNECT. */
  authenticate: AuthenticateHook;
  /** Checks a PUBLISH topic against the ACL (synchronous). */
  authorizePublish: AuthorizePublishHook;
  /**
   * Grants every (valid) SUBSCRIBE filter at the requested QoS, as
   * Mosquitto 2 does: what the ACL allows is decided per delivery by
   * `authorizeRead`, so a filter wider than the user's read rights (`#`)
   * is accepted and only the topics the user may read are delivered.
   */
  authorizeSubscribe: AuthorizeSubscribeHook;
  /**
   * Checks each delivery against the ACL's read rules (synchronous); absent
   * without an ACL file (everyone may read everything).
   */
  authorizeRead?: AuthorizeReadHook;
  /** Bumped by each successful `reload`: the broker's cached `authorizeRead` answers are dropped. */
  authorizationEpoch: AuthorizationEpochHook;
  /**
   * Re-reads both files (call it on SIGHUP), each on its own: a file that
   * loads replaces what it held, a file that fails to load keeps its
   * previous users or rules (so a broken ACL file does not hold back a good
   * new password file). Each failure is logged once (level error); the
   * promise then rejects with the first `AuthFileError`. New rules apply at
   * once to every later delivery, existing subscriptions and queued
   * messages included (through `authorizeRead` and `authorizationEpoch`).
   */
  reload(): Promise<void>;
}

interface Loaded {
  passwords: PasswordFile | undefined;
  acl: Acl | undefined;
}

/** Loads both files, each on its own (one failing does not stop the other). */
function loadEach(options: FileAuthOptions): Promise<
  [
    PromiseSettledResult<PasswordFile | undefined>,
    PromiseSettledResult<Acl | undefined>,
  ]
> {
  const passwordOptions = options.deriver === undefined
    ? {}
    : { deriver: options.deriver };
  return Promise.allSettled([
    options.passwordFile === undefined
      ? undefined
      : PasswordFile.load(options.passwordFile, passwordOptions),
    options.aclFile === undefined ? undefined : Acl.load(options.aclFile),
  ]);
}

async function loadFiles(options: FileAuthOptions): Promise<Loaded> {
  const [passwords, acl] = await loadEach(options);
  if (passwords.status === "rejected") throw passwords.reason;
  if (acl.status === "rejected") throw acl.reason;
  return { passwords: passwords.value, acl: acl.value };
}

function who(client: ClientInfo): Record<string, unknown> {
  return {
    clientId: client.clientId,
    username: client.username ?? "(none)",
    address: client.remoteAddress ?? "(unknown)",
  };
}

/**
 * Builds authentication and authorization hooks from a password file and an
 * ACL file, ready to spread into `BrokerOptions`. Failed logins are logged
 * (category `kite.auth`, level warning) with the client id, user name and
 * address, never the password.
 *
 * Decisions of `authenticate`:
 * - no user name: 0x00 when `allowAnonymous`, else 0x87 Not authorized
 *   (3.1.1: return code 5);
 * - a user name, with a password file: 0x00 when the password matches, else
 *   0x86 Bad user name or password (3.1.1: 4), whether the user is unknown or
 *   the password wrong, after the same amount of work;
 * - a user name, without a password file: 0x00;
 * - from a source address banned after repeated failures (see
 *   `loginThrottle`): 0x8A Banned (3.1.1: 5) without a password check.
 *
 * `authorizePublish` returns 0x00 or 0x87. `authorizeSubscribe` grants the
 * requested QoS to every filter, and `authorizeRead` checks each message
 * against the read rules when it is delivered (as Mosquitto 2 does): a user
 * who may read `sensors/+/temp` may subscribe to `#` and gets only those
 * topics. `reload` bumps `authorizationEpoch`, so tightened rules stop
 * deliveries to existing subscriptions at once.
 *
 * @example
 * ```ts ignore
 * import { fileAuth } from "./auth.ts";
 * const auth = await fileAuth({
 *   passwordFile: "kite.passwd",
 *   aclFile: "kite.acl",
 *   allowAnonymous: false,
 * });
 * // new Broker({ ...options, ...auth });
 * Deno.addSignalListener("SIGHUP", () => {
 *   auth.reload().catch((e) => console.error(e.message));
 * });
 * ```
 */
export async function fileAuth(options: FileAuthOptions): Promise<FileAuth> {
  let state = await loadFiles(options);
  const allowAnonymous = options.allowAnonymous ?? false;
  const throttle = options.loginThrottle === false
    ? undefined
    : new LoginThrottle(options.loginThrottle);
  if (state.passwords === undefined && !allowAnonymous) {
    logger.warn(
      "no password file: user names are not verified, only anonymous clients are refused",
    );
  }

  const authenticate = async (ctx: AuthenticateContext): Promise<number> => {
    const { username, password } = ctx;
    const source = throttle === undefined
      ? undefined
      : sourceOf(ctx.remoteAddress);
    if (source !== undefined && throttle!.banned(source) > 0) {
      // Refused without a password check; the ban was logged once.
      return ReasonCode.Banned;
    }
    if (username === undefined) {
      if (allowAnonymous) return ReasonCode.Success;
      logger.warn(
        "login refused: anonymous clients are not allowed (client {clientId} from {address})",
        who(ctx),
      );
      return ReasonCode.NotAuthorized;
    }
    const passwords = state.passwords;
    if (passwords === undefined) return ReasonCode.Success;
    const ok = await passwords.verify(
      username,
      password ?? new Uint8Array(0),
      source === undefined ? {} : {
        // A source with recent failures waits behind everyone else.
        lowPriority: () => throttle!.suspect(source),
      },
    );
    if (ok) return ReasonCode.Success;
    logger.warn(
      "login refused: bad user name or password for {username} (client {clientId} from {address})",
      who(ctx),
    );
    const ban = source === undefined ? 0 : throttle!.failed(source);
    if (ban > 0) {
      logger.warn(
        "{source} banned for {seconds} s after repeated failed logins (last: user {username}, client {clientId})",
        { ...who(ctx), source, seconds: ban / 1000 },
      );
    }
    return ReasonCode.BadUserNameOrPassword;
  };

  /**
   * Compiled ACL rules per client object: the broker passes the same
   * `ClientInfo` for a connection, so the rules are compiled once per
   * connection and dropped with it. Checked against the current ACL (after
   * a reload) and identity (after a re-authentication).
   */
  const compiled = new WeakMap<
    ClientInfo,
    {
      acl: Acl;
      clientId: string;
      username: string | undefined;
      rules: AclClient;
    }
  >();
  const rulesOf = (acl: Acl, client: ClientInfo): AclClient => {
    const c = compiled.get(client);
    if (
      c !== undefined && c.acl === acl && c.clientId === client.clientId &&
      c.username === client.username
    ) {
      return c.rules;
    }
    const rules = acl.forClient(client.clientId, client.username);
    compiled.set(client, {
      acl,
      clientId: client.clientId,
      username: client.username,
      rules,
    });
    return rules;
  };

  const authorizePublish = (
    client: ClientInfo,
    topic: string,
    _qos: QoS,
    _retain: boolean,
  ): number => {
    const acl = state.acl;
    if (acl === undefined || rulesOf(acl, client).canWrite(topic)) {
      return ReasonCode.Success;
    }
    logger.debug(
      "publish to {topic} refused by the ACL (client {clientId}, user {username})",
      { ...who(client), topic },
    );
    return ReasonCode.NotAuthorized;
  };

  // Every filter is granted: deliveries are checked by authorizeRead.
  const authorizeSubscribe = (
    _client: ClientInfo,
    _filter: string,
    qos: QoS,
  ): number => qos;

  const authorizeRead = (client: ClientInfo, topic: string): boolean => {
    const acl = state.acl;
    return acl === undefined || rulesOf(acl, client).canRead(topic);
  };

  let epoch = 1;
  const authorizationEpoch = (): number => epoch;

  const reload = async (): Promise<void> => {
    const { passwordFile, aclFile } = options;
    const [passwords, acl] = await loadEach(options);
    const failed: unknown[] = [];
    if (passwords.status === "fulfilled") {
      state = { ...state, passwords: passwords.value };
      if (passwordFile !== undefined) {
        logger.info("password file {path} reloaded", { path: passwordFile });
      }
    } else {
      failed.push(passwords.reason);
      logger.error(
        "password file reload failed, keeping the previous users: {error}",
        { error: (passwords.reason as Error).message },
      );
    }
    if (acl.status === "fulfilled") {
      state = { ...state, acl: acl.value };
      epoch++;
      if (aclFile !== undefined) {
        logger.info("ACL file {path} reloaded", { path: aclFile });
      }
    } else {
      failed.push(acl.reason);
      logger.error(
        "ACL file reload failed, keeping the previous rules: {error}",
        { error: (acl.reason as Error).message },
      );
    }
    if (failed.length > 0) throw failed[0];
  };

  const auth: FileAuth = {
    authenticate,
    authorizePublish,
    authorizeSubscribe,
    authorizationEpoch,
    reload,
  };
  if (options.aclFile !== undefined) auth.authorizeRead = authorizeRead;
  return auth;
}
