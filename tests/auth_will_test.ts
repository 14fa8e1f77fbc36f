/**
 * A will is authorized like a PUBLISH by its client (issue 19, finding 3):
 * at CONNECT (refused: v5 CONNACK 0x87, 3.1.1 0x05, as Mosquitto 2 does),
 * and again when it is published, as the identity kept in the stored
 * session, also after a SIGKILL and restart or a graceful restart during a
 * v5 will delay. The restarts run `broker/main.ts` as a subprocess with a
 * password file, an ACL file and persistence, and tighten the ACL while
 * the broker is down.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { fileAuth } from "../broker/auth.ts";
import type { ConnectPacket, ProtocolVersion } from "../codec/packet.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { ACL, authFiles, passwordOf } from "./_auth_fixture.ts";
import { DenoProcess } from "./_subprocess.ts";
import {
  bytes,
  publishPacket,
  RawClient,
  startBroker,
  subscribeOne,
  text,
} from "./_helpers.ts";

const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;
const START_MS = 20_000;

/** The fixture ACL, plus alice's right to write `secret/#` (taken away later). */
const LOOSE_ACL = `${ACL}
user alice
topic write secret/#
`;

function login(
  port: number,
  version: ProtocolVersion,
  user: string,
  clientId: string,
  extra: Partial<ConnectPacket> = {},
) {
  return RawClient.connect(port, {
    protocolVersion: version,
    clientId,
    username: user,
    password: passwordOf(user),
    ...extra,
  });
}

Deno.test("Broker refuses a CONNECT whose will the ACL does not allow (v5 0x87, 3.1.1 0x05) and publishes no will", async () => {
  await using files = await authFiles();
  const auth = await fileAuth({ ...files.paths });
  const broker = await startBroker({
    authenticate: auth.authenticate,
    authorizePublish: auth.authorizePublish,
    authorizeSubscribe: auth.authorizeSubscribe,
  });
  try {
    const port = broker.addr.port;
    const admin = await login(port, 5, "admin", "admin");
    assert.deepEqual(await subscribeOne(admin.client, "#", 0), [0]);
    for (const [version, code] of [[4, 0x05], [5, 0x87]] as const) {
      const { client, connack } = await login(port, version, "alice", "a", {
        will: {
          topic: "secret/will",
          payload: bytes("leak"),
          qos: 0,
          retain: true,
        },
      });
      assert.equal(connack.reasonCode, code, `v${version}`);
      await client.waitClosed();
      await client.close();
    }
    // A will the ACL allows is accepted.
    const ok = await login(port, 5, "alice", "a", {
      will: {
        topic: "alice/will",
        payload: bytes("bye"),
        qos: 0,
        retain: false,
      },
    });
    assert.equal(ok.connack.reasonCode, 0);
    await ok.client.close(); // no DISCONNECT: the will is published
    const m = await admin.client.expectPublish("alice/will");
    assert.equal(text(m.payload), "bye");
    assert.ok(
      !admin.client.inbox.some((p) =>
        p.type === "publish" && p.topic === "secret/will"
      ),
    );
    assert.equal(broker.retainedCount, 0);
    await admin.client.disconnect();
  } finally {
    await broker.close();
  }
});

Deno.test("Broker asks authorizePublish about the will at CONNECT, as the client (async hook)", async () => {
  const asked: string[] = [];
  const broker = await startBroker({
    authorizePublish: (client, topic) => {
      asked.push(`${client.clientId}/${client.username}:${topic}`);
      return Promise.resolve(
        topic.startsWith("deny/") ? ReasonCode.NotAuthorized : 0,
      );
    },
  });
  try {
    const refused = await RawClient.connect(broker.addr.port, {
      protocolVersion: 5,
      clientId: "w",
      username: "u",
      will: { topic: "deny/x", payload: bytes("x"), qos: 1, retain: false },
    });
    assert.equal(refused.connack.reasonCode, ReasonCode.NotAuthorized);
    await refused.client.waitClosed();
    await refused.client.close();
    assert.deepEqual(asked, ["w/u:deny/x"]);
  } finally {
    await broker.close();
  }
});

/** A `broker/main.ts` subprocess. */
interface Kite {
  proc: DenoProcess;
  port: number;
}

/** Starts `broker/main.ts` with the fixture files and a KV store in `dir`. */
async function startKite(
  paths: { passwordFile: string; aclFile: string },
  dir: string,
  extra: string[] = [],
): Promise<Kite> {
  const proc = new DenoProcess([
    MAIN,
    "--host",
    "127.0.0.1",
    "--port",
    "0",
    "--sys-interval",
    "0",
    "--persistence-path",
    join(dir, "data"),
    "--password-file",
    paths.passwordFile,
    "--acl-file",
    paths.aclFile,
    ...extra,
  ]);
  try {
    const m = await proc.waitForOutput(
      /listening on mqtt:\/\/[^\s:]+:(\d+)/,
      "all",
      START_MS,
      "the broker's listening line",
    );
    return { proc, port: Number(m[1]) };
  } catch (e) {
    await proc.kill();
    throw e;
  }
}

/**
 * Connects `user` with a persistent session and a retained QoS 1 will on
 * `topic`, then publishes QoS 1 once: its PUBACK waits for the commit that
 * also covers the session record with the will.
 */
async function withDurableWill(
  port: number,
  user: string,
  topic: string,
  v5WillDelay?: number,
): Promise<RawClient> {
  const v5 = v5WillDelay !== undefined;
  const { client, connack } = await login(port, v5 ? 5 : 4, user, user, {
    cleanStart: false,
    will: {
      topic,
      payload: bytes(`${user}'s will`),
      qos: 1,
      retain: true,
      ...(v5 ? { properties: { willDelayInterval: v5WillDelay } } : {}),
    },
    ...(v5 ? { properties: { sessionExpiryInterval: 3600 } } : {}),
  });
  assert.equal(connack.reasonCode, 0, `${user} connects`);
  await client.send(
    publishPacket(`${user}/sync`, "x", { qos: 1, packetId: 1 }),
  );
  await client.expect("puback");
  return client;
}

/**
 * After a restart: admin subscribes to `+/will`, waits for bob's allowed
 * will (the control, due no earlier than alice's), then for a marker it
 * publishes itself; alice's will on `secret/will` must not have come,
 * neither live nor retained.
 */
async function assertOnlyBobsWill(port: number): Promise<void> {
  const admin = await login(port, 5, "admin", "admin");
  try {
    assert.deepEqual(await subscribeOne(admin.client, "+/will", 1), [1]);
    const control = await admin.client.expectPublish("ok/will", 15_000);
    assert.equal(text(control.payload), "bob's will");
    await admin.client.send(publishPacket("marker/will", "end"));
    await admin.client.expectPublish("marker/will");
    const leaked = admin.client.inbox.filter((p) =>
      p.type === "publish" && p.topic === "secret/will"
    );
    assert.deepEqual(leaked, [], "alice's will was published");
  } finally {
    await admin.client.disconnect();
  }
}

Deno.test({
  name:
    "main.ts after SIGKILL and restart authorizes a stored will as its session's owner",
  async fn() {
    await using files = await authFiles({ acl: LOOSE_ACL });
    let kite = await startKite(files.paths, files.dir);
    try {
      const alice = await withDurableWill(kite.port, "alice", "secret/will");
      const bob = await withDurableWill(kite.port, "bob", "ok/will");
      await kite.proc.kill(); // SIGKILL: both clients still connected
      await alice.close();
      await bob.close();
      // The ACL is tightened while the broker is down.
      await files.writeAcl(ACL);
      kite = await startKite(files.paths, files.dir);
      await assertOnlyBobsWill(kite.port);
    } finally {
      await kite.proc.kill();
    }
  },
});

Deno.test({
  name:
    "main.ts after a graceful restart during a v5 will delay authorizes the delayed will as its session's owner",
  async fn() {
    await using files = await authFiles({ acl: LOOSE_ACL });
    let kite = await startKite(files.paths, files.dir, [
      "--log-level",
      "debug",
    ]);
    try {
      const alice = await withDurableWill(kite.port, "alice", "secret/will", 1);
      const bob = await withDurableWill(kite.port, "bob", "ok/will", 1);
      // Ungraceful closes start the will delays; the broker logs each.
      await alice.close();
      await kite.proc.waitForOutput(
        /alice: connection closed by the client/,
        "all",
        5000,
        "alice's close",
      );
      await bob.close();
      await kite.proc.waitForOutput(
        /bob: connection closed by the client/,
        "all",
        5000,
        "bob's close",
      );
      kite.proc.child.kill("SIGTERM");
      assert.equal((await kite.proc.exit(10_000, "the exit")).code, 0);
      await files.writeAcl(ACL);
      kite = await startKite(files.paths, files.dir);
      await assertOnlyBobsWill(kite.port);
    } finally {
      await kite.proc.kill();
    }
  },
});
