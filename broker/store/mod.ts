/**
 * Durable broker state: the `Store` interface and its two implementations,
 * `MemoryStore` (persistence off) and `KvStore` (Deno KV).
 *
 * @module
 */

export * from "./store.ts";
export * from "./memory.ts";
export * from "./kv.ts";
