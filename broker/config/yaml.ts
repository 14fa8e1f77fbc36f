/**
 * YAML config files: {@linkcode parseConfigText} and
 * {@linkcode loadConfigFile}. A file is a mapping of setting names
 * (camelCase or snake_case) to values; errors name the file and line.
 *
 * @module
 */

import { isMap, isScalar, isSeq, LineCounter, parseDocument } from "yaml";
import { validateWithOrigin } from "./_check.ts";
import { ConfigError } from "./config_error.ts";
import type { KiteSettings } from "./types.ts";

/**
 * Parses the text of a YAML config file (a mapping of option names to
 * values; camelCase or snake_case keys). `fileName` is used in messages.
 * Throws a `ConfigError` with the file name and line on invalid YAML or a
 * bad option.
 *
 * @example
 * ```ts
 * import { parseConfigText } from "@kite/mqtt/broker";
 * const options = parseConfigText("port: 1884\nmax_connections: 100\n", "kite.yaml");
 * console.log(options.port); // 1884
 * ```
 */
export function parseConfigText(
  text: string,
  fileName: string,
): KiteSettings {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: true });
  const error = doc.errors[0];
  if (error !== undefined) {
    const pos = error.linePos?.[0];
    const where = pos === undefined ? fileName : `${fileName}:${pos.line}`;
    const reason = error.message.split("\n")[0]!.replace(/ at line \d+.*$/, "");
    throw new ConfigError(`${where}: invalid YAML: ${reason}`, {
      file: fileName,
      ...(pos === undefined ? {} : { line: pos.line }),
    });
  }
  const lines = new Map<string, number>();
  // Nested keys too (`listeners.0`, `listeners.0.port`), for messages about
  // an entry of a list.
  const nested = new Map<string, number>();
  const lineAt = (offset: number) => lineCounter.linePos(offset).line;
  if (isMap(doc.contents)) {
    for (const pair of doc.contents.items) {
      if (!isScalar(pair.key) || !pair.key.range) continue;
      const key = String(pair.key.value);
      lines.set(key, lineAt(pair.key.range[0]));
      if (!isSeq(pair.value)) continue;
      pair.value.items.forEach((item, i) => {
        const range = (item as { range?: [number, number, number] }).range;
        if (range) nested.set(`${key}.${i}`, lineAt(range[0]));
        if (!isMap(item)) return;
        for (const p of item.items) {
          if (isScalar(p.key) && p.key.range) {
            nested.set(`${key}.${i}.${p.key.value}`, lineAt(p.key.range[0]));
          }
        }
      });
    }
  }
  let value: unknown;
  try {
    value = doc.toJS();
  } catch (e) {
    throw new ConfigError(
      `${fileName}: invalid YAML: ${(e as Error).message}`,
      { file: fileName },
      { cause: e },
    );
  }
  for (const [key, v] of Object.entries(value ?? {})) {
    if (typeof v === "function") {
      throw new ConfigError(`${fileName}: ${key} cannot be set in a file`, {
        key,
        file: fileName,
      });
    }
  }
  return validateWithOrigin(
    value,
    fileName,
    (k) => lines.get(k),
    (path) => nested.get(path),
  );
}

/**
 * Reads and validates a YAML config file. Throws a `ConfigError` naming the
 * file (and line) when it cannot be read, is not valid YAML or holds a bad
 * option.
 *
 * @example
 * ```ts ignore
 * import { loadConfigFile } from "@kite/mqtt/broker";
 * const options = await loadConfigFile("kite.yaml");
 * ```
 */
export async function loadConfigFile(path: string): Promise<KiteSettings> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound
      ? "no such file"
      : e instanceof Deno.errors.PermissionDenied
      ? "permission denied"
      : e instanceof Deno.errors.IsADirectory
      ? "is a directory"
      : (e as Error).message;
    throw new ConfigError(`cannot read config file ${path}: ${reason}`, {
      key: "config",
      file: path,
    }, { cause: e });
  }
  return parseConfigText(text, path);
}
