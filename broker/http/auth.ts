/**
 * Who may use the admin API (`/api/...`): with an `httpToken`, a request
 * with `Authorization: Bearer <token>` (401 otherwise); without one, only
 * a peer on a loopback address (403 otherwise), and only a request that a
 * browser page of another site cannot have made: its `Host` must be a
 * loopback name or address (no DNS rebinding) and its `Origin`, when
 * there is one, the same host. `/metrics`, `/healthz` and the dashboard
 * page itself need nothing (the page asks the API with the token it is
 * given).
 *
 * @module
 */

import { HttpError } from "./_json.ts";

/** How a request reached the server (Deno.serve's handler info). */
export interface Peer {
  /** The peer's address. */
  readonly remoteAddr: Deno.Addr;
}

/** Whether `host` (no port, no brackets) is a loopback name or address. */
export function isLoopback(host: string): boolean {
  const h = host.toLowerCase();
  if (h === "localhost" || h.endsWith(".localhost") || h === "::1") {
    return true;
  }
  const v4 = h.startsWith("::ffff:") ? h.slice(7) : h;
  return /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(v4);
}

/** The host part of a `Host` header or URL authority (no port, no brackets). */
function hostOf(authority: string): string {
  if (authority.startsWith("[")) {
    const end = authority.indexOf("]");
    return end < 0 ? authority : authority.slice(1, end);
  }
  const colon = authority.lastIndexOf(":");
  return colon < 0 ? authority : authority.slice(0, colon);
}

/** Compares in time that does not depend on where the strings differ. */
function sameSecret(a: string, b: string): boolean {
  const x = new TextEncoder().encode(a);
  const y = new TextEncoder().encode(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < x.length; i++) diff |= x[i]! ^ (y[i % y.length] ?? 0);
  return diff === 0;
}

/**
 * Throws an `HttpError` (401 or 403) unless `req` may use the admin API;
 * `token` is the configured `httpToken` ("" for none).
 */
export function checkApiAccess(req: Request, peer: Peer, token: string): void {
  if (token !== "") {
    const auth = req.headers.get("authorization") ?? "";
    const m = /^Bearer\s+(.+)$/i.exec(auth);
    if (m === null || !sameSecret(m[1]!.trim(), token)) {
      throw new HttpError(
        401,
        m === null ? "a bearer token is required" : "wrong bearer token",
        { "www-authenticate": 'Bearer realm="kite"' },
      );
    }
    return;
  }
  const addr = peer.remoteAddr;
  const host = addr.transport === "tcp" || addr.transport === "udp"
    ? addr.hostname
    : "";
  if (!isLoopback(host)) {
    throw new HttpError(
      403,
      "the admin API answers loopback clients only unless httpToken is set",
    );
  }
  const hostHeader = req.headers.get("host");
  if (hostHeader !== null && !isLoopback(hostOf(hostHeader))) {
    throw new HttpError(403, `Host ${hostHeader} is not a loopback name`);
  }
  const origin = req.headers.get("origin");
  if (origin !== null) {
    let originHost: string;
    try {
      originHost = new URL(origin).host;
    } catch {
      throw new HttpError(403, `bad Origin ${origin}`);
    }
    if (originHost !== hostHeader) {
      throw new HttpError(403, `cross-origin request from ${origin}`);
    }
  }
}
