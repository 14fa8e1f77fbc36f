/**
 * `kite`: one command for the broker and the command-line tools.
 *
 * ```sh
 * kite broker [options]          # the broker (same as deno run -A broker/main.ts)
 * kite pub -t TOPIC -m MESSAGE   # publish (flags of mosquitto_pub)
 * kite sub -t FILTER -v          # subscribe and print (flags of mosquitto_sub)
 * kite passwd [-c] FILE USER     # add or change a user of a password file
 * ```
 *
 * Install it from a clone of the repository (`--config` makes the
 * dependencies in deno.json known to the installed command):
 *
 * ```sh
 * deno install -g -A -n kite --config deno.json kite.ts
 * ```
 *
 * or, once published, from the package: `deno install -g -A -n kite
 * jsr:@kite/mqtt/kite`. Each subcommand has `--help`; the exit status is
 * the subcommand's (2 for a bad command or flag).
 *
 * @module
 */

import { KITE_VERSION } from "./broker/sys.ts";

const HELP = `${KITE_VERSION}: MQTT 3.1.1 and 5.0 broker and command-line tools

Usage:
  kite broker [options]        run the broker (kite broker --help)
  kite pub [options]           publish (kite pub --help)
  kite sub [options]           subscribe and print (kite sub --help)
  kite passwd [-c] FILE USER   add or change a user of a password file
  kite passwd -D FILE USER     delete a user
  kite --version               print the version`;

/**
 * Runs `kite` with `args` (without the program name) and resolves with the
 * exit status. The broker runs until SIGINT/SIGTERM.
 *
 * @example
 * ```ts ignore
 * import { main } from "@kite/mqtt/kite";
 * Deno.exit(await main(["pub", "-t", "a/b", "-m", "hello"]));
 * ```
 */
export async function main(args: readonly string[]): Promise<number> {
  const [command, ...rest] = args;
  switch (command) {
    case "broker":
      return await (await import("./broker/main.ts")).main(rest);
    case "passwd":
      return await (await import("./broker/passwd.ts")).passwdCommand(rest);
    case "pub":
    case "sub":
      return await (await import("./client/cli.ts")).main([...args]);
    case "-h":
    case "--help":
    case "help":
      console.log(HELP);
      return 0;
    case "-V":
    case "--version":
      console.log(KITE_VERSION);
      return 0;
    case undefined:
      console.error(HELP);
      return 2;
    default:
      console.error(
        `kite: unknown command ${
          JSON.stringify(command)
        } (broker, pub, sub or passwd; see kite --help)`,
      );
      return 2;
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
