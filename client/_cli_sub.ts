/**
 * `kite sub`: connects, subscribes, prints each message as `-v`, `-F` or
 * `--json` ask, and stops after `-C` messages, at `-W` seconds, at the
 * first live message with `--retained-only`, or on SIGINT/SIGTERM.
 *
 * @module
 */

import { Client } from "./client.ts";
import type { Message } from "./message.ts";
import { MqttError } from "../codec/errors.ts";
import { reasonCodeName } from "../codec/reason_code.ts";
import { EXIT_TIMEOUT, type SubCliOptions } from "./_cli_options.ts";
import { formatMessage, messageToJson, Output } from "./_cli_output.ts";
import { watch } from "./_cli_log.ts";

const enc = new TextEncoder();

/** Runs `kite sub`; resolves with the exit status, throws on failure. */
export async function sub(o: SubCliOptions): Promise<number> {
  const out = new Output();
  const client = new Client(o.client);
  watch(client, "sub", o.debug);
  const done = Promise.withResolvers<number>();
  done.promise.catch(() => {}); // awaited once connected; may reject before
  let n = 0;
  const eol = o.noEol ? new Uint8Array(0) : enc.encode("\n");
  const onMessage = (m: Message) => {
    if (o.retainedOnly && !m.retain) {
      done.resolve(0);
      return;
    }
    if (o.noRetained && m.retain) return;
    if (o.count > 0 && n >= o.count) return;
    n++;
    if (o.json) {
      out.push(enc.encode(JSON.stringify(messageToJson(m))));
    } else if (o.format !== undefined) {
      out.push(enc.encode(formatMessage(o.format, m, n, client.clientId)));
    } else {
      if (o.verbose) out.push(enc.encode(`${m.topic} `));
      out.push(m.payload);
    }
    out.push(eol);
    if (o.count > 0 && n >= o.count) done.resolve(0);
  };
  client.onMessage(onMessage);
  client.on("close", (e) => {
    done.reject(new MqttError(0x80, `connection closed: ${e.reason}`));
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  if (o.timeout > 0) {
    timer = setTimeout(() => done.resolve(EXIT_TIMEOUT), o.timeout * 1000);
  }
  const stop = () => done.resolve(0);
  const signals: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT"]
    : ["SIGINT", "SIGTERM"];
  for (const s of signals) Deno.addSignalListener(s, stop);
  try {
    await client.connect();
    const codes = await client.subscribe(o.topics, {
      qos: o.qos,
      ...(o.properties.userProperties
        ? { userProperties: o.properties.userProperties }
        : {}),
      ...(o.properties.subscriptionIdentifiers
        ? { subscriptionIdentifier: o.properties.subscriptionIdentifiers[0]! }
        : {}),
    });
    codes.forEach((c, i) => {
      if (c >= 0x80) {
        throw new MqttError(
          c,
          `subscription to "${o.topics[i]}" refused: ${reasonCodeName(c)}`,
        );
      }
    });
    if (o.debug) {
      console.error(`kite sub: subscribed to ${o.topics.join(", ")}`);
    }
    const status = await done.promise;
    if (status === EXIT_TIMEOUT) console.error("Timed out");
    await out.flush();
    await client.disconnect().catch(() => {});
    return status;
  } finally {
    clearTimeout(timer);
    for (const s of signals) Deno.removeSignalListener(s, stop);
    await client.close();
    await out.flush();
  }
}
