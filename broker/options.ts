/**
 * Broker options: the `BrokerOptions` type and its defaults, the settings
 * table, validation, YAML config files, `broker/main.ts` flags and `--help`.
 *
 * This module re-exports them from where they live: `config/` (one concern
 * per file; see `config/settings.ts` for how to add a setting) and
 * `hooks.ts` (`ClientInfo` and the hook types).
 *
 * @module
 */

export type * from "./hooks.ts";
export type {
  BrokerOptions,
  BrokerSettings,
  ClusterOptions,
  KiteSettings,
  ListenerConfig,
  MainSettings,
} from "./config/types.ts";
export { DEFAULT_OPTIONS, MAIN_DEFAULT_OPTIONS } from "./config/defaults.ts";
export {
  SETTING_KEYS,
  SETTINGS,
  type SettingSpec,
  type SettingType,
  toFlagName,
} from "./config/settings.ts";
export { ConfigError } from "./config/config_error.ts";
export { validateOptions } from "./config/validate.ts";
export { loadConfigFile, parseConfigText } from "./config/yaml.ts";
export { LOG_LEVELS, type LogLevel } from "./config/log_level.ts";
export {
  parseArgs,
  type ParsedArgs,
  type ResolvedOptions,
  resolveOptions,
} from "./config/argv.ts";
export { helpText } from "./config/help.ts";
