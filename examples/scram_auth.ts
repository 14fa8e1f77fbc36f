/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677) as MQTT 5 enhanced authentication,
 * with WebCrypto only: a broker `enhancedAuth` hook and a client helper.
 *
 * The exchange, over CONNECT / AUTH / CONNACK:
 *
 * ```text
 * client                                         broker
 * CONNECT  method=SCRAM-SHA-256 data=client-first  ->
 *          <-  AUTH 0x18 data=server-first (nonce, salt, iterations)
 * AUTH 0x18 data=client-final (channel binding, nonce, proof)  ->
 *          <-  CONNACK 0x00 data=server-final (server signature)
 *              or CONNACK 0x86 when the proof is wrong
 * ```
 *
 * The broker stores no password, only `StoredKey` and `ServerKey` (see
 * {@linkcode scramCredentials}). An unknown user gets a server-first message
 * with a salt derived from the user name, so it cannot be told apart from a
 * known one before the proof fails. The client checks the server's
 * signature, so it knows the broker holds the credentials too.
 *
 * Limits of this example: no channel binding (`n,,` only), no
 * authorization identity (`a=`), and passwords are used as UTF-8 without
 * SASLprep (the same for ASCII passwords).
 *
 * Run `deno run examples/scram_auth.ts` for an in-memory exchange.
 *
 * @example
 * ```ts ignore
 * import { Broker } from "@kite/mqtt/broker";
 * import { Client } from "@kite/mqtt/client";
 * import { scramClient, scramCredentials, scramServerAuth } from "./scram_auth.ts";
 *
 * const users = new Map([["alice", await scramCredentials("wonderland")]]);
 * const broker = new Broker({
 *   port: 0,
 *   enhancedAuth: scramServerAuth({ lookup: (user) => users.get(user) }),
 * });
 * await broker.listen();
 *
 * const scram = scramClient("alice", "wonderland");
 * const client = new Client({ port: broker.addr.port, ...scram.options });
 * const connack = await client.connect();
 * await scram.verifyConnack(connack); // throws if the broker is an impostor
 * ```
 *
 * @module
 */

import type { ConnackPacket } from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import type {
  AuthStep,
  EnhancedAuthHook,
  EnhancedAuthSession,
} from "../broker/auth.ts";

/** The MQTT Authentication Method name. */
export const SCRAM_SHA_256 = "SCRAM-SHA-256";

/** RFC 7677's minimum iteration count. */
export const MIN_ITERATIONS = 4096;

const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

// --- primitives -------------------------------------------------------------

function toBase64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]!);
  return btoa(s);
}

function fromBase64(text: string): Uint8Array {
  const s = atob(text); // throws on bad input; callers turn that into a code
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

async function hmac(key: Uint8Array, data: Uint8Array): Promise<Uint8Array> {
  const k = await crypto.subtle.importKey(
    "raw",
    key as Uint8Array<ArrayBuffer>,
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return new Uint8Array(
    await crypto.subtle.sign("HMAC", k, data as Uint8Array<ArrayBuffer>),
  );
}

async function sha256(data: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(
    await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>),
  );
}

async function saltedPassword(
  password: string,
  salt: Uint8Array,
  iterations: number,
): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey(
    "raw",
    enc.encode(password),
    "PBKDF2",
    false,
    ["deriveBits"],
  );
  return new Uint8Array(
    await crypto.subtle.deriveBits(
      {
        name: "PBKDF2",
        hash: "SHA-256",
        salt: salt as Uint8Array<ArrayBuffer>,
        iterations,
      },
      key,
      256,
    ),
  );
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ (b[i] ?? 0);
  return out;
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  let diff = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) {
    diff |= (a[i] ?? 0) ^ (b[i] ?? 0);
  }
  return diff === 0;
}

function randomNonce(): string {
  return toBase64(crypto.getRandomValues(new Uint8Array(18)));
}

/** RFC 5802 saslname: "=" -> "=3D", "," -> "=2C". */
function escapeName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

function unescapeName(name: string): string | undefined {
  if (/=(?!2C|3D)/.test(name)) return undefined;
  return name.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

/** Parses `k=v,k=v` attributes in order; `undefined` if malformed. */
function attributes(text: string): [string, string][] | undefined {
  const out: [string, string][] = [];
  for (const part of text.split(",")) {
    if (part.length < 2 || part[1] !== "=") return undefined;
    out.push([part[0]!, part.slice(2)]);
  }
  return out;
}

function decodeText(data: Uint8Array | undefined): string | undefined {
  if (data === undefined) return undefined;
  try {
    return dec.decode(data);
  } catch {
    return undefined;
  }
}

// --- credentials ------------------------------------------------------------

/** What the broker stores per user: no password, only derived keys. */
export interface ScramCredentials {
  salt: Uint8Array;
  iterations: number;
  /** `H(HMAC(SaltedPassword, "Client Key"))`. */
  storedKey: Uint8Array;
  /** `HMAC(SaltedPassword, "Server Key")`. */
  serverKey: Uint8Array;
}

/**
 * Derives the credentials the broker stores for a password.
 *
 * @example
 * ```ts
 * import { scramCredentials } from "./scram_auth.ts";
 * const creds = await scramCredentials("wonderland");
 * creds.iterations; // 4096
 * ```
 */
export async function scramCredentials(
  password: string,
  options: { salt?: Uint8Array; iterations?: number } = {},
): Promise<ScramCredentials> {
  const salt = options.salt ?? crypto.getRandomValues(new Uint8Array(16));
  const iterations = options.iterations ?? MIN_ITERATIONS;
  const sp = await saltedPassword(password, salt, iterations);
  const clientKey = await hmac(sp, enc.encode("Client Key"));
  return {
    salt,
    iterations,
    storedKey: await sha256(clientKey),
    serverKey: await hmac(sp, enc.encode("Server Key")),
  };
}

// --- server -----------------------------------------------------------------

/** Options of {@linkcode scramServerAuth}. */
export interface ScramServerOptions {
  /** The stored credentials of a user, or `undefined` for an unknown user. */
  lookup(
    username: string,
  ): Promise<ScramCredentials | undefined> | ScramCredentials | undefined;
  /** The server nonce part; random by default (for test vectors). */
  nonce?: () => string;
  /** Iterations announced for unknown users. Default 4096. */
  iterations?: number;
}

function fail(reasonCode: number, reasonString: string): AuthStep {
  return { reasonCode, reasonString };
}

/**
 * The broker side: an `enhancedAuth` hook that runs SCRAM-SHA-256 for the
 * Authentication Method `SCRAM-SHA-256` (and declines other methods, which
 * the broker answers with 0x8C). On success the step carries the proven
 * `username`.
 *
 * @example
 * ```ts
 * import { scramCredentials, scramServerAuth } from "./scram_auth.ts";
 * const users = new Map([["alice", await scramCredentials("wonderland")]]);
 * const enhancedAuth = scramServerAuth({ lookup: (u) => users.get(u) });
 * ```
 */
export function scramServerAuth(options: ScramServerOptions): EnhancedAuthHook {
  // Salts for unknown users: stable per user name, unpredictable to clients.
  const fakeKey = crypto.getRandomValues(new Uint8Array(32));
  const fakeIterations = options.iterations ?? MIN_ITERATIONS;
  const nonce = options.nonce ?? randomNonce;

  return (ctx): EnhancedAuthSession | undefined => {
    if (ctx.method !== SCRAM_SHA_256) return undefined;
    let stage: "first" | "final" | "done" = "first";
    let username = "";
    let creds: ScramCredentials | undefined;
    let known = false;
    let gs2Header = "";
    let clientFirstBare = "";
    let serverFirst = "";
    let fullNonce = "";

    const first = async (data: Uint8Array | undefined): Promise<AuthStep> => {
      const text = decodeText(data);
      const m = text === undefined
        ? null
        : /^(n|y),(a=[^,]*)?,(n=.*)$/.exec(text);
      if (m === null) {
        return fail(
          ReasonCode.NotAuthorized,
          "malformed SCRAM client-first message",
        );
      }
      if (m[2] !== undefined) {
        return fail(
          ReasonCode.NotAuthorized,
          "SCRAM authorization identities are not supported",
        );
      }
      gs2Header = `${m[1]},,`;
      clientFirstBare = m[3]!;
      const attrs = attributes(clientFirstBare);
      const name = attrs?.[0]?.[0] === "n"
        ? unescapeName(attrs[0][1])
        : undefined;
      const cnonce = attrs?.[1]?.[0] === "r" ? attrs[1][1] : undefined;
      if (name === undefined || !cnonce) {
        return fail(
          ReasonCode.NotAuthorized,
          "malformed SCRAM client-first message",
        );
      }
      username = name;
      creds = await options.lookup(username);
      known = creds !== undefined;
      if (creds === undefined) {
        const salt = (await hmac(fakeKey, enc.encode(username))).slice(0, 16);
        creds = {
          salt,
          iterations: fakeIterations,
          storedKey: crypto.getRandomValues(new Uint8Array(32)),
          serverKey: crypto.getRandomValues(new Uint8Array(32)),
        };
      }
      fullNonce = cnonce + nonce();
      serverFirst = `r=${fullNonce},s=${
        toBase64(creds.salt)
      },i=${creds.iterations}`;
      stage = "final";
      return {
        reasonCode: ReasonCode.ContinueAuthentication,
        data: enc.encode(serverFirst),
      };
    };

    const final = async (data: Uint8Array | undefined): Promise<AuthStep> => {
      stage = "done";
      const text = decodeText(data);
      const at = text?.lastIndexOf(",p=") ?? -1;
      if (text === undefined || at < 0) {
        return fail(
          ReasonCode.NotAuthorized,
          "malformed SCRAM client-final message",
        );
      }
      const withoutProof = text.slice(0, at);
      const attrs = attributes(withoutProof);
      const c = attrs?.[0]?.[0] === "c" ? attrs[0][1] : undefined;
      const r = attrs?.[1]?.[0] === "r" ? attrs[1][1] : undefined;
      let proof: Uint8Array;
      try {
        proof = fromBase64(text.slice(at + 3));
      } catch {
        return fail(ReasonCode.NotAuthorized, "malformed SCRAM proof");
      }
      if (c !== toBase64(enc.encode(gs2Header)) || r !== fullNonce) {
        return fail(
          ReasonCode.NotAuthorized,
          "SCRAM channel binding or nonce mismatch",
        );
      }
      const authMessage = enc.encode(
        `${clientFirstBare},${serverFirst},${withoutProof}`,
      );
      const clientSignature = await hmac(creds!.storedKey, authMessage);
      const clientKey = xor(proof, clientSignature);
      const ok = equal(await sha256(clientKey), creds!.storedKey) &&
        proof.length === 32;
      if (!ok || !known) {
        return {
          reasonCode: ReasonCode.BadUserNameOrPassword,
          data: enc.encode("e=invalid-proof"),
        };
      }
      const serverSignature = await hmac(creds!.serverKey, authMessage);
      return {
        reasonCode: ReasonCode.Success,
        data: enc.encode(`v=${toBase64(serverSignature)}`),
        username,
      };
    };

    return {
      step(data) {
        if (stage === "first") return first(data);
        if (stage === "final") return final(data);
        return fail(ReasonCode.ProtocolError, "SCRAM exchange already over");
      },
    };
  };
}

// --- client -----------------------------------------------------------------

/**
 * The client side of one SCRAM-SHA-256 exchange.
 *
 * @example
 * ```ts
 * import { ScramClient } from "./scram_auth.ts";
 * const scram = new ScramClient("alice", "wonderland");
 * new TextDecoder().decode(scram.clientFirst()).startsWith("n,,n=alice,r="); // true
 * ```
 */
export class ScramClient {
  readonly #password: string;
  readonly #clientFirstBare: string;
  readonly #nonce: string;
  readonly #minIterations: number;
  #expectedServerSignature: Uint8Array | undefined;

  /**
   * Starts an exchange for `username` and `password`. `nonce` fixes the
   * client nonce (for test vectors); `minIterations` (default 4096) refuses
   * a server that asks for fewer PBKDF2 iterations.
   */
  constructor(
    username: string,
    password: string,
    options: { nonce?: string; minIterations?: number } = {},
  ) {
    this.#password = password;
    this.#nonce = options.nonce ?? randomNonce();
    this.#minIterations = options.minIterations ?? MIN_ITERATIONS;
    this.#clientFirstBare = `n=${escapeName(username)},r=${this.#nonce}`;
  }

  /** The client-first message: the CONNECT's Authentication Data. */
  clientFirst(): Uint8Array {
    return enc.encode(`n,,${this.#clientFirstBare}`);
  }

  /**
   * Answers the server-first message (the broker's AUTH 0x18 data) with the
   * client-final message. Throws `MqttError` 0x87 if the server-first
   * message is malformed, does not extend our nonce, or asks for too few
   * iterations.
   */
  async clientFinal(serverFirst: Uint8Array | undefined): Promise<Uint8Array> {
    const text = decodeText(serverFirst);
    const attrs = text === undefined ? undefined : attributes(text);
    const r = attrs?.[0]?.[0] === "r" ? attrs[0][1] : undefined;
    const s = attrs?.[1]?.[0] === "s" ? attrs[1][1] : undefined;
    const i = attrs?.[2]?.[0] === "i" ? attrs[2][1] : undefined;
    if (r === undefined || s === undefined || i === undefined) {
      throw new MqttError(
        ReasonCode.NotAuthorized,
        "malformed SCRAM server-first message",
      );
    }
    if (!r.startsWith(this.#nonce) || r.length <= this.#nonce.length) {
      throw new MqttError(
        ReasonCode.NotAuthorized,
        "the SCRAM server nonce does not extend the client nonce",
      );
    }
    const iterations = Number(i);
    if (!/^[1-9][0-9]*$/.test(i) || iterations < this.#minIterations) {
      throw new MqttError(
        ReasonCode.NotAuthorized,
        `the SCRAM server asks for ${i} iterations (minimum ${this.#minIterations})`,
      );
    }
    let salt: Uint8Array;
    try {
      salt = fromBase64(s);
    } catch {
      throw new MqttError(ReasonCode.NotAuthorized, "malformed SCRAM salt");
    }
    const sp = await saltedPassword(this.#password, salt, iterations);
    const clientKey = await hmac(sp, enc.encode("Client Key"));
    const storedKey = await sha256(clientKey);
    const withoutProof = `c=${toBase64(enc.encode("n,,"))},r=${r}`;
    const authMessage = enc.encode(
      `${this.#clientFirstBare},${text},${withoutProof}`,
    );
    const proof = xor(clientKey, await hmac(storedKey, authMessage));
    const serverKey = await hmac(sp, enc.encode("Server Key"));
    this.#expectedServerSignature = await hmac(serverKey, authMessage);
    return enc.encode(`${withoutProof},p=${toBase64(proof)}`);
  }

  /**
   * Checks the server-final message (the CONNACK's Authentication Data).
   * Throws `MqttError` 0x87 when it reports an error or its signature is
   * wrong: the broker does not know the credentials, do not trust it.
   */
  verifyServerFinal(serverFinal: Uint8Array | undefined): Promise<void> {
    const text = decodeText(serverFinal);
    if (text?.startsWith("e=")) {
      return Promise.reject(
        new MqttError(
          ReasonCode.NotAuthorized,
          `SCRAM failed: ${text.slice(2)}`,
        ),
      );
    }
    let signature: Uint8Array | undefined;
    try {
      signature = text?.startsWith("v=")
        ? fromBase64(text.slice(2))
        : undefined;
    } catch {
      signature = undefined;
    }
    const expected = this.#expectedServerSignature;
    if (
      signature === undefined || expected === undefined ||
      !equal(signature, expected)
    ) {
      return Promise.reject(
        new MqttError(
          ReasonCode.NotAuthorized,
          "the SCRAM server signature is wrong",
        ),
      );
    }
    return Promise.resolve();
  }
}

/** Client options and a check, for `new Client({ ...scram.options })`. */
export interface ScramClientHelper {
  /** `authenticationMethod`, `authenticationData` and `auth` for a Client. */
  options: {
    authenticationMethod: string;
    authenticationData: Uint8Array;
    auth: (
      challenge: { method: string; data: Uint8Array | undefined },
    ) => Promise<Uint8Array>;
  };
  /** Checks the server signature in the CONNACK; throws `MqttError` 0x87. */
  verifyConnack(connack: ConnackPacket): Promise<void>;
}

/**
 * Builds the Kite `Client` options for SCRAM-SHA-256 and the CONNACK check.
 *
 * @example
 * ```ts
 * import { scramClient } from "./scram_auth.ts";
 * const scram = scramClient("alice", "wonderland");
 * scram.options.authenticationMethod; // "SCRAM-SHA-256"
 * ```
 */
export function scramClient(
  username: string,
  password: string,
): ScramClientHelper {
  const client = new ScramClient(username, password);
  return {
    options: {
      authenticationMethod: SCRAM_SHA_256,
      authenticationData: client.clientFirst(),
      auth: (challenge) => client.clientFinal(challenge.data),
    },
    verifyConnack: (connack) =>
      client.verifyServerFinal(connack.properties?.authenticationData),
  };
}

if (import.meta.main) {
  // Both sides in memory: what the broker and the client would exchange.
  const users = new Map([["alice", await scramCredentials("wonderland")]]);
  const session = scramServerAuth({ lookup: (u) => users.get(u) })({
    clientId: "demo",
    protocolVersion: 5,
    method: SCRAM_SHA_256,
    reauthenticate: false,
  })!;
  const client = new ScramClient("alice", "wonderland");
  const show = (who: string, d: Uint8Array | undefined) =>
    console.log(
      `${who}: ${d === undefined ? "" : new TextDecoder().decode(d)}`,
    );
  const first = client.clientFirst();
  show("client-first (CONNECT)", first);
  const s1 = await session.step(first);
  show("server-first (AUTH 0x18)", s1.data);
  const final = await client.clientFinal(s1.data);
  show("client-final (AUTH 0x18)", final);
  const s2 = await session.step(final);
  show(`server-final (CONNACK 0x${s2.reasonCode.toString(16)})`, s2.data);
  await client.verifyServerFinal(s2.data);
  console.log(`authenticated as ${s2.username}; server signature verified`);
}
