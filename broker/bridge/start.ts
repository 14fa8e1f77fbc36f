/**
 * The broker's bridges from its `bridges` setting: {@linkcode
 * prepareBridges} checks them and reads their CA files (before anything
 * else starts, so a bad entry stops start-up), {@linkcode startBridges}
 * starts them once the broker core is loaded.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import { ConfigError } from "../config/config_error.ts";
import type { LoadedSession } from "../store/store.ts";
import { Bridge, type BridgeHost } from "./bridge.ts";
import { bridgeName } from "./_id.ts";
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
      caCerts = [...(caCerts ?? []), await readFile(o.name, "caFile", file)];
    }
    // Read at each connection attempt (renewals); here only checked.
    for (const key of ["certFile", "keyFile"] as const) {
      const f = o.tls?.[key];
      if (f !== undefined) await readFile(o.name, key, f);
    }
    out.push({ options: o, caCerts });
  }
  return out;
}

/** The text of file `path` (`tls.<key>` of bridge `name`), or a ConfigError. */
async function readFile(
  name: string,
  key: string,
  path: string,
): Promise<string> {
  try {
    return await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(
      `bridges "${name}": tls.${key} ${path}: ${
        e instanceof Deno.errors.NotFound
          ? "no such file"
          : (e as Error).message
      }`,
      { key: "bridges" },
    );
  }
}

/**
 * Starts the prepared bridges on `host` (the broker core, loaded). Messages
 * stored for a bridge that is no longer configured are kept (logged): they
 * go out if it comes back.
 */
export function startBridges(
  host: BridgeHost & { untakenBridgeStates(): LoadedSession[] },
  prepared: readonly PreparedBridge[],
): Bridge[] {
  const node = nodeName();
  const bridges = prepared.map((p) =>
    new Bridge(p.options, host, node, p.caCerts)
  );
  for (const b of bridges) b.start();
  for (const s of host.untakenBridgeStates()) {
    if (s.outgoing.length === 0) continue;
    getLogger(["kite", "bridge"]).warn(
      "Bridge {name} is not configured: {count} messages stored for its remote are kept until it is",
      { name: bridgeName(s.record.clientId), count: s.outgoing.length },
    );
  }
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
