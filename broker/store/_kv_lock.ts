/**
 * The lock that keeps a `KvStore` directory to one process at a time (Deno
 * KV alone would let two processes share the file), and the error thrown
 * when another process holds it. `kv.ts` re-exports the public names.
 *
 * @module
 */

import { MqttError } from "../../codec/errors.ts";
import { ReasonCode } from "../../codec/reason_code.ts";

/** The name of the lock file inside the store directory. */
export const LOCK_FILE_NAME = "kite.lock";

/**
 * Thrown by `KvStore.open()` when another live process (or this one) holds
 * the store directory.
 *
 * @example
 * ```ts ignore
 * import { KvStore, StoreLockedError } from "@kite/mqtt/broker";
 * try {
 *   await KvStore.open("./mqtt_data");
 * } catch (e) {
 *   if (e instanceof StoreLockedError) console.error(e.path, e.pid);
 * }
 * ```
 */
export class StoreLockedError extends MqttError {
  /** The store directory. */
  readonly path: string;
  /** The pid of the process holding it. */
  readonly pid: number;

  /** Creates the error for a directory held by `pid`. */
  constructor(path: string, pid: number) {
    super(
      ReasonCode.ServerUnavailable,
      `the store directory ${path} is in use by process ${pid}` +
        (pid === Deno.pid ? " (this process)" : "") +
        `; stop that broker, or remove ${path}/${LOCK_FILE_NAME} if it is gone`,
    );
    this.name = "StoreLockedError";
    this.path = path;
    this.pid = pid;
  }
}

/**
 * Takes an exclusive advisory lock (`flock`) on `<path>/kite.lock` and writes
 * the pid into it. The kernel drops the lock when the process dies, so a
 * crashed broker never leaves a stale lock. The file is never removed: a
 * removed-and-recreated lock file could be held by two processes at once.
 * Close the returned file to release the lock.
 */
export async function acquireLock(path: string): Promise<Deno.FsFile> {
  const lockPath = `${path}/${LOCK_FILE_NAME}`;
  const file = await Deno.open(lockPath, {
    read: true,
    write: true,
    create: true,
  });
  try {
    if (!await file.tryLock(true)) {
      let text = "";
      try {
        text = await Deno.readTextFile(lockPath);
      } catch {
        // Report what we can.
      }
      throw new StoreLockedError(path, Number.parseInt(text, 10) || 0);
    }
    await file.truncate(0);
    await file.write(new TextEncoder().encode(`${Deno.pid}\n`));
    return file;
  } catch (e) {
    file.close();
    throw e;
  }
}
