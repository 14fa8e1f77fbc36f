/**
 * `parseCliArgs()`: reads the `kite pub|sub` command line flag by flag
 * (see `_cli_flags.ts`), then cross-checks the flags and turns them into
 * `PubCliOptions` or `SubCliOptions`.
 *
 * @module
 */

import { validateTopicFilter, validateTopicName } from "../codec/topic.ts";
import {
  type CliOptions,
  type PubCliOptions,
  type SubCliOptions,
  UsageError,
} from "./_cli_options.ts";
import { applyConnectProperties } from "./_cli_properties.ts";
import { asUsage } from "./_cli_values.ts";
import { Args, type Draft, FLAGS, newDraft } from "./_cli_flags.ts";

/**
 * Parses the arguments of `kite pub|sub` (the command first). Throws
 * `UsageError` with a one-line message for a bad flag or value.
 *
 * @example
 * ```ts
 * import { parseCliArgs } from "@kite/mqtt/cli";
 * const o = parseCliArgs(["pub", "-t", "a/b", "-m", "hi", "-q", "1"]);
 * if (o.command === "pub") console.log(o.topic, o.qos); // a/b 1
 * ```
 */
export function parseCliArgs(args: string[]): CliOptions {
  const command = args[0];
  if (command === undefined || command === "--help" || command === "help") {
    return { command: "help" };
  }
  if (command !== "pub" && command !== "sub") {
    throw new UsageError(
      `unknown command "${command}": use "kite pub" or "kite sub"`,
    );
  }
  const d = newDraft(command);
  const a = new Args(args.slice(1));
  while (a.nextFlag()) {
    if (a.flag === "--help") return { command: "help" };
    const f = FLAGS.get(a.flag);
    if (!f) {
      throw new UsageError(
        `unknown option "${a.flag}" (see kite ${command} --help)`,
      );
    }
    if (f.only !== undefined && f.only !== command) {
      throw new UsageError(`${a.flag} is a "kite ${f.only}" flag`);
    }
    f.apply(d, a);
  }
  return finish(d);
}

/** The cross-checks, then the options of `d.command`. */
function finish(d: Draft): PubCliOptions | SubCliOptions {
  const {
    command,
    client,
    qos,
    debug,
    topics,
    source,
    retain,
    repeat,
    tls,
    caFile,
    willTopic,
    willPayload,
    willQos,
    willRetain,
    props,
    ...sub
  } = d;
  const v5 = (client.protocolVersion ?? 5) === 5;
  const anyProps = Object.values(props).some((p) => Object.keys(p).length > 0);
  if (anyProps && !v5) {
    throw new UsageError("-D and --user-property need MQTT 5 (-V 5)");
  }
  if (client.sessionExpiryInterval !== undefined && !v5) {
    throw new UsageError("-x needs MQTT 5 (-V 5)");
  }
  if (client.cleanStart === false && client.clientId === undefined) {
    throw new UsageError("-c needs a client id (-i): a session is per id");
  }
  if (topics.length === 0) throw new UsageError("-t TOPIC is needed");
  if (willTopic !== undefined || willPayload !== undefined) {
    if (willTopic === undefined) {
      throw new UsageError("--will-payload needs --will-topic");
    }
    asUsage("--will-topic", () => validateTopicName(willTopic));
    client.will = { topic: willTopic, payload: willPayload ?? "" };
    if (willQos !== undefined) client.will.qos = willQos;
    if (willRetain) client.will.retain = true;
    if (Object.keys(props.will).length > 0) {
      client.will.properties = props.will;
    }
  } else if (willQos !== undefined || willRetain) {
    throw new UsageError("--will-qos and --will-retain need --will-topic");
  }
  applyConnectProperties(props.connect, client);
  if (tls || caFile !== undefined) {
    client.tls = caFile !== undefined
      ? {
        caCerts: [
          asUsage(`--cafile ${caFile}`, () => Deno.readTextFileSync(caFile)),
        ],
      }
      : true;
  }
  if (command === "pub") {
    if (topics.length > 1) throw new UsageError("kite pub takes one -t");
    const topic = topics[0]!;
    asUsage("-t", () => validateTopicName(topic));
    if (!source) {
      throw new UsageError("one of -m, -f, -s, -l or -n is needed");
    }
    return {
      command,
      client,
      qos,
      debug,
      topic,
      source,
      retain,
      properties: props.publish,
      repeat,
    };
  }
  for (const t of topics) asUsage("-t", () => validateTopicFilter(t));
  if (sub.json && sub.format !== undefined) {
    throw new UsageError("--json and -F cannot be used together");
  }
  return {
    command,
    client,
    qos,
    debug,
    topics,
    ...sub,
    properties: props.subscribe,
  };
}
