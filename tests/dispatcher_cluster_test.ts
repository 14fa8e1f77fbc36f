/**
 * `ClusterDispatcher` runs the shared `Dispatcher` suite
 * (tests/dispatcher_suite.ts) as a node whose peers hold no subscriptions:
 * everything is delivered here, as by the local `Router`; then, with a
 * recording link and a fake route table, where a shared group's messages
 * go. What crosses nodes is tested end to end in cluster_*_test.ts.
 */

import assert from "node:assert/strict";
import type { QoS } from "../codec/packet.ts";
import {
  ClusterDispatcher,
  type ClusterLink,
  queueName,
  type RemoteRoute,
  type RemoteRoutes,
} from "../broker/cluster/dispatcher.ts";
import type { StoredMessage } from "../broker/store/store.ts";
import { dispatcherSuite, FakeMember } from "./dispatcher_suite.ts";

dispatcherSuite("ClusterDispatcher", (maxQos) => new ClusterDispatcher(maxQos));

/** A link that records what the dispatcher sends. */
class RecordingLink implements ClusterLink {
  readonly sent: {
    topic: string;
    core: boolean;
    groups: string[] | undefined;
    handled: string[] | undefined;
  }[] = [];
  readonly groupsAnnounced: [string, boolean, boolean][] = [];
  route(): void {}
  group(queue: string, _f: string, present: boolean, durable: boolean): void {
    this.groupsAnnounced.push([queue, present, durable]);
  }
  send(
    message: StoredMessage,
    _publisherId: string | undefined,
    _durable: readonly string[] | undefined,
    handled: readonly string[] | undefined,
    groups: readonly string[] | undefined,
    core: boolean,
  ): void {
    this.sent.push({
      topic: message.topic,
      core,
      groups: groups === undefined ? undefined : [...groups],
      handled: handled === undefined ? undefined : [...handled],
    });
  }
  sendToGroup(): void {}
}

/** Routes of one other node (inbox `x.1`) holding `queue` on `filter`. */
function otherNodeRoutes(
  queue: string,
  filter: string,
  durable: boolean,
): RemoteRoutes {
  const route: RemoteRoute = { node: "x.1", queue, durable };
  return {
    size: 1,
    match: (topic, cb) => {
      if (topic.startsWith(filter.replace("#", ""))) cb(route);
    },
    hasQueue: (q) => q === queue,
  };
}

const message = (topic: string, qos: QoS): StoredMessage => ({
  topic,
  payload: new Uint8Array([1]),
  qos,
  retain: false,
});

Deno.test("ClusterDispatcher announces a group durable while a persistent member holds it at QoS 1/2", () => {
  const link = new RecordingLink();
  const d = new ClusterDispatcher(2, link);
  const shared = { group: "g", filter: "j/#" };
  const clean = new FakeMember("clean");
  const kept = new FakeMember("kept");
  kept.expiryInterval = 60;
  const q = queueName("g", "j/#");
  d.subscribe(clean, { filter: "$share/g/j/#", qos: 1 }, shared);
  d.subscribe(kept, { filter: "$share/g/j/#", qos: 1 }, shared);
  d.unsubscribe(kept, "$share/g/j/#", shared);
  d.unsubscribe(clean, "$share/g/j/#", shared);
  assert.deepEqual(link.groupsAnnounced, [
    [q, true, false],
    [q, true, true],
    [q, true, false],
    [q, false, false],
  ]);
});

Deno.test("ClusterDispatcher sends a durable group's QoS 1/2 messages to one holder in turn (here or a node's inbox), QoS 0 through NATS", () => {
  const q = queueName("g", "j/#");
  const link = new RecordingLink();
  const d = new ClusterDispatcher(2, link, otherNodeRoutes(q, "j/#", true));
  const local = new FakeMember("m");
  d.subscribe(local, { filter: "$share/g/j/#", qos: 1 }, {
    group: "g",
    filter: "j/#",
  });
  for (let i = 0; i < 4; i++) d.publish(message(`j/${i}`, 1), "p");
  d.publish(message("j/zero", 0), "p");
  // Two to the other node's inbox (not on the subject), two here.
  const here = local.deliveries.map((x) => x.message.topic);
  const there = link.sent.flatMap((s) =>
    s.groups === undefined ? [] : [s.topic]
  );
  assert.equal(here.length, 2);
  assert.deepEqual([...here, ...there].sort(), ["j/0", "j/1", "j/2", "j/3"]);
  const toInbox = link.sent.filter((s) => s.groups !== undefined);
  assert.equal(toInbox.length, 2);
  for (const s of toInbox) {
    assert.deepEqual(s.groups, ["x.1", q]);
    assert.deepEqual(s.handled, [q]);
    assert.equal(s.core, false);
  }
  assert.deepEqual(link.sent.at(-1), {
    topic: "j/zero",
    core: true,
    groups: undefined,
    handled: undefined,
  });
});

Deno.test("ClusterDispatcher leaves a group without persistent members to NATS's queue group", () => {
  const q = queueName("g", "j/#");
  const link = new RecordingLink();
  const d = new ClusterDispatcher(2, link, otherNodeRoutes(q, "j/#", false));
  const local = new FakeMember("m");
  d.subscribe(local, { filter: "$share/g/j/#", qos: 1 }, {
    group: "g",
    filter: "j/#",
  });
  d.publish(message("j/1", 1), "p");
  assert.equal(local.deliveries.length, 0);
  assert.deepEqual(link.sent, [
    { topic: "j/1", core: true, groups: undefined, handled: undefined },
  ]);
});
