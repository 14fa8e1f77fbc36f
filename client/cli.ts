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

import { Client, type ClientOptions, type WillOptions } from "./client.ts";
import type { Message } from "./message.ts";
import type { Properties, QoS, UserProperty } from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import { reasonCodeName } from "../codec/reason_code.ts";
import { validateTopicFilter, validateTopicName } from "../codec/topic.ts";

export type * from "./mod.ts";
export type * from "../codec/mod.ts";

/** Exit status of a bad flag or flag value. */
export const EXIT_USAGE = 2;
/** Exit status of `sub -W` when the timeout passed (as `mosquitto_sub`). */
export const EXIT_TIMEOUT = 27;

/** A bad command line: the message says which flag and why. */
export class UsageError extends Error {
  /** Creates the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Options shared by `pub` and `sub`, as parsed from the command line. */
export interface CommonCliOptions {
  /** Client options: host, port, id, credentials, version, will, ... */
  client: ClientOptions;
  /** QoS of the publish (`pub`) or of the subscriptions (`sub`). */
  qos: QoS;
  /** Print connection events to stderr (`-d`). */
  debug: boolean;
}

/** `kite pub` options. */
export interface PubCliOptions extends CommonCliOptions {
  /** Discriminant. */
  command: "pub";
  /** Topic to publish to. */
  topic: string;
  /** Where the payload comes from. */
  source:
    | { kind: "message"; payload: Uint8Array }
    | { kind: "file"; path: string }
    | { kind: "stdin" }
    | { kind: "lines" }
    | { kind: "null" };
  /** Retain flag. */
  retain: boolean;
  /** v5 PUBLISH properties (`-D publish ...`, `--user-property`). */
  properties: Properties;
  /** Publish the message this many times (`--repeat`). */
  repeat: number;
}

/** `kite sub` options. */
export interface SubCliOptions extends CommonCliOptions {
  /** Discriminant. */
  command: "sub";
  /** Topic filters. */
  topics: string[];
  /** Print the topic before the payload (`-v`). */
  verbose: boolean;
  /** Exit after this many messages (`-C`); 0 for no limit. */
  count: number;
  /** Exit with status 27 after this many seconds without finishing (`-W`). */
  timeout: number;
  /** Output format (`-F`), if any. */
  format: string | undefined;
  /** One JSON object per message (`--json`). */
  json: boolean;
  /** Do not print retained messages (`-R`). */
  noRetained: boolean;
  /** Print only retained messages, exit at the first live one. */
  retainedOnly: boolean;
  /** No newline after each message (`-N`). */
  noEol: boolean;
  /** v5 SUBSCRIBE properties (`-D subscribe ...`, `--user-property`). */
  properties: Properties;
}

/** What `parseCliArgs()` returns. */
export type CliOptions = PubCliOptions | SubCliOptions | { command: "help" };

const COMMON_HELP = `Connection:
  -h, --host HOST            broker host (default 127.0.0.1)
  -p, --port PORT            broker port (default 1883, 8883 with --tls)
  -i, --id ID                client id (default a random kite-... id)
  -u, --username USER        user name
  -P, --pw PASSWORD          password
  -k, --keepalive SECONDS    keep alive (default 60)
  -V, --protocol-version V   5 (default), 311; also mqttv5, mqttv311
  -c, --disable-clean-session  resume the session (needs -i)
  -x, --session-expiry-interval SECONDS  v5 session expiry
      --tls                  connect with TLS
      --cafile FILE          trust this PEM CA certificate (implies --tls)
      --will-topic TOPIC     will message topic
      --will-payload TEXT    will message payload
      --will-qos QOS         will message QoS (default 0)
      --will-retain          retain the will message
  -D, --property CMD NAME VALUE  v5 property of a packet, CMD one of connect,
                             publish, subscribe, will, disconnect; NAME e.g.
                             user-property (two values: key and value),
                             content-type, response-topic, correlation-data,
                             message-expiry-interval, payload-format-indicator,
                             session-expiry-interval, subscription-identifier,
                             will-delay-interval
      --user-property K=V    v5 user property of the PUBLISH (pub) or
                             SUBSCRIBE (sub); may be repeated
  -q, --qos QOS              0, 1 or 2 (default 0)
  -d, --debug                print connection events to stderr
      --help                 this help`;

const PUB_HELP = `kite pub: publish one message (or one per line) and exit.

Usage: kite pub -t TOPIC (-m MSG | -f FILE | -s | -l | -n) [options]

Message:
  -t, --topic TOPIC          topic to publish to
  -m, --message MSG          the payload
  -f, --file FILE            the payload is this file's content
  -s, --stdin-file           the payload is all of stdin
  -l, --stdin-line           one message per line of stdin (blank lines skipped)
  -n, --null-message         an empty payload
  -r, --retain               retain the message
      --repeat N             publish the message N times

${COMMON_HELP}`;

const SUB_HELP = `kite sub: subscribe and print the messages received.

Usage: kite sub -t FILTER [-t FILTER...] [options]

Output:
  -t, --topic FILTER         topic filter to subscribe to (repeatable)
  -v, --verbose              print "topic payload"
  -C, --count N              exit after N messages
  -W, --timeout SECONDS      exit with status 27 if not done within SECONDS
  -F, --format FORMAT        print each message with FORMAT:
                               %t topic  %p payload  %q QoS  %r retain (0/1)
                               %i this client's id  %m message number
                               %l payload length  %x hex payload  %X HEX
                               %C content type  %R response topic
                               %D correlation data (hex)  %E expiry interval
                               %F payload format  %P user properties (k:v,...)
                               %S subscription ids  %U unix time  %I ISO time
                               %j the message as JSON  %% a percent sign
                             and the escapes \\n \\t \\\\
      --json                 print each message as one JSON object per line
  -R, --no-retained          do not print retained messages
      --retained-only        print retained messages, exit at the first live one
  -N, --no-eol               no newline after each message

${COMMON_HELP}`;

const HELP = `kite: MQTT command-line tools.

Usage:
  kite pub [options]   publish (kite pub --help)
  kite sub [options]   subscribe and print (kite sub --help)`;

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

function intArg(flag: string, value: string, min: number, max: number) {
  if (!/^\d+$/.test(value)) {
    throw new UsageError(`${flag} needs an integer, not "${value}"`);
  }
  const n = Number(value);
  if (n < min || n > max) {
    throw new UsageError(`${flag} must be ${min}..${max}, not ${n}`);
  }
  return n;
}

function qosArg(flag: string, value: string): QoS {
  return intArg(flag, value, 0, 2) as QoS;
}

function versionArg(value: string): 4 | 5 {
  switch (value.toLowerCase()) {
    case "5":
    case "mqttv5":
      return 5;
    case "311":
    case "mqttv311":
      return 4;
    case "31":
    case "mqttv31":
      throw new UsageError("MQTT 3.1 is not supported: use -V 311 or -V 5");
  }
  throw new UsageError(
    `-V must be 5 or 311 (mqttv5, mqttv311), not "${value}"`,
  );
}

function splitUserProperty(value: string): UserProperty {
  const i = value.indexOf("=");
  if (i <= 0) {
    throw new UsageError(`--user-property needs KEY=VALUE, not "${value}"`);
  }
  return [value.slice(0, i), value.slice(i + 1)];
}

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
    validate(() => validateTopicName(will.topic!), "--will-topic");
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
    client.tls = caFile !== undefined ? { caCerts: [readCa(caFile)] } : true;
  }

  if (command === "pub") {
    if (topics.length > 1) throw new UsageError("kite pub takes one -t");
    validate(() => validateTopicName(topics[0]!), "-t");
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
  for (const t of topics) validate(() => validateTopicFilter(t), "-t");
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

function readCa(path: string): string {
  try {
    return Deno.readTextFileSync(path);
  } catch (e) {
    throw new UsageError(
      `--cafile ${path}: ${e instanceof Error ? e.message : e}`,
    );
  }
}

function validate(fn: () => void, flag: string): void {
  try {
    fn();
  } catch (e) {
    throw new UsageError(`${flag}: ${e instanceof Error ? e.message : e}`);
  }
}

function unescape(s: string): string {
  return s.replace(/\\([ntr\\0ae])/g, (_, c: string) =>
    ({
      n: "\n",
      t: "\t",
      r: "\r",
      "\\": "\\",
      "0": "\0",
      a: "\x07",
      e: "\x1b",
    })[c] ?? c);
}

// ------------------------------------------------------------------ output

/**
 * Stdout, written in batches: lines pushed in one turn of the event loop go
 * out in one write.
 */
class Output {
  #chunks: Uint8Array[] = [];
  #size = 0;
  #writing: Promise<void> | undefined;
  broken = false;

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

  async flush(): Promise<void> {
    while (this.#writing) await this.#writing;
  }
}

function hex(bytes: Uint8Array, upper = false): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return upper ? s.toUpperCase() : s;
}

const fatal = new TextDecoder("utf-8", { fatal: true });

/** The JSON form of a message (`--json`, `%j`). */
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

// --------------------------------------------------------------- commands

function describe(e: unknown): string {
  if (e instanceof MqttError) {
    const name = reasonCodeName(e.reasonCode);
    const code = `0x${e.reasonCode.toString(16).padStart(2, "0")}`;
    return e.message.includes(name) || e.name === "TimeoutError"
      ? e.message
      : `${e.message} (${name}, ${code})`;
  }
  return e instanceof Error ? e.message : String(e);
}

function watch(client: Client, name: string, debug: boolean): void {
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

async function readStdin(): Promise<Uint8Array> {
  return new Uint8Array(await new Response(Deno.stdin.readable).arrayBuffer());
}

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

async function pub(o: PubCliOptions): Promise<number> {
  let payload: Uint8Array | undefined;
  if (o.source.kind === "message") payload = o.source.payload;
  else if (o.source.kind === "null") payload = new Uint8Array(0);
  else if (o.source.kind === "file") {
    try {
      payload = await Deno.readFile(o.source.path);
    } catch (e) {
      throw new UsageError(
        `-f ${o.source.path}: ${e instanceof Error ? e.message : e}`,
      );
    }
  } else if (o.source.kind === "stdin") payload = await readStdin();
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

async function sub(o: SubCliOptions): Promise<number> {
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
    const c = args[0];
    console.log(c === "pub" ? PUB_HELP : c === "sub" ? SUB_HELP : HELP);
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
