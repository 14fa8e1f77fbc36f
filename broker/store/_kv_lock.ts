/**
 * The lock that keeps a `KvStore` directory to one process at a time (Deno
 * KV alone would let two processes share the file), and the error thrown
 * when another process holds it. `kv.ts` re-exports the public names.
 *
 * The lock is an exclusive advisory `flock` on the store directory itself:
 * the kernel drops it when the process ends however it ends, so a crashed
 * broker never leaves a stale lock, and no file can be deleted to get
 * around it (a lock on a file inside the directory could be: delete the file
 * and the next process creates and locks a new one). It does not touch
 * `kite.kv`, whose own POSIX record locks (SQLite's) it leaves alone.
 *
 * The pid of the holder is noted in `kite.lock`, for the error message; that
 * file is also `flock`ed, as brokers before this lock used it, so an older
 * broker and this one never share a directory either. Where a directory
 * cannot be locked (Windows), only `kite.lock` is.
 *
 * @module
 */

import { MqttError } from "../../codec/errors.ts";
import { ReasonCode } from "../../codec/reason_code.ts";

/** The name of the file inside the store directory noting the holder's pid. */
export const LOCK_FILE_NAME = "kite.lock";

/**
 * Thrown by `KvStore.open()` when another live process (or this one) holds
 * the store directory. The directory is free again as soon as that process
 * ends (even when it is killed): stop it, there is nothing to delete.
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
  /** The pid of the process holding it; 0 when it is not known. */
  readonly pid: number;

  /** Creates the error for a directory held by `pid` (0: unknown). */
  constructor(path: string, pid: number) {
    super(
      ReasonCode.ServerUnavailable,
      `the store directory ${path} is in use by ` +
        (pid > 0
          ? `process ${pid}` + (pid === Deno.pid ? " (this process)" : "") +
            "; stop that broker"
          : "another process; stop the broker that uses it") +
        " first (the directory is free as soon as its process ends)",
    );
    this.name = "StoreLockedError";
    this.path = path;
    this.pid = pid;
  }
}

/** A held directory lock. */
export interface DirectoryLock {
  /** Releases the lock. */
  close(): void;
}

/**
 * Locks store directory `path` (which must exist) for this process, or
 * throws `StoreLockedError` naming the process that holds it.
 */
export async function lockDirectory(path: string): Promise<DirectoryLock> {
  const held: Deno.FsFile[] = [];
  const release = () => {
    for (const f of held) f.close();
  };
  try {
    try {
      held.push(await lockFile(path, path, { read: true }));
    } catch (e) {
      // Windows may not lock a directory: there kite.lock alone stands.
      if (e instanceof StoreLockedError || Deno.build.os !== "windows") throw e;
    }
    const note = await lockFile(path, `${path}/${LOCK_FILE_NAME}`, {
      read: true,
      write: true,
      create: true,
    });
    held.push(note);
    // Overwrite, then cut (not cut, then write): a reader sees a pid.
    const bytes = new TextEncoder().encode(`${Deno.pid}\n`);
    for (let n = 0; n < bytes.byteLength;) {
      n += await note.write(bytes.subarray(n));
    }
    await note.truncate(bytes.byteLength);
    return { close: release };
  } catch (e) {
    release();
    throw e;
  }
}

/**
 * Opens `file` (the directory or a file in it) and takes an exclusive
 * `flock` on it, or throws `StoreLockedError` when another handle holds one.
 */
async function lockFile(
  path: string,
  file: string,
  options: Deno.OpenOptions,
): Promise<Deno.FsFile> {
  const f = await Deno.open(file, options);
  let locked = false;
  try {
    locked = await f.tryLock(true);
  } finally {
    if (!locked) f.close();
  }
  if (!locked) throw await lockedError(path);
  return f;
}

/** The error for a directory held by another process, with its pid if noted. */
async function lockedError(path: string): Promise<StoreLockedError> {
  let text = "";
  try {
    text = await Deno.readTextFile(`${path}/${LOCK_FILE_NAME}`);
  } catch {
    // Not noted (yet, or deleted): report what we can.
  }
  return new StoreLockedError(path, Number.parseInt(text, 10) || 0);
}
