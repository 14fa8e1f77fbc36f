/**
 * Test helper: a throwaway certificate authority made with `openssl` at test
 * time, a server certificate for 127.0.0.1 and localhost (and any other
 * names asked for), and a client certificate with a common name, all
 * signed by the CA, as PEM text and as files in a temp dir readable by a
 * Mosquitto that drops privileges. Tests skip themselves without openssl
 * (and fail with `KITE_REQUIRE_INTEROP=1`):
 *
 * ```ts
 * import { HAVE_OPENSSL, makeCerts } from "./_certs.ts";
 * Deno.test({
 *   name: "something over TLS",
 *   ignore: !HAVE_OPENSSL,
 *   async fn() {
 *     await using certs = await makeCerts({ clientCn: "alice" });
 *     // certs.caFile, certs.serverCertFile, certs.clientCert, ...
 *   },
 * });
 * ```
 *
 * @module
 */

/** Where Debian puts openssl. */
export const OPENSSL_PATH = "/usr/bin/openssl";

/** True when openssl is installed (use as `ignore: !HAVE_OPENSSL`). */
export const HAVE_OPENSSL: boolean = (() => {
  try {
    return Deno.statSync(OPENSSL_PATH).isFile;
  } catch {
    if (Deno.env.get("KITE_REQUIRE_INTEROP") === "1") {
      throw new Error(
        `${OPENSSL_PATH} not found and KITE_REQUIRE_INTEROP=1: ` +
          "install it (apt-get install openssl)",
      );
    }
    console.warn(`${OPENSSL_PATH} not found: TLS tests are skipped`);
    return false;
  }
})();

/** What `makeCerts()` makes. */
export interface CertOptions {
  /**
   * Names of the server certificate (IP addresses or DNS names). Default
   * `["127.0.0.1", "localhost"]`; the first is also its CN.
   */
  serverNames?: string[];
  /** Common name of the client certificate. Default `"kite-client"`. */
  clientCn?: string;
}

/** A CA with a server and a client certificate; `remove()` deletes the files. */
export interface TestCerts extends AsyncDisposable {
  /** The temp dir holding the files. */
  dir: string;
  /** The CA certificate (PEM) and its file. */
  ca: string;
  caFile: string;
  /** The server certificate and key (PEM) and their files. */
  serverCert: string;
  serverKey: string;
  serverCertFile: string;
  serverKeyFile: string;
  /** The client certificate and key (PEM) and their files. */
  clientCert: string;
  clientKey: string;
  clientCertFile: string;
  clientKeyFile: string;
  /** The CN of the client certificate. */
  clientCn: string;
  /** Deletes the temp dir; safe to call twice. */
  remove(): Promise<void>;
}

async function openssl(cwd: string, ...args: string[]): Promise<void> {
  const out = await new Deno.Command(OPENSSL_PATH, {
    args,
    cwd,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`,
    );
  }
}

const IP = /^[0-9.]+$|:/;

/** Makes a CA, a server and a client certificate (P-256 keys, valid 1 day). */
export async function makeCerts(options: CertOptions = {}): Promise<TestCerts> {
  const names = options.serverNames ?? ["127.0.0.1", "localhost"];
  const clientCn = options.clientCn ?? "kite-client";
  const dir = await Deno.makeTempDir({ prefix: "kite-certs-" });
  await Deno.chmod(dir, 0o755); // mosquitto may drop root privileges
  const ec = [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:prime256v1",
    "-nodes",
  ];
  try {
    await openssl(
      dir,
      "req",
      "-x509",
      ...ec,
      ...["-keyout", "ca.key", "-out", "ca.crt", "-days", "1"],
      ...["-subj", "/CN=Kite Test CA"],
      ...["-addext", "basicConstraints=critical,CA:TRUE"],
      ...["-addext", "keyUsage=critical,keyCertSign"],
    );
    const san = names.map((n) => IP.test(n) ? `IP:${n}` : `DNS:${n}`);
    for (
      const [name, cn, ext] of [
        [
          "server",
          names[0] ?? "localhost",
          `subjectAltName=${san.join(",")}\nextendedKeyUsage=serverAuth\n`,
        ],
        ["client", clientCn, "extendedKeyUsage=clientAuth\n"],
      ] as const
    ) {
      await openssl(
        dir,
        "req",
        ...ec,
        ...["-keyout", `${name}.key`, "-out", `${name}.csr`],
        ...["-subj", `/CN=${cn}`],
      );
      await Deno.writeTextFile(
        `${dir}/${name}.cnf`,
        `basicConstraints=CA:FALSE\n${ext}`,
      );
      await openssl(
        dir,
        "x509",
        "-req",
        ...["-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key"],
        ...["-CAcreateserial", "-out", `${name}.crt`, "-days", "1"],
        ...["-extfile", `${name}.cnf`],
      );
    }
    for (const f of ["ca.crt", "server.crt", "server.key", "client.crt"]) {
      await Deno.chmod(`${dir}/${f}`, 0o644);
    }
    const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
    let removed = false;
    const remove = async () => {
      if (removed) return;
      removed = true;
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    };
    return {
      dir,
      ca: await read("ca.crt"),
      caFile: `${dir}/ca.crt`,
      serverCert: await read("server.crt"),
      serverKey: await read("server.key"),
      serverCertFile: `${dir}/server.crt`,
      serverKeyFile: `${dir}/server.key`,
      clientCert: await read("client.crt"),
      clientKey: await read("client.key"),
      clientCertFile: `${dir}/client.crt`,
      clientKeyFile: `${dir}/client.key`,
      clientCn,
      remove,
      [Symbol.asyncDispose]: remove,
    };
  } catch (e) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw e;
  }
}
