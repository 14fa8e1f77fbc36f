import assert from "node:assert/strict";
import {
  SCRAM_SHA_256,
  ScramClient,
  scramClient,
  scramCredentials,
  scramServerAuth,
} from "../examples/scram_auth.ts";
import type { EnhancedAuthSession } from "../broker/auth.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function b64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

async function users(
  entries: Record<string, string>,
): Promise<Map<string, Awaited<ReturnType<typeof scramCredentials>>>> {
  const m = new Map();
  for (const [u, pw] of Object.entries(entries)) {
    m.set(u, await scramCredentials(pw));
  }
  return m;
}

function start(
  hook: ReturnType<typeof scramServerAuth>,
  method = SCRAM_SHA_256,
): EnhancedAuthSession | undefined {
  return hook({
    clientId: "c1",
    protocolVersion: 5,
    method,
    reauthenticate: false,
  });
}

function isCode(code: number) {
  return (e: unknown) => e instanceof MqttError && e.reasonCode === code;
}

Deno.test("ScramClient and scramServerAuth() reproduce the RFC 7677 SCRAM-SHA-256 example", async () => {
  const creds = await scramCredentials("pencil", {
    salt: b64("W22ZaJ0SNY7soEsUEjb6gQ=="),
    iterations: 4096,
  });
  const hook = scramServerAuth({
    lookup: (u) => u === "user" ? creds : undefined,
    nonce: () => "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  });
  const session = start(hook)!;
  const client = new ScramClient("user", "pencil", {
    nonce: "rOprNGfwEbeRWgbNEkqO",
  });

  assert.equal(
    dec.decode(client.clientFirst()),
    "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  );
  const s1 = await session.step(client.clientFirst());
  assert.equal(s1.reasonCode, ReasonCode.ContinueAuthentication);
  assert.equal(
    dec.decode(s1.data),
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  );
  const final = await client.clientFinal(s1.data);
  assert.equal(
    dec.decode(final),
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  );
  const s2 = await session.step(final);
  assert.equal(s2.reasonCode, ReasonCode.Success);
  assert.equal(s2.username, "user");
  assert.equal(
    dec.decode(s2.data),
    "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
  );
  await client.verifyServerFinal(s2.data);
});

Deno.test("scramServerAuth() completes an exchange driven by scramClient() options", async () => {
  // A user name with "," and "=" exercises the saslname escaping.
  const map = await users({ "al,i=ce": "wonderland" });
  const server = scramServerAuth({ lookup: (u) => map.get(u) });
  const scram = scramClient("al,i=ce", "wonderland");
  const session = start(server)!;
  assert.equal(scram.options.authenticationMethod, SCRAM_SHA_256);
  assert.match(
    dec.decode(scram.options.authenticationData),
    /^n,,n=al=2Ci=3Dce,r=/,
  );
  const s1 = await session.step(scram.options.authenticationData);
  const answer = await scram.options.auth({
    method: SCRAM_SHA_256,
    data: s1.data,
  });
  const s2 = await session.step(answer);
  assert.equal(s2.reasonCode, ReasonCode.Success);
  assert.equal(s2.username, "al,i=ce");
  await scram.verifyConnack({
    type: "connack",
    sessionPresent: false,
    reasonCode: 0,
    properties: {
      authenticationMethod: SCRAM_SHA_256,
      authenticationData: s2.data!,
    },
  });
});

Deno.test("scramServerAuth() refuses a wrong password with 0x86 and the client sees the error", async () => {
  const map = await users({ alice: "wonderland" });
  const session = start(scramServerAuth({ lookup: (u) => map.get(u) }))!;
  const client = new ScramClient("alice", "looking-glass");
  const s1 = await session.step(client.clientFirst());
  const s2 = await session.step(await client.clientFinal(s1.data));
  assert.equal(s2.reasonCode, ReasonCode.BadUserNameOrPassword);
  assert.equal(s2.username, undefined);
  await assert.rejects(
    client.verifyServerFinal(s2.data),
    isCode(ReasonCode.NotAuthorized),
  );
});

Deno.test("scramServerAuth() answers an unknown user like a known one, then refuses with 0x86", async () => {
  const map = await users({ alice: "wonderland" });
  const hook = scramServerAuth({ lookup: (u) => map.get(u) });
  const firstFor = async (user: string) => {
    const session = start(hook)!;
    const client = new ScramClient(user, "guess");
    const s1 = await session.step(client.clientFirst());
    return { session, client, s1 };
  };
  const known = await firstFor("alice");
  const ghost = await firstFor("ghost");
  const ghostAgain = await firstFor("ghost");
  assert.equal(ghost.s1.reasonCode, ReasonCode.ContinueAuthentication);
  const shape = /^r=[^,]+,s=[A-Za-z0-9+/]{22}==,i=4096$/;
  assert.match(dec.decode(known.s1.data), shape);
  assert.match(dec.decode(ghost.s1.data), shape);
  // The fake salt is stable per user name, as a real one would be.
  const salt = (d: Uint8Array | undefined) => dec.decode(d).split(",")[1];
  assert.equal(salt(ghost.s1.data), salt(ghostAgain.s1.data));
  const s2 = await ghost.session.step(
    await ghost.client.clientFinal(ghost.s1.data),
  );
  assert.equal(s2.reasonCode, ReasonCode.BadUserNameOrPassword);
});

Deno.test("scramServerAuth() declines other methods (the broker answers 0x8C)", () => {
  const hook = scramServerAuth({ lookup: () => undefined });
  assert.equal(start(hook, "SCRAM-SHA-1"), undefined);
  assert.equal(start(hook, "PLAIN"), undefined);
});

Deno.test("scramServerAuth() refuses malformed messages and steps after the end", async () => {
  const map = await users({ alice: "wonderland" });
  const hook = scramServerAuth({ lookup: (u) => map.get(u) });
  for (
    const bad of [
      undefined,
      "",
      "n=alice,r=abc", // no GS2 header
      "p=tls-unique,,n=alice,r=abc", // channel binding not supported
      "n,a=admin,n=alice,r=abc", // authorization identity not supported
      "n,,n=al=ZZice,r=abc", // bad saslname escape
      "n,,n=alice", // no nonce
    ]
  ) {
    const s = await start(hook)!.step(
      bad === undefined ? undefined : enc.encode(bad),
    );
    assert.equal(s.reasonCode, ReasonCode.NotAuthorized, String(bad));
  }
  // A client-final with another nonce, or another channel binding.
  for (
    const tamper of [
      (t: string) => t.replace(/,r=([^,]+)/, ",r=$1x"),
      (t: string) => t.replace("c=biws", "c=eSws"),
      (t: string) => t.replace(/,p=.*/, ",p=!!"),
      (t: string) => t.replace(/,p=.*/, ""),
    ]
  ) {
    const session = start(hook)!;
    const client = new ScramClient("alice", "wonderland");
    const s1 = await session.step(client.clientFirst());
    const final = dec.decode(await client.clientFinal(s1.data));
    const s2 = await session.step(enc.encode(tamper(final)));
    assert.notEqual(s2.reasonCode, ReasonCode.Success, tamper(final));
    assert.ok(s2.reasonCode >= 0x80);
    const s3 = await session.step(enc.encode(final));
    assert.equal(s3.reasonCode, ReasonCode.ProtocolError);
  }
});

Deno.test("ScramClient.verifyServerFinal() rejects a server that does not hold the credentials", async () => {
  // An impostor: same salt, derived from another password.
  const real = await scramCredentials("wonderland");
  const fake = await scramCredentials("other", {
    salt: real.salt,
    iterations: real.iterations,
  });
  const session = start(scramServerAuth({
    lookup: () => ({ ...fake, storedKey: real.storedKey }),
  }))!;
  const client = new ScramClient("alice", "wonderland");
  const s1 = await session.step(client.clientFirst());
  const s2 = await session.step(await client.clientFinal(s1.data));
  assert.equal(s2.reasonCode, ReasonCode.Success); // it fooled the check...
  await assert.rejects( // ...but not the client
    client.verifyServerFinal(s2.data),
    isCode(ReasonCode.NotAuthorized),
  );
  await assert.rejects(
    client.verifyServerFinal(undefined),
    isCode(ReasonCode.NotAuthorized),
  );
});

Deno.test("ScramClient.clientFinal() refuses a bad server-first message", async () => {
  const client = new ScramClient("alice", "pw", { nonce: "abc" });
  for (
    const bad of [
      undefined,
      "r=abcdef,s=c2FsdA==", // no iteration count
      "r=xyz123,s=c2FsdA==,i=4096", // does not extend our nonce
      "r=abc,s=c2FsdA==,i=4096", // adds nothing to our nonce
      "r=abcdef,s=c2FsdA==,i=1000", // too few iterations
      "r=abcdef,s=!!,i=4096", // bad salt
    ]
  ) {
    await assert.rejects(
      client.clientFinal(bad === undefined ? undefined : enc.encode(bad)),
      isCode(ReasonCode.NotAuthorized),
      String(bad),
    );
  }
});

Deno.test("examples/scram_auth.ts runs its in-memory exchange", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      new URL("../examples/scram_auth.ts", import.meta.url).pathname,
    ],
    env: { NO_COLOR: "1" },
  }).output();
  const text = dec.decode(out.stdout);
  assert.equal(out.code, 0, dec.decode(out.stderr));
  assert.match(text, /^client-first \(CONNECT\): n,,n=alice,r=/m);
  assert.match(text, /server-final \(CONNACK 0x0\): v=/);
  assert.match(text, /authenticated as alice; server signature verified/);
});
