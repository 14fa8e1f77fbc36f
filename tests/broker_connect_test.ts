import assert from "node:assert/strict";
import { Broker } from "../broker/mod.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import { RawClient, startBroker } from "./_helpers.ts";

Deno.test("Broker.listen() binds port 0 and close() releases it", async () => {
  const broker = await startBroker();
  const { hostname, port } = broker.addr;
  assert.equal(hostname, "127.0.0.1");
  assert.ok(port > 0);
  await broker.close();
  await assert.rejects(Deno.connect({ hostname, port }));
});

Deno.test("Broker accepts a 3.1.1 CONNECT with CONNACK 0 and no session present", async () => {
  const broker = await startBroker();
  const { client, connack } = await RawClient.connect(broker.addr.port, {
    clientId: "c1",
  });
  assert.deepEqual(connack, {
    type: "connack",
    sessionPresent: false,
    reasonCode: 0,
  });
  assert.equal(broker.connectedClients, 1);
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker answers an unsupported protocol level with CONNACK 0x01 and closes v3:[MQTT-3.1.2-2] v5:[MQTT-3.1.2-2]", async () => {
  const broker = await startBroker();
  const client = await RawClient.open(broker.addr.port, 4);
  // CONNECT, remaining length 12: "MQTT", level 6, clean, keep alive 60, id "".
  await client.sendBytes(
    new Uint8Array([
      0x10,
      0x0c,
      0x00,
      0x04,
      0x4d,
      0x51,
      0x54,
      0x54,
      0x06,
      0x02,
      0x00,
      0x3c,
      0x00,
      0x00,
    ]),
  );
  await client.expectClosedWith("connack", 0x01);
  await client.close();
  await broker.close();
});

Deno.test("Broker answers a level-5 CONNECT with a wrong protocol name with a v5 CONNACK 0x84 and closes [MQTT-3.1.2-1]", async () => {
  const broker = await startBroker();
  for (const name of ["MQTX", "MQIsdp"]) {
    const client = await RawClient.open(broker.addr.port, 5);
    client.recordBytes = true;
    const n = [...new TextEncoder().encode(name)];
    // CONNECT: protocol name, level 5, clean start, keep alive 60, no
    // properties, client id "".
    const body = [0, n.length, ...n, 5, 0x02, 0, 60, 0, 0, 0];
    await client.sendBytes(new Uint8Array([0x10, body.length, ...body]));
    const connack = await client.expectClosedWith("connack", 0x84);
    assert.equal(connack.sessionPresent, false);
    // The v5 form: fixed header, flags, reason code, then properties.
    const first = client.bytes[0]!;
    assert.deepEqual([...first.subarray(2, 4)], [0x00, 0x84], name);
    assert.ok(first.length > 4, `${name}: v5 CONNACK has a properties length`);
    await client.close();
  }
  await broker.close();
});

Deno.test("Broker closes a connection whose first packet is not CONNECT [MQTT-3.1.0-1]", async () => {
  const broker = await startBroker();
  const client = await RawClient.open(broker.addr.port, 4);
  await client.send({ type: "pingreq" });
  await client.waitClosed();
  assert.equal(client.inbox.length, 0);
  await client.close();
  await broker.close();
});

Deno.test("Broker refuses an empty client id without clean session: 3.1.1 0x02, v5 0x85 v3:[MQTT-3.1.3-8] v5:[MQTT-3.1.3-8]", async () => {
  const broker = await startBroker();
  for (const [version, code] of [[4, 0x02], [5, 0x85]] as const) {
    const { client, connack } = await RawClient.connect(broker.addr.port, {
      protocolVersion: version,
      clientId: "",
      cleanStart: false,
    });
    assert.equal(connack.reasonCode, code);
    assert.equal(connack.sessionPresent, false);
    await client.waitClosed();
    await client.close();
  }
  await broker.close();
});

Deno.test("Broker assigns a client id to an empty id with clean start (v5 Assigned Client Identifier) [MQTT-3.1.3-6]", async () => {
  const broker = await startBroker();
  const v4 = await RawClient.connect(broker.addr.port, { clientId: "" });
  assert.equal(v4.connack.reasonCode, 0);
  const v5 = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "",
  });
  assert.equal(v5.connack.reasonCode, 0);
  const assigned = v5.connack.properties?.assignedClientIdentifier;
  assert.ok(assigned !== undefined && assigned.length > 0);
  await v4.client.disconnect();
  await v5.client.disconnect();
  await broker.close();
});

Deno.test("Broker advertises its limits in the v5 CONNACK properties", async () => {
  const broker = await startBroker({
    maxQos: 1,
    retainAvailable: false,
    wildcardSubscriptionAvailable: false,
    sharedSubscriptionAvailable: false,
    receiveMaximum: 100,
    maxPacketSize: 4096,
    sessionExpiryInterval: 60,
    serverKeepAlive: 30,
  });
  const { client, connack } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "limits",
    keepAlive: 600,
    properties: { sessionExpiryInterval: 1000 },
  });
  assert.equal(connack.reasonCode, 0);
  assert.deepEqual(connack.properties, {
    receiveMaximum: 100,
    maximumPacketSize: 4096,
    topicAliasMaximum: 10,
    wildcardSubscriptionAvailable: 0,
    sharedSubscriptionAvailable: 0,
    subscriptionIdentifierAvailable: 1,
    maximumQoS: 1,
    retainAvailable: 0,
    sessionExpiryInterval: 60,
    serverKeepAlive: 30,
  });
  await client.disconnect();
  await broker.close();
});

Deno.test("Broker takes over a connected client id: v5 DISCONNECT 0x8E to the old connection [MQTT-3.1.4-3]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  const old5 = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "dup",
  });
  const new5 = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "dup",
  });
  assert.equal(new5.connack.reasonCode, 0);
  await old5.client.expectClosedWith(
    "disconnect",
    ReasonCode.SessionTakenOver,
  );
  // 3.1.1: the old connection is closed.
  const old4 = await RawClient.connect(port, { clientId: "dup4" });
  const new4 = await RawClient.connect(port, { clientId: "dup4" });
  assert.equal(new4.connack.reasonCode, 0);
  await old4.client.waitClosed();
  assert.equal(broker.connectedClients, 2);
  for (const c of [old5, new5, old4, new4]) await c.client.close();
  await broker.close();
});

Deno.test("Broker treats a second CONNECT as a protocol error: v5 DISCONNECT 0x82, 3.1.1 close v3:[MQTT-3.1.0-2] v5:[MQTT-3.1.0-2]", async () => {
  const broker = await startBroker();
  const port = broker.addr.port;
  for (const version of [4, 5] as const) {
    const { client } = await RawClient.connect(port, {
      protocolVersion: version,
      clientId: `twice${version}`,
    });
    await client.send({
      type: "connect",
      protocolVersion: version,
      clientId: `twice${version}`,
      cleanStart: true,
      keepAlive: 0,
    });
    if (version === 5) {
      const d = await client.expect("disconnect");
      assert.equal(d.reasonCode, ReasonCode.ProtocolError);
    }
    await client.waitClosed();
    await client.close();
  }
  await broker.close();
});

Deno.test("Broker closes a client silent for 1.5x keep alive with v5 DISCONNECT 0x8D [MQTT-3.1.2-22]", async () => {
  const broker = await startBroker();
  const { client } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "ka",
    keepAlive: 1,
  });
  const t0 = Date.now();
  const d = await client.expect("disconnect", 3000);
  const elapsed = Date.now() - t0;
  assert.equal(d.reasonCode, ReasonCode.KeepAliveTimeout);
  assert.ok(elapsed >= 1400, `closed after ${elapsed} ms`);
  await client.waitClosed();
  await client.close();
  await broker.close();
});

Deno.test("Broker closes a connection that sends no CONNECT within connectTimeout", async () => {
  const broker = await startBroker({ connectTimeout: 0.3 });
  const client = await RawClient.open(broker.addr.port);
  // Half a CONNECT, then nothing.
  await client.sendBytes(new Uint8Array([0x10, 0x20, 0x00]));
  await client.waitClosed(3000);
  await client.close();
  await broker.close();
});

Deno.test("Broker calls authenticate and maps refusals per version (v5 0x86, 3.1.1 0x04)", async () => {
  const seen: string[] = [];
  const addresses: (string | undefined)[] = [];
  const broker = await startBroker({
    authenticate: (ctx) => {
      seen.push(`${ctx.clientId}:${ctx.username}`);
      addresses.push(ctx.remoteAddress);
      return ctx.username === "good"
        ? ReasonCode.Success
        : Promise.resolve(ReasonCode.BadUserNameOrPassword);
    },
  });
  const port = broker.addr.port;
  const ok = await RawClient.connect(port, {
    clientId: "a",
    username: "good",
  });
  assert.equal(ok.connack.reasonCode, 0);
  const bad4 = await RawClient.connect(port, { clientId: "b", username: "x" });
  assert.equal(bad4.connack.reasonCode, 0x04);
  const bad5 = await RawClient.connect(port, {
    protocolVersion: 5,
    clientId: "c",
    username: "x",
  });
  assert.equal(bad5.connack.reasonCode, 0x86);
  await bad4.client.waitClosed();
  await bad5.client.waitClosed();
  assert.deepEqual(seen, ["a:good", "b:x", "c:x"]);
  // The hook sees the client's own address (host:port of its socket).
  const local = (ok.client.conn.localAddr as Deno.NetAddr).port;
  assert.equal(addresses[0], `127.0.0.1:${local}`);
  for (const a of addresses) assert.match(a!, /^127\.0\.0\.1:\d+$/);
  for (const c of [ok, bad4, bad5]) await c.client.close();
  await broker.close();
});

Deno.test("Broker refuses anonymous clients when allowAnonymous is false (3.1.1 0x05, v5 0x87)", async () => {
  const broker = await startBroker({ allowAnonymous: false });
  const v4 = await RawClient.connect(broker.addr.port, { clientId: "anon" });
  assert.equal(v4.connack.reasonCode, 0x05);
  const v5 = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "anon5",
  });
  assert.equal(v5.connack.reasonCode, 0x87);
  await v4.client.close();
  await v5.client.close();
  await broker.close();
});

Deno.test("Broker with an authentication hook refuses anonymous clients unless allowAnonymous is given (3.1.1 0x05, v5 0x87)", async () => {
  const asked: string[] = [];
  const hooks = [
    {
      authenticate: (ctx: { clientId: string }) => {
        asked.push(ctx.clientId);
        return ReasonCode.Success;
      },
    },
    { enhancedAuth: () => undefined },
  ];
  for (const hook of hooks) {
    const broker = await startBroker(hook);
    assert.equal(broker.settings.allowAnonymous, false);
    const v4 = await RawClient.connect(broker.addr.port, { clientId: "a4" });
    assert.equal(v4.connack.reasonCode, 0x05);
    const v5 = await RawClient.connect(broker.addr.port, {
      protocolVersion: 5,
      clientId: "a5",
    });
    assert.equal(v5.connack.reasonCode, ReasonCode.NotAuthorized);
    await v4.client.close();
    await v5.client.close();
    await broker.close();
  }
  assert.deepEqual(asked, [], "refused before the hook");
  const open = await startBroker({ ...hooks[0], allowAnonymous: true });
  const ok = await RawClient.connect(open.addr.port, { clientId: "a" });
  assert.equal(ok.connack.reasonCode, 0);
  await ok.client.disconnect();
  await open.close();
  // Without any hook, anonymous clients are still welcome by default.
  const plain = await startBroker();
  assert.equal(plain.settings.allowAnonymous, true);
  await plain.close();
});

Deno.test("Broker refuses a v5 Authentication Method it does not know with 0x8C", async () => {
  const broker = await startBroker();
  const { client, connack } = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "m",
    properties: { authenticationMethod: "SCRAM-SHA-1" },
  });
  assert.equal(connack.reasonCode, ReasonCode.BadAuthenticationMethod);
  await client.close();
  await broker.close();
});

Deno.test("Broker.handleConnection() serves a client over in-memory streams", async () => {
  const broker = new Broker({ sysInterval: 0 });
  await broker.start();
  const toBroker = new TransformStream<Uint8Array, Uint8Array>();
  const fromBroker = new TransformStream<Uint8Array, Uint8Array>();
  const served = broker.handleConnection({
    readable: toBroker.readable,
    writable: fromBroker.writable,
    close() {},
  });
  const { encode } = await import("../codec/encode.ts");
  const { decode } = await import("../codec/decode.ts");
  const w = toBroker.writable.getWriter();
  await w.write(encode({
    type: "connect",
    protocolVersion: 4,
    clientId: "mem",
    cleanStart: true,
    keepAlive: 0,
  }));
  const r = fromBroker.readable.getReader();
  const { value } = await r.read();
  assert.deepEqual(decode(value!), {
    type: "connack",
    sessionPresent: false,
    reasonCode: 0,
  });
  await w.write(encode({ type: "disconnect" }));
  await served;
  assert.equal((await r.read()).done, true); // EOF after DISCONNECT
  await w.close().catch(() => {});
  await broker.close();
});

Deno.test("Broker.close() sends v5 clients DISCONNECT 0x8B and closes 3.1.1 clients", async () => {
  const broker = await startBroker();
  const v5 = await RawClient.connect(broker.addr.port, {
    protocolVersion: 5,
    clientId: "bye5",
  });
  const v4 = await RawClient.connect(broker.addr.port, { clientId: "bye4" });
  const closing = broker.close();
  await v5.client.expectClosedWith(
    "disconnect",
    ReasonCode.ServerShuttingDown,
  );
  await v4.client.waitClosed();
  await closing;
  await v5.client.close();
  await v4.client.close();
});

Deno.test("Broker.listen() rejects on a port in use and releases what it started", async () => {
  const a = await startBroker();
  const b = new Broker({
    host: "127.0.0.1",
    port: a.addr.port,
    sysInterval: 1,
  });
  await assert.rejects(b.listen(), Deno.errors.AddrInUse);
  await a.close();
});
