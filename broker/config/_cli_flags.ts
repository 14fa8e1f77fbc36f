/**
 * The flags of `broker/main.ts` that are not settings (`--config`,
 * `--log-level`, `--help`, and the shorthand flags that add entries to
 * `listeners`), shared by the parser (`argv.ts`) and the help text
 * (`help.ts`).
 *
 * @module
 */

import { LOG_LEVELS } from "./log_level.ts";

/**
 * Shorthand flags that add `listeners` entries (after those of the config
 * file): `--tls-port 8883 --cert-file c.pem --key-file k.pem`.
 */
export const LISTENER_FLAGS = [
  {
    flag: "tls-port",
    placeholder: "<n>",
    description:
      "Adds an MQTT over TLS (mqtts) listener on this port; needs --cert-file and --key-file.",
  },
  {
    flag: "cert-file",
    placeholder: "<file>",
    description:
      "Certificate chain (PEM) of the --tls-port and --wss-port listeners.",
  },
  {
    flag: "key-file",
    placeholder: "<file>",
    description:
      "Private key (PEM) of the --tls-port and --wss-port listeners.",
  },
  {
    flag: "ca-file",
    placeholder: "<file>",
    description:
      "CA (PEM): the --tls-port listener requires client certificates it signed (mutual TLS).",
  },
  {
    flag: "ws-port",
    placeholder: "<n>",
    description: "Adds an MQTT over WebSocket (ws) listener on this port.",
  },
  {
    flag: "wss-port",
    placeholder: "<n>",
    description:
      "Adds an MQTT over secure WebSocket (wss) listener; needs --cert-file and --key-file.",
  },
  {
    flag: "ws-path",
    placeholder: "<path>",
    description:
      "Path of the --ws-port and --wss-port listeners; default /mqtt.",
  },
] as const;

/** The name of a listener shorthand flag, without `--`. */
export type ListenerFlag = typeof LISTENER_FLAGS[number]["flag"];

/**
 * Flags that set the keys of the `cluster` setting (over the config file's
 * `cluster` mapping, key by key).
 */
export const CLUSTER_FLAGS = [
  {
    flag: "cluster-url",
    key: "url",
    placeholder: "<url>",
    description:
      "NATS server (JetStream on) of the cluster this node joins; repeatable.",
  },
  {
    flag: "node-id",
    key: "nodeId",
    placeholder: "<id>",
    description:
      "This node's id in the cluster (letters, digits, - and _); default host and port.",
  },
  {
    flag: "cluster-name",
    key: "name",
    placeholder: "<name>",
    description:
      "Prefix of the cluster's NATS subjects, streams and buckets; default kite.",
  },
] as const;

/** Flags of `broker/main.ts` that are not broker settings. */
export const CLI_ONLY_FLAGS = [
  {
    flag: "config",
    placeholder: "<file>",
    description: "YAML config file (camelCase or snake_case keys).",
  },
  {
    flag: "log-level",
    placeholder: "<level>",
    description: `${LOG_LEVELS.join("|")}; default info, env KITE_LOG_LEVEL.`,
  },
  { flag: "help", placeholder: "", description: "Show this help (also -h)." },
  ...LISTENER_FLAGS,
] as const;
