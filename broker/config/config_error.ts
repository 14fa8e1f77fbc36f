/**
 * {@linkcode ConfigError}: a bad option, flag or config file, with the key,
 * file and line concerned.
 *
 * @module
 */

/**
 * A bad option, flag or config file. `key` names the option (camelCase) when
 * it is known, or the unknown name as written; `file` and `line` locate the
 * problem in a config file.
 *
 * @example
 * ```ts
 * import { ConfigError, validateOptions } from "@kite/mqtt/broker";
 * try {
 *   validateOptions({ port: 70000 });
 * } catch (e) {
 *   if (e instanceof ConfigError) console.log(e.key); // "port"
 * }
 * ```
 */
export class ConfigError extends Error {
  /** The option concerned, if any. */
  readonly key: string | undefined;
  /** The config file concerned, if any. */
  readonly file: string | undefined;
  /** The 1-based line in `file`, if known. */
  readonly line: number | undefined;

  /** Creates a config error; `message` is shown to the user as is. */
  constructor(
    message: string,
    details: { key?: string; file?: string; line?: number } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "ConfigError";
    this.key = details.key;
    this.file = details.file;
    this.line = details.line;
  }
}
