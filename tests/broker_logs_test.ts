/**
 * The broker's log as Mosquitto users expect it (broker/main.ts as a
 * subprocess): the start-up line names every listener, the HTTP one too;
 * each connection's life is one line at info level (connected with its
 * protocol, session, keep alive and user; disconnected with the reason;
 * refused with the reason and code); `--log-format json` writes one JSON
 * object per line.
 */

import assert from "node:assert/strict";
import { ReasonCode } from "../codec/reason_code.ts";
import { RawClient } from "./_helpers.ts";
import { DenoProcess, spawnBroker } from "./_subprocess.ts";

const MAIN = new URL("../broker/main.ts", import.meta.url).pathname;

const ADDR = String.raw`127\.0\.0\.1:\d+`;

Deno.test("broker/main.ts logs the listeners at start-up and each connection's life at info level", async () => {
  await using broker = await spawnBroker([
    "--http-port",
    "0",
    "--no-allow-anonymous",
  ]);
  const p = broker.process;
  const start = await p.waitForOutput(
    /kite \S+ listening on mqtt:\/\/127\.0\.0\.1:(\d+), http:\/\/127\.0\.0\.1:(\d+)/,
    "all",
    5000,
    "the start-up line with both listeners",
  );
  assert.equal(Number(start[1]), broker.port);
  const httpPort = Number(start[2]);
  assert.ok(httpPort > 0);

  // Connected: protocol, clean start, keep alive, user.
  const alice = await RawClient.connect(broker.port, {
    clientId: "alice-1",
    protocolVersion: 5,
    keepAlive: 60,
    username: "alice",
  });
  assert.equal(alice.connack.reasonCode, 0);
  await p.waitForOutput(
    new RegExp(
      `client alice-1 connected from ${ADDR} \\(v5, clean start, keep alive 60, user alice\\)`,
    ),
    "all",
    5000,
    "the connected line",
  );
  // Disconnected by the client's DISCONNECT.
  await alice.client.disconnect();
  await p.waitForOutput(
    /client alice-1 disconnected \(client sent DISCONNECT\)/,
    "all",
    5000,
    "the disconnected line",
  );

  // A 3.1.1 client resuming a session, closing without DISCONNECT.
  const bob = await RawClient.connect(broker.port, {
    clientId: "bob-1",
    cleanStart: false,
    keepAlive: 0,
    username: "bob",
  });
  await p.waitForOutput(
    new RegExp(
      `client bob-1 connected from ${ADDR} \\(v3\\.1\\.1, new session, keep alive 0, user bob\\)`,
    ),
    "all",
    5000,
    "bob's connected line",
  );
  await bob.client.close();
  await p.waitForOutput(
    /client bob-1 disconnected \(closed by the client\)/,
    "all",
    5000,
    "bob's disconnected line",
  );

  // A protocol error: the reason and its code.
  const carol = await RawClient.connect(broker.port, {
    clientId: "carol",
    protocolVersion: 5,
    username: "carol",
  });
  await carol.client.send({
    type: "publish",
    topic: "a",
    payload: new Uint8Array(),
    qos: 0,
    retain: false,
    dup: false,
    properties: { subscriptionIdentifiers: [1] },
  });
  await carol.client.expectClosedWith("disconnect", ReasonCode.ProtocolError);
  await p.waitForOutput(
    /client carol disconnected \(a PUBLISH from a client must not carry a Subscription Identifier \[MQTT-3\.3\.4-6\], 0x82 ProtocolError\)/,
    "all",
    5000,
    "carol's disconnected line",
  );

  // Kicked through the admin API.
  const dave = await RawClient.connect(broker.port, {
    clientId: "dave",
    protocolVersion: 5,
    username: "dave",
  });
  const kick = await fetch(
    `http://127.0.0.1:${httpPort}/api/v1/clients/dave`,
    { method: "DELETE" },
  );
  assert.equal(kick.status, 204);
  await kick.body?.cancel();
  await dave.client.expectClosedWith(
    "disconnect",
    ReasonCode.AdministrativeAction,
  );
  await p.waitForOutput(
    /client dave disconnected \(disconnected by an administrator, 0x98 AdministrativeAction\)/,
    "all",
    5000,
    "dave's disconnected line",
  );

  // Refused: anonymous, with the reason and the code.
  const anon = await RawClient.connect(broker.port, {
    clientId: "anon",
    protocolVersion: 5,
  });
  assert.equal(anon.connack.reasonCode, ReasonCode.NotAuthorized);
  await anon.client.close();
  await p.waitForOutput(
    new RegExp(
      `client anon refused from ${ADDR}: anonymous client \\(0x87 NotAuthorized\\)`,
    ),
    "all",
    5000,
    "the refused line",
  );
  for (const c of [carol, dave]) await c.client.close();
});

Deno.test("broker/main.ts --log-format json writes one JSON object per line", async () => {
  await using broker = await spawnBroker(["--log-format", "json"]);
  const p = broker.process;
  const c = await RawClient.connect(broker.port, {
    clientId: "j1",
    protocolVersion: 5,
    keepAlive: 5,
  });
  await c.client.disconnect();
  await p.waitForOutput(/j1 disconnected/, "all", 5000, "the disconnect");
  const lines = p.stdout.split("\n").filter((l) => l !== "");
  assert.ok(lines.length >= 3, p.stdout);
  const records = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  for (const r of records) {
    assert.equal(typeof r["@timestamp"], "string");
    assert.equal(typeof r.level, "string");
    assert.equal(typeof r.message, "string");
  }
  const start = records.find((r) =>
    (r.message as string).includes("listening on mqtt://")
  );
  assert.ok(start !== undefined, p.stdout);
  const connected = records.find((r) =>
    (r.message as string).startsWith("client j1 connected from")
  )!;
  assert.equal(connected.level, "INFO");
  const props = connected.properties as Record<string, unknown>;
  assert.equal(props.clientId, "j1");
  assert.equal(props.keepAlive, 5);
  assert.equal(props.protocol, "v5");
  assert.equal(props.user, "anonymous");
});

Deno.test("broker/main.ts refuses a bad --log-format and never logs the HTTP token", async () => {
  const bad = new DenoProcess([MAIN, "--log-format", "xml"]);
  const { code, stderr } = await bad.exit(15_000, "the exit");
  assert.equal(code, 2);
  assert.match(
    stderr,
    /^kite: --log-format must be one of text, json, got "xml"$/m,
  );
  await using broker = await spawnBroker([
    "--http-port",
    "0",
    "--http-token",
    "very-secret-token",
  ]);
  const p = broker.process;
  await p.waitForOutput(
    /options: .*httpToken="\*\*\*"/,
    "all",
    5000,
    "options",
  );
  assert.doesNotMatch(p.stdout + p.stderr, /very-secret-token/);
});
