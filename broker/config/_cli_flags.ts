/**
 * The flags of `broker/main.ts` that are not settings (`--config`,
 * `--log-level`, `--help`), shared by the parser (`argv.ts`) and the help
 * text (`help.ts`).
 *
 * @module
 */

import { LOG_LEVELS } from "./log_level.ts";

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
] as const;
