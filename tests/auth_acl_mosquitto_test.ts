/**
 * The same ACL file in Mosquitto and in Kite's `Acl`: publish (write) and
 * delivery (read) decisions must agree, except where Kite deviates on
 * purpose (documented in broker/acl.ts). Each decision is observed on a real
 * Mosquitto with a watcher client and an in-order sentinel message, so no
 * negative result depends on a timeout.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { Acl } from "../broker/acl.ts";
import type { Packet } from "../codec/packet.ts";
import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";
import { bytes, RawClient } from "./_helpers.ts";

const ACL = `
topic read public/#
topic write public/anon-inbox

user alice
topic readwrite alice/#
topic read shared/+/news
topic deny alice/secret

user bob
topic write bob/out
topic bob/both

user admin
topic readwrite #

pattern write devices/%c/status
pattern read users/%u/inbox/#
pattern readwrite %u/%c/private
pattern read sentinel/%c
pattern deny public/blocked/%c
`;

type Row = [
  op: "read" | "write",
  clientId: string,
  user: string | undefined,
  topic: string,
  /** Kite decides otherwise on purpose (see broker/acl.ts). */
  deviates?: true,
];

const ROWS: Row[] = [
  ["read", "r1", undefined, "public/news"],
  ["write", "w1", undefined, "public/news"],
  ["write", "w2", undefined, "public/anon-inbox"],
  ["read", "r2", "alice", "public/news"],
  ["read", "r3", "carol", "public/news"],
  ["read", "r4", "alice", "alice/notes"],
  ["write", "w3", "alice", "alice/notes/today"],
  ["write", "w4", "bob", "alice/notes"],
  ["write", "w5", "bob", "bob/out"],
  ["read", "r5", "bob", "bob/out"],
  ["read", "r6", "bob", "bob/both"],
  ["write", "w6", "bob", "bob/both"],
  ["read", "r7", "alice", "shared/x/news"],
  ["write", "w7", "alice", "shared/x/news"],
  ["write", "w8", "alice", "alice/secret"],
  ["read", "r8", "alice", "alice/secret"],
  ["write", "dev1", "bob", "devices/dev1/status"],
  ["write", "dev2", undefined, "devices/dev2/status"],
  ["write", "dev3", "bob", "devices/dev4/status"],
  ["read", "dev5", "bob", "devices/dev5/status"],
  ["read", "r9", "bob", "users/bob/inbox/1"],
  ["read", "r10", "bob", "users/alice/inbox/1"],
  ["write", "c9", "bob", "bob/c9/private"],
  ["write", "c10", "bob", "bob/c8/private"],
  // Deliberate deviations: in Kite a matching deny wins over every allow
  // (Mosquitto stops at the first allowing user rule before patterns), and
  // an id or user name with "/" does not take part in pattern substitution.
  ["read", "r11", undefined, "public/blocked/r11", true],
  ["write", "a/b", "bob", "devices/a/b/status", true],
];

/** Connects, failing loudly on a refused CONNACK. */
async function connect(
  port: number,
  clientId: string,
  username?: string,
): Promise<RawClient> {
  const { client, connack } = await RawClient.connect(port, {
    clientId,
    ...(username === undefined ? {} : { username }),
  });
  assert.equal(connack.reasonCode, 0, `CONNACK for ${clientId}`);
  return client;
}

const isPublish = (p: Packet) => p.type === "publish";

Deno.test({
  name:
    "Acl agrees with Mosquitto's acl_file on publish and delivery decisions",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    const dir = await Deno.makeTempDir();
    const aclPath = join(dir, "kite.acl");
    await Deno.writeTextFile(aclPath, ACL);
    // Mosquitto started as root drops to its own user before reading it.
    await Deno.chmod(dir, 0o755);
    await Deno.chmod(aclPath, 0o644);
    try {
      await using mosquitto = await startMosquitto({
        extraConfig: `acl_file ${aclPath}`,
      });
      const acl = await Acl.load(aclPath);
      const port = mosquitto.port;
      const admin = await connect(port, "admin", "admin");
      await admin.send({
        type: "subscribe",
        packetId: 1,
        subscriptions: [{ filter: "#", qos: 0 }],
      });
      await admin.expect("suback");
      /** Returns once everything routed to the admin before has arrived. */
      let sentinel = 0;
      const syncAdmin = async () => {
        const payload = `s${++sentinel}`;
        await admin.send({
          type: "publish",
          topic: "sentinel/admin",
          payload: bytes(payload),
          qos: 0,
          retain: false,
          dup: false,
        });
        await admin.next(
          (p) =>
            p.type === "publish" && p.topic === "sentinel/admin" &&
            new TextDecoder().decode(p.payload) === payload,
          2000,
          "the admin's sentinel",
        );
      };
      const disagreements: string[] = [];
      let n = 0;
      const seen = new Set<boolean>();
      for (const [op, clientId, user, topic, deviates] of ROWS) {
        n++;
        let mosquittoSays: boolean;
        if (op === "write") {
          await syncAdmin();
          admin.inbox.length = 0; // the admin's own echoes of earlier rows
          const c = await connect(port, clientId, user);
          await c.send({
            type: "publish",
            topic,
            payload: bytes(`m${n}`),
            qos: 1,
            retain: false,
            dup: false,
            packetId: 1,
          });
          await c.expect("puback"); // routed (or dropped) by now
          await syncAdmin();
          const i = admin.inbox.findIndex((p) =>
            p.type === "publish" && p.topic === topic
          );
          mosquittoSays = i >= 0;
          if (i >= 0) admin.inbox.splice(i, 1);
          await c.disconnect();
        } else {
          const c = await connect(port, clientId, user);
          await c.send({
            type: "subscribe",
            packetId: 1,
            subscriptions: [
              { filter: topic, qos: 0 },
              { filter: `sentinel/${clientId}`, qos: 0 },
            ],
          });
          await c.expect("suback");
          for (
            const [t, payload] of [[topic, `m${n}`], [
              `sentinel/${clientId}`,
              "s",
            ]]
          ) {
            await admin.send({
              type: "publish",
              topic: t!,
              payload: bytes(payload!),
              qos: 0,
              retain: false,
              dup: false,
            });
          }
          await c.expectPublish(`sentinel/${clientId}`);
          mosquittoSays = c.inbox.some((p) =>
            isPublish(p) && (p as { topic: string }).topic === topic
          );
          await c.disconnect();
        }
        const kiteSays = op === "write"
          ? acl.canWrite(clientId, user, topic)
          : acl.canRead(clientId, user, topic);
        seen.add(mosquittoSays);
        if ((kiteSays !== mosquittoSays) !== (deviates ?? false)) {
          disagreements.push(
            `${op} ${clientId}/${
              user ?? "-"
            } ${topic}: kite ${kiteSays}, mosquitto ${mosquittoSays}`,
          );
        }
      }
      await admin.disconnect();
      assert.deepEqual(disagreements, [], mosquitto.log());
      assert.deepEqual([...seen].sort(), [false, true]); // both outcomes seen
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
