/**
 * The shared `Dispatcher` test suite: `dispatcherSuite(name, make)`
 * registers the same `Deno.test` cases for every `Dispatcher`
 * implementation (the local `Router` now; a cluster dispatcher later).
 *
 * The subscribers are fakes (`FakeMember`, a `SharedMember` that records
 * what it is given and holds its QoS 1/2 messages as a session would), so
 * the cases check the interface only: who gets a message, at which QoS,
 * with which retain flag, subscription identifiers and shared group, and
 * what `memberLeft` moves. End-to-end behaviour over sockets is in
 * shared_subscription_test.ts and the broker_*_test.ts files.
 *
 * @module
 */

import assert from "node:assert/strict";
import type { ProtocolVersion, QoS } from "../codec/packet.ts";
import { parseSharedSubscription } from "../codec/topic.ts";
import type { FanoutCache, OutgoingMessage } from "../broker/delivery.ts";
import type {
  Dispatcher,
  SharedFilter,
  SharedMember,
} from "../broker/dispatcher.ts";
import type {
  StoredMessage,
  StoredSubscription,
} from "../broker/store/store.ts";

/** What a fake subscriber was given by one `deliver` call. */
export interface Delivery {
  message: StoredMessage;
  qos: QoS;
  retain: boolean;
  subIds: number[] | undefined;
  group: object | undefined;
}

/**
 * A `SharedMember` that records its deliveries. Like a session, it keeps
 * each QoS 1/2 delivery: "sent" when it had room, else "queued"; QoS 0 is
 * not kept. `takeShared` follows the interface: queued messages and QoS 1
 * in flight of the groups `canMove` accepts; never a QoS 2 in flight.
 */
export class FakeMember implements SharedMember {
  online = true;
  /** `hasRoom()` while online (receive window). */
  room = true;
  /** `writable()` while online (output buffer). */
  canWrite = true;
  expiryInterval = 0;
  readonly deliveries: Delivery[] = [];
  /** QoS 1/2 messages it holds (queued, or sent and not completed). */
  readonly held: OutgoingMessage[] = [];
  /** What `canMove` answered during `takeShared`, per group asked. */
  readonly asked: [group: object, movable: boolean][] = [];

  constructor(
    readonly clientId: string,
    readonly protocolVersion: ProtocolVersion = 5,
  ) {}

  get queued(): number {
    return this.held.filter((m) => m.state === "queued").length;
  }

  get inflightCount(): number {
    return this.held.filter((m) => m.state !== "queued").length;
  }

  hasRoom(): boolean {
    return this.online && this.room;
  }

  writable(): boolean {
    return this.online && this.canWrite;
  }

  deliver(
    message: StoredMessage,
    qos: QoS,
    retain: boolean,
    subIds: number[] | undefined,
    _cache: FanoutCache | undefined,
    group?: object,
  ): void {
    this.deliveries.push({ message, qos, retain, subIds, group });
    if (qos === 0) return;
    this.held.push({
      seq: this.held.length + 1,
      packetId: 0,
      state: this.hasRoom() ? "sent" : "queued",
      qos,
      retain,
      subIds,
      message,
      enc: undefined,
      group,
    });
  }

  takeShared(canMove: (group: object) => boolean): OutgoingMessage[] {
    const taken: OutgoingMessage[] = [];
    const kept: OutgoingMessage[] = [];
    for (const m of this.held) {
      const g = m.group;
      const mayGo = m.state === "queued" || (m.state === "sent" && m.qos === 1);
      if (g !== undefined && mayGo) {
        const movable = canMove(g);
        this.asked.push([g, movable]);
        if (movable) {
          taken.push(m);
          continue;
        }
      }
      kept.push(m);
    }
    this.held.splice(0, this.held.length, ...kept);
    return taken;
  }

  /** The payloads of its deliveries, as text. */
  get got(): string[] {
    return this.deliveries.map((d) => dec.decode(d.message.payload));
  }

  /** The payloads of the messages it holds, as text. */
  get holding(): string[] {
    return this.held.map((m) => dec.decode(m.message.payload));
  }
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A message on `topic` (payload `text`, default the topic). */
function msg(
  topic: string,
  qos: QoS = 0,
  extra: Partial<StoredMessage> & { text?: string } = {},
): StoredMessage {
  const { text, ...rest } = extra;
  return {
    topic,
    payload: enc.encode(text ?? topic),
    qos,
    retain: false,
    ...rest,
  };
}

/** A subscription. */
function sub(
  filter: string,
  qos: QoS = 0,
  extra: Partial<StoredSubscription> = {},
): StoredSubscription {
  return { filter, qos, ...extra };
}

/** The parsed `$share/{group}/{filter}` of a shared filter. */
function shared(filter: string): SharedFilter {
  const s = parseSharedSubscription(filter);
  if (s === undefined) throw new Error(`${filter} is not a shared filter`);
  return s;
}

/** Subscribes `m` to the shared filter `filter` ($share/...). */
function join(
  d: Dispatcher,
  m: FakeMember,
  filter: string,
  qos: QoS = 2,
  extra: Partial<StoredSubscription> = {},
): void {
  d.subscribe(m, sub(filter, qos, extra), shared(filter));
}

/** Who got something, in delivery order across `members`. */
function recipients(members: FakeMember[], deliveries: number): string[] {
  const seq: { id: string; at: number }[] = [];
  for (const m of members) {
    m.deliveries.forEach((_, i) => seq.push({ id: m.clientId, at: i }));
  }
  assert.equal(seq.length, deliveries, "deliveries in all");
  return seq.map((s) => s.id);
}

/**
 * Registers the shared cases for one implementation. `make(maxQos)` returns
 * an empty dispatcher that caps every delivery at `maxQos`. `ignore` names
 * cases (by the text after `${name}.`) the implementation is known to fail:
 * they are registered as ignored, so that they show in the report.
 */
export function dispatcherSuite(
  name: string,
  make: (maxQos: QoS) => Dispatcher,
  ignore: readonly string[] = [],
): void {
  const cases = new Set<string>();
  const test = (what: string, fn: (d: Dispatcher) => void, maxQos: QoS = 2) => {
    cases.add(what);
    Deno.test({
      name: `${name}.${what}`,
      ignore: ignore.includes(what),
      fn: () => fn(make(maxQos)),
    });
  };

  test("publish() delivers to an exact filter only its own topic", (d) => {
    const a = new FakeMember("a");
    d.subscribe(a, sub("a/b"));
    for (const topic of ["a/c", "a/b/c", "a", "a/b/", "/a/b", "A/b"]) {
      assert.equal(d.publish(msg(topic), undefined), 0, topic);
    }
    assert.equal(d.publish(msg("a/b"), undefined), 1);
    assert.deepEqual(a.got, ["a/b"]);
  });

  test('publish() matches "+" for one level and "#" for any number, the parent level included (4.7.1.2)', (d) => {
    const members = {
      plus: new FakeMember("plus"), // a/+
      hash: new FakeMember("hash"), // a/#
      inner: new FakeMember("inner"), // +/+/c
      all: new FakeMember("all"), // #
    };
    d.subscribe(members.plus, sub("a/+"));
    d.subscribe(members.hash, sub("a/#"));
    d.subscribe(members.inner, sub("+/+/c"));
    d.subscribe(members.all, sub("#"));
    const table: [topic: string, expected: (keyof typeof members)[]][] = [
      ["a", ["hash", "all"]],
      ["a/b", ["plus", "hash", "all"]],
      ["a/", ["plus", "hash", "all"]], // an empty level is a level
      ["a/b/c", ["hash", "inner", "all"]],
      ["a//c", ["hash", "inner", "all"]],
      ["x/y/c", ["inner", "all"]],
      ["x/y/c/d", ["all"]],
    ];
    for (const [topic, expected] of table) {
      const before = Object.values(members).map((m) => m.deliveries.length);
      const n = d.publish(msg(topic), undefined);
      const got = Object.entries(members)
        .filter(([, m], i) => m.deliveries.length > before[i]!)
        .map(([k]) => k);
      assert.deepEqual(got, expected, topic);
      assert.equal(n, expected.length, `${topic}: publish() count`);
    }
  });

  test("publish() does not match $-topics with a leading wildcard [MQTT-4.7.2-1]", (d) => {
    const hash = new FakeMember("hash");
    const plus = new FakeMember("plus");
    const share = new FakeMember("share");
    const sys = new FakeMember("sys");
    const sysPlus = new FakeMember("sysPlus");
    d.subscribe(hash, sub("#"));
    d.subscribe(plus, sub("+/broker/load"));
    join(d, share, "$share/g/#");
    d.subscribe(sys, sub("$SYS/#"));
    d.subscribe(sysPlus, sub("$SYS/+/load"));
    assert.equal(d.publish(msg("$SYS/broker/load"), undefined), 2);
    assert.deepEqual(hash.got, []);
    assert.deepEqual(plus.got, []);
    assert.deepEqual(share.got, []);
    assert.deepEqual(sys.got, ["$SYS/broker/load"]);
    assert.deepEqual(sysPlus.got, ["$SYS/broker/load"]);
    // "$" elsewhere than at the start of the first level is an ordinary
    // character.
    assert.equal(d.publish(msg("x/broker/load"), undefined), 3);
  });

  test("publish() delivers once to a subscriber with overlapping subscriptions, at the highest granted QoS, with every subscription identifier [MQTT-3.3.4-2] [MQTT-3.3.4-3] [MQTT-3.3.4-4]", (d) => {
    const a = new FakeMember("a");
    d.subscribe(a, sub("a/+", 0, { subscriptionIdentifier: 1 }));
    d.subscribe(a, sub("a/#", 2, { subscriptionIdentifier: 2 }));
    d.subscribe(a, sub("a/b", 1)); // no identifier
    d.subscribe(a, sub("z/#", 2, { subscriptionIdentifier: 9 })); // no match
    assert.equal(d.publish(msg("a/b", 2), undefined), 1);
    assert.equal(d.publish(msg("a/b", 1), undefined), 1);
    assert.equal(d.publish(msg("a/c", 2), undefined), 1);
    assert.deepEqual(a.deliveries.map((x) => x.qos), [2, 1, 2]);
    // The subscriber may keep the identifiers (a session queues them): they
    // stay valid after later publishes.
    const ids = a.deliveries.map((x) => [...(x.subIds ?? [])].sort());
    assert.deepEqual(ids, [[1, 2], [1, 2], [1, 2]]);
    // Without identifiers: none, still one delivery.
    const b = new FakeMember("b");
    d.subscribe(b, sub("b/+", 1));
    d.subscribe(b, sub("b/#", 0));
    d.publish(msg("b/x", 2), undefined);
    assert.equal(b.deliveries.length, 1);
    assert.equal(b.deliveries[0]!.subIds, undefined);
    assert.equal(b.deliveries[0]!.qos, 1);
  });

  test("publish() delivers at min(message QoS, granted QoS) [MQTT-3.8.4-8]", (d) => {
    const members = ([0, 1, 2] as const).map((granted) => {
      const m = new FakeMember(`g${granted}`);
      d.subscribe(m, sub("q", granted));
      return m;
    });
    for (const qos of [0, 1, 2] as const) {
      assert.equal(d.publish(msg("q", qos), undefined), 3);
    }
    assert.deepEqual(
      members.map((m) => m.deliveries.map((x) => x.qos)),
      [[0, 0, 0], [0, 1, 1], [0, 1, 2]],
    );
  });

  test("publish() never delivers above the dispatcher's maximum QoS", (d) => {
    const a = new FakeMember("a");
    const s = new FakeMember("s");
    d.subscribe(a, sub("q", 2));
    join(d, s, "$share/g/q", 2);
    d.publish(msg("q", 2), undefined);
    d.publish(msg("q", 0), undefined);
    assert.deepEqual(a.deliveries.map((x) => x.qos), [1, 0]);
    assert.deepEqual(s.deliveries.map((x) => x.qos), [1, 0]);
  }, 1);

  test("publish() skips a No Local subscription for its own client's messages v5:[MQTT-3.8.3-3]", (d) => {
    const a = new FakeMember("a");
    d.subscribe(a, sub("t", 1, { noLocal: true }));
    assert.equal(d.publish(msg("t", 1, { text: "own" }), "a"), 0);
    assert.equal(d.publish(msg("t", 1, { text: "other" }), "b"), 1);
    assert.equal(d.publish(msg("t", 1, { text: "broker" }), undefined), 1);
    assert.deepEqual(a.got, ["other", "broker"]);
    // An overlapping subscription without No Local still matches, alone.
    d.subscribe(a, sub("#", 0, { subscriptionIdentifier: 5 }));
    assert.equal(d.publish(msg("t", 1, { text: "own again" }), "a"), 1);
    const last = a.deliveries.at(-1)!;
    assert.deepEqual([last.qos, last.subIds], [0, [5]]);
  });

  test("publish() keeps the retain flag only for Retain As Published subscriptions of v5 subscribers", (d) => {
    const rap5 = new FakeMember("rap5", 5);
    const plain5 = new FakeMember("plain5", 5);
    const rap4 = new FakeMember("rap4", 4);
    const overlap = new FakeMember("overlap", 5);
    d.subscribe(rap5, sub("r", 1, { retainAsPublished: true }));
    d.subscribe(plain5, sub("r", 1));
    d.subscribe(rap4, sub("r", 1, { retainAsPublished: true }));
    d.subscribe(overlap, sub("r", 1));
    d.subscribe(overlap, sub("#", 1, { retainAsPublished: true }));
    const sharedRap = new FakeMember("sharedRap", 5);
    join(d, sharedRap, "$share/g/r", 1, { retainAsPublished: true });
    const sharedPlain = new FakeMember("sharedPlain", 5);
    join(d, sharedPlain, "$share/h/r", 1);
    d.publish(msg("r", 1, { retain: true }), undefined);
    d.publish(msg("r", 1, { retain: false }), undefined);
    const flags = (m: FakeMember) => m.deliveries.map((x) => x.retain);
    assert.deepEqual(flags(rap5), [true, false]);
    assert.deepEqual(flags(plain5), [false, false]);
    assert.deepEqual(flags(rap4), [false, false]);
    assert.deepEqual(flags(overlap), [true, false]);
    assert.deepEqual(flags(sharedRap), [true, false]);
    assert.deepEqual(flags(sharedPlain), [false, false]);
  });

  test("publish() delivers to offline subscribers too (their sessions queue)", (d) => {
    const a = new FakeMember("a");
    a.online = false;
    a.room = false;
    a.canWrite = false;
    d.subscribe(a, sub("t", 1));
    assert.equal(d.publish(msg("t", 1), undefined), 1);
    assert.deepEqual(a.got, ["t"]);
  });

  test("publish() passes the shared group only for deliveries through a group, the same object each time", (d) => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    d.subscribe(a, sub("t", 1));
    join(d, a, "$share/g1/t", 1);
    join(d, b, "$share/g2/t", 1);
    assert.equal(d.publish(msg("t", 1), undefined), 3);
    assert.equal(d.publish(msg("t", 1), undefined), 3);
    const direct = a.deliveries.filter((x) => x.group === undefined);
    const g1 = a.deliveries.filter((x) => x.group !== undefined);
    assert.equal(direct.length, 2);
    assert.equal(g1.length, 2);
    assert.ok(g1[0]!.group === g1[1]!.group);
    const g2 = b.deliveries.map((x) => x.group);
    assert.equal(g2.length, 2);
    assert.ok(g2[0] !== undefined && g2[0] === g2[1]);
    assert.notEqual(g1[0]!.group, g2[0], "one object per group");
  });

  test("publish() gives each message to exactly one member of each matching shared subscription (share name and filter) (4.8.2)", (d) => {
    const [a, b, c, e] = ["a", "b", "c", "e"].map((id) => new FakeMember(id));
    join(d, a!, "$share/g1/jobs/+");
    join(d, b!, "$share/g1/jobs/+");
    join(d, c!, "$share/g2/jobs/+");
    join(d, e!, "$share/g1/jobs/#"); // same share name, another filter
    for (let i = 0; i < 10; i++) {
      assert.equal(d.publish(msg("jobs/x", 1, { text: `${i}` }), "p"), 3);
    }
    assert.equal(a!.deliveries.length + b!.deliveries.length, 10);
    assert.ok(a!.deliveries.length > 0 && b!.deliveries.length > 0);
    assert.equal(c!.deliveries.length, 10);
    assert.equal(e!.deliveries.length, 10);
    assert.equal(d.publish(msg("other"), "p"), 0);
  });

  test("publish() round-robins a shared group among members with room", (d) => {
    const ms = ["a", "b", "c"].map((id) => new FakeMember(id));
    for (const m of ms) join(d, m, "$share/g/t", 1);
    for (let i = 0; i < 9; i++) d.publish(msg("t", 1, { text: `${i}` }), "p");
    const order = ms.flatMap((m) =>
      m.got.map((t) => ({ id: m.clientId, i: Number(t) }))
    ).sort((x, y) => x.i - y.i).map((x) => x.id);
    assert.equal(new Set(order.slice(0, 3)).size, 3, `${order}`);
    for (let i = 3; i < 9; i++) {
      assert.equal(order[i], order[i % 3], `${order}`);
    }
  });

  test("publish() skips shared members without room: receive window for QoS 1/2, output buffer for QoS 0", (d) => {
    const [a, b, c] = ["a", "b", "c"].map((id) => new FakeMember(id));
    for (const m of [a!, b!, c!]) join(d, m, "$share/g/t", 2);
    b!.room = false; // full receive window, output buffer fine
    for (let i = 0; i < 6; i++) d.publish(msg("t", 1), "p");
    assert.deepEqual(
      [a, b, c].map((m) => m!.deliveries.length),
      [3, 0, 3],
      "QoS 1",
    );
    b!.room = true;
    b!.canWrite = false; // output buffer full, window fine
    c!.canWrite = false;
    for (let i = 0; i < 4; i++) d.publish(msg("t", 0), "p");
    assert.deepEqual(
      [a, b, c].map((m) => m!.deliveries.length),
      [7, 0, 3],
      "QoS 0",
    );
  });

  test("publish() gives a shared message to an online member even when none has room, and to one member even when none is online", (d) => {
    const ms = ["a", "b", "c"].map((id) => new FakeMember(id));
    for (const m of ms) join(d, m, "$share/g/t", 1);
    ms[0]!.online = false;
    for (const m of ms) m.room = false;
    for (let i = 0; i < 4; i++) {
      assert.equal(d.publish(msg("t", 1), "p"), 1);
    }
    assert.equal(ms[0]!.deliveries.length, 0, "offline member skipped");
    assert.equal(ms[1]!.deliveries.length + ms[2]!.deliveries.length, 4);
    for (const m of ms) m.online = false;
    for (let i = 0; i < 3; i++) {
      assert.equal(d.publish(msg("t", 1), "p"), 1);
    }
    recipients(ms, 7);
  });

  test("publish() skips a shared member whose No Local subscription matches the publisher", (d) => {
    const [a, b] = ["a", "b"].map((id) => new FakeMember(id));
    join(d, a!, "$share/g/t", 1, { noLocal: true });
    join(d, b!, "$share/g/t", 1);
    for (let i = 0; i < 4; i++) d.publish(msg("t", 1), "a");
    assert.deepEqual([a!.deliveries.length, b!.deliveries.length], [0, 4]);
    for (let i = 0; i < 4; i++) d.publish(msg("t", 1), "b");
    assert.equal(a!.deliveries.length, 2, "round-robin again for others");
  });

  test(
    "publish() counts only the deliveries made (a shared group whose only member is No Local for the publisher)",
    (d) => {
      const a = new FakeMember("a");
      join(d, a, "$share/g/t", 1, { noLocal: true });
      assert.equal(d.publish(msg("t", 1), "a"), 0);
      assert.equal(a.deliveries.length, 0);
    },
  );

  test("publish() gives a shared member its own granted QoS and subscription identifier", (d) => {
    const [a, b] = ["a", "b"].map((id) => new FakeMember(id));
    join(d, a!, "$share/g/t", 0, { subscriptionIdentifier: 3 });
    join(d, b!, "$share/g/t", 2, { subscriptionIdentifier: 4 });
    for (let i = 0; i < 4; i++) d.publish(msg("t", 2), "p");
    assert.deepEqual(a!.deliveries.map((x) => [x.qos, x.subIds]), [
      [0, [3]],
      [0, [3]],
    ]);
    assert.deepEqual(b!.deliveries.map((x) => [x.qos, x.subIds]), [
      [2, [4]],
      [2, [4]],
    ]);
  });

  test("unsubscribe() removes one subscription and says whether it existed", (d) => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    d.subscribe(a, sub("t"));
    d.subscribe(a, sub("u"));
    d.subscribe(b, sub("t"));
    join(d, a, "$share/g/t");
    join(d, b, "$share/g/t");
    assert.equal(d.size, 5);
    assert.equal(d.unsubscribe(a, "t"), true);
    assert.equal(d.unsubscribe(a, "t"), false, "twice");
    assert.equal(d.unsubscribe(a, "nope"), false);
    assert.equal(d.unsubscribe(b, "u"), false, "another client's filter");
    assert.equal(d.size, 4);
    assert.equal(d.publish(msg("t"), undefined), 2); // b, and group g
    assert.equal(a.got.length + b.got.length, 2);
    assert.ok(a.deliveries.every((x) => x.group !== undefined), "a's t gone");
    assert.equal(d.publish(msg("u"), undefined), 1);
    assert.equal(d.unsubscribe(a, "$share/g/t", shared("$share/g/t")), true);
    assert.equal(
      d.unsubscribe(a, "$share/g/t", shared("$share/g/t")),
      false,
      "twice",
    );
    assert.equal(
      d.unsubscribe(a, "$share/h/t", shared("$share/h/t")),
      false,
      "no such group",
    );
    assert.equal(d.size, 3);
    for (let i = 0; i < 3; i++) d.publish(msg("t", 0, { text: "g" }), "p");
    assert.equal(a.got.filter((t) => t === "g").length, 0, "left the group");
    assert.equal(d.unsubscribe(b, "$share/g/t", shared("$share/g/t")), true);
    assert.equal(d.unsubscribe(b, "t"), true);
    assert.equal(d.unsubscribe(a, "u"), true);
    assert.equal(d.size, 0);
    assert.equal(d.publish(msg("t"), undefined), 0);
    // An emptied group can be joined again.
    join(d, a, "$share/g/t");
    assert.equal(d.publish(msg("t"), undefined), 1);
  });

  test("size counts subscriptions, shared ones included, and not replacements", (d) => {
    assert.equal(d.size, 0);
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    d.subscribe(a, sub("x/+"));
    d.subscribe(a, sub("x/#"));
    d.subscribe(b, sub("x/+"));
    join(d, a, "$share/g/x");
    join(d, b, "$share/g/x");
    join(d, b, "$share/h/x");
    assert.equal(d.size, 6);
    d.subscribe(a, sub("x/+", 2));
    join(d, b, "$share/g/x", 0);
    assert.equal(d.size, 6);
  });

  test("subscribe() replaces the subscription of a client to the same filter", (d) => {
    const a = new FakeMember("a");
    d.subscribe(a, sub("t", 0, { subscriptionIdentifier: 1 }));
    d.subscribe(a, sub("t", 2, { subscriptionIdentifier: 2 }));
    assert.equal(d.size, 1);
    assert.equal(d.publish(msg("t", 2), undefined), 1);
    assert.deepEqual(a.deliveries.map((x) => [x.qos, x.subIds]), [[2, [2]]]);
    // Options go too: No Local set, then cleared.
    d.subscribe(a, sub("t", 1, { noLocal: true }));
    assert.equal(d.publish(msg("t", 1), "a"), 0);
    d.subscribe(a, sub("t", 1));
    assert.equal(d.publish(msg("t", 1), "a"), 1);
    assert.equal(a.deliveries.at(-1)!.subIds, undefined);
    // A shared member's subscription too.
    join(d, a, "$share/g/s", 0);
    join(d, a, "$share/g/s", 1, { subscriptionIdentifier: 7 });
    assert.equal(d.size, 2);
    d.publish(msg("s", 2), undefined);
    assert.deepEqual(a.deliveries.at(-1)!.qos, 1);
    assert.deepEqual(a.deliveries.at(-1)!.subIds, [7]);
  });

  test("subscribe() with a new subscriber object for a client id takes over that client's subscription", (d) => {
    // A session replaced (clean start): the old object must get nothing more.
    const old = new FakeMember("c");
    const fresh = new FakeMember("c");
    d.subscribe(old, sub("t", 1));
    join(d, old, "$share/g/t", 1);
    d.subscribe(fresh, sub("t", 1));
    join(d, fresh, "$share/g/t", 1);
    assert.equal(d.size, 2);
    assert.equal(d.publish(msg("t", 1), undefined), 2);
    assert.equal(old.deliveries.length, 0);
    assert.equal(fresh.deliveries.length, 2);
    assert.equal(d.unsubscribe(fresh, "t"), true);
    assert.equal(
      d.unsubscribe(fresh, "$share/g/t", shared("$share/g/t")),
      true,
    );
    assert.equal(d.size, 0);
  });

  test("memberLeft() hands queued and unacknowledged QoS 1 messages to another online member and keeps a QoS 2 in flight [MQTT-4.8.2-4]", (d) => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    join(d, a, "$share/g/t", 2);
    join(d, b, "$share/g/t", 1); // b was granted QoS 1
    b.online = false;
    d.publish(msg("t", 1, { text: "q1 sent" }), "p");
    d.publish(msg("t", 2, { text: "q2 sent" }), "p");
    a.room = false;
    d.publish(msg("t", 1, { text: "q1 queued" }), "p");
    d.publish(msg("t", 2, { text: "q2 queued" }), "p");
    assert.deepEqual(a.holding, [
      "q1 sent",
      "q2 sent",
      "q1 queued",
      "q2 queued",
    ]);
    assert.deepEqual([a.inflightCount, a.queued], [2, 2]);
    // a's connection ends while b is back.
    b.online = true;
    a.online = false;
    d.memberLeft(a);
    assert.deepEqual(a.holding, ["q2 sent"], "QoS 2 in flight stays");
    assert.deepEqual(b.got, ["q1 sent", "q1 queued", "q2 queued"]);
    assert.deepEqual(b.deliveries.map((x) => x.qos), [1, 1, 1], "b's grant");
    const group = a.deliveries[0]!.group;
    assert.ok(group !== undefined);
    assert.ok(b.deliveries.every((x) => x.group === group));
    assert.equal(a.deliveries.length, 4, "nothing new for the leaving member");
  });

  test("memberLeft() moves nothing when no other member of the group is online", (d) => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    join(d, a, "$share/g/t", 1);
    join(d, b, "$share/g/t", 1);
    b.online = false;
    d.publish(msg("t", 1, { text: "sent" }), "p");
    a.room = false;
    d.publish(msg("t", 1, { text: "queued" }), "p");
    a.online = false;
    d.memberLeft(a);
    assert.deepEqual(a.holding, ["sent", "queued"]);
    assert.deepEqual(b.got, []);
    assert.ok(a.asked.every(([, movable]) => !movable));
  });

  test("memberLeft() moves a message only within the group it came through, never a non-shared one", (d) => {
    const a = new FakeMember("a");
    const b = new FakeMember("b"); // in g1, online
    const c = new FakeMember("c"); // in g2, offline
    d.subscribe(a, sub("t", 1));
    join(d, a, "$share/g1/t", 1);
    join(d, a, "$share/g2/t", 1);
    join(d, b, "$share/g1/t", 1);
    join(d, c, "$share/g2/t", 1);
    b.online = false;
    c.online = false;
    d.publish(msg("t", 1), "p");
    assert.equal(a.deliveries.length, 3, "direct, g1, g2");
    b.online = true;
    a.online = false;
    d.memberLeft(a);
    assert.equal(b.deliveries.length, 1, "g1's message");
    assert.equal(c.deliveries.length, 0);
    assert.deepEqual(
      a.held.map((m) => m.group === undefined ? "direct" : "g2"),
      ["direct", "g2"],
    );
  });

  test("memberLeft() of a member that holds nothing delivers nothing", (d) => {
    const a = new FakeMember("a");
    const b = new FakeMember("b");
    join(d, a, "$share/g/t", 1);
    join(d, b, "$share/g/t", 1);
    a.online = false;
    d.memberLeft(a);
    assert.deepEqual([a.deliveries.length, b.deliveries.length], [0, 0]);
  });

  for (const what of ignore) {
    if (!cases.has(what)) throw new Error(`no dispatcher case "${what}"`);
  }
}
