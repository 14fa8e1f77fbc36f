/**
 * `kite passwd`: adds, changes or deletes a user of a password file without
 * echoing the password.
 *
 * ```sh
 * deno run -A broker/main.ts passwd [-c] FILE USER   # add or change USER
 * deno run -A broker/main.ts passwd -D FILE USER     # delete USER
 * ```
 *
 * - `-c` creates FILE, replacing any file already there (as Mosquitto's
 *   `mosquitto_passwd -c`). Without it FILE must exist.
 * - On a terminal the password is asked for twice with echo off. When stdin
 *   is not a terminal (scripts, tests) the first line of stdin is the
 *   password; a second line, if present, must repeat it.
 * - Exit code 0 on success, 1 when the work failed (unreadable file, unknown
 *   user, passwords that differ, ...), 2 on a usage error. Errors are one
 *   line on stderr starting with `kite passwd:`.
 *
 * @module
 */

import { AuthFileError, PasswordFile, userNameError } from "./password_file.ts";

const USAGE =
  `usage: kite passwd [-c] FILE USER   add or change USER (asks for the password)
       kite passwd -D FILE USER     delete USER
  -c  create FILE (replaces an existing file)
  -D  delete USER
  -h  show this help`;

/** Where `passwdCommand` reads passwords and writes messages; for tests. */
export interface PasswdIo {
  /** Returns the password typed (or given) twice, or `undefined` on abort. */
  readPasswords(): Promise<[string, string | undefined] | undefined>;
  /** Writes one line to stderr. */
  error(line: string): void;
  /** Writes one line to stdout. */
  info(line: string): void;
}

/** The largest stdin we read for a password in non-terminal mode. */
const MAX_STDIN = 64 * 1024;

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/** Reads a line from the terminal with echo off (raw mode). */
async function readHidden(prompt: string): Promise<string | undefined> {
  const bytes: number[] = [];
  const buf = new Uint8Array(64);
  // Echo off before the prompt shows, so nothing typed early is echoed.
  Deno.stdin.setRaw(true);
  try {
    Deno.stderr.writeSync(encoder.encode(prompt));
    for (;;) {
      const n = await Deno.stdin.read(buf);
      if (n === null) {
        return bytes.length ? decoder.decode(new Uint8Array(bytes)) : undefined;
      }
      for (let i = 0; i < n; i++) {
        const b = buf[i]!;
        if (b === 0x0d || b === 0x0a) {
          return decoder.decode(new Uint8Array(bytes));
        } else if (b === 0x03) { // Ctrl-C
          return undefined;
        } else if (b === 0x04) { // Ctrl-D
          if (bytes.length === 0) return undefined;
        } else if (b === 0x7f || b === 0x08) { // backspace: one UTF-8 char
          while (bytes.length > 0 && (bytes.pop()! & 0xc0) === 0x80);
        } else if (b === 0x15) { // Ctrl-U: clear the line
          bytes.length = 0;
        } else if (b >= 0x20 || b === 0x09) {
          bytes.push(b);
        }
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(encoder.encode("\n"));
  }
}

/** Reads up to two lines from a non-terminal stdin. */
async function readLines(): Promise<[string, string | undefined] | undefined> {
  const chunks: Uint8Array[] = [];
  let size = 0;
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await Deno.stdin.read(buf);
    if (n === null) break;
    chunks.push(buf.slice(0, n));
    size += n;
    if (size > MAX_STDIN) break;
  }
  const all = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.length;
  }
  const text = decoder.decode(all);
  if (text === "") return undefined;
  const lines = text.split("\n").map((l) =>
    l.endsWith("\r") ? l.slice(0, -1) : l
  );
  if (lines.at(-1) === "") lines.pop();
  const [first, second] = lines;
  if (first === undefined) return undefined;
  return [first, second];
}

/** The process's stdin/stdout/stderr. */
export const denoPasswdIo: PasswdIo = {
  async readPasswords() {
    if (!Deno.stdin.isTerminal()) return await readLines();
    const first = await readHidden("Password: ");
    if (first === undefined) return undefined;
    const second = await readHidden("Reenter password: ");
    if (second === undefined) return undefined;
    return [first, second];
  },
  error(line) {
    console.error(line);
  },
  info(line) {
    console.log(line);
  },
};

/**
 * Runs `kite passwd` with its arguments (after the word `passwd`); returns
 * the exit code: 0 done, 1 failed, 2 usage error.
 *
 * @example
 * ```ts ignore
 * import { passwdCommand } from "./passwd.ts";
 * Deno.exit(await passwdCommand(["-c", "kite.passwd", "alice"]));
 * ```
 */
export async function passwdCommand(
  args: string[],
  io: PasswdIo = denoPasswdIo,
): Promise<number> {
  let create = false;
  let del = false;
  const positional: string[] = [];
  for (const arg of args) {
    if (arg === "-c") create = true;
    else if (arg === "-D") del = true;
    else if (arg === "-h" || arg === "--help") {
      io.info(USAGE);
      return 0;
    } else if (arg.startsWith("-") && arg !== "-") {
      io.error(`kite passwd: unknown option "${arg}"`);
      io.error(USAGE);
      return 2;
    } else positional.push(arg);
  }
  if (positional.length !== 2) {
    io.error("kite passwd: expected FILE and USER");
    io.error(USAGE);
    return 2;
  }
  if (create && del) {
    io.error("kite passwd: -c and -D cannot be used together");
    return 2;
  }
  const [path, user] = positional as [string, string];
  const badUser = userNameError(user);
  if (badUser !== undefined) {
    io.error(`kite passwd: ${badUser}`);
    return 1;
  }

  if (!create) {
    try {
      await Deno.stat(path);
    } catch (e) {
      if (e instanceof Deno.errors.NotFound) {
        io.error(`kite passwd: ${path} does not exist (-c creates it)`);
        return 1;
      }
    }
  }
  try {
    const file = create ? new PasswordFile() : await PasswordFile.load(path);
    if (del) {
      if (!file.deleteUser(user)) {
        io.error(`kite passwd: user "${user}" is not in ${path}`);
        return 1;
      }
      await file.save(path);
      io.info(`kite passwd: deleted user "${user}" from ${path}`);
      return 0;
    }
    const passwords = await io.readPasswords();
    if (passwords === undefined) {
      io.error("kite passwd: no password given; nothing changed");
      return 1;
    }
    const [password, again] = passwords;
    if (again !== undefined && again !== password) {
      io.error("kite passwd: the passwords do not match; nothing changed");
      return 1;
    }
    if (password === "") {
      io.error("kite passwd: the password is empty; nothing changed");
      return 1;
    }
    const existed = file.has(user);
    await file.setUser(user, password);
    await file.save(path);
    io.info(
      `kite passwd: ${
        existed ? "changed the password of" : "added"
      } user "${user}" in ${path}`,
    );
    return 0;
  } catch (e) {
    if (e instanceof AuthFileError) {
      io.error(`kite passwd: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

if (import.meta.main) {
  Deno.exit(await passwdCommand(Deno.args));
}
