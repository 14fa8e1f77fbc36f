/**
 * JSON answers of the HTTP server (private to http/): a value, or an
 * error as `{ "status": 404, "message": "..." }`.
 *
 * @module
 */

/** An error answer: its status, a message for people, extra headers. */
export class HttpError extends Error {
  /** The HTTP status (4xx for bad input). */
  readonly status: number;
  /** Headers to add (e.g. `www-authenticate`, `allow`). */
  readonly headers: Record<string, string>;

  /** An error answered with `status` and `message`. */
  constructor(
    status: number,
    message: string,
    headers: Record<string, string> = {},
  ) {
    super(message);
    this.status = status;
    this.headers = headers;
  }
}

const NO_STORE = "no-store";

/** A JSON answer. */
export function json(
  value: unknown,
  status = 200,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(value), {
    status,
    headers: {
      "content-type": "application/json; charset=utf-8",
      "cache-control": NO_STORE,
      ...headers,
    },
  });
}

/** The JSON answer of an error. */
export function errorResponse(e: HttpError): Response {
  return json({ status: e.status, message: e.message }, e.status, e.headers);
}

/** Base64 of bytes. */
export function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

/** Bytes of base64 text; undefined when it is not base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  let s: string;
  try {
    s = atob(text);
  } catch {
    return undefined;
  }
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}
