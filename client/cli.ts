/**
 * `kite pub` and `kite sub`: command-line MQTT tools with the flags a
 * Mosquitto user expects (`mosquitto_pub` / `mosquitto_sub`).
 *
 * ```sh
 * deno run -A client/cli.ts sub -t 'sensor/#' -v
 * deno run -A client/cli.ts pub -t sensor/kitchen -m 21.5 -q 1
 * deno task sub -t 'sensor/#' -F '%t %p (qos %q)'
 * deno run -A client/cli.ts pub --help
 * ```
 *
 * Exit status: 0 done; 1 an error (refused connect, unreachable broker,
 * failed publish or subscribe); 2 a bad flag; 27 `sub -W` timed out (as
 * `mosquitto_sub`). Every error is one line on stderr.
 *
 * @module
 */

import { type CliOptions, EXIT_USAGE, UsageError } from "./_cli_options.ts";
import { parseCliArgs } from "./_cli_args.ts";
import { helpText } from "./_cli_help.ts";
import { describe } from "./_cli_log.ts";
import { pub } from "./_cli_pub.ts";
import { sub } from "./_cli_sub.ts";

export type * from "./mod.ts";
export type * from "../codec/mod.ts";
export {
  type CliOptions,
  type CommonCliOptions,
  EXIT_TIMEOUT,
  EXIT_USAGE,
  type PubCliOptions,
  type SubCliOptions,
  UsageError,
} from "./_cli_options.ts";
export { parseCliArgs } from "./_cli_args.ts";
export { formatMessage, messageToJson } from "./_cli_output.ts";

/**
 * Runs `kite pub|sub` with `args` and resolves with the exit status; errors
 * are printed as one line on stderr.
 *
 * @example
 * ```ts ignore
 * import { main } from "@kite/mqtt/cli";
 * Deno.exit(await main(["pub", "-t", "a/b", "-m", "hello"]));
 * ```
 */
export async function main(args: string[]): Promise<number> {
  let o: CliOptions;
  try {
    o = parseCliArgs(args);
  } catch (e) {
    const c = args[0] === "pub" || args[0] === "sub" ? ` ${args[0]}` : "";
    console.error(`kite${c}: ${describe(e)}`);
    return EXIT_USAGE;
  }
  if (o.command === "help") {
    console.log(helpText(args[0]));
    return 0;
  }
  try {
    return o.command === "pub" ? await pub(o) : await sub(o);
  } catch (e) {
    console.error(`kite ${o.command}: ${describe(e)}`);
    return e instanceof UsageError ? EXIT_USAGE : 1;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
