/**
 * Kite's codec against npm:mqtt-packet on the same packets. Run with
 * `deno task bench` or `deno bench -P bench/codec_bench.ts`.
 *
 * - decode: a stream of 64-byte QoS 0 PUBLISH packets, 1,024 per 64 KiB
 *   chunk, and the same bytes cut into 1,460-byte chunks (a TCP segment), so
 *   packets straddle chunk boundaries; a 64 KiB chunk whose packets cycle
 *   through 16 topics; and chunks whose 65,536 topics are all different (no
 *   topic cache can help). One long-lived decoder per library, as on a
 *   connection. One iteration = 1,024 packets.
 * - encode: one 64-byte QoS 0 PUBLISH per iteration.
 * - CONNECT + SUBSCRIBE mix: a fresh server-side decoder per iteration
 *   (as for a new connection) decodes a CONNECT (will, username, password)
 *   and a SUBSCRIBE with three filters; and encoding the same two packets.
 *   Both 3.1.1 and 5.0 (with properties).
 *
 * Before timing, each library's output is checked against the other's.
 *
 * @module
 */

// mqtt-packet is a Node library: it needs Buffer (bench-only code).
import { Buffer } from "node:buffer";
import mqttPacket from "mqtt-packet";
import { encode } from "../codec/encode.ts";
import { PacketDecoder } from "../codec/decode.ts";
import type {
  ConnectPacket,
  Packet,
  PublishPacket,
  SubscribePacket,
} from "../codec/packet.ts";

const te = new TextEncoder();

// ---------------------------------------------------------------------------
// The packets

// 2 (fixed header) + 2 + 26 (topic) + 34 (payload) = 64 bytes.
const TOPIC = "sensors/room42/temperature";
const PAYLOAD = te.encode('{"t":21.5,"h":40.25,"ts":17000000}');

const publish: PublishPacket = {
  type: "publish",
  topic: TOPIC,
  payload: PAYLOAD,
  qos: 0,
  retain: false,
  dup: false,
};
const mpPublish = {
  cmd: "publish" as const,
  topic: TOPIC,
  payload: Buffer.from(PAYLOAD),
  qos: 0 as const,
  retain: false,
  dup: false,
};

const publishBytes = encode(publish);
if (publishBytes.length !== 64) {
  throw new Error(`PUBLISH is ${publishBytes.length} bytes, not 64`);
}

const PER_CHUNK = 1024;
const stream = new Uint8Array(64 * PER_CHUNK);
for (let i = 0; i < PER_CHUNK; i++) stream.set(publishBytes, i * 64);
const streamBuf = Buffer.from(stream.buffer, stream.byteOffset, stream.length);

/**
 * The same number of 64-byte packets on 16 different topics in turn
 * (`sensors/room10/temperature` ... `room25`), so that a decoder cannot
 * win by remembering the previous packet's topic.
 */
const mixedStream = new Uint8Array(64 * PER_CHUNK);
for (let i = 0; i < PER_CHUNK; i++) {
  const bytes = encode({
    ...publish,
    topic: `sensors/room${10 + (i & 15)}/temperature`,
  });
  if (bytes.length !== 64) throw new Error("mixed-topic PUBLISH is not 64 B");
  mixedStream.set(bytes, i * 64);
}
const mixedStreamBuf = Buffer.from(
  mixedStream.buffer,
  mixedStream.byteOffset,
  mixedStream.length,
);

/**
 * 64 chunks of 1,024 packets, 65,536 distinct topics in all
 * (`sensors/000000/temperature` ...), taken in turn: the worst case for a
 * decoder that caches topic strings.
 */
const DISTINCT_CHUNKS = 64;
const distinctChunks: Uint8Array[] = [];
for (let c = 0; c < DISTINCT_CHUNKS; c++) {
  const chunk = new Uint8Array(64 * PER_CHUNK);
  for (let i = 0; i < PER_CHUNK; i++) {
    const id = (c * PER_CHUNK + i).toString(16).padStart(6, "0");
    const bytes = encode({ ...publish, topic: `sensors/${id}/temperature` });
    if (bytes.length !== 64) throw new Error("distinct PUBLISH is not 64 B");
    chunk.set(bytes, i * 64);
  }
  distinctChunks.push(chunk);
}
const distinctBufs = distinctChunks.map((c) =>
  Buffer.from(c.buffer, c.byteOffset, c.length)
);
let distinctNext = 0;

/** The same stream cut into TCP-segment-sized chunks. */
const SEGMENT = 1460;
const segments: Uint8Array[] = [];
for (let i = 0; i < stream.length; i += SEGMENT) {
  segments.push(stream.subarray(i, Math.min(i + SEGMENT, stream.length)));
}
const segmentBufs = segments.map((s) =>
  Buffer.from(s.buffer, s.byteOffset, s.length)
);

function connectPacket(version: 4 | 5): ConnectPacket {
  const p: ConnectPacket = {
    type: "connect",
    protocolVersion: version,
    clientId: "bench-client-0001",
    cleanStart: true,
    keepAlive: 60,
    username: "user",
    password: te.encode("secret"),
    will: {
      topic: "clients/bench-client-0001/status",
      payload: te.encode("offline"),
      qos: 1,
      retain: true,
    },
  };
  if (version === 5) {
    p.properties = { sessionExpiryInterval: 3600, receiveMaximum: 100 };
    p.will!.properties = { willDelayInterval: 5 };
  }
  return p;
}

function subscribePacket(version: 4 | 5): SubscribePacket {
  const p: SubscribePacket = {
    type: "subscribe",
    packetId: 1,
    subscriptions: [
      { filter: "sensors/+/temperature", qos: 1 },
      { filter: "alerts/#", qos: 2 },
      { filter: "clients/bench-client-0001/cmd", qos: 0 },
    ],
  };
  if (version === 5) {
    p.properties = { subscriptionIdentifiers: [7] };
    p.subscriptions[0]!.noLocal = true;
    p.subscriptions[1]!.retainHandling = 1;
  }
  return p;
}

function mpConnect(version: 4 | 5) {
  const p: Record<string, unknown> = {
    cmd: "connect",
    protocolId: "MQTT",
    protocolVersion: version,
    clientId: "bench-client-0001",
    clean: true,
    keepalive: 60,
    username: "user",
    password: Buffer.from("secret"),
    will: {
      topic: "clients/bench-client-0001/status",
      payload: Buffer.from("offline"),
      qos: 1,
      retain: true,
    },
  };
  if (version === 5) {
    p.properties = { sessionExpiryInterval: 3600, receiveMaximum: 100 };
    (p.will as Record<string, unknown>).properties = { willDelayInterval: 5 };
  }
  return p as unknown as mqttPacket.IConnectPacket;
}

function mpSubscribe(version: 4 | 5) {
  const p: Record<string, unknown> = {
    cmd: "subscribe",
    messageId: 1,
    subscriptions: [
      { topic: "sensors/+/temperature", qos: 1 },
      { topic: "alerts/#", qos: 2 },
      { topic: "clients/bench-client-0001/cmd", qos: 0 },
    ],
  };
  if (version === 5) {
    p.properties = { subscriptionIdentifier: 7 };
    p.subscriptions = [
      { topic: "sensors/+/temperature", qos: 1, nl: true, rap: false, rh: 0 },
      { topic: "alerts/#", qos: 2, nl: false, rap: false, rh: 1 },
      {
        topic: "clients/bench-client-0001/cmd",
        qos: 0,
        nl: false,
        rap: false,
        rh: 0,
      },
    ];
  }
  return p as unknown as mqttPacket.ISubscribePacket;
}

const mix = {
  4: {
    connect: connectPacket(4),
    subscribe: subscribePacket(4),
    mpConnect: mpConnect(4),
    mpSubscribe: mpSubscribe(4),
    bytes: new Uint8Array(0),
    buf: Buffer.alloc(0),
  },
  5: {
    connect: connectPacket(5),
    subscribe: subscribePacket(5),
    mpConnect: mpConnect(5),
    mpSubscribe: mpSubscribe(5),
    bytes: new Uint8Array(0),
    buf: Buffer.alloc(0),
  },
};
for (const version of [4, 5] as const) {
  const m = mix[version];
  const c = encode(m.connect);
  const s = encode(m.subscribe, { version });
  m.bytes = new Uint8Array(c.length + s.length);
  m.bytes.set(c);
  m.bytes.set(s, c.length);
  m.buf = Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.length);
}

// ---------------------------------------------------------------------------
// Cross-checks: both libraries agree on the bytes, and decode everything.

function sameBytes(a: Uint8Array, b: Uint8Array, what: string): void {
  if (a.length !== b.length || a.some((x, i) => x !== b[i])) {
    throw new Error(`${what}: Kite and mqtt-packet encode differently`);
  }
}

sameBytes(
  publishBytes,
  mqttPacket.generate(mpPublish, { protocolVersion: 4 }),
  "PUBLISH",
);
for (const version of [4, 5] as const) {
  const m = mix[version];
  const opts = { protocolVersion: version };
  const mp = Buffer.concat([
    mqttPacket.generate(m.mpConnect, opts),
    mqttPacket.generate(m.mpSubscribe, opts),
  ]);
  sameBytes(m.bytes, mp, `CONNECT + SUBSCRIBE v${version}`);
}

{
  let kite = 0;
  let mp = 0;
  const d = new PacketDecoder({ version: 4 });
  d.push(stream, (p) => {
    if (p.type === "publish" && p.topic === TOPIC) kite++;
  });
  for (const s of segments) d.push(s, () => kite++);
  const parser = mqttPacket.parser({ protocolVersion: 4 });
  parser.on("packet", (p) => {
    if (p.cmd === "publish" && p.topic.startsWith("sensors/room")) mp++;
  });
  parser.parse(streamBuf);
  for (const s of segmentBufs) parser.parse(s);
  d.push(mixedStream, (p) => {
    if (p.type === "publish" && p.topic.startsWith("sensors/room")) kite++;
  });
  parser.parse(mixedStreamBuf);
  if (kite !== 3 * PER_CHUNK || mp !== 3 * PER_CHUNK) {
    throw new Error(`decoded ${kite} (Kite) and ${mp} (mqtt-packet) packets`);
  }
  for (const version of [4, 5] as const) {
    const types: string[] = [];
    new PacketDecoder().push(mix[version].bytes, (p) => types.push(p.type));
    const p2 = mqttPacket.parser();
    p2.on("packet", (p) => types.push(p.cmd));
    p2.parse(mix[version].buf);
    if (types.join() !== "connect,subscribe,connect,subscribe") {
      throw new Error(`mix v${version} decoded as ${types.join()}`);
    }
  }
}

// ---------------------------------------------------------------------------
// Benchmarks

let sink = 0;

const kiteDecoder = new PacketDecoder({ version: 4 });
const onKitePacket = (p: Packet) => {
  if (p.type === "publish") sink += p.payload.length;
};
const mpParser = mqttPacket.parser({ protocolVersion: 4 });
mpParser.on("packet", (p) => {
  if (p.cmd === "publish") sink += p.payload.length;
});

Deno.bench({
  name: "Kite PacketDecoder, 1,024 x 64 B PUBLISH in one 64 KiB chunk",
  group: "decode PUBLISH stream (64 KiB chunks)",
  baseline: true,
}, () => {
  kiteDecoder.push(stream, onKitePacket);
});

Deno.bench({
  name: "mqtt-packet parser, 1,024 x 64 B PUBLISH in one 64 KiB chunk",
  group: "decode PUBLISH stream (64 KiB chunks)",
}, () => {
  mpParser.parse(streamBuf);
});

Deno.bench({
  name: "Kite PacketDecoder, 1,024 x 64 B PUBLISH in 1,460 B chunks",
  group: "decode PUBLISH stream (1,460 B chunks)",
  baseline: true,
}, () => {
  for (let i = 0; i < segments.length; i++) {
    kiteDecoder.push(segments[i]!, onKitePacket);
  }
});

Deno.bench({
  name: "mqtt-packet parser, 1,024 x 64 B PUBLISH in 1,460 B chunks",
  group: "decode PUBLISH stream (1,460 B chunks)",
}, () => {
  for (let i = 0; i < segmentBufs.length; i++) mpParser.parse(segmentBufs[i]!);
});

Deno.bench({
  name: "Kite PacketDecoder, 1,024 x 64 B PUBLISH on 16 topics, 64 KiB chunk",
  group: "decode PUBLISH stream (16 topics in turn)",
  baseline: true,
}, () => {
  kiteDecoder.push(mixedStream, onKitePacket);
});

Deno.bench({
  name: "mqtt-packet parser, 1,024 x 64 B PUBLISH on 16 topics, 64 KiB chunk",
  group: "decode PUBLISH stream (16 topics in turn)",
}, () => {
  mpParser.parse(mixedStreamBuf);
});

Deno.bench({
  name: "Kite PacketDecoder, 1,024 x 64 B PUBLISH, 65,536 topics, 64 KiB chunk",
  group: "decode PUBLISH stream (every topic new)",
  baseline: true,
}, () => {
  kiteDecoder.push(
    distinctChunks[distinctNext++ & (DISTINCT_CHUNKS - 1)]!,
    onKitePacket,
  );
});

Deno.bench({
  name: "mqtt-packet parser, 1,024 x 64 B PUBLISH, 65,536 topics, 64 KiB chunk",
  group: "decode PUBLISH stream (every topic new)",
}, () => {
  mpParser.parse(distinctBufs[distinctNext++ & (DISTINCT_CHUNKS - 1)]!);
});

Deno.bench({
  name: "Kite encode(), 64 B PUBLISH",
  group: "encode PUBLISH",
  baseline: true,
}, () => {
  sink += encode(publish).length;
});

Deno.bench({
  name: "mqtt-packet generate(), 64 B PUBLISH",
  group: "encode PUBLISH",
}, () => {
  sink += mqttPacket.generate(mpPublish).length;
});

for (const version of [4, 5] as const) {
  const m = mix[version];
  const opts = { protocolVersion: version };
  const onPacket = (p: Packet) => {
    sink += p.type.length;
  };
  const onMp = (p: mqttPacket.Packet) => {
    sink += p.cmd.length;
  };
  Deno.bench({
    name: `Kite PacketDecoder, CONNECT + SUBSCRIBE v${version}`,
    group: `decode CONNECT + SUBSCRIBE v${version}`,
    baseline: true,
  }, () => {
    new PacketDecoder().push(m.bytes, onPacket);
  });
  Deno.bench({
    name: `mqtt-packet parser, CONNECT + SUBSCRIBE v${version}`,
    group: `decode CONNECT + SUBSCRIBE v${version}`,
  }, () => {
    const parser = mqttPacket.parser();
    parser.on("packet", onMp);
    parser.parse(m.buf);
  });
  Deno.bench({
    name: `Kite encode(), CONNECT + SUBSCRIBE v${version}`,
    group: `encode CONNECT + SUBSCRIBE v${version}`,
    baseline: true,
  }, () => {
    sink += encode(m.connect).length + encode(m.subscribe, { version }).length;
  });
  Deno.bench({
    name: `mqtt-packet generate(), CONNECT + SUBSCRIBE v${version}`,
    group: `encode CONNECT + SUBSCRIBE v${version}`,
  }, () => {
    sink += mqttPacket.generate(m.mpConnect, opts).length +
      mqttPacket.generate(m.mpSubscribe, opts).length;
  });
}

globalThis.addEventListener("unload", () => {
  if (sink < 0) console.log(sink);
});
