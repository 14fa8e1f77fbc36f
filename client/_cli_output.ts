/**
 * What `kite sub` prints: batched stdout (`Output`), the JSON form of a
 * message (`--json`, `%j`) and the `-F` format codes.
 *
 * @module
 */

import type { Message } from "./message.ts";

/**
 * Stdout, written in batches: lines pushed in one turn of the event loop go
 * out in one write.
 */
export class Output {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #writing: Promise<void> | undefined;
  /** Set once a write failed (e.g. the reader of a pipe went away). */
  broken = false;

  /** Queues `bytes`; they are written after this turn of the event loop. */
  push(bytes: Uint8Array): void {
    if (this.broken) return;
    this.#chunks.push(bytes);
    this.#size += bytes.length;
    this.#writing ??= this.#write();
  }

  async #write(): Promise<void> {
    await Promise.resolve(); // let the rest of this turn's lines join
    while (this.#size > 0) {
      const buf = new Uint8Array(this.#size);
      let off = 0;
      for (const c of this.#chunks) {
        buf.set(c, off);
        off += c.length;
      }
      this.#chunks = [];
      this.#size = 0;
      try {
        for (let o = 0; o < buf.length;) {
          o += await Deno.stdout.write(buf.subarray(o));
        }
      } catch {
        this.broken = true; // e.g. `| head`: stop printing
        this.#chunks = [];
        this.#size = 0;
      }
    }
    this.#writing = undefined;
  }

  /** Resolves once everything pushed so far is written (or dropped). */
  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }
}

/** `bytes` as hex digits, lower case unless `upper`. */
function hex(bytes: Uint8Array, upper = false): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return upper ? s.toUpperCase() : s;
}

const fatal = new TextDecoder("utf-8", { fatal: true });

/**
 * The JSON form of a message (`--json`, `%j`): `tst` (now), `topic`, `qos`,
 * `retain`, `payloadlen`, `payload` (UTF-8) or `payloadBase64`, and the v5
 * properties the message has.
 *
 * @example
 * ```ts
 * import { messageToJson } from "@kite/mqtt/cli";
 * import { Message } from "@kite/mqtt/client";
 * const m = new Message({
 *   type: "publish", topic: "a/b", payload: new TextEncoder().encode("hi"),
 *   qos: 0, retain: false, dup: false,
 * });
 * messageToJson(m).payload; // "hi"
 * ```
 */
export function messageToJson(m: Message): Record<string, unknown> {
  const o: Record<string, unknown> = {
    tst: new Date().toISOString(),
    topic: m.topic,
    qos: m.qos,
    retain: m.retain,
    payloadlen: m.payload.length,
  };
  try {
    o.payload = fatal.decode(m.payload);
  } catch {
    o.payloadBase64 = btoa(String.fromCharCode(...m.payload));
  }
  const p = m.properties;
  if (p.contentType !== undefined) o.contentType = p.contentType;
  if (p.responseTopic !== undefined) o.responseTopic = p.responseTopic;
  if (p.correlationData) o.correlationData = hex(p.correlationData);
  if (p.messageExpiryInterval !== undefined) {
    o.messageExpiryInterval = p.messageExpiryInterval;
  }
  if (p.payloadFormatIndicator !== undefined) {
    o.payloadFormatIndicator = p.payloadFormatIndicator;
  }
  if (p.userProperties?.length) o.userProperties = p.userProperties;
  if (p.subscriptionIdentifiers?.length) {
    o.subscriptionIdentifiers = p.subscriptionIdentifiers;
  }
  return o;
}

/**
 * Formats a message as `kite sub -F` does (see `kite sub --help` for the
 * `%` codes). `n` is the message number (`%m`), `clientId` for `%i`.
 *
 * @example
 * ```ts
 * import { formatMessage } from "@kite/mqtt/cli";
 * import { Message } from "@kite/mqtt/client";
 * const m = new Message({
 *   type: "publish", topic: "a/b", payload: new TextEncoder().encode("hi"),
 *   qos: 1, retain: false, dup: false,
 * });
 * formatMessage("%t %p %q %l", m, 1, "me"); // "a/b hi 1 2"
 * ```
 */
export function formatMessage(
  format: string,
  m: Message,
  n: number,
  clientId: string,
): string {
  return format.replace(/%(.)/g, (all, c: string) => {
    const p = m.properties;
    switch (c) {
      case "%":
        return "%";
      case "t":
        return m.topic;
      case "p":
        return m.payloadText;
      case "q":
        return String(m.qos);
      case "r":
        return m.retain ? "1" : "0";
      case "i":
        return clientId;
      case "m":
        return String(n);
      case "l":
        return String(m.payload.length);
      case "x":
        return hex(m.payload);
      case "X":
        return hex(m.payload, true);
      case "C":
        return p.contentType ?? "";
      case "R":
        return p.responseTopic ?? "";
      case "D":
        return p.correlationData ? hex(p.correlationData) : "";
      case "E":
        return p.messageExpiryInterval === undefined
          ? ""
          : String(p.messageExpiryInterval);
      case "F":
        return p.payloadFormatIndicator === undefined
          ? ""
          : String(p.payloadFormatIndicator);
      case "P":
        return (p.userProperties ?? []).map(([k, v]) => `${k}:${v}`).join(",");
      case "S":
        return (p.subscriptionIdentifiers ?? []).join(",");
      case "U":
        return (Date.now() / 1000).toFixed(6);
      case "I":
        return new Date().toISOString();
      case "j":
        return JSON.stringify(messageToJson(m));
    }
    return all;
  });
}
