/**
 * Test helper: throwaway certificates made with `openssl` at test time. A
 * CA, server certificates for `127.0.0.1` and `localhost`, and client
 * certificates with a chosen CN, all P-256 keys valid for a day, in a temp
 * directory the caller removes (`await using certs = await makeCerts()`).
 *
 * ```ts ignore
 * await using certs = await makeCerts();
 * const client = await certs.client("alice"); // { cert, key } file paths
 * const fp = await certs.fingerprint(certs.serverCert);
 * ```
 *
 * Tests that need it skip themselves when `openssl` is missing
 * (`ignore: !HAVE_OPENSSL`), or fail with `KITE_REQUIRE_INTEROP=1`.
 *
 * @module
 */

const OPENSSL = "/usr/bin/openssl";

/** True when `/usr/bin/openssl` exists (use as `ignore: !HAVE_OPENSSL`). */
export const HAVE_OPENSSL: boolean = (() => {
  try {
    return Deno.statSync(OPENSSL).isFile;
  } catch {
    if (Deno.env.get("KITE_REQUIRE_INTEROP") === "1") {
      throw new Error(
        `${OPENSSL} not found and KITE_REQUIRE_INTEROP=1: ` +
          "install it (apt-get install openssl)",
      );
    }
    console.warn(`${OPENSSL} not found: TLS tests are skipped`);
    return false;
  }
})();

/** Runs `openssl ...args` in `cwd`; throws with its stderr on failure. */
export async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(OPENSSL, {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args.join(" ")} failed: ${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
}

/** A certificate and its key, as PEM file paths. */
export interface CertFiles {
  /** The certificate (PEM). */
  cert: string;
  /** Its private key (PEM, unencrypted). */
  key: string;
}

/** A throwaway CA and what it signed, in `dir`. */
export interface TestCerts extends AsyncDisposable {
  /** The temp directory holding every file (readable by all). */
  readonly dir: string;
  /** The CA certificate (PEM file). */
  readonly caCert: string;
  /** The server certificate for IP 127.0.0.1 and DNS localhost (PEM file). */
  readonly serverCert: string;
  /** Its key (PEM file). */
  readonly serverKey: string;
  /** The CA certificate's text. */
  readonly caPem: string;
  /**
   * A new certificate signed by the CA: `name` is the file prefix; `cn`
   * the subject CN (default `name`); `server` true makes it a server
   * certificate for 127.0.0.1/localhost, else a client certificate.
   */
  issue(name: string, options?: { cn?: string; server?: boolean }): Promise<
    CertFiles
  >;
  /** A client certificate with subject CN `cn` (files `client-<cn>.*`). */
  client(cn: string): Promise<CertFiles>;
  /** A self-signed server certificate no CA vouches for. */
  selfSigned(name: string): Promise<CertFiles>;
  /** The SHA-256 fingerprint of a PEM certificate file, as hex. */
  fingerprint(certFile: string): Promise<string>;
  /** Removes the directory; safe to call twice. */
  remove(): Promise<void>;
}

const EC = [
  "-newkey",
  "ec",
  "-pkeyopt",
  "ec_paramgen_curve:prime256v1",
  "-nodes",
];

const SERVER_EXT = "subjectAltName=IP:127.0.0.1,DNS:localhost\n" +
  "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n";
const CLIENT_EXT = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n";

/** The SHA-256 fingerprint (hex) of the first certificate in PEM text. */
export async function pemFingerprint(pem: string): Promise<string> {
  const m = /-----BEGIN CERTIFICATE-----([\s\S]+?)-----END CERTIFICATE-----/
    .exec(pem);
  if (m === null) throw new Error("no certificate in the PEM text");
  const der = Uint8Array.from(
    atob(m[1]!.replace(/\s+/g, "")),
    (c) => c.charCodeAt(0),
  );
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", der));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * Makes a CA and a server certificate for 127.0.0.1/localhost in a new temp
 * directory (mode 0755, files 0644: a Mosquitto that drops privileges can
 * read them).
 */
export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "kite-certs-" });
  await Deno.chmod(dir, 0o755);
  let serial = 1;
  const readable = async (...files: string[]) => {
    for (const f of files) await Deno.chmod(`${dir}/${f}`, 0o644);
  };
  const issue = async (
    name: string,
    options: { cn?: string; server?: boolean } = {},
  ): Promise<CertFiles> => {
    const server = options.server ?? false;
    const cn = options.cn ?? (server ? "127.0.0.1" : name);
    await openssl(
      dir,
      "req",
      ...EC,
      "-keyout",
      `${name}.key`,
      "-out",
      `${name}.csr`,
      "-subj",
      `/CN=${cn}`,
    );
    await Deno.writeTextFile(
      `${dir}/${name}.ext`,
      server ? SERVER_EXT : CLIENT_EXT,
    );
    await openssl(
      dir,
      "x509",
      "-req",
      "-in",
      `${name}.csr`,
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-set_serial",
      String(++serial),
      "-out",
      `${name}.crt`,
      "-days",
      "1",
      "-extfile",
      `${name}.ext`,
    );
    await readable(`${name}.crt`, `${name}.key`);
    return { cert: `${dir}/${name}.crt`, key: `${dir}/${name}.key` };
  };
  let removed = false;
  const remove = async () => {
    if (removed) return;
    removed = true;
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await openssl(
      dir,
      "req",
      "-x509",
      ...EC,
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
      "-days",
      "1",
      "-subj",
      "/CN=Kite Test CA",
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign",
    );
    await readable("ca.crt");
    const server = await issue("server", { server: true });
    return {
      dir,
      caCert: `${dir}/ca.crt`,
      serverCert: server.cert,
      serverKey: server.key,
      caPem: await Deno.readTextFile(`${dir}/ca.crt`),
      issue,
      client: (cn) => issue(`client-${cn}`, { cn }),
      async selfSigned(name) {
        await openssl(
          dir,
          "req",
          "-x509",
          ...EC,
          "-keyout",
          `${name}.key`,
          "-out",
          `${name}.crt`,
          "-days",
          "1",
          "-subj",
          "/CN=127.0.0.1",
          "-addext",
          "subjectAltName=IP:127.0.0.1,DNS:localhost",
        );
        await readable(`${name}.crt`, `${name}.key`);
        return { cert: `${dir}/${name}.crt`, key: `${dir}/${name}.key` };
      },
      fingerprint: async (certFile) =>
        pemFingerprint(await Deno.readTextFile(certFile)),
      remove,
      [Symbol.asyncDispose]: remove,
    };
  } catch (e) {
    await remove();
    throw e;
  }
}
