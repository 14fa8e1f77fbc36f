/**
 * Reading a TLS listener's PEM files (private): certificate chain, key and
 * CA, with messages that name the file and say what is wrong.
 *
 * @module
 */

/** The PEM files of a TLS listener. */
export interface TlsFiles {
  /** Certificate chain (PEM). */
  certFile: string;
  /** Private key (PEM). */
  keyFile: string;
  /** CA certificates that client certificates must chain to (PEM). */
  caFile?: string | undefined;
}

/** The text of those files. */
export interface TlsMaterial {
  cert: string;
  key: string;
  ca?: string;
}

function reason(e: unknown): string {
  if (e instanceof Deno.errors.NotFound) return "no such file";
  if (e instanceof Deno.errors.PermissionDenied) return "permission denied";
  if (e instanceof Deno.errors.IsADirectory) return "is a directory";
  return e instanceof Error ? e.message : String(e);
}

const CERT = /-----BEGIN CERTIFICATE-----/;
const KEY = /-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----/;

function readOne(
  file: string,
  what: string,
  noun: string,
  marker: RegExp,
  read: (path: string) => string,
): string {
  let text: string;
  try {
    text = read(file);
  } catch (e) {
    throw new Error(`cannot read ${what} ${file}: ${reason(e)}`, { cause: e });
  }
  if (!marker.test(text)) {
    throw new Error(`${what} ${file} holds no PEM ${noun}`);
  }
  return text;
}

/**
 * Reads the files; throws an `Error` with a one-line message
 * (`cannot read certFile /etc/kite/cert.pem: no such file`, `keyFile
 * server.crt holds no PEM key`).
 */
export function readTlsFiles(files: TlsFiles): TlsMaterial {
  const read = (p: string) => Deno.readTextFileSync(p);
  const out: TlsMaterial = {
    cert: readOne(files.certFile, "certFile", "certificate", CERT, read),
    key: readOne(files.keyFile, "keyFile", "private key", KEY, read),
  };
  if (files.caFile !== undefined) {
    out.ca = readOne(files.caFile, "caFile", "certificate", CERT, read);
  }
  return out;
}

/** Whether two readings hold the same certificate, key and CA. */
export function sameMaterial(a: TlsMaterial, b: TlsMaterial): boolean {
  return a.cert === b.cert && a.key === b.key && a.ca === b.ca;
}

/** A one-line reason for a certificate the TLS library refused. */
export function badCertificate(e: unknown): string {
  const m = e instanceof Error ? e.message : String(e);
  return `bad certificate or key: ${m.split("\n")[0]}`;
}
