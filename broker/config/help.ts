/**
 * {@linkcode helpText}: the `--help` text of `broker/main.ts`, generated from
 * the `SETTINGS` table.
 *
 * @module
 */

import { CLI_ONLY_FLAGS, CLUSTER_FLAGS } from "./_cli_flags.ts";
import { MAIN_DEFAULT_OPTIONS } from "./defaults.ts";
import {
  SETTING_KEYS,
  SETTINGS,
  type SettingSpec,
  toFlagName,
} from "./settings.ts";
import type { BrokerSettings, MainSettings } from "./types.ts";

function typeLabel(spec: SettingSpec): string {
  if (spec.type === "listeners") return "list of listeners";
  if (spec.type === "boolean") return "boolean";
  if (spec.type === "string") return spec.choices?.join("|") ?? "string";
  if (spec.type === "list") return "list, config file only";
  if (spec.type === "cluster") return "mapping: url, nodeId, name";
  const kind = spec.type === "integer" ? "integer" : "number";
  if (spec.min !== undefined && spec.max !== undefined) {
    return `${kind} ${spec.minExclusive ? ">" : ""}${spec.min}..${spec.max}`;
  }
  if (spec.min !== undefined) {
    return `${kind} ${spec.minExclusive ? ">" : ">="}${spec.min}`;
  }
  return kind;
}

/**
 * The `--help` text of `broker/main.ts`, generated from `SETTINGS`: every
 * option with its flag, type, default (`defaults`, by default
 * `MAIN_DEFAULT_OPTIONS`) and description.
 *
 * @example
 * ```ts
 * import { helpText } from "@kite/mqtt/broker";
 * console.log(helpText().includes("--max-connections")); // true
 * ```
 */
export function helpText(
  defaults: Readonly<Required<BrokerSettings> & MainSettings> =
    MAIN_DEFAULT_OPTIONS,
): string {
  const rows: [string, string, string][] = [];
  for (const f of CLI_ONLY_FLAGS) {
    rows.push([
      `--${f.flag}${f.placeholder ? " " + f.placeholder : ""}`,
      "",
      f.description,
    ]);
  }
  for (const key of SETTING_KEYS) {
    const spec = SETTINGS[key];
    if (spec.type === "cluster") {
      rows.push([
        `(YAML ${key})`,
        `${typeLabel(spec)}, default ${
          JSON.stringify(defaults[key])
        }; YAML key ${key}`,
        spec.description,
      ]);
      for (const f of CLUSTER_FLAGS) {
        rows.push([`--${f.flag} ${f.placeholder}`, "", f.description]);
      }
      continue;
    }
    const flag = spec.type === "listeners"
      ? `(${key}: YAML only)`
      : spec.type === "boolean"
      ? `--[no-]${toFlagName(key)}`
      : spec.type === "list"
      ? `${key}: [...]`
      : `--${toFlagName(key)} <${spec.type === "string" ? "string" : "n"}>`;
    const value = defaults[key];
    rows.push([
      flag,
      `${typeLabel(spec)}, default ${
        value === undefined ? "none" : JSON.stringify(value)
      }; YAML key ${key}`,
      spec.description,
    ]);
  }
  const w0 = Math.max(...rows.map((r) => r[0].length));
  const lines = [
    "Kite MQTT broker (MQTT 3.1.1 and 5.0)",
    "",
    "Usage:",
    "  kite broker [options]              (the installed kite command)",
    "  kite passwd [-c] [-D] FILE USER",
    "  deno run -A broker/main.ts [options]   (from a clone, the same)",
    "  deno run -A broker/main.ts passwd [-c] [-D] FILE USER",
    "",
    "Options: flags override the --config file, which overrides defaults.",
    "Each option is also a YAML key: its camelCase name (maxConnections) or",
    "snake_case (max_connections). Booleans: --flag, --no-flag, --flag=false.",
    "",
  ];
  for (const [flag, type, description] of rows) {
    lines.push(`  ${flag.padEnd(w0)}  ${description}`);
    if (type !== "") lines.push(`  ${"".padEnd(w0)}    (${type})`);
  }
  return lines.join("\n") + "\n";
}
