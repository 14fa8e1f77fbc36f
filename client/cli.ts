/**
 * `kite pub` and `kite sub`: command-line MQTT tools with the flags a
 * Mosquitto user expects (`mosquitto_pub` / `mosquitto_sub`).
 *
 * ```sh
 * deno run -A client/cli.ts sub -t 'sensor/#' -v
 * deno run -A client/cli.ts pub -t sensor/kitchen -m 21.5 -q 1
 * deno task sub -t 'sensor/#' -F '%t %p (qos %q)'
 * deno run -A client/cli.ts pub --help
 * ```
 *
 * Exit status: 0 done; 1 an error (refused connect, unreachable broker,
 * failed publish or subscribe); 2 a bad flag; 27 `sub -W` timed out (as
 * `mosquitto_sub`). Every error is one line on stderr.
 *
 * @module
 */

import type { ClientOptions, WillOptions } from "./client.ts";
import type { Properties, QoS } from "../codec/packet.ts";
import { validateTopicFilter, validateTopicName } from "../codec/topic.ts";
import {
  type CliOptions,
  EXIT_USAGE,
  type PubCliOptions,
  UsageError,
} from "./_cli_options.ts";
import { helpText } from "./_cli_help.ts";
import {
  asUsage,
  intArg,
  qosArg,
  splitUserProperty,
  unescape,
  versionArg,
} from "./_cli_values.ts";
import { describe } from "./_cli_log.ts";
import { pub } from "./_cli_pub.ts";
import { sub } from "./_cli_sub.ts";

export type * from "./mod.ts";
export type * from "../codec/mod.ts";
export {
  type CliOptions,
  type CommonCliOptions,
  EXIT_TIMEOUT,
  EXIT_USAGE,
  type PubCliOptions,
  type SubCliOptions,
  UsageError,
} from "./_cli_options.ts";
export { formatMessage, messageToJson } from "./_cli_output.ts";

const enc = new TextEncoder();

type Cmd = "connect" | "publish" | "subscribe" | "will" | "disconnect";

/**
 * The v5 properties `-D` accepts, per packet; value: how the value is
 * parsed.
 */
const D_PROPERTIES: Record<Cmd, Record<string, keyof Properties>> = {
  connect: {
    "session-expiry-interval": "sessionExpiryInterval",
    "receive-maximum": "receiveMaximum",
    "maximum-packet-size": "maximumPacketSize",
    "topic-alias-maximum": "topicAliasMaximum",
    "request-problem-information": "requestProblemInformation",
    "request-response-information": "requestResponseInformation",
    "authentication-method": "authenticationMethod",
    "user-property": "userProperties",
  },
  publish: {
    "content-type": "contentType",
    "correlation-data": "correlationData",
    "message-expiry-interval": "messageExpiryInterval",
    "payload-format-indicator": "payloadFormatIndicator",
    "response-topic": "responseTopic",
    "topic-alias": "topicAlias",
    "user-property": "userProperties",
  },
  subscribe: {
    "subscription-identifier": "subscriptionIdentifiers",
    "user-property": "userProperties",
  },
  will: {
    "content-type": "contentType",
    "correlation-data": "correlationData",
    "message-expiry-interval": "messageExpiryInterval",
    "payload-format-indicator": "payloadFormatIndicator",
    "response-topic": "responseTopic",
    "will-delay-interval": "willDelayInterval",
    "user-property": "userProperties",
  },
  disconnect: {
    "session-expiry-interval": "sessionExpiryInterval",
    "user-property": "userProperties",
  },
};

const TEXT_PROPS = new Set<keyof Properties>([
  "contentType",
  "responseTopic",
  "authenticationMethod",
]);

function setProperty(
  props: Properties,
  cmd: Cmd,
  name: string,
  values: string[],
): void {
  const key = D_PROPERTIES[cmd][name];
  if (!key) {
    throw new UsageError(
      `-D ${cmd}: unknown property "${name}" (one of ${
        Object.keys(D_PROPERTIES[cmd]).join(", ")
      })`,
    );
  }
  const p = props as Record<string, unknown>;
  const value = values[0]!;
  if (key === "userProperties") {
    (props.userProperties ??= []).push([value, values[1]!]);
  } else if (key === "correlationData") {
    props.correlationData = enc.encode(value);
  } else if (key === "subscriptionIdentifiers") {
    props.subscriptionIdentifiers = [
      intArg(`-D ${cmd} ${name}`, value, 1, 268_435_455),
    ];
  } else if (TEXT_PROPS.has(key)) {
    p[key] = value;
  } else {
    p[key] = intArg(`-D ${cmd} ${name}`, value, 0, 4_294_967_295);
  }
}

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
  const client: ClientOptions = { reconnect: command === "sub" };
  let qos: QoS = 0;
  let debug = false;
  const topics: string[] = [];
  let source: PubCliOptions["source"] | undefined;
  let retain = false;
  let repeat = 1;
  let verbose = false;
  let count = 0;
  let timeout = 0;
  let format: string | undefined;
  let json = false;
  let noRetained = false;
  let retainedOnly = false;
  let noEol = false;
  let tls = false;
  let caFile: string | undefined;
  const will: Partial<WillOptions> & { properties?: Properties } = {};
  const packetProps: Record<Cmd, Properties> = {
    connect: {},
    publish: {},
    subscribe: {},
    will: {},
    disconnect: {},
  };
  const setSource = (s: PubCliOptions["source"], flag: string) => {
    if (source) {
      throw new UsageError(
        `${flag}: only one of -m, -f, -s, -l and -n may be given`,
      );
    }
    source = s;
  };

  const rest = args.slice(1);
  for (let i = 0; i < rest.length; i++) {
    let flag = rest[i]!;
    let inline: string | undefined;
    if (flag.startsWith("--") && flag.includes("=")) {
      inline = flag.slice(flag.indexOf("=") + 1);
      flag = flag.slice(0, flag.indexOf("="));
    }
    const value = (): string => {
      if (inline !== undefined) return inline;
      const v = rest[++i];
      if (v === undefined) throw new UsageError(`${flag} needs a value`);
      return v;
    };
    const pubOnly = () => {
      if (command !== "pub") {
        throw new UsageError(`${flag} is a "kite pub" flag`);
      }
    };
    const subOnly = () => {
      if (command !== "sub") {
        throw new UsageError(`${flag} is a "kite sub" flag`);
      }
    };
    switch (flag) {
      case "--help":
        return { command: "help" };
      case "-h":
      case "--host":
        client.host = value();
        break;
      case "-p":
      case "--port":
        client.port = intArg(flag, value(), 1, 65535);
        break;
      case "-i":
      case "--id":
        client.clientId = value();
        break;
      case "-u":
      case "--username":
        client.username = value();
        break;
      case "-P":
      case "--pw":
        client.password = value();
        break;
      case "-k":
      case "--keepalive":
        client.keepAlive = intArg(flag, value(), 0, 65535);
        break;
      case "-V":
      case "--protocol-version":
        client.protocolVersion = versionArg(value());
        break;
      case "-c":
      case "--disable-clean-session":
        client.cleanStart = false;
        break;
      case "-x":
      case "--session-expiry-interval":
        client.sessionExpiryInterval = intArg(flag, value(), 0, 4_294_967_295);
        break;
      case "--tls":
        tls = true;
        break;
      case "--cafile":
        caFile = value();
        break;
      case "--will-topic":
        will.topic = value();
        break;
      case "--will-payload":
        will.payload = value();
        break;
      case "--will-qos":
        will.qos = qosArg(flag, value());
        break;
      case "--will-retain":
        will.retain = true;
        break;
      case "-q":
      case "--qos":
        qos = qosArg(flag, value());
        break;
      case "-d":
      case "--debug":
        debug = true;
        break;
      case "-D":
      case "--property": {
        const cmd = value() as Cmd;
        if (!(cmd in D_PROPERTIES)) {
          throw new UsageError(
            `-D: unknown packet "${cmd}" (connect, publish, subscribe, will, disconnect)`,
          );
        }
        const name = rest[++i];
        const v1 = rest[++i];
        if (name === undefined || v1 === undefined) {
          throw new UsageError(`-D ${cmd} needs a property name and a value`);
        }
        const values = [v1];
        if (name === "user-property") {
          const v2 = rest[++i];
          if (v2 === undefined) {
            throw new UsageError(
              `-D ${cmd} user-property needs a key and a value`,
            );
          }
          values.push(v2);
        }
        setProperty(packetProps[cmd], cmd, name, values);
        break;
      }
      case "--user-property": {
        const target = command === "pub" ? "publish" : "subscribe";
        (packetProps[target].userProperties ??= []).push(
          splitUserProperty(value()),
        );
        break;
      }
      case "-t":
      case "--topic":
        topics.push(value());
        break;
      // pub
      case "-m":
      case "--message":
        pubOnly();
        setSource({ kind: "message", payload: enc.encode(value()) }, flag);
        break;
      case "-f":
      case "--file":
        pubOnly();
        setSource({ kind: "file", path: value() }, flag);
        break;
      case "-s":
      case "--stdin-file":
        pubOnly();
        setSource({ kind: "stdin" }, flag);
        break;
      case "-l":
      case "--stdin-line":
        pubOnly();
        setSource({ kind: "lines" }, flag);
        break;
      case "-n":
      case "--null-message":
        pubOnly();
        setSource({ kind: "null" }, flag);
        break;
      case "-r":
      case "--retain":
        pubOnly();
        retain = true;
        break;
      case "--repeat":
        pubOnly();
        repeat = intArg(flag, value(), 1, 1_000_000_000);
        break;
      // sub
      case "-v":
      case "--verbose":
        subOnly();
        verbose = true;
        break;
      case "-C":
      case "--count":
        subOnly();
        count = intArg(flag, value(), 1, Number.MAX_SAFE_INTEGER);
        break;
      case "-W":
      case "--timeout":
        subOnly();
        timeout = intArg(flag, value(), 1, 3_600_000);
        break;
      case "-F":
      case "--format":
        subOnly();
        format = unescape(value());
        break;
      case "--json":
      case "-j":
        subOnly();
        json = true;
        break;
      case "-R":
      case "--no-retained":
        subOnly();
        noRetained = true;
        break;
      case "--retained-only":
        subOnly();
        retainedOnly = true;
        break;
      case "-N":
      case "--no-eol":
        subOnly();
        noEol = true;
        break;
      default:
        throw new UsageError(
          `unknown option "${flag}" (see kite ${command} --help)`,
        );
    }
  }

  // Cross-checks.
  const v5 = (client.protocolVersion ?? 5) === 5;
  const anyProps = Object.values(packetProps).some((p) =>
    Object.keys(p).length > 0
  );
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
  if (will.topic !== undefined || will.payload !== undefined) {
    if (will.topic === undefined) {
      throw new UsageError("--will-payload needs --will-topic");
    }
    asUsage("--will-topic", () => validateTopicName(will.topic!));
    const w: WillOptions = { topic: will.topic, payload: will.payload ?? "" };
    if (will.qos !== undefined) w.qos = will.qos;
    if (will.retain) w.retain = true;
    if (Object.keys(packetProps.will).length > 0) {
      w.properties = packetProps.will;
    }
    client.will = w;
  } else if (will.qos !== undefined || will.retain) {
    throw new UsageError("--will-qos and --will-retain need --will-topic");
  }
  const c = packetProps.connect;
  if (c.sessionExpiryInterval !== undefined) {
    client.sessionExpiryInterval = c.sessionExpiryInterval;
  }
  if (c.receiveMaximum !== undefined) client.receiveMaximum = c.receiveMaximum;
  if (c.maximumPacketSize !== undefined) {
    client.maximumPacketSize = c.maximumPacketSize;
  }
  if (c.topicAliasMaximum !== undefined) {
    client.topicAliasMaximum = c.topicAliasMaximum;
  }
  if (c.requestProblemInformation !== undefined) {
    client.requestProblemInformation = c.requestProblemInformation === 1;
  }
  if (c.requestResponseInformation !== undefined) {
    client.requestResponseInformation = c.requestResponseInformation === 1;
  }
  if (c.authenticationMethod !== undefined) {
    client.authenticationMethod = c.authenticationMethod;
  }
  if (c.userProperties) client.userProperties = c.userProperties;
  if (tls || caFile !== undefined) {
    client.tls = caFile !== undefined
      ? {
        caCerts: [
          asUsage(`--cafile ${caFile}`, () => Deno.readTextFileSync(caFile!)),
        ],
      }
      : true;
  }

  if (command === "pub") {
    if (topics.length > 1) throw new UsageError("kite pub takes one -t");
    asUsage("-t", () => validateTopicName(topics[0]!));
    if (!source) {
      throw new UsageError("one of -m, -f, -s, -l or -n is needed");
    }
    return {
      command,
      client,
      qos,
      debug,
      topic: topics[0]!,
      source,
      retain,
      properties: packetProps.publish,
      repeat,
    };
  }
  for (const t of topics) asUsage("-t", () => validateTopicFilter(t));
  if (json && format !== undefined) {
    throw new UsageError("--json and -F cannot be used together");
  }
  return {
    command,
    client,
    qos,
    debug,
    topics,
    verbose,
    count,
    timeout,
    format,
    json,
    noRetained,
    retainedOnly,
    noEol,
    properties: packetProps.subscribe,
  };
}

/**
 * Runs `kite pub|sub` with `args` and resolves with the exit status; errors
 * are printed as one line on stderr.
 *
 * @example
 * ```ts ignore
 * import { main } from "@kite/mqtt/cli";
 * Deno.exit(await main(["pub", "-t", "a/b", "-m", "hello"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let o: CliOptions;
  try {
    o = parseCliArgs(args);
  } catch (e) {
    const c = args[0] === "pub" || args[0] === "sub" ? ` ${args[0]}` : "";
    console.error(`kite${c}: ${describe(e)}`);
    return EXIT_USAGE;
  }
  if (o.command === "help") {
    console.log(helpText(args[0]));
    return 0;
  }
  try {
    return o.command === "pub" ? await pub(o) : await sub(o);
  } catch (e) {
    console.error(`kite ${o.command}: ${describe(e)}`);
    return e instanceof UsageError ? EXIT_USAGE : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
