/**
 * The broker's password file: salted PBKDF2-SHA-256 hashes, computed with
 * WebCrypto.
 *
 * ## Format
 *
 * One user per line, `#` comments and blank lines allowed:
 *
 * ```text
 * # kite password file
 * alice:$kite$pbkdf2-sha256$100000$<salt base64>$<hash base64>
 * ```
 *
 * - the user name runs up to the first `:` (so it cannot contain `:`, nor a
 *   line break);
 * - `$kite$pbkdf2-sha256$` names the scheme; then the iteration count, the
 *   salt (16 random bytes) and the derived key (32 bytes), both in standard
 *   base64 with padding.
 *
 * Each line keeps its own iteration count, so raising
 * {@linkcode DEFAULT_ITERATIONS} only affects passwords set afterwards.
 *
 * ## Cost
 *
 * One verification derives one PBKDF2 key: with the default 100,000
 * iterations that takes about 25 ms of CPU (measured on the CI machine;
 * WebCrypto runs it on a worker thread, so the event loop is not blocked).
 * An unknown user costs the same: {@linkcode PasswordFile.verify} derives a
 * key against a dummy entry and compares it too. At most `maxConcurrent`
 * derivations run at once; checks marked low priority (a source with failed
 * logins, see `login_throttle.ts`) wait behind the others and leave one
 * slot free for them.
 *
 * @module
 */

/** The scheme tag of a password line. */
export const SCHEME = "$kite$pbkdf2-sha256$";

/** Iterations of PBKDF2-SHA-256 for newly set passwords. */
export const DEFAULT_ITERATIONS = 100_000;

const SALT_BYTES = 16;
const HASH_BYTES = 32;
/** Refuse absurd iteration counts in a file (a typo would freeze logins). */
const MAX_ITERATIONS = 10_000_000;

/**
 * An error in a password or ACL file (or its use), with the file and line.
 *
 * @example
 * ```ts
 * import { AuthFileError, PasswordFile } from "./password_file.ts";
 * try {
 *   await PasswordFile.load("/nonexistent/passwd");
 * } catch (e) {
 *   if (e instanceof AuthFileError) console.log(e.path, e.line);
 * }
 * ```
 */
export class AuthFileError extends Error {
  /** The file concerned, if any. */
  readonly path: string | undefined;
  /** The 1-based line number, if the error is about a line. */
  readonly line: number | undefined;

  /** Creates an error; the message should say what to fix. */
  constructor(
    message: string,
    path?: string,
    line?: number,
    options?: ErrorOptions,
  ) {
    const where = path === undefined
      ? ""
      : line === undefined
      ? `${path}: `
      : `${path}:${line}: `;
    super(where + message, options);
    this.name = "AuthFileError";
    this.path = path;
    this.line = line;
  }
}

/**
 * Derives `HASH_BYTES` bytes from a password: PBKDF2-HMAC-SHA-256 by default.
 * Injectable for tests (e.g. to count derivations).
 */
export type KeyDeriver = (
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
) => Promise<Uint8Array>;

/**
 * PBKDF2-HMAC-SHA-256 via WebCrypto, 32 bytes out (a {@linkcode KeyDeriver}).
 *
 * @example
 * ```ts
 * import { pbkdf2Sha256 } from "./password_file.ts";
 * const enc = new TextEncoder();
 * const key = await pbkdf2Sha256(enc.encode("pw"), enc.encode("salt"), 1000);
 * key.length; // 32
 * ```
 */
export async function pbkdf2Sha256(
  password: Uint8Array,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    password as Uint8Array<ArrayBuffer>,
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  const bits = await crypto.subtle.deriveBits(
    {
      name: "PBKDF2",
      hash: "SHA-256",
      salt: salt as Uint8Array<ArrayBuffer>,
      iterations,
    },
    key,
    HASH_BYTES * 8,
  );
  return new Uint8Array(bits);
}

/** Options of {@linkcode PasswordFile}. */
export interface PasswordFileOptions {
  /** Iterations for passwords set with `setUser`. Default 100,000. */
  iterations?: number;
  /** The key derivation; default {@linkcode pbkdf2Sha256}. */
  deriver?: KeyDeriver;
  /**
   * Most derivations `verify` runs at once; more wait their turn. Bounds the
   * CPU and threads a burst of CONNECTs (say, every client reconnecting
   * after a restart) takes. Default `navigator.hardwareConcurrency`.
   */
  maxConcurrent?: number;
}

/** Options of {@linkcode PasswordFile.verify}. */
export interface VerifyOptions {
  /**
   * Asked when the check waits for a free derivation slot (and when one
   * frees): true puts it behind every check for which it is false, and
   * such checks never take the last slot. `fileAuth` answers true for a
   * source address with recent failed logins, so that a flood of wrong
   * passwords does not delay other clients' logins.
   */
  lowPriority?: () => boolean;
}

/**
 * A counting semaphore with two priorities: `run` waits while `limit` tasks
 * are running. A free slot goes to the oldest waiter that is not low
 * priority (asked when the slot frees, so a source that failed meanwhile
 * drops back), else to the oldest low one; low-priority tasks never hold the
 * last slot (when `limit` > 1), so a normal check waits for at most one
 * derivation even during a flood of failing ones.
 */
class Limiter {
  #running = 0;
  #runningLow = 0;
  readonly #waiting: {
    start: (low: boolean) => void;
    low: (() => boolean) | undefined;
  }[] = [];
  readonly #limit: number;
  readonly #lowLimit: number;

  constructor(limit: number) {
    this.#limit = limit;
    this.#lowLimit = Math.max(1, limit - 1);
  }

  async run<T>(task: () => Promise<T>, low?: () => boolean): Promise<T> {
    const started = new Promise<boolean>((start) =>
      this.#waiting.push({ start, low })
    );
    this.#next();
    const isLow = await started;
    try {
      return await task();
    } finally {
      this.#running--;
      if (isLow) this.#runningLow--;
      this.#next();
    }
  }

  #lowFull(): boolean {
    return this.#runningLow >= this.#lowLimit;
  }

  #take(low: boolean): void {
    this.#running++;
    if (low) this.#runningLow++;
  }

  /** Starts waiters while there are free slots they may take. */
  #next(): void {
    while (this.#running < this.#limit && this.#waiting.length > 0) {
      let i = this.#waiting.findIndex((w) => w.low === undefined || !w.low());
      let low = false;
      if (i < 0) {
        if (this.#lowFull()) return;
        i = 0;
        low = true;
      }
      const [w] = this.#waiting.splice(i, 1);
      this.#take(low);
      w!.start(low);
    }
  }
}

/** One parsed password entry. */
interface Entry {
  iterations: number;
  salt: Uint8Array;
  hash: Uint8Array;
}

/** A line of the file: an entry (by user) or text kept as is. */
type Line = { user: string } | { text: string };

/**
 * Compares two byte arrays in time that depends only on their lengths.
 *
 * @example
 * ```ts
 * import { timingSafeEqual } from "./password_file.ts";
 * timingSafeEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2])); // true
 * ```
 */
export function timingSafeEqual(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) {
    diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return diff === 0;
}

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
    return undefined;
  }
  const s = atob(text);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

const encoder = new TextEncoder();

function passwordBytes(password: string | Uint8Array): Uint8Array {
  return typeof password === "string" ? encoder.encode(password) : password;
}

/**
 * Checks a user name for the password file: returns an error message or
 * `undefined`.
 */
export function userNameError(user: string): string | undefined {
  if (user.length === 0) return "the user name is empty";
  if (user.includes(":")) return `the user name "${user}" contains ":"`;
  if (/[\r\n]/.test(user)) return "the user name contains a line break";
  if (user.trim() !== user) {
    return `the user name "${user}" starts or ends with white space`;
  }
  return undefined;
}

function parseEntry(rest: string): Entry | string {
  if (!rest.startsWith(SCHEME)) {
    return `unknown password scheme (expected "${SCHEME}...")`;
  }
  const parts = rest.slice(SCHEME.length).split("$");
  if (parts.length !== 3) {
    return "expected $<iterations>$<salt>$<hash> after the scheme";
  }
  const [iterText, saltText, hashText] = parts as [string, string, string];
  if (!/^[1-9][0-9]*$/.test(iterText)) return "bad iteration count";
  const iterations = Number(iterText);
  if (iterations > MAX_ITERATIONS) {
    return `iteration count above ${MAX_ITERATIONS}`;
  }
  const salt = fromBase64(saltText);
  if (salt === undefined || salt.length === 0) return "bad salt (base64)";
  const hash = fromBase64(hashText);
  if (hash === undefined || hash.length !== HASH_BYTES) {
    return `bad hash (base64 of ${HASH_BYTES} bytes)`;
  }
  return { iterations, salt, hash };
}

function formatEntry(e: Entry): string {
  return `${SCHEME}${e.iterations}$${toBase64(e.salt)}$${toBase64(e.hash)}`;
}

/**
 * A password file in memory: verify passwords, add, change and delete users,
 * save. Comments and blank lines survive a load/save round trip.
 *
 * @example
 * ```ts
 * import { PasswordFile } from "./password_file.ts";
 * const file = new PasswordFile();
 * await file.setUser("alice", "s3cret");
 * await file.verify("alice", "s3cret"); // true
 * await file.verify("bob", "s3cret"); // false, after the same work
 * ```
 */
export class PasswordFile {
  readonly #entries = new Map<string, Entry>();
  readonly #lines: Line[] = [];
  readonly #iterations: number;
  readonly #derive: KeyDeriver;
  readonly #limiter: Limiter;
  /** Stands in for unknown users so that they cost the same work. */
  readonly #dummySalt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
  /** Random bytes: no password derives to them. */
  readonly #dummyHash = crypto.getRandomValues(new Uint8Array(HASH_BYTES));

  /** Creates an empty password file (not yet on disk). */
  constructor(options: PasswordFileOptions = {}) {
    const iterations = options.iterations ?? DEFAULT_ITERATIONS;
    if (
      !Number.isInteger(iterations) || iterations < 1 ||
      iterations > MAX_ITERATIONS
    ) {
      throw new RangeError(
        `iterations must be an integer in 1..${MAX_ITERATIONS}`,
      );
    }
    this.#iterations = iterations;
    this.#derive = options.deriver ?? pbkdf2Sha256;
    const max = options.maxConcurrent ??
      Math.max(1, navigator.hardwareConcurrency || 1);
    if (!Number.isInteger(max) || max < 1) {
      throw new RangeError("maxConcurrent must be a positive integer");
    }
    this.#limiter = new Limiter(max);
  }

  /**
   * Parses the text of a password file; `path` only names it in errors.
   * Throws {@linkcode AuthFileError} on a bad line or a repeated user.
   */
  static parse(
    text: string,
    options: PasswordFileOptions = {},
    path = "<password file>",
  ): PasswordFile {
    const file = new PasswordFile(options);
    const lines = text.split(/\r?\n/);
    if (lines.at(-1) === "") lines.pop();
    lines.forEach((raw, i) => {
      const trimmed = raw.trim();
      if (trimmed === "" || trimmed.startsWith("#")) {
        file.#lines.push({ text: raw });
        return;
      }
      const colon = trimmed.indexOf(":");
      if (colon <= 0) {
        throw new AuthFileError(
          'expected "user:$kite$pbkdf2-sha256$..."',
          path,
          i + 1,
        );
      }
      const user = trimmed.slice(0, colon);
      const entry = parseEntry(trimmed.slice(colon + 1));
      if (typeof entry === "string") {
        throw new AuthFileError(`user "${user}": ${entry}`, path, i + 1);
      }
      if (file.#entries.has(user)) {
        throw new AuthFileError(`user "${user}" appears twice`, path, i + 1);
      }
      file.#entries.set(user, entry);
      file.#lines.push({ user });
    });
    return file;
  }

  /**
   * Reads and parses a password file. Throws {@linkcode AuthFileError} if it
   * cannot be read or has a bad line.
   */
  static async load(
    path: string,
    options: PasswordFileOptions = {},
  ): Promise<PasswordFile> {
    let text: string;
    try {
      text = await Deno.readTextFile(path);
    } catch (e) {
      throw new AuthFileError(
        `cannot read the password file: ${(e as Error).message}`,
        path,
        undefined,
        { cause: e },
      );
    }
    return PasswordFile.parse(text, options, path);
  }

  /** The user names, in file order. */
  get users(): string[] {
    return [...this.#entries.keys()];
  }

  /** Whether `user` has an entry. */
  has(user: string): boolean {
    return this.#entries.has(user);
  }

  /**
   * Checks a password. Takes the same work whether or not the user exists:
   * an unknown user is checked against a dummy entry with the default
   * iteration count, and the comparison is constant-time. With
   * `options.lowPriority` (asked while the check waits for a slot), a check
   * from a suspect source waits behind every other (see
   * {@linkcode VerifyOptions}).
   */
  async verify(
    user: string,
    password: string | Uint8Array,
    options: VerifyOptions = {},
  ): Promise<boolean> {
    const found = this.#entries.get(user);
    const entry = found ?? this.#dummyEntry();
    const bytes = passwordBytes(password);
    const derived = await this.#limiter.run(
      () => this.#derive(bytes, entry.salt, entry.iterations),
      options.lowPriority,
    );
    return timingSafeEqual(derived, entry.hash) && found !== undefined;
  }

  /** Adds a user or changes its password (a new random salt each time). */
  async setUser(user: string, password: string | Uint8Array): Promise<void> {
    const bad = userNameError(user);
    if (bad !== undefined) throw new AuthFileError(bad);
    const salt = crypto.getRandomValues(new Uint8Array(SALT_BYTES));
    const hash = await this.#derive(
      passwordBytes(password),
      salt,
      this.#iterations,
    );
    if (!this.#entries.has(user)) this.#lines.push({ user });
    this.#entries.set(user, { iterations: this.#iterations, salt, hash });
  }

  /** Removes a user; returns whether it existed. */
  deleteUser(user: string): boolean {
    if (!this.#entries.delete(user)) return false;
    const i = this.#lines.findIndex((l) => "user" in l && l.user === user);
    if (i >= 0) this.#lines.splice(i, 1);
    return true;
  }

  /** The file's text, as {@linkcode PasswordFile.save} writes it. */
  toString(): string {
    let out = "";
    for (const line of this.#lines) {
      if ("text" in line) out += line.text + "\n";
      else {out += `${line.user}:${
          formatEntry(this.#entries.get(line.user)!)
        }\n`;}
    }
    return out;
  }

  /**
   * Writes the file atomically (a temporary file in the same directory, then
   * a rename), readable by its owner only (mode 0600).
   */
  async save(path: string): Promise<void> {
    const tmp = `${path}.tmp-${crypto.randomUUID()}`;
    try {
      await Deno.writeTextFile(tmp, this.toString(), { mode: 0o600 });
      await Deno.rename(tmp, path);
    } catch (e) {
      await Deno.remove(tmp).catch(() => {});
      throw new AuthFileError(
        `cannot write the password file: ${(e as Error).message}`,
        path,
        undefined,
        { cause: e },
      );
    }
  }

  /**
   * The entry an unknown user is checked against: the iteration count of the
   * first real entry (so that it costs what a real user costs), else the
   * default.
   */
  #dummyEntry(): Entry {
    let iterations = this.#iterations;
    for (const e of this.#entries.values()) {
      iterations = e.iterations;
      break;
    }
    return { iterations, salt: this.#dummySalt, hash: this.#dummyHash };
  }
}
