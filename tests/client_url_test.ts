/**
 * Broker URLs of the client (`url` option, `kite pub|sub -L`): schemes and
 * MQTT.js's aliases, default ports as MQTT.js (1883, 8883, 80, 443), paths,
 * credentials, IPv6, and `host`/`port` options winning over the URL.
 */

import assert from "node:assert/strict";
import {
  brokerTarget,
  parseBrokerUrl,
  webSocketUrl,
} from "../client/_broker_url.ts";

const ROWS: [string, Record<string, unknown>][] = [
  ["mqtt://h", { protocol: "mqtt", hostname: "h", port: 1883 }],
  ["tcp://h:1884", { protocol: "mqtt", hostname: "h", port: 1884 }],
  ["mqtts://h", { protocol: "mqtts", hostname: "h", port: 8883 }],
  ["ssl://h", { protocol: "mqtts", port: 8883 }],
  ["tls://h:9", { protocol: "mqtts", port: 9 }],
  ["ws://h", { protocol: "ws", port: 80, path: "/" }],
  ["wss://h", { protocol: "wss", port: 443, path: "/" }],
  ["ws://h:8080/mqtt?a=1", { protocol: "ws", port: 8080, path: "/mqtt?a=1" }],
  ["WS://H:80/x", { protocol: "ws", hostname: "h", port: 80, path: "/x" }],
  ["mqtt://[::1]:1", { hostname: "::1", port: 1 }],
  [
    "mqtt://u%3Ax:p%40w@h/topic",
    { username: "u:x", password: "p@w", path: "/topic" },
  ],
];

Deno.test("parseBrokerUrl() reads scheme, host, default port, path and credentials", () => {
  for (const [url, want] of ROWS) {
    const t = parseBrokerUrl(url);
    for (const [k, v] of Object.entries(want)) {
      assert.equal(t[k as keyof typeof t], v, `${url}: ${k}`);
    }
  }
});

Deno.test("parseBrokerUrl() throws a TypeError naming a bad URL or scheme", () => {
  assert.throws(() => parseBrokerUrl("nope"), /bad broker URL "nope"/);
  assert.throws(() => parseBrokerUrl("http://h"), /scheme "http:"/);
});

Deno.test("brokerTarget(): host and port options win over the URL; tls picks 8883", () => {
  assert.deepEqual(
    brokerTarget({ url: "wss://a:1/p", host: "b", port: 2 }),
    { protocol: "wss", hostname: "b", port: 2, path: "/p" },
  );
  assert.equal(brokerTarget({ tls: true }).port, 8883);
  assert.equal(brokerTarget({}).port, 1883);
  assert.equal(brokerTarget({ tls: {} }).protocol, "mqtts");
  assert.equal(
    webSocketUrl(parseBrokerUrl("ws://[::1]:9/m")),
    "ws://[::1]:9/m",
  );
});
