/**
 * `SessionRegistry`: which node holds the session of each client id, in a
 * JetStream KV bucket (`{name}_clients`), changed only by compare-and-set
 * on the key's revision, so two nodes can never both take one client id.
 *
 * An entry is `{n: node, b: boot, c: connected, p: persistent}`, and, for
 * a connected client whose session ends with its connection, its will
 * (`w`, with the owner `u` and protocol version `v` it is authorized as):
 * the node that adopts a dead node's entries publishes it. A persistent
 * session's will is in its stored record instead.
 *
 * This node's writes for one client id run one after another, each with
 * the revision the previous one returned.
 *
 * @module
 */

import { getLogger } from "@logtape/logtape";
import type { KV, KvEntry } from "@nats-io/kv";
import type { JetStreamClient } from "@nats-io/jetstream";
import type { ProtocolVersion } from "../../codec/packet.ts";
import type { StoredMessage } from "../store/store.ts";
import {
  deserialize,
  isStoredMessage,
  serialize,
} from "../store/_kv_records.ts";
import { base64url, fromBase64url, keyToken } from "./_keys.ts";
import { readAll } from "./nats.ts";

const log = getLogger(["kite", "cluster"]);
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A registry entry (see the module doc). */
export interface RegistryEntry {
  /** The client id (kept: a long one is hashed in the key). */
  id: string;
  /** The node holding the session, and its boot id. */
  n: string;
  b: string;
  /** Whether the client is connected there. */
  c: boolean;
  /** Whether the session outlives its connection (state in the store). */
  p: boolean;
  /** The will of a connected client of a non-persistent session. */
  w?: string;
  /** Who the will is authorized as. */
  u?: string;
  v?: ProtocolVersion;
}

/** An entry with its revision. */
export interface Versioned {
  entry: RegistryEntry;
  revision: number;
}

/** The registry (see the module doc). */
export class SessionRegistry {
  readonly #kv: KV;
  readonly #js: JetStreamClient;
  readonly #bucket: string;
  /** The revision of this node's last write, per client id. */
  readonly #revs = new Map<string, number>();
  readonly #chains = new Map<string, Promise<unknown>>();

  /** The registry in bucket `kv` (named `bucket`). */
  constructor(kv: KV, js: JetStreamClient, bucket: string) {
    this.#kv = kv;
    this.#js = js;
    this.#bucket = bucket;
  }

  /** The entry of `clientId` (undefined: none, or deleted). */
  async get(clientId: string): Promise<Versioned | undefined> {
    return parse(await this.#kv.get(keyToken(clientId)));
  }

  /** The revision this node last wrote for `clientId`. */
  revision(clientId: string): number | undefined {
    return this.#revs.get(clientId);
  }

  /** Forgets this node's revision of `clientId` (another node has it). */
  forget(clientId: string): void {
    this.#revs.delete(clientId);
  }

  /**
   * Writes `entry` if the key is still at `revision` (0: absent or
   * deleted). Resolves with the new revision, or undefined when someone
   * else wrote first.
   */
  async put(
    entry: RegistryEntry,
    revision: number,
  ): Promise<number | undefined> {
    const key = keyToken(entry.id);
    const data = encoder.encode(JSON.stringify(entry));
    try {
      const rev = revision === 0
        ? await this.#kv.create(key, data)
        : await this.#kv.update(key, data, revision);
      this.#revs.set(entry.id, rev);
      return rev;
    } catch (e) {
      if (isConflict(e)) return undefined;
      throw e;
    }
  }

  /**
   * Runs `op` after this node's earlier writes for `clientId`; `op` gets
   * the revision the last one left (undefined: this node holds none).
   */
  serial<T>(
    clientId: string,
    op: (revision: number | undefined) => Promise<T>,
  ): Promise<T> {
    const before = this.#chains.get(clientId) ?? Promise.resolve();
    const next = before.then(() => op(this.#revs.get(clientId)));
    const guarded = next.catch((e) => {
      log.warn("{clientId}: registry write failed: {error}", {
        clientId,
        error: (e as Error).message,
      });
    });
    this.#chains.set(clientId, guarded);
    guarded.then(() => {
      if (this.#chains.get(clientId) === guarded) {
        this.#chains.delete(clientId);
      }
    });
    return next;
  }

  /**
   * Updates this node's entry of `clientId` (compare-and-set on the
   * revision it last wrote); false when another node took it since.
   */
  update(entry: RegistryEntry): Promise<boolean> {
    return this.serial(entry.id, async (rev) => {
      if (rev === undefined) return false;
      const r = await this.put(entry, rev);
      if (r === undefined) this.#revs.delete(entry.id);
      return r !== undefined;
    });
  }

  /** Deletes this node's entry of `clientId` (compare-and-set). */
  remove(clientId: string): Promise<boolean> {
    return this.serial(clientId, async (rev) => {
      if (rev === undefined) return false;
      this.#revs.delete(clientId);
      return await this.removeAt(clientId, rev);
    });
  }

  /** Deletes an entry read at `revision` (a dead node's, once handled). */
  async removeAt(clientId: string, revision: number): Promise<boolean> {
    try {
      await this.#kv.delete(keyToken(clientId), { previousSeq: revision });
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  /** Resolves when this node's writes so far are done. */
  async flush(): Promise<void> {
    while (this.#chains.size > 0) {
      await Promise.allSettled([...this.#chains.values()]);
    }
  }

  /** Every entry (a scan of the bucket's last values). */
  async all(): Promise<Versioned[]> {
    const msgs = await readAll(
      this.#js,
      `KV_${this.#bucket}`,
      `$KV.${this.#bucket}.*`,
      true,
    );
    const out: Versioned[] = [];
    for (const m of msgs) {
      if (m.headers?.get("KV-Operation") || m.data.length === 0) continue;
      try {
        const entry = JSON.parse(decoder.decode(m.data)) as RegistryEntry;
        if (typeof entry.id === "string" && typeof entry.n === "string") {
          out.push({ entry, revision: m.seq });
        }
      } catch {
        // not an entry
      }
    }
    return out;
  }

  /**
   * Takes the lock `name` for `owner` (true), or finds it taken by another
   * owner (false): the one node that adopts a dead node's sessions holds
   * it. A lock `owner` already holds (an earlier try whose answer was lost)
   * is taken again.
   */
  async lock(name: string, owner: string): Promise<boolean> {
    const key = `lock.${name}`;
    try {
      await this.#kv.create(key, encoder.encode(owner));
      return true;
    } catch (e) {
      if (!isConflict(e)) throw e;
      const held = await this.#kv.get(key);
      return held !== null && held.operation === "PUT" &&
        decoder.decode(held.value) === owner;
    }
  }

  /** Whether the lock `name` is taken. */
  async locked(name: string): Promise<boolean> {
    const held = await this.#kv.get(`lock.${name}`);
    return held !== null && held.operation === "PUT";
  }

  /** Releases the lock `name`. */
  async unlock(name: string): Promise<void> {
    await this.#kv.delete(`lock.${name}`).catch(() => {});
  }
}

/** The will of an entry, or undefined. */
export function willOf(entry: RegistryEntry): StoredMessage | undefined {
  if (entry.w === undefined) return undefined;
  try {
    const v = deserialize(fromBase64url(entry.w));
    return isStoredMessage(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

/** A will as it goes into an entry. */
export function encodeWill(will: StoredMessage): string {
  return base64url(serialize(will));
}

function parse(e: KvEntry | null): Versioned | undefined {
  if (e === null || e.operation !== "PUT" || e.value.length === 0) {
    return undefined;
  }
  try {
    const entry = JSON.parse(decoder.decode(e.value)) as RegistryEntry;
    if (typeof entry.id !== "string" || typeof entry.n !== "string") {
      return undefined;
    }
    return { entry, revision: e.revision };
  } catch {
    return undefined;
  }
}

/** Whether a KV write failed on its expected revision. */
function isConflict(e: unknown): boolean {
  const m = (e as Error)?.message ?? "";
  return /wrong last sequence|key exists|10071/i.test(m);
}
