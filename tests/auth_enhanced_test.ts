import assert from "node:assert/strict";
import {
  type AuthAction,
  type ClientInfo,
  EnhancedAuthFlow,
  type EnhancedAuthHook,
} from "../broker/auth.ts";
import {
  SCRAM_SHA_256,
  ScramClient,
  scramCredentials,
  scramServerAuth,
} from "../examples/scram_auth.ts";
import type { AuthPacket } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";

const CLIENT: ClientInfo = {
  clientId: "c1",
  protocolVersion: 5,
  remoteAddress: "127.0.0.1:50000",
};

const credentials = new Map([["alice", await scramCredentials("wonderland")]]);
const scram = scramServerAuth({ lookup: (u) => credentials.get(u) });

function authPacket(
  reasonCode: number,
  data?: Uint8Array,
  method: string | undefined = SCRAM_SHA_256,
): AuthPacket {
  return {
    type: "auth",
    reasonCode,
    properties: {
      ...(method === undefined ? {} : { authenticationMethod: method }),
      ...(data === undefined ? {} : { authenticationData: data }),
    },
  };
}

function expectAuth(a: AuthAction): AuthPacket {
  assert.equal(a.type, "auth", JSON.stringify(a));
  return (a as Extract<AuthAction, { type: "auth" }>).packet;
}

/** Runs the CONNECT exchange; returns the final action. */
async function connectWithScram(
  flow: EnhancedAuthFlow,
  client: ScramClient,
): Promise<AuthAction> {
  const first = await flow.connect({
    authenticationMethod: SCRAM_SHA_256,
    authenticationData: client.clientFirst(),
  });
  const challenge = expectAuth(first);
  assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
  assert.equal(challenge.properties?.authenticationMethod, SCRAM_SHA_256);
  assert.ok(flow.inProgress);
  const final = await client.clientFinal(
    challenge.properties?.authenticationData,
  );
  return await flow.auth(authPacket(ReasonCode.ContinueAuthentication, final));
}

Deno.test("EnhancedAuthFlow completes a SCRAM CONNECT exchange: AUTH 0x18, then CONNACK 0x00 with method and data", async () => {
  const flow = new EnhancedAuthFlow(scram, CLIENT);
  const client = new ScramClient("alice", "wonderland");
  const done = await connectWithScram(flow, client);
  assert.equal(done.type, "connack");
  if (done.type !== "connack") return;
  assert.equal(done.reasonCode, ReasonCode.Success);
  assert.equal(done.username, "alice");
  // [MQTT-4.12.0-5]: the successful CONNACK carries the method.
  assert.equal(done.properties.authenticationMethod, SCRAM_SHA_256);
  await client.verifyServerFinal(done.properties.authenticationData);
  assert.equal(flow.inProgress, false);
});

Deno.test("EnhancedAuthFlow refuses a wrong SCRAM proof with CONNACK 0x86", async () => {
  const flow = new EnhancedAuthFlow(scram, CLIENT);
  const done = await connectWithScram(flow, new ScramClient("alice", "nope"));
  assert.equal(done.type, "connack");
  if (done.type !== "connack") return;
  assert.equal(done.reasonCode, ReasonCode.BadUserNameOrPassword);
  assert.equal(done.username, undefined);
});

Deno.test("EnhancedAuthFlow answers CONNACK 0x8C without a hook or for a method the hook declines [MQTT-4.12.0-1]", async () => {
  for (const hook of [undefined, scram]) {
    const flow = new EnhancedAuthFlow(hook, CLIENT);
    const a = await flow.connect({ authenticationMethod: "KERBEROS" });
    assert.equal(a.type, "connack");
    if (a.type === "connack") {
      assert.equal(a.reasonCode, ReasonCode.BadAuthenticationMethod);
      assert.equal(a.properties.authenticationMethod, undefined);
    }
  }
});

Deno.test("EnhancedAuthFlow treats AUTH rule violations as protocol errors (0x82)", async () => {
  // AUTH on a connection whose CONNECT had no method [MQTT-4.12.0-7].
  const plain = new EnhancedAuthFlow(scram, CLIENT);
  const a1 = await plain.auth(authPacket(ReasonCode.ContinueAuthentication));
  assert.deepEqual([a1.type, (a1 as { reasonCode: number }).reasonCode], [
    "connack",
    ReasonCode.ProtocolError,
  ]);

  // Another method in the AUTH [MQTT-4.12.0-5].
  const flow = new EnhancedAuthFlow(scram, CLIENT);
  await flow.connect({
    authenticationMethod: SCRAM_SHA_256,
    authenticationData: new ScramClient("alice", "x").clientFirst(),
  });
  const a2 = await flow.auth(
    authPacket(ReasonCode.ContinueAuthentication, undefined, "PLAIN"),
  );
  assert.equal(
    (a2 as { reasonCode: number }).reasonCode,
    ReasonCode.ProtocolError,
  );

  // AUTH 0x19 before CONNACK, AUTH 0x18 with nothing in progress, AUTH 0x00.
  const early = new EnhancedAuthFlow(scram, CLIENT);
  await early.connect({
    authenticationMethod: SCRAM_SHA_256,
    authenticationData: new ScramClient("alice", "x").clientFirst(),
  });
  const a3 = await early.auth(authPacket(ReasonCode.ReAuthenticate));
  assert.equal(a3.type, "connack");
  assert.equal(
    (a3 as { reasonCode: number }).reasonCode,
    ReasonCode.ProtocolError,
  );
  const a4 = await early.auth(authPacket(ReasonCode.ContinueAuthentication));
  assert.equal(
    (a4 as { reasonCode: number }).reasonCode,
    ReasonCode.ProtocolError,
  );
  const a5 = await early.auth(authPacket(ReasonCode.Success));
  assert.equal(
    (a5 as { reasonCode: number }).reasonCode,
    ReasonCode.ProtocolError,
  );
});

Deno.test("EnhancedAuthFlow re-authenticates a connected client: AUTH 0x19, 0x18, then AUTH 0x00 [MQTT-4.12.1-1]", async () => {
  const flow = new EnhancedAuthFlow(scram, CLIENT);
  const done = await connectWithScram(
    flow,
    new ScramClient("alice", "wonderland"),
  );
  assert.equal((done as { reasonCode: number }).reasonCode, 0);
  flow.connected();

  const again = new ScramClient("alice", "wonderland");
  const challenge = expectAuth(
    await flow.auth(authPacket(ReasonCode.ReAuthenticate, again.clientFirst())),
  );
  assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
  const ok = await flow.auth(
    authPacket(
      ReasonCode.ContinueAuthentication,
      await again.clientFinal(challenge.properties?.authenticationData),
    ),
  );
  const success = expectAuth(ok);
  assert.equal(success.reasonCode, ReasonCode.Success);
  assert.equal(success.properties?.authenticationMethod, SCRAM_SHA_256);
  assert.equal((ok as { username?: string }).username, "alice");
  await again.verifyServerFinal(success.properties?.authenticationData);

  // A second AUTH 0x19 during an exchange is a protocol error.
  await flow.auth(
    authPacket(
      ReasonCode.ReAuthenticate,
      new ScramClient("alice", "x").clientFirst(),
    ),
  );
  const twice = await flow.auth(authPacket(ReasonCode.ReAuthenticate));
  assert.deepEqual(
    [twice.type, (twice as { reasonCode: number }).reasonCode],
    ["disconnect", ReasonCode.ProtocolError],
  );
});

Deno.test("EnhancedAuthFlow ends a failed re-authentication with DISCONNECT [MQTT-4.12.1-2]", async () => {
  const flow = new EnhancedAuthFlow(scram, CLIENT);
  await connectWithScram(flow, new ScramClient("alice", "wonderland"));
  flow.connected();
  const bad = new ScramClient("alice", "stolen-session");
  const challenge = expectAuth(
    await flow.auth(authPacket(ReasonCode.ReAuthenticate, bad.clientFirst())),
  );
  const a = await flow.auth(
    authPacket(
      ReasonCode.ContinueAuthentication,
      await bad.clientFinal(challenge.properties?.authenticationData),
    ),
  );
  assert.deepEqual(
    [a.type, (a as { reasonCode: number }).reasonCode],
    ["disconnect", ReasonCode.BadUserNameOrPassword],
  );
});

Deno.test("EnhancedAuthFlow fails with 0x80 when the hook throws or answers a bad code", async () => {
  const throwing: EnhancedAuthHook = () => ({
    step() {
      throw new Error("backend down");
    },
  });
  const odd: EnhancedAuthHook = () => ({ step: () => ({ reasonCode: 0x19 }) });
  const throwsAtStart: EnhancedAuthHook = () => {
    throw new Error("boom");
  };
  for (const hook of [throwing, odd, throwsAtStart]) {
    const a = await new EnhancedAuthFlow(hook, CLIENT).connect({
      authenticationMethod: "X",
    });
    assert.deepEqual(
      [a.type, (a as { reasonCode: number }).reasonCode],
      ["connack", ReasonCode.UnspecifiedError],
    );
  }
});

Deno.test("EnhancedAuthFlow leaves reason strings off AUTH packets when Request Problem Information is 0 v5:[MQTT-3.1.2-29]", async () => {
  const chatty: EnhancedAuthHook = () => ({
    step: (data) =>
      data === undefined
        ? { reasonCode: 0x18, reasonString: "send a token" }
        : { reasonCode: 0x87, reasonString: "token expired" },
  });
  const quiet = new EnhancedAuthFlow(chatty, CLIENT, {
    requestProblemInformation: false,
  });
  const challenge = expectAuth(
    await quiet.connect({ authenticationMethod: "TOKEN" }),
  );
  assert.equal(challenge.properties?.reasonString, undefined);
  // CONNACK may still carry it.
  const refused = await quiet.auth(
    authPacket(ReasonCode.ContinueAuthentication, new Uint8Array([1]), "TOKEN"),
  );
  assert.equal(refused.type, "connack");
  if (refused.type === "connack") {
    assert.equal(refused.reasonCode, ReasonCode.NotAuthorized);
    assert.equal(refused.properties.reasonString, "token expired");
  }

  const loud = new EnhancedAuthFlow(chatty, CLIENT);
  const c2 = expectAuth(await loud.connect({ authenticationMethod: "TOKEN" }));
  assert.equal(c2.properties?.reasonString, "send a token");
});
