/**
 * What `kite pub` and `kite sub` parse their command line into: the option
 * shapes, the usage error and the exit statuses. Re-exported by
 * `client/cli.ts`.
 *
 * @module
 */

import type { ClientOptions } from "./client.ts";
import type { Properties, QoS } from "../codec/packet.ts";

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
