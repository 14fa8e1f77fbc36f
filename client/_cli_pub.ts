/**
 * `kite pub`: reads the payload (flag, file, stdin or one per line of
 * stdin), connects, publishes with bounded pipelining and disconnects.
 *
 * @module
 */

import { Client } from "./client.ts";
import type { PubCliOptions } from "./_cli_options.ts";
import { usageError } from "./_cli_values.ts";
import { watch } from "./_cli_log.ts";

/** All of stdin. */
async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

/** The lines of stdin, without `\n` or `\r\n`. */
async function* stdinLines(): AsyncGenerator<string> {
  let rest = "";
  for await (
    const chunk of Deno.stdin.readable.pipeThrough(new TextDecoderStream())
  ) {
    rest += chunk;
    let i;
    while ((i = rest.indexOf("\n")) !== -1) {
      yield rest.slice(0, i).replace(/\r$/, "");
      rest = rest.slice(i + 1);
    }
  }
  if (rest !== "") yield rest;
}

/** The one payload of `-m`, `-n`, `-f` or `-s`; undefined for `-l`. */
async function payloadOf(
  source: PubCliOptions["source"],
): Promise<Uint8Array | undefined> {
  switch (source.kind) {
    case "message":
      return source.payload;
    case "null":
      return new Uint8Array(0);
    case "file":
      try {
        return await Deno.readFile(source.path);
      } catch (e) {
        throw usageError(`-f ${source.path}`, e);
      }
    case "stdin":
      return await readStdin();
    case "lines":
      return undefined;
  }
}

/** Runs `kite pub`; resolves with the exit status (0), throws on failure. */
export async function pub(o: PubCliOptions): Promise<number> {
  const payload = await payloadOf(o.source);
  const client = new Client({ reconnect: false, ...o.client });
  watch(client, "pub", o.debug);
  await client.connect();
  try {
    const options = {
      qos: o.qos,
      retain: o.retain,
      ...(Object.keys(o.properties).length > 0
        ? { properties: o.properties }
        : {}),
    };
    const pending: Promise<unknown>[] = [];
    const send = async (bytes: string | Uint8Array) => {
      pending.push(client.publish(o.topic, bytes, options));
      // Bounded pipelining: wait for a batch before queueing more.
      if (pending.length >= 1000) await Promise.all(pending.splice(0));
    };
    if (payload !== undefined) {
      for (let i = 0; i < o.repeat; i++) await send(payload);
    } else {
      for await (const line of stdinLines()) {
        if (line !== "") await send(line);
      }
    }
    await Promise.all(pending);
    await client.disconnect();
  } finally {
    await client.close();
  }
  return 0;
}
