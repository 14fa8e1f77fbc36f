/**
 * What each `kite pub|sub` flag does: one table row per flag (common,
 * pub-only, sub-only) applied to a draft of the options, and the cursor
 * that hands a flag its values.
 *
 * @module
 */

import type { Properties, QoS } from "../codec/packet.ts";
import {
  type CommonCliOptions,
  type PubCliOptions,
  type SubCliOptions,
  UsageError,
} from "./_cli_options.ts";
import {
  D_PROPERTIES,
  type PropertyPacket,
  setProperty,
} from "./_cli_properties.ts";
import {
  intArg,
  qosArg,
  splitUserProperty,
  unescape,
  versionArg,
} from "./_cli_values.ts";

/** The `kite sub` options that only its own flags set. */
export type SubFields = Omit<
  SubCliOptions,
  keyof CommonCliOptions | "command" | "topics" | "properties"
>;

/** The flags read so far, before the cross-checks. */
export interface Draft
  extends
    CommonCliOptions,
    SubFields,
    Pick<PubCliOptions, "retain" | "repeat"> {
  command: "pub" | "sub";
  topics: string[];
  source: PubCliOptions["source"] | undefined;
  tls: boolean;
  caFile: string | undefined;
  certFile: string | undefined;
  keyFile: string | undefined;
  insecure: boolean;
  url: string | undefined;
  willTopic: string | undefined;
  willPayload: string | undefined;
  willQos: QoS | undefined;
  willRetain: boolean;
  props: Record<PropertyPacket, Properties>;
}

/** A draft with every default, before any flag. */
export function newDraft(command: "pub" | "sub"): Draft {
  return {
    command,
    client: { reconnect: command === "sub" },
    qos: 0,
    debug: false,
    topics: [],
    source: undefined,
    retain: false,
    repeat: 1,
    verbose: false,
    count: 0,
    timeout: 0,
    format: undefined,
    json: false,
    noRetained: false,
    retainedOnly: false,
    noEol: false,
    tls: false,
    caFile: undefined,
    certFile: undefined,
    keyFile: undefined,
    insecure: false,
    url: undefined,
    willTopic: undefined,
    willPayload: undefined,
    willQos: undefined,
    willRetain: false,
    props: {
      connect: {},
      publish: {},
      subscribe: {},
      will: {},
      disconnect: {},
    },
  };
}

/** The `Draft` fields of exactly type `T`. */
type DraftKey<T> = {
  [K in keyof Draft]-?: [Draft[K]] extends [T] ? [T] extends [Draft[K]] ? K
    : never
    : never;
}[keyof Draft];

/** A cursor over the arguments after the command. */
export class Args {
  #args: string[];
  #i = -1;
  #inline: string | undefined;
  /** The current flag (without `=value`). */
  flag = "";

  constructor(args: string[]) {
    this.#args = args;
  }

  /** Moves to the next flag; false after the last argument. */
  nextFlag(): boolean {
    const flag = this.#args[++this.#i];
    if (flag === undefined) return false;
    const eq = flag.startsWith("--") ? flag.indexOf("=") : -1;
    this.flag = eq === -1 ? flag : flag.slice(0, eq);
    this.#inline = eq === -1 ? undefined : flag.slice(eq + 1);
    return true;
  }

  /** The next argument, if any. */
  next(): string | undefined {
    return this.#args[++this.#i];
  }

  /** The flag's value: after `=` in `--flag=value`, else the next argument. */
  value(): string {
    if (this.#inline !== undefined) return this.#inline;
    const v = this.next();
    if (v === undefined) throw new UsageError(`${this.flag} needs a value`);
    return v;
  }

  /** The flag's value as an integer `min..max`. */
  int(min: number, max: number): number {
    return intArg(this.flag, this.value(), min, max);
  }
}

/** What a flag does to the draft, reading its values from the cursor. */
type Apply = (d: Draft, a: Args) => void;

/** A flag without a value that sets a draft field to true. */
function on(key: DraftKey<boolean>): Apply {
  return (d) => {
    d[key] = true;
  };
}

/** A flag whose value is text for a draft field. */
function text(key: DraftKey<string | undefined>): Apply {
  return (d, a) => {
    d[key] = a.value();
  };
}

/** A flag whose value is an integer `min..max` for a draft field. */
function int(key: DraftKey<number>, min: number, max: number): Apply {
  return (d, a) => {
    d[key] = a.int(min, max);
  };
}

/** A flag whose value is a QoS for a draft field. */
function qos(key: DraftKey<QoS> | DraftKey<QoS | undefined>): Apply {
  return (d, a) => {
    d[key] = qosArg(a.flag, a.value());
  };
}

/** A flag whose value is a text client option. */
function clientText(key: "host" | "clientId" | "username" | "password"): Apply {
  return (d, a) => {
    d.client[key] = a.value();
  };
}

/** A flag whose value is an integer client option `min..max`. */
function clientInt(
  key: "port" | "keepAlive" | "sessionExpiryInterval",
  min: number,
  max: number,
): Apply {
  return (d, a) => {
    d.client[key] = a.int(min, max);
  };
}

/** A `kite pub` payload source: only one of them may be given. */
function source(make: (a: Args) => PubCliOptions["source"]): Apply {
  return (d, a) => {
    const s = make(a);
    if (d.source) {
      throw new UsageError(
        `${a.flag}: only one of -m, -f, -s, -l and -n may be given`,
      );
    }
    d.source = s;
  };
}

/** `-D CMD NAME VALUE` (`user-property` takes a key and a value). */
const property: Apply = (d, a) => {
  const cmd = a.value() as PropertyPacket;
  if (!(cmd in D_PROPERTIES)) {
    throw new UsageError(
      `-D: unknown packet "${cmd}" (connect, publish, subscribe, will, disconnect)`,
    );
  }
  const name = a.next();
  const v1 = a.next();
  if (name === undefined || v1 === undefined) {
    throw new UsageError(`-D ${cmd} needs a property name and a value`);
  }
  const values = [v1];
  if (name === "user-property") {
    const v2 = a.next();
    if (v2 === undefined) {
      throw new UsageError(`-D ${cmd} user-property needs a key and a value`);
    }
    values.push(v2);
  }
  setProperty(d.props[cmd], cmd, name, values);
};

const enc = new TextEncoder();

/** Flags of both commands; a key lists a flag's names. */
const COMMON_FLAGS: Record<string, Apply> = {
  "-h --host": clientText("host"),
  "-p --port": clientInt("port", 1, 65535),
  "-i --id": clientText("clientId"),
  "-u --username": clientText("username"),
  "-P --pw": clientText("password"),
  "-k --keepalive": clientInt("keepAlive", 0, 65535),
  "-V --protocol-version": (d, a) => {
    d.client.protocolVersion = versionArg(a.value());
  },
  "-c --disable-clean-session": (d) => {
    d.client.cleanStart = false;
  },
  "-x --session-expiry-interval": clientInt(
    "sessionExpiryInterval",
    0,
    4_294_967_295,
  ),
  "-L --url": text("url"),
  "--tls": on("tls"),
  "--cafile": text("caFile"),
  "--cert": text("certFile"),
  "--key": text("keyFile"),
  "--insecure": on("insecure"),
  "--will-topic": text("willTopic"),
  "--will-payload": text("willPayload"),
  "--will-qos": qos("willQos"),
  "--will-retain": on("willRetain"),
  "-q --qos": qos("qos"),
  "-d --debug": on("debug"),
  "-D --property": property,
  "--user-property": (d, a) => {
    const target = d.command === "pub" ? "publish" : "subscribe";
    (d.props[target].userProperties ??= []).push(splitUserProperty(a.value()));
  },
  "-t --topic": (d, a) => {
    d.topics.push(a.value());
  },
};

/** Flags of `kite pub` only. */
const PUB_FLAGS: Record<string, Apply> = {
  "-m --message": source((a) => ({
    kind: "message",
    payload: enc.encode(a.value()),
  })),
  "-f --file": source((a) => ({ kind: "file", path: a.value() })),
  "-s --stdin-file": source(() => ({ kind: "stdin" })),
  "-l --stdin-line": source(() => ({ kind: "lines" })),
  "-n --null-message": source(() => ({ kind: "null" })),
  "-r --retain": on("retain"),
  "--repeat": int("repeat", 1, 1_000_000_000),
};

/** Flags of `kite sub` only. */
const SUB_FLAGS: Record<string, Apply> = {
  "-v --verbose": on("verbose"),
  "-C --count": int("count", 1, Number.MAX_SAFE_INTEGER),
  "-W --timeout": int("timeout", 1, 3_600_000),
  "-F --format": (d, a) => {
    d.format = unescape(a.value());
  },
  "--json -j": on("json"),
  "-R --no-retained": on("noRetained"),
  "--retained-only": on("retainedOnly"),
  "-N --no-eol": on("noEol"),
};

/** Every flag name: what it does and the one command it is for, if any. */
export const FLAGS = new Map<string, { apply: Apply; only?: "pub" | "sub" }>();
for (
  const [table, only] of [
    [COMMON_FLAGS, undefined],
    [PUB_FLAGS, "pub"],
    [SUB_FLAGS, "sub"],
  ] as const
) {
  for (const [names, apply] of Object.entries(table)) {
    for (const name of names.split(" ")) {
      FLAGS.set(name, only === undefined ? { apply } : { apply, only });
    }
  }
}
