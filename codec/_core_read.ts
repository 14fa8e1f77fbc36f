/**
 * Socket reads without `Deno.Conn.read`'s bookkeeping.
 *
 * `Conn.read` adds each pending read's promise to a `Set` of the
 * connection's and deletes it when the read settles, so that `unref()` can
 * reach pending reads. V8 rehashes a small `Set` every other add/delete
 * pair, and allocates the new table where the old one lives: once a
 * connection has lived through two scavenges, every other read allocates
 * its table in the old generation, where only full collections free it.
 * With 10,000 idle connections open (a 40 MB old generation), 50,000
 * messages a second made 3.2-3.6 MB/s of such garbage, a full collection
 * every 2.5 s, 25-30 ms of incremental marking each (steps up to 4 ms) on
 * the broker's thread, and a p99 of 4-6 ms, in Kite and in a bare Deno
 * relay alike. Reading through the op `Conn.read` calls (Deno's internal
 * `core.read`) leaves the `Set` out: 0.05 MB/s, no full collection.
 *
 * What is lost: `conn.unref()` does not reach a read made this way (that is
 * what the `Set` is for); Kite never unrefs the connections it reads. Where
 * the runtime does not have the op (another Deno, another runtime), the
 * connection has no resource id, or its `read` is not Deno's own (a proxy
 * or a wrapper that reads its own way), `coreReadRid` says so and the
 * caller reads with `conn.read`.
 *
 * @module
 */

interface CoreOps {
  read(rid: number, buf: Uint8Array): Promise<number>;
  internalRidSymbol: symbol;
}

function findCore(): CoreOps | undefined {
  try {
    const d = Deno as unknown as Record<symbol, unknown> & {
      internal?: unknown;
    };
    if (typeof d.internal !== "symbol") return undefined;
    const internal = d[d.internal] as { core?: Partial<CoreOps> } | undefined;
    const core = internal?.core;
    if (
      typeof core?.read !== "function" ||
      typeof core.internalRidSymbol !== "symbol"
    ) return undefined;
    return core as CoreOps;
  } catch {
    return undefined;
  }
}

const core = findCore();

/**
 * Whether `conn.read` is Deno's own `Conn.prototype.read` (not a wrapper's
 * or a subclass's read, which reading by resource id would bypass).
 */
function ownRead(conn: object): boolean {
  let p: unknown = Object.getPrototypeOf(conn);
  while (p !== null && !Object.hasOwn(p as object, "read")) {
    p = Object.getPrototypeOf(p);
  }
  if (p === null) return false;
  const proto = p as { read: unknown; constructor?: { name?: string } };
  return proto.constructor?.name === "Conn" &&
    (conn as { read?: unknown }).read === proto.read;
}

/**
 * The resource id to read `conn` by with `coreRead`, or -1 when it must be
 * read with `conn.read`: no such op here, no id on `conn`, or `conn.read`
 * is not Deno's own (a wrapper or a subclass reads its own way).
 */
export function coreReadRid(conn: object): number {
  if (core === undefined || !ownRead(conn)) return -1;
  const rid = (conn as unknown as Record<symbol, unknown>)[
    core.internalRidSymbol
  ];
  return typeof rid === "number" && Number.isInteger(rid) && rid >= 0
    ? rid
    : -1;
}

const zeroToNull = (n: number): number | null => n === 0 ? null : n;

/**
 * Reads into `buf` from the resource `rid` (from `coreReadRid`): the byte
 * count, 0 at EOF (the op's own promise, nothing chained). `buf` must not
 * be empty.
 */
export function coreReadCount(rid: number, buf: Uint8Array): Promise<number> {
  return core!.read(rid, buf);
}

/**
 * Reads into `buf` from the resource `rid` (from `coreReadRid`): the byte
 * count, or null at EOF, as `conn.read` does. `buf` must not be empty.
 */
export function coreRead(rid: number, buf: Uint8Array): Promise<number | null> {
  return core!.read(rid, buf).then(zeroToNull);
}
