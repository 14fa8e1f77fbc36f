/**
 * What `kite pub|sub` print on stderr: an error as one line a person can
 * act on, and with `-d` the client's connection events.
 *
 * @module
 */

import type { Client } from "./client.ts";
import { MqttError } from "../codec/errors.ts";
import { reasonCodeName } from "../codec/reason_code.ts";

/** `e` as one line: an `MqttError` with its reason code name and number. */
export function describe(e: unknown): string {
  if (e instanceof MqttError) {
    const name = reasonCodeName(e.reasonCode);
    const code = `0x${e.reasonCode.toString(16).padStart(2, "0")}`;
    return e.message.includes(name) || e.name === "TimeoutError"
      ? e.message
      : `${e.message} (${name}, ${code})`;
  }
  return e instanceof Error ? e.message : String(e);
}

/**
 * Prints `client`'s errors, and with `debug` its connects, disconnects and
 * reconnects, on stderr as `kite <name>: ...`.
 */
export function watch(client: Client, name: string, debug: boolean): void {
  client.on("error", (e) => {
    if (debug) console.error(`kite ${name}: ${describe(e)}`);
  });
  if (!debug) return;
  client.on("connect", (c) =>
    console.error(
      `kite ${name}: connected (session present: ${c.sessionPresent})`,
    ));
  client.on("disconnect", (e) =>
    console.error(
      `kite ${name}: disconnected: ${e.reason}${
        e.willReconnect ? " (reconnecting)" : ""
      }`,
    ));
  client.on(
    "reconnect",
    (e) => console.error(`kite ${name}: reconnecting in ${e.delay} ms`),
  );
}
