/**
 * A session belongs to the identity that created it (issue 19, finding 1):
 * a CONNECT by another user with the same client id is refused (v5 0x87,
 * 3.1.1 0x05) and the session, online or offline, is left as it was.
 */

import assert from "node:assert/strict";
import { fileAuth } from "../broker/auth.ts";
import type { Broker } from "../broker/mod.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import type { Store } from "../broker/store/store.ts";
import type { ConnectPacket, ProtocolVersion } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { authFiles, passwordOf } from "./_auth_fixture.ts";
import {
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
} from "./_helpers.ts";

interface Setup extends AsyncDisposable {
  broker: Broker;
  port: number;
}

async function setup(store?: Store): Promise<Setup> {
  const files = await authFiles();
  const auth = await fileAuth({ ...files.paths, allowAnonymous: true });
  const broker = await startBroker({
    allowAnonymous: true,
    authenticate: auth.authenticate,
    authorizePublish: auth.authorizePublish,
    authorizeSubscribe: auth.authorizeSubscribe,
    ...(store === undefined ? {} : { store }),
  });
  return {
    broker,
    port: broker.addr.port,
    async [Symbol.asyncDispose]() {
      await broker.close();
      await files[Symbol.asyncDispose]();
    },
  };
}

/** CONNECT as `user` (anonymous when undefined) with `clientId`. */
function login(
  port: number,
  version: ProtocolVersion,
  user: string | undefined,
  clientId: string,
  extra: Partial<ConnectPacket> = {},
) {
  return RawClient.connect(port, {
    protocolVersion: version,
    clientId,
    ...(user === undefined
      ? {}
      : { username: user, password: passwordOf(user) }),
    ...extra,
  });
}

Deno.test("Broker refuses another user's CONNECT to an offline persistent session (3.1.1 0x05, v5 0x87) and keeps the session for its owner", async () => {
  await using s = await setup();
  const a = await login(s.port, 4, "alice", "X", { cleanStart: false });
  assert.equal(a.connack.reasonCode, 0);
  assert.deepEqual(await subscribeOne(a.client, "alice/#", 1), [1]);
  await a.client.disconnect();

  const admin = await login(s.port, 5, "admin", "admin-1");
  await admin.client.send(
    publishPacket("alice/inbox", "for alice", { qos: 1, packetId: 3 }),
  );
  assert.equal((await admin.client.expect("puback")).reasonCode ?? 0, 0);

  // bob with alice's client id: refused, whatever the version and flags.
  const tries: [ProtocolVersion, boolean, number][] = [
    [4, false, 0x05],
    [4, true, 0x05],
    [5, false, ReasonCode.NotAuthorized],
    [5, true, ReasonCode.NotAuthorized],
  ];
  for (const [version, cleanStart, code] of tries) {
    const bob = await login(s.port, version, "bob", "X", { cleanStart });
    assert.equal(
      bob.connack.reasonCode,
      code,
      `v${version} clean ${cleanStart}`,
    );
    assert.equal(bob.connack.sessionPresent, false);
    await bob.client.waitClosed();
    assert.ok(
      !bob.client.inbox.some((p) => p.type === "publish"),
      "bob got none of alice's messages",
    );
    await bob.client.close();
  }
  // So is an anonymous client.
  const anon = await login(s.port, 4, undefined, "X", { cleanStart: false });
  assert.equal(anon.connack.reasonCode, 0x05);
  await anon.client.close();

  // alice's session is intact: present, with the message queued for her.
  const back = await login(s.port, 4, "alice", "X", { cleanStart: false });
  assert.equal(back.connack.reasonCode, 0);
  assert.equal(back.connack.sessionPresent, true);
  const m = await back.client.expectPublish("alice/inbox");
  assert.equal(text(m.payload), "for alice");
  await back.client.disconnect();
  await admin.client.disconnect();
});

Deno.test("Broker refuses another user's CONNECT to a connected client id and leaves the owner's connection alone", async () => {
  await using s = await setup();
  const a = await login(s.port, 5, "alice", "Y");
  assert.deepEqual(await subscribeOne(a.client, "alice/#", 0), [0]);

  const bob = await login(s.port, 5, "bob", "Y");
  assert.equal(bob.connack.reasonCode, ReasonCode.NotAuthorized);
  await bob.client.waitClosed();
  await bob.client.close();

  // alice was not taken over (no DISCONNECT 0x8E) and still gets traffic.
  const admin = await login(s.port, 4, "admin", "admin-2");
  await admin.client.send(publishPacket("alice/live", "still here"));
  const m = await a.client.expectPublish("alice/live");
  assert.equal(text(m.payload), "still here");
  assert.ok(!a.client.isClosed);
  assert.ok(!a.client.inbox.some((p) => p.type === "disconnect"));
  assert.equal(s.broker.connectedClients, 2);
  await a.client.disconnect();
  await admin.client.disconnect();
});

Deno.test("Broker lets the owner take over its own session, and anonymous clients share the anonymous identity", async () => {
  await using s = await setup();
  const first = await login(s.port, 5, "alice", "Z");
  const second = await login(s.port, 5, "alice", "Z");
  assert.equal(second.connack.reasonCode, 0);
  assert.equal(
    (await first.client.expect("disconnect")).reasonCode,
    ReasonCode.SessionTakenOver,
  );
  await first.client.close();
  await second.client.disconnect();

  const anon1 = await login(s.port, 4, undefined, "A", { cleanStart: false });
  await anon1.client.disconnect();
  const anon2 = await login(s.port, 4, undefined, "A", { cleanStart: false });
  assert.equal(anon2.connack.sessionPresent, true);
  await anon2.client.disconnect();
  // A user may not take the session of the anonymous identity either.
  const alice = await login(s.port, 4, "alice", "A", { cleanStart: false });
  assert.equal(alice.connack.reasonCode, 0x05);
  await alice.client.close();
});

Deno.test("Broker gives a session stored without an owner (an older Kite) to the first identity that connects", async () => {
  const store = new MemoryStore();
  store.putSession({
    clientId: "legacy",
    protocolVersion: 4,
    expiryInterval: 0xffffffff,
    disconnectedAt: Date.now(),
    subscriptions: [{ filter: "bob/#", qos: 1 }],
  });
  await store.commit();
  await using s = await setup(store);
  const bob = await login(s.port, 4, "bob", "legacy", { cleanStart: false });
  assert.equal(bob.connack.reasonCode, 0);
  assert.equal(bob.connack.sessionPresent, true);
  await bob.client.disconnect();
  const alice = await login(s.port, 4, "alice", "legacy", {
    cleanStart: false,
  });
  assert.equal(alice.connack.reasonCode, 0x05);
  await alice.client.close();
  const again = await login(s.port, 4, "bob", "legacy", { cleanStart: false });
  assert.equal(again.connack.sessionPresent, true);
  await again.client.disconnect();
});

Deno.test("Broker keeps the session owner in the stored record", async () => {
  const store = new MemoryStore();
  await using s = await setup(store);
  const a = await login(s.port, 5, "alice", "rec", {
    properties: { sessionExpiryInterval: 60 },
  });
  await a.client.disconnect();
  const anon = await login(s.port, 5, undefined, "rec-anon", {
    properties: { sessionExpiryInterval: 60 },
  });
  await anon.client.disconnect();
  await s.broker.close();
  const { sessions } = await store.load();
  const owners = new Map(
    sessions.map((x) => [x.record.clientId, x.record.owner]),
  );
  assert.deepEqual(owners.get("rec"), { username: "alice" });
  assert.deepEqual(owners.get("rec-anon"), {});
});

Deno.test("Broker owns a session by the identity enhanced authentication proved, not the CONNECT's user name", async () => {
  // A toy method: the Authentication Data is the identity, proved as such.
  const broker = await startBroker({
    enhancedAuth: (ctx) =>
      ctx.method !== "TOY" ? undefined : {
        step: (data) => ({
          reasonCode: ReasonCode.Success,
          username: new TextDecoder().decode(data),
        }),
      },
  });
  const port = broker.addr.port;
  const as = (identity: string, username: string) =>
    RawClient.connect(port, {
      protocolVersion: 5,
      clientId: "E",
      cleanStart: false,
      username,
      properties: {
        authenticationMethod: "TOY",
        authenticationData: new TextEncoder().encode(identity),
        sessionExpiryInterval: 60,
      },
    });
  try {
    const alice = await as("alice", "alice");
    assert.equal(alice.connack.reasonCode, 0);
    await alice.client.disconnect();
    // bob claims alice's user name in CONNECT; the method proves "bob".
    const bob = await as("bob", "alice");
    assert.equal(bob.connack.reasonCode, ReasonCode.NotAuthorized);
    await bob.client.close();
    const again = await as("alice", "whoever");
    assert.equal(again.connack.reasonCode, 0);
    assert.equal(again.connack.sessionPresent, true);
    await again.client.disconnect();
  } finally {
    await broker.close();
  }
});
