/**
 * Per-delivery read authorization (issue 19, finding 4): every message a
 * session is about to receive is checked against its owner's read rights
 * (`authorizeRead`, from `fileAuth`'s ACL), so a reloaded ACL applies at
 * once to live subscriptions, retained messages, queued messages and
 * sessions restored after a restart. A SUBSCRIBE wider than the rights is
 * granted, as in Mosquitto 2.
 *
 * Negative results never wait on a timeout alone: a message that must not
 * arrive is followed by an allowed one on the same path, and the allowed
 * one must come first.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { type FileAuth, fileAuth } from "../broker/auth.ts";
import type { Broker } from "../broker/mod.ts";
import { PasswordFile } from "../broker/password_file.ts";
import {
  READ_CACHE_ENTRIES,
  READ_CACHE_TOPIC_CHARS,
  ReadCache,
} from "../broker/_read_cache.ts";
import {
  type PublishEncoding,
  Session,
  type SessionLink,
} from "../broker/session.ts";
import { MemoryStore } from "../broker/store/memory.ts";
import type { ClientInfo, EnhancedAuthHook } from "../broker/hooks.ts";
import type {
  ConnectPacket,
  ProtocolVersion,
  PublishPacket,
  QoS,
} from "../codec/packet.ts";
import {
  bytes,
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
} from "./_helpers.ts";
import { startKiteProcess } from "./_kite_process.ts";

// ------------------------------------------------------------ ReadCache

const ALICE: ClientInfo = {
  clientId: "c1",
  username: "alice",
  protocolVersion: 5,
};

Deno.test("ReadCache.allows() asks the hook once per topic and epoch", () => {
  let calls = 0;
  let epoch = 1;
  let prefix = "a/";
  const cache = new ReadCache(
    (_c, topic) => (calls++, topic.startsWith(prefix)),
    () => epoch,
    ALICE,
  );
  assert.equal(cache.allows("a/1"), true);
  assert.equal(cache.allows("a/1"), true);
  assert.equal(cache.allows("b/1"), false);
  assert.equal(cache.allows("b/1"), false);
  assert.equal(calls, 2);
  prefix = "b/"; // rules changed but the epoch did not: answers kept
  assert.equal(cache.allows("a/1"), true);
  epoch++;
  assert.equal(cache.allows("a/1"), false);
  assert.equal(cache.allows("b/1"), true);
  assert.equal(calls, 4);
});

Deno.test("ReadCache.allows() without an epoch hook asks every time", () => {
  let calls = 0;
  const cache = new ReadCache(() => (calls++, true), undefined, ALICE);
  cache.allows("a");
  cache.allows("a");
  assert.equal(calls, 2);
  assert.equal(cache.size, 0);
});

Deno.test("ReadCache is bounded: cleared when full, long topics not kept", () => {
  const cache = new ReadCache(() => true, () => 1, ALICE);
  for (let i = 0; i < READ_CACHE_ENTRIES; i++) cache.allows(`t/${i}`);
  assert.equal(cache.size, READ_CACHE_ENTRIES);
  cache.allows("one/more");
  assert.equal(cache.size, 1);
  cache.allows("x".repeat(READ_CACHE_TOPIC_CHARS + 1));
  assert.equal(cache.size, 1);
});

Deno.test("ReadCache.allows() denies when the hook throws", () => {
  const cache = new ReadCache(
    () => {
      throw new Error("boom");
    },
    () => 1,
    ALICE,
  );
  assert.equal(cache.allows("a"), false);
});

// -------------------------------------------------------------- Session

class Link implements SessionLink {
  topics: string[] = [];
  maxPacketSize = Infinity;
  constructor(readonly version: ProtocolVersion, readonly sendWindow = 10) {}
  writable(): boolean {
    return true;
  }
  sendPublish(enc: PublishEncoding): void {
    // The topic follows the fixed header and its 2-byte length.
    const b = enc.bytes;
    let i = 1;
    while ((b[i]! & 0x80) !== 0) i++;
    const len = (b[i + 1]! << 8) | b[i + 2]!;
    this.topics.push(new TextDecoder().decode(b.subarray(i + 3, i + 3 + len)));
  }
  send(): void {}
}

function message(topic: string, qos: QoS = 1) {
  return { topic, payload: new Uint8Array(1), qos, retain: false };
}

Deno.test("Session.deliver() skips what the owner may not read; pump() re-checks queued messages at send time", () => {
  let allowed = "a/";
  let epoch = 1;
  const s = new Session("c1", 4, 60, {
    store: new MemoryStore(),
    maxQueuedMessages: 10,
    queueQos0Messages: false,
    authorizeRead: (c, topic) =>
      c.username === "alice" && topic.startsWith(allowed),
    authorizationEpoch: () => epoch,
  });
  s.username = "alice";
  s.deliver(message("a/1"), 1, false, undefined, undefined);
  s.deliver(message("b/1"), 1, false, undefined, undefined); // not queued
  assert.equal(s.queued, 1);
  allowed = "b/";
  epoch++; // the rules changed while it waited
  s.deliver(message("b/2"), 1, false, undefined, undefined);
  const link = new Link(4);
  s.attach(link);
  assert.deepEqual(link.topics, ["b/2"]);
  assert.equal(s.queued, 0);
});

Deno.test("Session.attach() does not resend an unacknowledged message the owner may no longer read", () => {
  let allowed = true;
  let epoch = 1;
  const s = new Session("c1", 4, 60, {
    store: new MemoryStore(),
    maxQueuedMessages: 10,
    queueQos0Messages: false,
    authorizeRead: () => allowed,
    authorizationEpoch: () => epoch,
  });
  const first = new Link(4);
  s.attach(first);
  s.deliver(message("a/1"), 1, false, undefined, undefined);
  assert.equal(s.inflightCount, 1);
  s.detach(Date.now());
  allowed = false;
  epoch++;
  const second = new Link(4);
  s.attach(second);
  assert.deepEqual(second.topics, []);
  assert.equal(s.inflightCount, 0);
});

Deno.test("Session.username: a new owner gets its own answers (no stale cache)", () => {
  const s = new Session("c1", 5, 0, {
    store: new MemoryStore(),
    maxQueuedMessages: 10,
    queueQos0Messages: false,
    authorizeRead: (c) => c.username === "admin",
    authorizationEpoch: () => 1,
  });
  s.username = "admin";
  assert.equal(s.mayRead("x"), true);
  s.username = "bob"; // e.g. a v5 re-authentication as another user
  assert.equal(s.mayRead("x"), false);
  assert.equal(s.username, "bob");
  const p = new Session("c2", 5, 60, {
    store: new MemoryStore(),
    maxQueuedMessages: 10,
    queueQos0Messages: false,
  });
  // The identity is stored as the session's owner (also what its will is
  // authorized as); a restart restores `username` from it (BrokerCore.load).
  p.owner = { username: "carol" };
  assert.deepEqual(p.record().owner, { username: "carol" });
});

// ------------------------------------------------- Broker, in-process

interface Setup extends AsyncDisposable {
  broker: Broker;
  port: number;
  auth: FileAuth;
  /** Rewrites the ACL file and reloads it, as SIGHUP does. */
  setAcl(text: string): Promise<void>;
}

/** A broker with fileAuth on an ACL file (user names taken as given). */
async function setup(
  acl: string,
  options: { maxQueuedMessages?: number } = {},
): Promise<Setup> {
  const dir = await Deno.makeTempDir();
  const aclFile = join(dir, "kite.acl");
  await Deno.writeTextFile(aclFile, acl);
  const auth = await fileAuth({ aclFile, allowAnonymous: true });
  const broker = await startBroker({
    allowAnonymous: true, // anonymous clients are part of these ACLs
    ...options,
    ...hooksOf(auth),
  });
  return {
    broker,
    port: broker.addr.port,
    auth,
    async setAcl(text: string) {
      await Deno.writeTextFile(aclFile, text);
      await auth.reload();
    },
    async [Symbol.asyncDispose]() {
      await broker.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function hooksOf(auth: FileAuth) {
  return {
    authenticate: auth.authenticate,
    authorizePublish: auth.authorizePublish,
    authorizeSubscribe: auth.authorizeSubscribe,
    authorizeRead: auth.authorizeRead!,
    authorizationEpoch: auth.authorizationEpoch,
  };
}

async function login(
  port: number,
  username: string | undefined,
  fields: Partial<ConnectPacket> & { protocolVersion?: ProtocolVersion } = {},
) {
  const { client, connack } = await RawClient.connect(port, {
    clientId: `${username ?? "anon"}-${crypto.randomUUID().slice(0, 8)}`,
    ...(username === undefined ? {} : { username }),
    ...fields,
  });
  assert.equal(connack.reasonCode, 0);
  return { client, connack };
}

/** Publishes QoS 1 and waits for the PUBACK (the message is routed). */
async function publish1(
  client: RawClient,
  topic: string,
  packetId: number,
  retain = false,
): Promise<void> {
  await client.send(
    publishPacket(topic, topic, { qos: 1, packetId, retain }),
  );
  const ack = await client.expect("puback");
  assert.equal(ack.packetId, packetId);
}

/** Receives PUBLISHes (acknowledging QoS 1) until `last`; their topics. */
async function receiveUntil(
  client: RawClient,
  last: string,
): Promise<string[]> {
  const topics: string[] = [];
  for (;;) {
    const p: PublishPacket = await client.expectPublish();
    if (p.qos === 1) {
      await client.send({ type: "puback", packetId: p.packetId! });
    }
    topics.push(p.topic);
    assert.equal(text(p.payload), p.topic);
    if (p.topic === last) return topics;
  }
}

const ACL = `
user alice
topic read alice/#
topic read news/#
user bob
topic read #
user admin
topic readwrite #
`;

Deno.test("fileAuth() + Broker: a Mosquitto ACL (readwrite # + deny test/nosubscribe) grants +/+ and withholds only the denied topic", async () => {
  await using s = await setup(
    "topic readwrite #\ntopic deny test/nosubscribe\n",
  );
  for (const protocolVersion of [4, 5] as const) {
    const { client } = await login(s.port, undefined, { protocolVersion });
    assert.deepEqual(await subscribeOne(client, "+/+", 1), [1]);
    // Published by the broker itself: the deny rule also forbids writing.
    s.broker.publish("test/nosubscribe", "test/nosubscribe");
    s.broker.publish("test/ok", "test/ok");
    assert.deepEqual(await receiveUntil(client, "test/ok"), ["test/ok"]);
    await client.disconnect();
  }
});

Deno.test("fileAuth() reload() that removes alice's read right stops deliveries to her existing subscription at once (and a re-grant resumes them)", async () => {
  await using s = await setup(ACL);
  const { client: admin } = await login(s.port, "admin", {
    protocolVersion: 5,
  });
  const { client: alice } = await login(s.port, "alice");
  assert.deepEqual(await subscribeOne(alice, "#", 1), [1]);
  await publish1(admin, "alice/1", 1);
  assert.deepEqual(await receiveUntil(alice, "alice/1"), ["alice/1"]);

  await s.setAcl(ACL.replace("topic read alice/#\n", ""));
  await publish1(admin, "alice/2", 2);
  await publish1(admin, "news/1", 3);
  assert.deepEqual(await receiveUntil(alice, "news/1"), ["news/1"]);

  await s.setAcl(ACL);
  await publish1(admin, "alice/3", 4);
  assert.deepEqual(await receiveUntil(alice, "alice/3"), ["alice/3"]);
  await alice.disconnect();
  await admin.disconnect();
});

Deno.test("fileAuth() + Broker: retained messages on SUBSCRIBE are filtered by the read rules v3:[MQTT-3.3.1-6]", async () => {
  await using s = await setup(ACL);
  const { client: admin } = await login(s.port, "admin");
  for (const topic of ["alice/r", "bob/r", "news/r", "zzz"]) {
    await publish1(admin, topic, 1, true);
  }
  const { client: alice } = await login(s.port, "alice");
  assert.deepEqual(await subscribeOne(alice, "#", 1), [1]);
  await publish1(admin, "alice/end", 2);
  const got = await receiveUntil(alice, "alice/end");
  assert.deepEqual(got.toSorted(), ["alice/end", "alice/r", "news/r"]);
  await alice.disconnect();
  await admin.disconnect();
});

Deno.test("fileAuth() + Broker: queued messages are checked again when sent, against the rules of that time", async () => {
  await using s = await setup(ACL);
  const { client: admin } = await login(s.port, "admin");
  const id = "alice-queue";
  const session = { clientId: id, cleanStart: false } as const;
  const { client: before } = await login(s.port, "alice", session);
  assert.deepEqual(await subscribeOne(before, "alice/#", 1), [1]);
  await before.disconnect();
  // Allowed when queued ...
  await publish1(admin, "alice/a", 1);
  await publish1(admin, "alice/b", 2);
  // ... but no longer when alice comes back for alice/a.
  await s.setAcl(ACL.replace("topic read alice/#", "topic read alice/b"));
  const { client: after, connack } = await login(s.port, "alice", session);
  assert.equal(connack.sessionPresent, true);
  assert.deepEqual(await receiveUntil(after, "alice/b"), ["alice/b"]);
  await after.disconnect();
  await admin.disconnect();
});

Deno.test("fileAuth() + Broker: what the owner may not read is not queued, so it cannot push readable messages out of a full queue", async () => {
  await using s = await setup(ACL, { maxQueuedMessages: 2 });
  const { client: admin } = await login(s.port, "admin");
  const id = "alice-full";
  const session = { clientId: id, cleanStart: false } as const;
  const { client: before } = await login(s.port, "alice", session);
  assert.deepEqual(await subscribeOne(before, "#", 1), [1]);
  await before.disconnect();
  await publish1(admin, "alice/1", 1);
  await publish1(admin, "alice/2", 2);
  // Oldest-first eviction would drop both of alice's were these queued.
  for (let i = 0; i < 5; i++) await publish1(admin, `bob/${i}`, 3 + i);
  const { client: after } = await login(s.port, "alice", session);
  assert.deepEqual(await receiveUntil(after, "alice/2"), [
    "alice/1",
    "alice/2",
  ]);
  await after.disconnect();
  await admin.disconnect();
});

Deno.test("fileAuth() + Broker: a shared group gives each message to a member that may read it", async () => {
  await using s = await setup(ACL);
  const { client: admin } = await login(s.port, "admin");
  const { client: alice } = await login(s.port, "alice");
  const { client: bob } = await login(s.port, "bob");
  assert.deepEqual(await subscribeOne(alice, "$share/g/jobs/#", 1), [1]);
  assert.deepEqual(await subscribeOne(bob, "$share/g/jobs/#", 1), [1]);
  // Round-robin would give alice every other one; she may read none.
  for (let i = 1; i <= 4; i++) await publish1(admin, `jobs/${i}`, i);
  assert.deepEqual(await receiveUntil(bob, "jobs/4"), [
    "jobs/1",
    "jobs/2",
    "jobs/3",
    "jobs/4",
  ]);
  await alice.disconnect();
  await bob.disconnect();
  await admin.disconnect();
});

Deno.test("Broker: after a v5 re-authentication as another user, deliveries are authorized for the new identity", async () => {
  // user name = what follows "good:" in the token
  const enhancedAuth: EnhancedAuthHook = (ctx) =>
    ctx.method !== "TOKEN" ? undefined : {
      step: (data) => ({
        reasonCode: 0,
        username: text(data ?? new Uint8Array()).slice(5),
      }),
    };
  const broker = await startBroker({
    enhancedAuth,
    authorizeRead: (c, topic) => topic.startsWith(`${c.username}/`),
    authorizationEpoch: () => 1,
  });
  const token = (user: string) => ({
    authenticationMethod: "TOKEN",
    authenticationData: bytes(`good:${user}`),
  });
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    properties: token("alice"),
  });
  assert.deepEqual(await subscribeOne(client, "#", 0), [0]);
  broker.publish("bob/1", "bob/1");
  broker.publish("alice/1", "alice/1");
  assert.deepEqual(await receiveUntil(client, "alice/1"), ["alice/1"]);
  await client.send({
    type: "auth",
    reasonCode: 0x19,
    properties: token("bob"),
  });
  assert.equal((await client.expect("auth")).reasonCode, 0);
  broker.publish("alice/2", "alice/2");
  broker.publish("bob/2", "bob/2");
  assert.deepEqual(await receiveUntil(client, "bob/2"), ["bob/2"]);
  await client.disconnect();
  await broker.close();
});

// ------------------------------------------- Broker subprocess, restart

Deno.test({
  name:
    "broker/main.ts: a session restored after a restart with a tightened ACL receives nothing it may not read; SIGHUP re-grants",
  ignore: Deno.build.os === "windows",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const passwordFile = join(dir, "kite.passwd");
      const aclFile = join(dir, "kite.acl");
      const file = new PasswordFile({ iterations: 1000 });
      await file.setUser("alice", "a-pw");
      await file.setUser("admin", "root-pw");
      await file.save(passwordFile);
      const acl = "user alice\ntopic read alice/#\ntopic read feed/#\n" +
        "user admin\ntopic readwrite #\n";
      await Deno.writeTextFile(aclFile, acl);
      const args = [
        "--enable-persistence",
        "--persistence-path",
        join(dir, "data"),
        "--password-file",
        passwordFile,
        "--acl-file",
        aclFile,
        "--no-allow-anonymous",
      ];
      const admin = (port: number) =>
        login(port, "admin", { password: bytes("root-pw") });
      const alice = (port: number) =>
        login(port, "alice", {
          password: bytes("a-pw"),
          clientId: "alice-dev",
          cleanStart: false,
        });

      // 1. alice subscribes to everything she may read, then leaves;
      // admin publishes what is queued for her.
      {
        await using kite = await startKiteProcess({ args });
        const { client: a } = await alice(kite.port);
        assert.deepEqual(await subscribeOne(a, "#", 1), [1]);
        await a.disconnect();
        const { client: root } = await admin(kite.port);
        await publish1(root, "feed/1", 1);
        await publish1(root, "alice/1", 2);
        await root.disconnect();
      }

      // 2. The ACL is tightened while the broker is stopped.
      await Deno.writeTextFile(aclFile, acl.replace("topic read feed/#\n", ""));
      await using kite = await startKiteProcess({ args });
      // While alice is still offline, the restored session is authorized
      // as alice (its stored owner): alice/2 is queued, feed/2 is not.
      const { client: root } = await admin(kite.port);
      await publish1(root, "feed/2", 1);
      await publish1(root, "alice/2", 2);
      const { client: a, connack } = await alice(kite.port);
      assert.equal(connack.sessionPresent, true);
      // The restored feed/1 (first in the queue) is withheld.
      assert.deepEqual(await receiveUntil(a, "alice/2"), [
        "alice/1",
        "alice/2",
      ]);
      // Live deliveries to the restored subscription too.
      await publish1(root, "feed/3", 3);
      await publish1(root, "alice/3", 4);
      assert.deepEqual(await receiveUntil(a, "alice/3"), ["alice/3"]);

      // 3. SIGHUP with the right given back: delivered again at once.
      await Deno.writeTextFile(aclFile, acl);
      const from = kite.log().length;
      kite.signal("SIGHUP");
      await kite.waitForLog(/files reloaded/, 5000, from);
      await publish1(root, "feed/4", 5);
      assert.deepEqual(await receiveUntil(a, "feed/4"), ["feed/4"]);
      await a.disconnect();
      await root.disconnect();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
