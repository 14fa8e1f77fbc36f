/**
 * Reading a TLS listener's PEM files (private): certificate chain, key and
 * CA, checked (each parses; the key is the certificate's), with messages
 * that name the file and say what is wrong.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";

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

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split("\n")[0]!;
}

/** Checks that the texts parse and that the key belongs to the certificate. */
function check(files: TlsFiles, m: TlsMaterial): void {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(m.cert);
  } catch (e) {
    throw new Error(
      `certFile ${files.certFile}: bad certificate: ${firstLine(e)}`,
    );
  }
  let key;
  try {
    key = createPrivateKey(m.key);
  } catch (e) {
    throw new Error(
      `keyFile ${files.keyFile}: bad private key: ${firstLine(e)}`,
    );
  }
  if (!cert.checkPrivateKey(key)) {
    throw new Error(
      `keyFile ${files.keyFile} is not the key of certFile ${files.certFile}`,
    );
  }
  if (m.ca !== undefined) {
    try {
      new X509Certificate(m.ca);
    } catch (e) {
      throw new Error(
        `caFile ${files.caFile}: bad certificate: ${firstLine(e)}`,
      );
    }
  }
}

/**
 * Reads and checks the files; throws an `Error` with a one-line message
 * (`cannot read certFile /etc/kite/cert.pem: no such file`, `keyFile
 * server.crt holds no PEM private key`, `keyFile a.key is not the key of
 * certFile b.crt`).
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
  check(files, out);
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
