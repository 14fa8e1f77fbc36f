/**
 * The connection lifecycle at info level, as Mosquitto users expect it
 * (private to connection/): `client X connected from ADDR (v5, clean
 * start, keep alive 60, user alice)`, `client X disconnected (reason)`,
 * `client X refused from ADDR: why (code)`. One line per connection event,
 * never per message; each is built only when info is enabled
 * (`infoEnabled()`: LogTape builds a record before its level check).
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { Properties, ProtocolVersion } from "../../codec/packet.ts";
import { ReasonCode, reasonCodeName } from "../../codec/reason_code.ts";
import { debugEnabled, infoEnabled, logInfo } from "../_log.ts";
import { MqttError } from "../../codec/errors.ts";

const log = getLogger(["kite", "broker", "connection"]);

/** Reason strings of the broker's own DISCONNECTs that carry no error. */
export const DISCONNECT_REASONS: Record<number, string> = {
  [ReasonCode.KeepAliveTimeout]: "keep alive timeout",
  [ReasonCode.SessionTakenOver]:
    "another connection took this client identifier over",
  [ReasonCode.ServerShuttingDown]: "the server is shutting down",
  [ReasonCode.AdministrativeAction]: "disconnected by an administrator",
};

/** What the lines say about a connection. */
export interface LoggedConnection {
  readonly clientId: string;
  readonly remoteAddress: string | undefined;
}

const PROTOCOL: Record<number, string> = { 3: "v3.1", 4: "v3.1.1", 5: "v5" };

/** `0x87 NotAuthorized`. */
function codeText(code: number): string {
  return `0x${code.toString(16).padStart(2, "0")} ${reasonCodeName(code)}`;
}

/** Logs an accepted CONNECT (after its CONNACK). */
export function logConnected(
  c: LoggedConnection,
  version: ProtocolVersion,
  cleanStart: boolean,
  present: boolean,
  keepAlive: number,
  username: string | undefined,
): void {
  if (!infoEnabled()) return;
  const session = cleanStart
    ? "clean start"
    : present
    ? "session resumed"
    : "new session";
  const user = username === undefined ? "anonymous" : `user ${username}`;
  logInfo(
    log,
    "client {clientId} connected from {address} ({protocol}, {session}, keep alive {keepAlive}, {user})",
    {
      clientId: c.clientId,
      address: c.remoteAddress ?? "unknown",
      protocol: PROTOCOL[version] ?? `level ${version}`,
      session,
      keepAlive,
      user,
      username,
    },
  );
}

/** Logs a refused CONNECT (its CONNACK code and why). */
export function logRefused(
  c: LoggedConnection,
  code: number,
  why: string,
): void {
  if (!infoEnabled()) return;
  logInfo(log, "client {clientId} refused from {address}: {why} ({code})", {
    clientId: c.clientId === "" ? "(no id)" : c.clientId,
    address: c.remoteAddress ?? "unknown",
    why,
    code: codeText(code),
  });
}

/**
 * Logs the end of a connected client's connection: `why` when the caller
 * knows it, else from the DISCONNECT code and its reason string, else
 * whether the client ended it with a DISCONNECT.
 */
export function logDisconnected(
  c: LoggedConnection,
  code: number | undefined,
  ungraceful: boolean,
  props: Properties | undefined,
  why: string | undefined,
): void {
  if (!infoEnabled()) return;
  let reason = why;
  if (reason === undefined) {
    if (code !== undefined) {
      const text = props?.reasonString ?? DISCONNECT_REASONS[code];
      reason = text === undefined
        ? codeText(code)
        : `${text}, ${codeText(code)}`;
    } else {
      reason = ungraceful ? "connection closed" : "client sent DISCONNECT";
    }
  }
  logInfo(log, "client {clientId} disconnected ({reason})", {
    clientId: c.clientId,
    reason,
    address: c.remoteAddress,
  });
}

/**
 * Logs the error a connection fails with (a protocol error or a peer gone
 * at debug level, anything else as an internal error); true when the peer
 * closed the socket (reset, broken pipe).
 */
export function logFailure(clientId: string, e: unknown): boolean {
  if (e instanceof MqttError) {
    if (debugEnabled()) {
      log.debug("{clientId}: {error}", {
        clientId,
        error: e.message,
        code: e.reasonCode,
      });
    }
    return false;
  }
  const closedByPeer = e instanceof Deno.errors.ConnectionReset ||
    e instanceof Deno.errors.BrokenPipe ||
    e instanceof Deno.errors.BadResource ||
    e instanceof Deno.errors.Interrupted;
  if (!closedByPeer) {
    log.error("{clientId}: internal error {error}", { clientId, error: e });
  } else if (debugEnabled()) {
    log.debug("{clientId}: socket error {error}", {
      clientId,
      error: String(e),
    });
  }
  return closedByPeer;
}

/** A write to the client failed (debug: the disconnect line follows). */
export function logWriteFailed(clientId: string, e: unknown): void {
  if (!debugEnabled()) return;
  log.debug("{clientId}: write failed: {error}", {
    clientId,
    error: String(e),
  });
}

/** A client that does not read while it sends: its connection is closed. */
export function logOverflow(clientId: string, n: number, limit: number): void {
  log.warn(
    "{clientId}: {n} bytes wait behind the write in progress (outputBufferLimit {limit} x 4), closing",
    { clientId, n, limit },
  );
}

/** The client closed its side (EOF): at debug level. */
export function logClosedByClient(clientId: string): void {
  if (!debugEnabled()) return;
  log.debug("{clientId}: connection closed by the client", { clientId });
}
