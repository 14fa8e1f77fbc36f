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
import { parseBrokerUrl, webSocketUrl } from "./_broker_url.ts";
import type { ClientOptions, TlsOptions } from "./options.ts";
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
    certFile,
    keyFile,
    insecure,
    url,
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
  if (url !== undefined) applyUrl(url, client, topics);
  applyTls(client, url !== undefined, {
    tls,
    caFile,
    certFile,
    keyFile,
    insecure,
  });
  if (topics.length === 0) {
    throw new UsageError("-t TOPIC is needed (or -L mqtt://host/TOPIC)");
  }
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
  if (command === "pub") {
    if (topics.length > 1) {
      throw new UsageError("kite pub takes one topic (-t or the -L URL's)");
    }
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

/**
 * `-L URL`: mosquitto_pub's `mqtt(s)://[user[:pass]@]host[:port]/topic`
 * (the path is the topic), or `ws(s)://[user[:pass]@]host[:port]/path` (the
 * path is the WebSocket endpoint; topics come from `-t`). Sets the client's
 * URL and credentials (`-u`/`-P` win); a topic joins `topics`.
 */
function applyUrl(url: string, client: ClientOptions, topics: string[]): void {
  if (client.host !== undefined || client.port !== undefined) {
    throw new UsageError("-L cannot be combined with -h or -p");
  }
  // The topic is the raw rest after the host, '#' and '?' included (as
  // mosquitto_pub reads it); the URL parser only sees what is before it.
  const scheme = url.indexOf("://");
  const slash = scheme < 0 ? -1 : url.indexOf("/", scheme + 3);
  const base = slash < 0 ? url : url.slice(0, slash);
  const rest = slash < 0 ? "" : url.slice(slash);
  const isWs = /^wss?:/i.test(url);
  const t = asUsage("-L", () => parseBrokerUrl(isWs ? url : base));
  if (t.username !== undefined) client.username ??= t.username;
  if (t.password !== undefined) client.password ??= t.password;
  if (isWs) {
    client.url = webSocketUrl(t);
    return;
  }
  const host = t.hostname.includes(":") ? `[${t.hostname}]` : t.hostname;
  client.url = `${t.protocol}://${host}:${t.port}`;
  if (rest.length > 1) topics.push(rest.slice(1));
}

/** The TLS flags, their files read now (a bad file is a usage error). */
function applyTls(
  client: ClientOptions,
  withUrl: boolean,
  f: {
    tls: boolean;
    caFile: string | undefined;
    certFile: string | undefined;
    keyFile: string | undefined;
    insecure: boolean;
  },
): void {
  const any = f.tls || f.insecure || f.caFile !== undefined ||
    f.certFile !== undefined || f.keyFile !== undefined;
  if (!any) return;
  if ((f.certFile === undefined) !== (f.keyFile === undefined)) {
    throw new UsageError("--cert and --key go together");
  }
  if (withUrl && !/^(mqtts|wss):/.test(client.url ?? "")) {
    throw new UsageError(
      "--tls, --cafile, --cert, --key and --insecure need an mqtts:// or wss:// URL with -L",
    );
  }
  const read = (flag: string, file: string) =>
    asUsage(`${flag} ${file}`, () => Deno.readTextFileSync(file));
  const o: TlsOptions = {};
  if (f.caFile !== undefined) o.caCerts = [read("--cafile", f.caFile)];
  if (f.certFile !== undefined) o.cert = read("--cert", f.certFile);
  if (f.keyFile !== undefined) o.key = read("--key", f.keyFile);
  if (f.insecure) o.insecure = true;
  client.tls = Object.keys(o).length > 0 ? o : true;
}
