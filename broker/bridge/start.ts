/**
 * The broker's bridges from its `bridges` setting: {@linkcode
 * prepareBridges} checks them and reads their CA files (before anything
 * else starts, so a bad entry stops start-up), {@linkcode startBridges}
 * starts them once the broker core is loaded.
 *
 * @module
 */

import { ConfigError } from "../config/config_error.ts";
import { Bridge, type BridgeHost } from "./bridge.ts";
import { checkBridges } from "./config.ts";
import type { BridgeOptions } from "./types.ts";

/** A checked bridge entry with its CA certificates read. */
export interface PreparedBridge {
  /** The entry, checked. */
  options: BridgeOptions;
  /** From `tls.caCerts` and `tls.caFile`. */
  caCerts: string[] | undefined;
}

/**
 * Checks `list` (see `checkBridges`) and reads each bridge's `tls.caFile`.
 * Throws a `ConfigError` (key `bridges`) naming the bridge and the key when
 * an entry is bad or a file cannot be read.
 *
 * @example
 * ```ts ignore
 * const prepared = await prepareBridges(options.bridges ?? []);
 * const bridges = startBridges(core, prepared);
 * await Promise.all(bridges.map((b) => b.stop()));
 * ```
 */
export async function prepareBridges(
  list: readonly BridgeOptions[],
): Promise<PreparedBridge[]> {
  if (list.length === 0) return [];
  let checked: BridgeOptions[];
  try {
    checked = checkBridges(list);
  } catch (e) {
    const m = (e as Error).message;
    throw new ConfigError(`bridges${m.startsWith("[") ? "" : " "}${m}`, {
      key: "bridges",
    });
  }
  const out: PreparedBridge[] = [];
  for (const o of checked) {
    let caCerts = o.tls?.caCerts;
    const file = o.tls?.caFile;
    if (file !== undefined) {
      try {
        caCerts = [...(caCerts ?? []), await Deno.readTextFile(file)];
      } catch (e) {
        throw new ConfigError(
          `bridges "${o.name}": tls.caFile ${file}: ${
            e instanceof Deno.errors.NotFound
              ? "no such file"
              : (e as Error).message
          }`,
          { key: "bridges" },
        );
      }
    }
    out.push({ options: o, caCerts });
  }
  return out;
}

/** Starts the prepared bridges on `host` (the broker core, loaded). */
export function startBridges(
  host: BridgeHost,
  prepared: readonly PreparedBridge[],
): Bridge[] {
  if (prepared.length === 0) return [];
  const node = nodeName();
  const bridges = prepared.map((p) =>
    new Bridge(p.options, host, node, p.caCerts)
  );
  for (const b of bridges) b.start();
  return bridges;
}

/** This machine's host name, for default client ids ("kite" without the permission). */
function nodeName(): string {
  try {
    const p = Deno.permissions.querySync({ name: "sys", kind: "hostname" });
    if (p.state === "granted") return Deno.hostname();
  } catch {
    // no permission API: the fallback
  }
  return "kite";
}
