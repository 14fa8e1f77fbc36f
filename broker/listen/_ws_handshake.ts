/**
 * The WebSocket opening handshake, server side (private; RFC 6455 section
 * 4.2): reading the HTTP request head from a `Duplex`, checking it, and the
 * `101 Switching Protocols` answer or an HTTP error with a reason.
 *
 * @module
 */

import type { Duplex } from "../../codec/duplex.ts";
import { endOfHead, joinBytes } from "../../codec/_websocket.ts";

/** Longest request head accepted (request line and headers). */
export const MAX_HEAD = 8192;

const latin1 = new TextDecoder("latin1");
const ascii = new TextEncoder();

/** An HTTP request head. */
export interface RequestHead {
  method: string;
  /** The path, without the query string. */
  path: string;
  /** `HTTP/1.1` */
  version: string;
  /** Header values by lower-case name (repeated headers joined by ", "). */
  headers: Map<string, string>;
  /** Bytes that came after the head (the first WebSocket frames). */
  rest: Uint8Array;
}

/** Why a request head could not be read. */
export type HeadFailure = "eof" | "too large" | "malformed";

/** Parses the head text (without the blank line). */
function parseHead(text: string, rest: Uint8Array): RequestHead | undefined {
  const lines = text.split("\r\n");
  const m = /^([A-Z]+) (\S+) (HTTP\/\d\.\d)$/.exec(lines[0] ?? "");
  if (m === null) return undefined;
  const headers = new Map<string, string>();
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    const colon = line.indexOf(":");
    // No folded lines (RFC 7230 3.2.4), no header without a name.
    if (colon <= 0 || line[0] === " " || line[0] === "\t") return undefined;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const prev = headers.get(name);
    headers.set(name, prev === undefined ? value : `${prev}, ${value}`);
  }
  const target = m[2]!;
  const q = target.indexOf("?");
  return {
    method: m[1]!,
    path: q < 0 ? target : target.slice(0, q),
    version: m[3]!,
    headers,
    rest,
  };
}

/**
 * Reads an HTTP request head from `d` (at most `MAX_HEAD` bytes): the head,
 * or why not.
 */
export async function readRequestHead(
  d: Duplex,
): Promise<RequestHead | HeadFailure> {
  let buf = new Uint8Array(0);
  while (true) {
    const chunk = await d.read();
    if (chunk === null) return "eof";
    const searchFrom = buf.length - 3;
    buf = joinBytes(buf, chunk);
    const end = endOfHead(buf, searchFrom);
    if (end < 0) {
      if (buf.length > MAX_HEAD) return "too large";
      continue;
    }
    if (end > MAX_HEAD) return "too large";
    const head = parseHead(
      latin1.decode(buf.subarray(0, end)),
      buf.slice(end + 4),
    );
    return head ?? "malformed";
  }
}

/** Whether a comma-separated header value has `token` (any case). */
export function hasToken(value: string | undefined, token: string): boolean {
  if (value === undefined) return false;
  return value.split(",").some((t) => t.trim().toLowerCase() === token);
}

/** Whether `key` is a valid `Sec-WebSocket-Key` (16 bytes in base64). */
export function validKey(key: string | undefined): key is string {
  return key !== undefined && /^[A-Za-z0-9+/]{22}==$/.test(key);
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  426: "Upgrade Required",
  431: "Request Header Fields Too Large",
  503: "Service Unavailable",
};

/** An HTTP error answer whose body is `reason`; the connection then closes. */
export function errorResponse(
  status: number,
  reason: string,
  headers: Record<string, string> = {},
): Uint8Array {
  const body = ascii.encode(reason + "\n");
  const lines = [
    `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? "Error"}`,
    "Content-Type: text/plain; charset=utf-8",
    `Content-Length: ${body.length}`,
    "Connection: close",
    ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`),
    "",
    "",
  ];
  const head = ascii.encode(lines.join("\r\n"));
  return joinBytes(head, body);
}

/** The `101 Switching Protocols` answer. */
export function switchingResponse(
  accept: string,
  protocol: string,
): Uint8Array {
  return ascii.encode(
    [
      "HTTP/1.1 101 Switching Protocols",
      "Upgrade: websocket",
      "Connection: Upgrade",
      `Sec-WebSocket-Accept: ${accept}`,
      `Sec-WebSocket-Protocol: ${protocol}`,
      "",
      "",
    ].join("\r\n"),
  );
}
