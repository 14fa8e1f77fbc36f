/**
 * v5 enhanced authentication through the broker: the `enhancedAuth` hook
 * (SCRAM-SHA-256 from examples/scram_auth.ts with Kite's Client, and a toy
 * token method over raw packets), re-authentication, and the rules around
 * the exchange.
 */

import assert from "node:assert/strict";
import { Client } from "../client/client.ts";
import type { EnhancedAuthHook } from "../broker/auth.ts";
import type { ClientInfo } from "../broker/options.ts";
import type { AuthPacket } from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  SCRAM_SHA_256,
  scramClient,
  scramCredentials,
  scramServerAuth,
} from "../examples/scram_auth.ts";
import {
  bytes,
  RawClient,
  startBroker,
  text,
  withTimeout,
} from "./_helpers.ts";

const users = new Map([["alice", await scramCredentials("wonderland")]]);
const scram = scramServerAuth({ lookup: (u) => users.get(u) });

/** A toy method: data "good:NAME" proves NAME; anything else is refused. */
const token: EnhancedAuthHook = (ctx) =>
  ctx.method !== "TOKEN" ? undefined : {
    step(data) {
      const t = data === undefined ? "" : text(data);
      return t.startsWith("good:")
        ? { reasonCode: ReasonCode.Success, username: t.slice(5) }
        : { reasonCode: ReasonCode.NotAuthorized, reasonString: "bad token" };
    },
  };

function auth(reasonCode: number, data?: string, method = "TOKEN"): AuthPacket {
  const p: AuthPacket = {
    type: "auth",
    reasonCode,
    properties: { authenticationMethod: method },
  };
  if (data !== undefined) p.properties!.authenticationData = bytes(data);
  return p;
}

Deno.test("Broker runs SCRAM-SHA-256 with Kite's Client end to end; the proven user name reaches the authorization hooks [MQTT-4.12.0-2] [MQTT-3.15.2-1]", async () => {
  const seen: (string | undefined)[] = [];
  let authenticateCalls = 0;
  const broker = await startBroker({
    allowAnonymous: false,
    enhancedAuth: scram,
    authenticate: () => {
      authenticateCalls++;
      return ReasonCode.NotAuthorized;
    },
    authorizePublish: (c: ClientInfo) => {
      seen.push(c.username);
      return 0;
    },
  });
  const helper = scramClient("alice", "wonderland");
  const client = new Client({
    port: broker.addr.port,
    reconnect: false,
    ...helper.options,
  });
  const connack = await client.connect();
  assert.equal(connack.reasonCode, ReasonCode.Success);
  assert.equal(connack.properties?.authenticationMethod, SCRAM_SHA_256);
  // The server proved it knows the password too.
  await helper.verifyConnack(connack);
  const { promise, resolve } = Promise.withResolvers<string>();
  await client.subscribe("scram/t", 1, (m) => resolve(m.payloadText));
  await client.publish("scram/t", "hi", 1);
  assert.equal(await withTimeout(promise, 2000, "the message"), "hi");
  assert.deepEqual(seen, ["alice"]);
  // `authenticate` is skipped for enhanced authentication.
  assert.equal(authenticateCalls, 0);
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker refuses a wrong SCRAM password and an unknown user alike with CONNACK 0x86 [MQTT-4.12.0-4]", async () => {
  const broker = await startBroker({ enhancedAuth: scram });
  for (const [user, password] of [["alice", "nope"], ["bob", "x"]]) {
    const helper = scramClient(user!, password!);
    const client = new Client({
      port: broker.addr.port,
      reconnect: false,
      ...helper.options,
    });
    await assert.rejects(
      client.connect(),
      (e: unknown) =>
        e instanceof MqttError &&
        e.reasonCode === ReasonCode.BadUserNameOrPassword,
    );
    await client.close();
  }
  await broker.close();
});

Deno.test("Broker answers an Authentication Method its hook declines with CONNACK 0x8C [MQTT-4.12.0-1]", async () => {
  const broker = await startBroker({ enhancedAuth: token });
  const r = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    properties: { authenticationMethod: "KERBEROS" },
  });
  assert.equal(r.connack.reasonCode, ReasonCode.BadAuthenticationMethod);
  await r.client.waitClosed();
  await r.client.close();
  await broker.close();
});

Deno.test("Broker accepts only AUTH or DISCONNECT before CONNACK during an exchange (CONNACK 0x82)", async () => {
  const broker = await startBroker({ enhancedAuth: scram });
  const c = await RawClient.open(broker.addr.port, 5);
  const helper = scramClient("alice", "wonderland");
  await c.send({
    type: "connect",
    protocolVersion: 5,
    clientId: "early",
    cleanStart: true,
    keepAlive: 0,
    properties: {
      authenticationMethod: SCRAM_SHA_256,
      authenticationData: helper.options.authenticationData,
    },
  });
  const challenge = await c.expect("auth");
  assert.equal(challenge.reasonCode, ReasonCode.ContinueAuthentication);
  await c.send({
    type: "publish",
    topic: "t",
    payload: bytes("x"),
    qos: 0,
    retain: false,
    dup: false,
  });
  await c.expectClosedWith("connack", ReasonCode.ProtocolError);
  await c.close();
  await broker.close();
});

Deno.test("Broker keeps the connect timeout running over the authentication exchange", async () => {
  const broker = await startBroker({
    enhancedAuth: scram,
    connectTimeout: 0.3,
  });
  const c = await RawClient.open(broker.addr.port, 5);
  const helper = scramClient("alice", "wonderland");
  await c.send({
    type: "connect",
    protocolVersion: 5,
    clientId: "slow",
    cleanStart: true,
    keepAlive: 0,
    properties: {
      authenticationMethod: SCRAM_SHA_256,
      authenticationData: helper.options.authenticationData,
    },
  });
  await c.expect("auth");
  // The client never answers: the broker closes the connection.
  await c.waitClosed(3000);
  assert.equal(c.inbox.some((p) => p.type === "connack"), false);
  await c.close();
  await broker.close();
});

Deno.test("Broker re-authenticates a connected client: AUTH 0x19 -> AUTH 0x00 with the new identity; failure -> DISCONNECT 0x87 [MQTT-4.12.1-2]", async () => {
  const seen: (string | undefined)[] = [];
  const broker = await startBroker({
    enhancedAuth: token,
    authorizePublish: (c: ClientInfo) => {
      seen.push(c.username);
      return 0;
    },
  });
  const { client, connack } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    properties: {
      authenticationMethod: "TOKEN",
      authenticationData: bytes("good:first"),
    },
  });
  assert.equal(connack.reasonCode, ReasonCode.Success);
  assert.equal(connack.properties?.authenticationMethod, "TOKEN");
  const pub = {
    type: "publish" as const,
    topic: "t",
    payload: bytes("x"),
    qos: 1 as const,
    packetId: 1,
    retain: false,
    dup: false,
  };
  await client.send(pub);
  await client.expect("puback");
  await client.send(auth(ReasonCode.ReAuthenticate, "good:second"));
  const ok = await client.expect("auth");
  assert.equal(ok.reasonCode, ReasonCode.Success);
  assert.equal(ok.properties?.authenticationMethod, "TOKEN");
  await client.send(pub);
  await client.expect("puback");
  assert.deepEqual(seen, ["first", "second"]);
  // A token that proves nothing ends the connection.
  await client.send(auth(ReasonCode.ReAuthenticate, "bad", "TOKEN"));
  const d = await client.expect("disconnect");
  assert.equal(d.reasonCode, ReasonCode.NotAuthorized);
  assert.equal(d.properties?.reasonString, "bad token");
  await client.waitClosed();
  await client.close();
  await broker.close();
});

Deno.test("Broker answers AUTH with another method with DISCONNECT 0x82 [MQTT-4.12.0-5]", async () => {
  const broker = await startBroker({ enhancedAuth: token });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    properties: {
      authenticationMethod: "TOKEN",
      authenticationData: bytes("good:a"),
    },
  });
  await client.send(auth(ReasonCode.ReAuthenticate, "good:a", "OTHER"));
  await client.expectClosedWith(
    "disconnect",
    ReasonCode.ProtocolError,
  );
  await client.close();
  await broker.close();
});

Deno.test("Client.reauthenticate() against Kite: AUTH 0x00 on success, the connection ends with 0x87 on failure", async () => {
  const seen: (string | undefined)[] = [];
  const broker = await startBroker({
    enhancedAuth: token,
    authorizeSubscribe: (c: ClientInfo, _f, qos) => {
      seen.push(c.username);
      return qos;
    },
  });
  const client = new Client({
    port: broker.addr.port,
    reconnect: false,
    authenticationMethod: "TOKEN",
    authenticationData: bytes("good:one"),
  });
  await client.connect();
  await client.subscribe("a", 0, () => {});
  const ok = await client.reauthenticate(bytes("good:two"));
  assert.equal(ok.reasonCode, ReasonCode.Success);
  await client.subscribe("b", 0, () => {});
  assert.deepEqual(seen, ["one", "two"]);
  await assert.rejects(
    client.reauthenticate(bytes("forged")),
    (e: unknown) =>
      e instanceof MqttError && e.reasonCode === ReasonCode.NotAuthorized,
  );
  await client.close();
  await broker.close();
});
