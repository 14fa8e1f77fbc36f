/**
 * MQTT topics and filters as NATS subjects (broker/cluster/subjects.ts):
 * the table checks the rules, and a nats-server with its own MQTT listener
 * (the peer whose mapping plain NATS clients know) shows the same subjects
 * for the same topics.
 */

import assert from "node:assert/strict";
import { connect } from "@nats-io/transport-node";
import {
  filterToSubjects,
  subjectToTopic,
  topicMatches,
  topicToSubject,
} from "../broker/cluster/subjects.ts";
import { requireNats, startNats } from "./_nats.ts";
import { hasCommand } from "./_subprocess.ts";
import { within } from "./client_helpers.ts";

// topic, subject as nats-server 2.9 maps it (undefined: it refuses the
// topic; Kite carries it on its fallback subject).
const TOPICS: [string, string | undefined][] = [
  ["a", "a"],
  ["a/b", "a.b"],
  ["/a", "/.a"],
  ["a/", "a./"],
  ["/", "/./"],
  ["//", "/././"],
  ["a//b", "a./.b"],
  ["a///b", "a././.b"],
  ["x/$y", "x.$y"],
  ["$aws/things", "$aws.things"],
  ["a*b/c>", "a*b.c>"],
  ["ü/€", "ü.€"],
  ["a.b", undefined],
  ["a b", undefined],
  ["a/./b", undefined],
  ["tab\there", undefined],
  ["*", undefined], // a NATS wildcard token
  ["a/>", undefined],
];

Deno.test("topicToSubject() maps topics as nats-server does, and refuses what NATS cannot carry", () => {
  for (const [topic, subject] of TOPICS) {
    assert.equal(topicToSubject(topic, false), subject, JSON.stringify(topic));
    if (subject !== undefined) {
      assert.equal(subjectToTopic(subject), topic, `back: ${subject}`);
    }
  }
});

Deno.test("subjectToTopic() reads subjects of plain NATS clients as nats-server does", () => {
  const table: [string, string][] = [
    ["n.a", "n/a"],
    ["n./", "n/"],
    ["n.//", "n//"],
    ["n/.x", "n//x"],
    ["n./.b", "n//b"],
    ["n//x", "n//x"],
  ];
  for (const [subject, topic] of table) {
    assert.equal(subjectToTopic(subject), topic, subject);
  }
});

Deno.test("filterToSubjects() gives the subjects of a filter, two for a trailing # (its parent level too)", () => {
  const table: [string, string[]][] = [
    ["a/b", ["a.b"]],
    ["a/+", ["a.*"]],
    ["+", ["*"]],
    ["#", [">"]],
    ["a/#", ["a", "a.>"]],
    ["a/+/#", ["a.*", "a.*.>"]],
    ["+/#", ["*", "*.>"]],
    ["/#", ["/.>"]],
    ["a//#", ["a./", "a./.>"]],
    ["a.b/#", []], // only topics on the fallback subject match it
    ["a/*", []],
  ];
  for (const [filter, subjects] of table) {
    assert.deepEqual(filterToSubjects(filter), subjects, filter);
  }
});

Deno.test("topicMatches() follows the MQTT matching rules v5:[MQTT-4.7.1-2] [MQTT-4.7.2-1]", () => {
  assert.ok(topicMatches("a/#", "a"));
  assert.ok(topicMatches("a/#", "a/b/c"));
  assert.ok(topicMatches("+/b", "a/b"));
  assert.ok(topicMatches("a/+", "a/"));
  assert.ok(!topicMatches("a/+", "a/b/c"));
  assert.ok(!topicMatches("#", "$SYS/x"));
  assert.ok(!topicMatches("+/x", "$SYS/x"));
  assert.ok(topicMatches("$SYS/#", "$SYS/x"));
  assert.ok(topicMatches("a b/+", "a b/c"));
});

const mosquitto = hasCommand("mosquitto_pub");
Deno.test({
  name:
    "topicToSubject() gives the subject nats-server's own MQTT publishes a topic on",
  ignore: !requireNats("cluster_subjects_test") || !mosquitto,
  async fn() {
    await using nats = await startNats({ mqtt: true });
    const nc = await connect({ servers: nats.url });
    try {
      const seen = new Map<string, string>();
      const { promise: all, resolve } = Promise.withResolvers<void>();
      const mapped = TOPICS.filter(([, s]) => s !== undefined && s !== "*");
      nc.subscribe(">", {
        callback: (_e, m) => {
          // Its own bookkeeping ($MQTT..., $JS...) carries other payloads.
          if (!mapped.some(([t]) => t === m.string())) return;
          seen.set(m.string(), m.subject);
          if (seen.size === mapped.length) resolve();
        },
      });
      await nc.flush();
      for (const [topic] of mapped) {
        const out = await new Deno.Command("mosquitto_pub", {
          args: [
            "-h",
            "127.0.0.1",
            "-p",
            String(nats.mqttPort),
            "-t",
            topic,
            "-m",
            topic,
          ],
          stdout: "null",
          stderr: "piped",
        }).output();
        assert.equal(out.code, 0, new TextDecoder().decode(out.stderr));
      }
      await within(all, 10_000, "every topic through nats-server MQTT").catch(
        (e) => {
          throw new Error(`${e.message}: ${[...seen].join(" ; ")}`);
        },
      );
      for (const [topic, subject] of mapped) {
        assert.equal(seen.get(topic), subject, topic);
      }
    } finally {
      await nc.close();
    }
  },
});
