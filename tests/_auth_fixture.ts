/**
 * Test helper: a password file and an ACL file in a temporary directory
 * with the users of the security tests (issue 19): admin may do anything,
 * alice and bob only under their own prefix (bob may also write `ok/#`).
 * Passwords are `<user>-pw`.
 *
 * ```ts ignore
 * await using files = await authFiles();
 * const auth = await fileAuth({ ...files.paths, allowAnonymous: false });
 * ```
 *
 * @module
 */

import { join } from "node:path";
import { PasswordFile } from "../broker/password_file.ts";

/** The ACL of the fixture. */
export const ACL = `
user admin
topic readwrite #

user alice
topic readwrite alice/#

user bob
topic readwrite bob/#
topic write ok/#
`;

/** The users of the fixture (each with password `<user>-pw`). */
export const USERS = ["admin", "alice", "bob"] as const;

/** The password of a fixture user. */
export function passwordOf(user: string): Uint8Array {
  return new TextEncoder().encode(`${user}-pw`);
}

/** The files, and a way to replace the ACL. */
export interface AuthFiles extends AsyncDisposable {
  /** The directory holding them (also usable for a KV store). */
  readonly dir: string;
  /** `passwordFile` and `aclFile`, ready to spread into `fileAuth()`. */
  readonly paths: { passwordFile: string; aclFile: string };
  /** Rewrites the ACL file. */
  writeAcl(text: string): Promise<void>;
}

/**
 * Writes the password file (`iterations` PBKDF2 rounds; few by default, for
 * speed) and the ACL file; removes the directory on dispose.
 */
export async function authFiles(
  options: { iterations?: number; acl?: string } = {},
): Promise<AuthFiles> {
  const dir = await Deno.makeTempDir({ prefix: "kite-auth-" });
  const passwordFile = join(dir, "kite.passwd");
  const aclFile = join(dir, "kite.acl");
  const file = new PasswordFile({ iterations: options.iterations ?? 1000 });
  for (const user of USERS) await file.setUser(user, passwordOf(user));
  await file.save(passwordFile);
  await Deno.writeTextFile(aclFile, options.acl ?? ACL);
  return {
    dir,
    paths: { passwordFile, aclFile },
    writeAcl: (text) => Deno.writeTextFile(aclFile, text),
    async [Symbol.asyncDispose]() {
      await Deno.remove(dir, { recursive: true });
    },
  };
}
