/**
 * fileAuth() wired into a real Broker over TCP: the exact reason codes a
 * refused login and publish produce for MQTT 3.1.1 and 5.0, and a SUBSCRIBE
 * wider than the ACL accepted with only the readable topics delivered.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileAuth } from "../broker/auth.ts";
import { PasswordFile } from "../broker/password_file.ts";
import type { Broker } from "../broker/mod.ts";
import type { ProtocolVersion } from "../codec/packet.ts";
import { ConnackReturnCode, ReasonCode } from "../codec/reason_code.ts";
import { bytes, RawClient, startBroker } from "./_helpers.ts";

const ACL = `
user alice
topic readwrite alice/#
topic read news/#
user admin
topic readwrite #
`;

interface Setup {
  broker: Broker;
  port: number;
  [Symbol.asyncDispose](): Promise<void>;
}

async function setup(): Promise<Setup> {
  const dir = await Deno.makeTempDir();
  const passwordFile = join(dir, "kite.passwd");
  const aclFile = join(dir, "kite.acl");
  const file = new PasswordFile({ iterations: 1000 });
  await file.setUser("alice", "wonderland");
  await file.setUser("admin", "root-pw");
  await file.save(passwordFile);
  await Deno.writeTextFile(aclFile, ACL);
  const auth = await fileAuth({ passwordFile, aclFile, allowAnonymous: false });
  const broker = await startBroker({
    authenticate: auth.authenticate,
    authorizePublish: auth.authorizePublish,
    authorizeSubscribe: auth.authorizeSubscribe,
    authorizeRead: auth.authorizeRead!,
    authorizationEpoch: auth.authorizationEpoch,
  });
  return {
    broker,
    port: broker.addr.port,
    async [Symbol.asyncDispose]() {
      await broker.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

async function login(
  port: number,
  protocolVersion: ProtocolVersion,
  username?: string,
  password?: string,
) {
  return await RawClient.connect(port, {
    protocolVersion,
    clientId: `c-${crypto.randomUUID().slice(0, 8)}`,
    ...(username === undefined ? {} : { username }),
    ...(password === undefined ? {} : { password: bytes(password) }),
  });
}

const REFUSALS: [
  what: string,
  user: string | undefined,
  password: string | undefined,
  v4: number,
  v5: number,
][] = [
  [
    "a wrong password",
    "alice",
    "looking-glass",
    ConnackReturnCode.BadUserNameOrPassword,
    ReasonCode.BadUserNameOrPassword,
  ],
  [
    "an unknown user",
    "mallory",
    "wonderland",
    ConnackReturnCode.BadUserNameOrPassword,
    ReasonCode.BadUserNameOrPassword,
  ],
  [
    "an anonymous client",
    undefined,
    undefined,
    ConnackReturnCode.NotAuthorized,
    ReasonCode.NotAuthorized,
  ],
];

for (const [what, user, password, v4, v5] of REFUSALS) {
  Deno.test(`fileAuth() in a Broker refuses ${what} with CONNACK ${v4} (3.1.1) / 0x${v5.toString(16)} (5.0)`, async () => {
    await using s = await setup();
    for (const [version, code] of [[4, v4], [5, v5]] as const) {
      const { client, connack } = await login(s.port, version, user, password);
      assert.equal(connack.reasonCode, code, `v${version}`);
      await client.waitClosed();
      await client.close();
    }
  });
}

Deno.test("fileAuth() in a Broker accepts the right password (3.1.1 and 5.0)", async () => {
  await using s = await setup();
  for (const version of [4, 5] as const) {
    const { client, connack } = await login(
      s.port,
      version,
      "alice",
      "wonderland",
    );
    assert.equal(connack.reasonCode, 0);
    await client.disconnect();
  }
});

Deno.test("fileAuth() in a Broker refuses a publish outside the ACL: v5 PUBACK 0x87, not routed", async () => {
  await using s = await setup();
  const { client: watcher } = await login(s.port, 5, "admin", "root-pw");
  await watcher.send({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "#", qos: 1 }],
  });
  assert.deepEqual((await watcher.expect("suback")).reasonCodes, [1]);

  for (const version of [4, 5] as const) {
    const { client } = await login(s.port, version, "alice", "wonderland");
    await client.send({
      type: "publish",
      topic: "bob/inbox",
      payload: bytes("denied"),
      qos: 1,
      retain: false,
      dup: false,
      packetId: 7,
    });
    const ack = await client.expect("puback");
    assert.equal(ack.packetId, 7);
    // [MQTT-3.4.2]: 3.1.1 has no reason code; v5 carries 0x87.
    assert.equal(
      ack.reasonCode ?? 0,
      version === 5 ? ReasonCode.NotAuthorized : 0,
    );
    // QoS 0 is refused silently.
    await client.send({
      type: "publish",
      topic: "bob/inbox",
      payload: bytes("denied too"),
      qos: 0,
      retain: false,
      dup: false,
    });
    // An allowed publish is routed, and the refused ones were not.
    await client.send({
      type: "publish",
      topic: "alice/out",
      payload: bytes("ok"),
      qos: 0,
      retain: false,
      dup: false,
    });
    const got = await watcher.expectPublish();
    assert.equal(got.topic, "alice/out");
    await client.disconnect();
  }
  await watcher.expectNothing((p) => p.type === "publish");
  await watcher.disconnect();
});

Deno.test("fileAuth() in a Broker grants a subscribe wider than the ACL (3.1.1 and 5.0) and delivers only what the user may read", async () => {
  await using s = await setup();
  const { client: admin } = await login(s.port, 5, "admin", "root-pw");
  for (const version of [4, 5] as const) {
    const { client } = await login(s.port, version, "alice", "wonderland");
    await client.send({
      type: "subscribe",
      packetId: 3,
      subscriptions: [
        { filter: "alice/#", qos: 2 },
        { filter: "bob/#", qos: 1 },
        { filter: "news/+", qos: 1 },
        { filter: "#", qos: 0 },
      ],
    });
    // Granted, as Mosquitto 2 does: the ACL is applied to each delivery.
    const suback = await client.expect("suback");
    assert.deepEqual(suback.reasonCodes, [2, 1, 1, 0]);
    // Was: bob/# and # refused. The intent (nothing of bob's reaches alice)
    // is now checked on the deliveries; alice/ok comes last, in order.
    for (const topic of ["bob/inbox", "news/today", "other", "alice/ok"]) {
      await admin.send({
        type: "publish",
        topic,
        payload: bytes(topic),
        qos: 0,
        retain: false,
        dup: false,
      });
    }
    assert.equal((await client.expectPublish()).topic, "news/today");
    assert.equal((await client.expectPublish()).topic, "alice/ok");
    await client.expectNothing((p) => p.type === "publish");
    await client.disconnect();
  }
  await admin.disconnect();
});
