/**
 * Outgoing topic aliases hold a bounded amount of topic text per connection
 * (issue 19, finding 5), and nothing of it once the connection is closed.
 */

import assert from "node:assert/strict";
import { MemoryStore } from "../broker/mod.ts";
import { BrokerCore } from "../broker/core.ts";
import { Connection } from "../broker/connection/connection.ts";
import { encodePublish } from "../broker/delivery.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type { Duplex } from "../codec/duplex.ts";
import { encode } from "../codec/encode.ts";
import type { Packet, PublishPacket } from "../codec/packet.ts";
import {
  aliasedForm,
  OUTGOING_ALIAS_CHARS,
  OutgoingAliases,
} from "../codec/_publish_template.ts";
import { withTimeout } from "./_helpers.ts";

/** The topic text an alias table holds, in UTF-16 code units. */
function held(aliases: OutgoingAliases): number {
  let n = 0;
  for (const topic of aliases.keys()) n += topic.length;
  return n;
}

/** Distinct topics of about `len` characters. */
function topic(i: number, len: number): string {
  return `t/${i}/`.padEnd(len, "x");
}

Deno.test("aliasedForm() holds at most OUTGOING_ALIAS_CHARS of topic text; later topics go in full", () => {
  const aliases = new OutgoingAliases(65535);
  const len = 1000;
  let aliased = 0;
  for (let i = 0; i < 200; i++) {
    const enc = encodePublish(
      {
        topic: topic(i, len),
        payload: new Uint8Array(1),
        qos: 0,
        retain: false,
      },
      5,
      0,
      false,
      undefined,
      0,
    );
    if (aliasedForm(enc, aliases, Infinity) !== undefined) aliased++;
  }
  assert.ok(held(aliases) <= OUTGOING_ALIAS_CHARS, `${held(aliases)} held`);
  assert.equal(aliases.size, Math.floor(OUTGOING_ALIAS_CHARS / len));
  assert.equal(aliased, aliases.size);
  // A topic that has an alias keeps using it (never remapped).
  const first = encodePublish(
    { topic: topic(0, len), payload: new Uint8Array(1), qos: 0, retain: false },
    5,
    0,
    false,
    undefined,
    0,
  );
  const inUse = aliasedForm(first, aliases, Infinity);
  assert.ok(inUse !== undefined);
  assert.ok(inUse.bytes.length < first.bytes.length - len + 10);
});

/** A Duplex fed by the test; what the broker writes is decoded. */
class TestDuplex implements Duplex {
  readonly packets: Packet[] = [];
  #chunks: Uint8Array[] = [];
  #wake: (() => void) | undefined;
  #closed = false;
  #decoder = new PacketDecoder({ version: 5 });
  #onPacket: (() => void) | undefined;

  feed(p: Packet): void {
    this.#chunks.push(encode(p, { version: 5 }));
    this.#wake?.();
  }

  async read(): Promise<Uint8Array | null> {
    while (this.#chunks.length === 0) {
      if (this.#closed) return null;
      await new Promise<void>((r) => this.#wake = r);
    }
    return this.#chunks.shift()!;
  }

  write(data: Uint8Array): Promise<void> {
    this.#decoder.push(data.slice(), (p) => this.packets.push(p));
    this.#onPacket?.();
    return Promise.resolve();
  }

  close(): void {
    this.#closed = true;
    this.#wake?.();
  }

  /** Resolves once `n` packets of `type` were written. */
  waitFor(type: Packet["type"], n: number): Promise<void> {
    const count = () => this.packets.filter((p) => p.type === type).length;
    return withTimeout(
      new Promise<void>((resolve) => {
        const check = () => {
          if (count() >= n) {
            this.#onPacket = undefined;
            resolve();
          }
        };
        this.#onPacket = check;
        check();
      }),
      5000,
      `${n} ${type}`,
    );
  }
}

Deno.test("Connection bounds the topic text of its outgoing aliases and drops them on close", async () => {
  const core = new BrokerCore({ maxPacketSize: 1 << 20 }, new MemoryStore());
  const duplex = new TestDuplex();
  const c = new Connection(core, duplex);
  core.connections.add(c);
  duplex.feed({
    type: "connect",
    protocolVersion: 5,
    clientId: "a",
    cleanStart: true,
    keepAlive: 0,
    properties: { topicAliasMaximum: 65535 },
  });
  await duplex.waitFor("connack", 1);
  duplex.feed({
    type: "subscribe",
    packetId: 1,
    subscriptions: [{ filter: "#", qos: 0 }],
  });
  await duplex.waitFor("suback", 1);
  const n = 100;
  const len = 2000;
  for (let i = 0; i < n; i++) {
    core.publish({
      topic: topic(i, len),
      payload: new Uint8Array(1),
      qos: 0,
      retain: false,
    }, undefined);
  }
  core.publish({
    topic: topic(0, len),
    payload: new Uint8Array(1),
    qos: 0,
    retain: false,
  }, undefined);
  await duplex.waitFor("publish", n + 1);
  const pubs = duplex.packets.filter((p) =>
    p.type === "publish"
  ) as PublishPacket[];
  const setting = pubs.filter((p) =>
    p.topic !== "" && p.properties?.topicAlias !== undefined
  );
  const limit = Math.floor(OUTGOING_ALIAS_CHARS / len);
  assert.equal(setting.length, limit);
  assert.ok(held(c.aliasOut!) <= OUTGOING_ALIAS_CHARS);
  // Past the bound: in full, no alias.
  assert.equal(pubs[n - 1]!.topic, topic(n - 1, len));
  assert.equal(pubs[n - 1]!.properties?.topicAlias, undefined);
  // The first topic keeps its alias: sent with an empty topic.
  assert.equal(pubs[n]!.topic, "");
  assert.equal(pubs[n]!.properties?.topicAlias, 1);

  duplex.feed({ type: "disconnect", reasonCode: 0 });
  await c.closed;
  assert.equal(c.aliasOut, undefined);
  await core.store.close();
});
