/**
 * The flags of `broker/main.ts` that are not settings (`--config`,
 * `--log-level`, `--help`), shared by the parser (`argv.ts`) and the help
 * text (`help.ts`).
 *
 * @module
 */

import { LOG_LEVELS } from "./log_level.ts";

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
