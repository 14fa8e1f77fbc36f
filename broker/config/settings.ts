/**
 * The settings table: {@linkcode SETTINGS} has one row per setting, and
 * that row drives everything about it: the YAML key (the camelCase name, or
 * its snake_case form), the CLI flag (its kebab-case form, see
 * {@linkcode toFlagName}), validation (`validateOptions`, config files,
 * flags), the library default (`DEFAULT_OPTIONS` is built from the rows) and
 * the line in `--help`.
 *
 * ## Adding a setting
 *
 * 1. Declare its field, with a doc comment, in `BrokerOptions`
 *    (`types.ts`); a setting only `broker/main.ts` uses goes in
 *    `MainSettings` instead.
 * 2. Add its row to `SETTINGS` below: `type`, bounds (`min`, `max`,
 *    `minExclusive`), `default` and a one-line `description`.
 *
 * That is the whole change: the compiler refuses a field without a row, a
 * `BrokerOptions` row without a default or with a default of the wrong
 * type, and a `MainSettings` row with a default. The tests in
 * `tests/options_test.ts` walk the table, so the new row is checked by
 * them too. A `MAIN_DEFAULT_OPTIONS` that differs from the library default
 * goes in `defaults.ts`. A value that is not a string, number or boolean
 * (a list, a mapping) needs a new {@linkcode SettingType} and its case in
 * `checkValue` (`_check.ts`) and `typeLabel` (`help.ts`), as `listeners`
 * has (`_listeners.ts` checks its entries; it has no flag of its own, the
 * shorthand flags `--tls-port`, `--ws-port`, ... in `argv.ts` build
 * entries).
 *
 * @module
 */

import { checkBridges } from "../bridge/config.ts";
import type { BrokerSettings, ClusterOptions, KiteSettings } from "./types.ts";

/**
 * The kind of value a setting takes. `number` allows fractions;
 * `listeners` is a list of `ListenerConfig` mappings (YAML or code only: no
 * flag takes it); another `list` (config files and code only, no flag) is
 * checked by its row's `check`; `cluster` is the `ClusterOptions` mapping
 * (`_cluster.ts` checks it; its flags are `--cluster-url`, `--node-id` and
 * `--cluster-name`).
 */
export type SettingType =
  | "string"
  | "integer"
  | "number"
  | "boolean"
  | "listeners"
  | "list"
  | "cluster";

/** How one setting is parsed, checked and described. */
export interface SettingSpec {
  /** The value kind. */
  readonly type: SettingType;
  /** Smallest allowed value (numbers). */
  readonly min?: number;
  /** Whether `min` itself is excluded (numbers). */
  readonly minExclusive?: boolean;
  /** Largest allowed value (numbers). */
  readonly max?: number;
  /**
   * The library default (`DEFAULT_OPTIONS`); absent for the settings of
   * `broker/main.ts` only (`MainSettings`), which have none.
   */
  readonly default?:
    | string
    | number
    | boolean
    | readonly unknown[]
    | Readonly<ClusterOptions>;
  /**
   * A `list` setting's check: returns the list typed, or throws an `Error`
   * whose message says what is wrong, relative to the setting (`[0]
   * "cloud": topics[1].direction must be in, out or both`).
   */
  readonly check?: (value: unknown) => unknown;
  /** One line for `--help`. */
  readonly description: string;
  /** Strings: the empty string is allowed (it means "none"). */
  readonly allowEmpty?: boolean;
  /** Strings: the only values allowed. */
  readonly choices?: readonly string[];
}

/**
 * The row a setting must have: a `BrokerSettings` row carries a default of
 * the field's type, a `MainSettings` row none.
 */
type SettingRow<K extends keyof KiteSettings> = K extends keyof BrokerSettings
  ? SettingSpec & { readonly default: Required<BrokerSettings>[K] }
  : SettingSpec & { readonly default?: never };

const UINT16 = 65535;
const UINT32 = 4294967295;

const TABLE: { readonly [K in keyof KiteSettings]-?: SettingRow<K> } = {
  host: {
    type: "string",
    default: "0.0.0.0",
    description:
      "Interface to listen on (main.ts without a password file: loopback only).",
  },
  port: {
    type: "integer",
    min: 0,
    max: UINT16,
    default: 1883,
    description: "TCP port; 0 picks a free port.",
  },
  listeners: {
    type: "listeners",
    default: [],
    description:
      "More listeners (mqtt, mqtts, ws, wss), each with its own port: a YAML list; see README.",
  },
  maxConnections: {
    type: "integer",
    min: 1,
    default: 10000,
    description: "Connections past this are refused (v5 0x97, 3.1.1 0x03).",
  },
  maxPacketSize: {
    type: "integer",
    min: 1,
    max: 268435455,
    default: 256 * 1024,
    description: "Largest packet accepted and advertised, in bytes.",
  },
  enablePersistence: {
    type: "boolean",
    default: false,
    description: "Keep sessions and retained messages in Deno KV.",
  },
  persistencePath: {
    type: "string",
    default: "./mqtt_data",
    description: "Directory of the Deno KV file.",
  },
  sessionExpiryInterval: {
    type: "integer",
    min: 0,
    max: UINT32,
    default: 3600,
    description: "Cap on the session expiry clients ask for, in seconds.",
  },
  maxQos: {
    type: "integer",
    min: 0,
    max: 2,
    default: 2,
    description: "Highest QoS granted and accepted.",
  },
  retainAvailable: {
    type: "boolean",
    default: true,
    description: "Support retained messages.",
  },
  wildcardSubscriptionAvailable: {
    type: "boolean",
    default: true,
    description: "Support `+` and `#` in topic filters.",
  },
  sharedSubscriptionAvailable: {
    type: "boolean",
    default: true,
    description: "Support `$share/GROUP/FILTER` subscriptions.",
  },
  receiveMaximum: {
    type: "integer",
    min: 1,
    max: UINT16,
    default: 65535,
    description: "v5 Receive Maximum allowed to each client.",
  },
  topicAliasMaximum: {
    type: "integer",
    min: 0,
    max: UINT16,
    default: 10,
    description: "v5 Topic Alias Maximum accepted from each client; 0: none.",
  },
  serverKeepAlive: {
    type: "integer",
    min: 0,
    max: UINT16,
    default: 0,
    description: "v5 Server Keep Alive in seconds; 0 keeps the client's.",
  },
  maxKeepAlive: {
    type: "integer",
    min: 1,
    max: UINT16,
    default: 65535,
    description:
      "Longest keep alive in seconds: v5 asking more (or 0) get it, 3.1.1 0x02; 65535: no cap.",
  },
  maxInflightMessages: {
    type: "integer",
    min: 1,
    max: UINT16,
    default: 1000,
    description: "Unacknowledged QoS 1/2 messages to a client at once.",
  },
  maxQueuedMessages: {
    type: "integer",
    min: 1,
    default: 1000,
    description: "Messages queued per session beyond in-flight ones.",
  },
  maxQueuedBytes: {
    type: "integer",
    min: 0,
    default: 0,
    description:
      "Bytes (payload + topic) queued per session; 0: no limit (count only).",
  },
  maxSubscriptionsPerClient: {
    type: "integer",
    min: 0,
    default: 10000,
    description: "Subscriptions per session (v5 SUBACK 0x97); 0: no limit.",
  },
  maxTopicLevels: {
    type: "integer",
    min: 0,
    max: UINT16,
    default: 128,
    description:
      "Most levels in a topic name or filter (v5 0x90/0x8F); 0: no limit.",
  },
  httpPort: {
    type: "integer",
    min: -1,
    max: UINT16,
    default: -1,
    description:
      "HTTP port of /metrics, /healthz, the admin API and the dashboard; -1: off, 0: a free port.",
  },
  httpHost: {
    type: "string",
    default: "127.0.0.1",
    description: "Interface of the HTTP server.",
  },
  httpToken: {
    type: "string",
    allowEmpty: true,
    default: "",
    description:
      "Bearer token of the admin API (/api); none: it answers loopback clients only.",
  },
  allowAnonymous: {
    type: "boolean",
    default: true,
    description:
      "Allow clients that send no username (default off with authentication).",
  },
  sysInterval: {
    type: "number",
    min: 0,
    default: 10,
    description: "Seconds between $SYS/broker/... updates; 0 turns them off.",
  },
  connectTimeout: {
    type: "number",
    min: 0,
    minExclusive: true,
    max: UINT16,
    default: 10,
    description: "Seconds a new connection has to send its CONNECT.",
  },
  queueQos0Messages: {
    type: "boolean",
    default: false,
    description: "Queue QoS 0 messages for offline sessions too.",
  },
  outputBufferLimit: {
    type: "integer",
    min: 1024,
    default: 1024 * 1024,
    description:
      "Bytes buffered for a slow reader before QoS 0 to it is dropped.",
  },
  cluster: {
    type: "cluster",
    default: Object.freeze({ url: Object.freeze([]) as unknown as string[] }),
    description:
      "Cluster on NATS JetStream: url (NATS URLs), nodeId, name; see README.",
  },
  passwordFile: {
    type: "string",
    description: "Password file (kite passwd) checked at CONNECT.",
  },
  aclFile: {
    type: "string",
    description: "ACL file: who may publish/subscribe where.",
  },
  logFormat: {
    type: "string",
    choices: ["text", "json"],
    description:
      "Log lines as text, or one JSON object per line (default text).",
  },
  bridges: {
    type: "list",
    default: Object.freeze([]),
    check: checkBridges,
    description:
      "Bridges to other brokers: name, addresses, topics, ... (README: Bridging).",
  },
};

/**
 * Every plain setting of `BrokerOptions` (and `MainSettings`), keyed by its
 * camelCase name (the YAML key; the CLI flag is its kebab-case form). Adding
 * a field to `BrokerSettings` without a row here is a type error, so the
 * flags, the config file keys, the validation, the defaults and `--help`
 * cannot drift apart.
 *
 * @example
 * ```ts
 * import { SETTINGS } from "@kite/mqtt/broker";
 * console.log(SETTINGS.port.type, SETTINGS.port.max); // integer 65535
 * ```
 */
export const SETTINGS: { readonly [K in keyof KiteSettings]-?: SettingSpec } =
  TABLE;

/** The names of all settings, in table order. */
export const SETTING_KEYS: readonly (keyof KiteSettings)[] = Object.keys(
  SETTINGS,
) as (keyof KiteSettings)[];

/**
 * `maxConnections` -> `max-connections`: the CLI flag of a setting.
 *
 * @example
 * ```ts
 * import { toFlagName } from "@kite/mqtt/broker";
 * console.log(toFlagName("maxConnections")); // "max-connections"
 * ```
 */
export function toFlagName(key: string): string {
  return key.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}
