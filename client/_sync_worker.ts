/**
 * Private: the worker behind `SyncClient`. It owns an async `Client`, runs
 * the calls the blocked thread posts, writes each result into the shared
 * reply buffer, and copies every received message into the shared ring
 * (waiting for room when it is full, so the async client applies TCP
 * backpressure instead of dropping anything).
 *
 * Messages from the calling thread:
 * - `{ type: "init", ctrl, reply, ring, options }` once, first;
 * - `{ type: "call", id, op, args }` for each blocking call.
 *
 * Messages to it: `{ type: "wake" }` (records are waiting in the ring) and
 * `{ type: "event", name, event }` (a client event, errors as data).
 *
 * @module
 */

import {
  Client,
  type ClientEvents,
  type ClientOptions,
  type DisconnectOptions,
  type PublishOptions,
  type SubscribeOptions,
} from "./client.ts";
import type { QoS, UserProperty } from "../codec/packet.ts";
import { MqttError } from "../codec/errors.ts";
import { ReasonCode } from "../codec/reason_code.ts";
import {
  CLIENT_EVENT_NAMES,
  CONNECTED,
  DROPPED,
  errorToData,
  pack,
  READS,
  REPLY_ID,
  REPLY_LEN,
  RingWriter,
  SIGNAL,
  WAKE_PENDING,
} from "./_sync_shared.ts";

interface Init {
  type: "init";
  ctrl: SharedArrayBuffer;
  reply: SharedArrayBuffer;
  ring: SharedArrayBuffer;
  options: ClientOptions;
}

interface Call {
  type: "call";
  id: number;
  op: string;
  args: unknown[];
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Init | Call>) => void) | null;
  postMessage(message: unknown): void;
};

let ctrl: Int32Array;
let reply: Uint8Array;
let ring: RingWriter;
let client: Client;
let latest = 0;
// The client ends its message iterators when it closes; the next connect()
// then needs a new one, even if the old loop has not noticed its end yet.
let epoch = 0;
let pumpEpoch = -1;

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type === "init") {
    ctrl = new Int32Array(m.ctrl);
    reply = new Uint8Array(m.reply);
    ring = new RingWriter(ctrl, new Uint8Array(m.ring));
    client = new Client(m.options);
    forwardEvents();
    return;
  }
  latest = m.id;
  run(m).then(
    (value) => answer(m.id, { ok: value ?? null }),
    (error) => answer(m.id, { error: errorToData(error) }),
  );
};

async function run(m: Call): Promise<unknown> {
  const a = m.args;
  switch (m.op) {
    case "connect": {
      const p = client.connect((a[0] ?? {}) as ClientOptions);
      pump(); // created while connecting: lives across reconnects
      return await p;
    }
    case "publish":
      return await client.publish(
        a[0] as string,
        a[1] as string | Uint8Array,
        a[2] as QoS | PublishOptions | undefined,
      );
    case "subscribe":
      return await client.subscribe(
        a[0] as string | string[],
        a[1] as QoS | SubscribeOptions | undefined,
      );
    case "unsubscribe":
      return await client.unsubscribe(
        a[0] as string | string[],
        (a[1] ?? {}) as { userProperties?: UserProperty[] },
      );
    case "disconnect":
      return await client.disconnect((a[0] ?? {}) as DisconnectOptions);
    case "close":
      return await client.close();
    case "state":
      return { clientId: client.clientId, queued: client.queued };
  }
  throw new MqttError(ReasonCode.ProtocolError, `unknown operation ${m.op}`);
}

function answer(id: number, value: unknown): void {
  if (id !== latest) return; // the caller gave up on it (timed out)
  let bytes = pack(value);
  if (bytes.length > reply.length) {
    bytes = pack({
      error: errorToData(
        new MqttError(
          ReasonCode.ImplementationSpecificError,
          `the reply (${bytes.length} bytes) exceeds replyBufferBytes (${reply.length})`,
        ),
      ),
    });
  }
  reply.set(bytes);
  Atomics.store(ctrl, REPLY_LEN, bytes.length);
  Atomics.store(ctrl, REPLY_ID, id);
  Atomics.add(ctrl, SIGNAL, 1);
  Atomics.notify(ctrl, SIGNAL);
}

/** Copies every received message into the ring, in order. */
async function pump(): Promise<void> {
  if (pumpEpoch === epoch) return;
  pumpEpoch = epoch;
  for await (const m of client.messages()) {
    const record = pack([
      m.topic,
      m.payload,
      m.qos,
      m.retain,
      m.dup,
      m.properties,
    ]);
    if (4 + record.length > ring.capacity) {
      Atomics.add(ctrl, DROPPED, 1);
      scope.postMessage({
        type: "event",
        name: "error",
        event: errorToData(
          new MqttError(
            ReasonCode.PacketTooLarge,
            `a message on "${m.topic}" (${m.payload.length} bytes) does not fit in messageBufferBytes (${ring.capacity}): dropped`,
          ),
        ),
      });
      continue;
    }
    while (!ring.tryWrite(record)) {
      // Full: wait until the reader takes a record (then try again).
      const reads = Atomics.load(ctrl, READS);
      if (ring.tryWrite(record)) break;
      const w = Atomics.waitAsync(ctrl, READS, reads);
      if (w.async) await w.value;
    }
    wake();
  }
}

/** Tells the calling thread (once until it looks) that records wait. */
function wake(): void {
  if (Atomics.compareExchange(ctrl, WAKE_PENDING, 0, 1) === 0) {
    scope.postMessage({ type: "wake" });
  }
}

function forwardEvents(): void {
  for (const name of CLIENT_EVENT_NAMES) {
    client.on(name, (event: ClientEvents[typeof name]) => {
      if (name === "connect") Atomics.store(ctrl, CONNECTED, 1);
      if (name === "disconnect" || name === "close") {
        Atomics.store(ctrl, CONNECTED, 0);
      }
      if (name === "close") epoch++;
      let data: unknown = event;
      if (event instanceof Error) data = errorToData(event);
      else if (name === "disconnect") {
        const { error, ...rest } = event as ClientEvents["disconnect"];
        data = error ? { ...rest, error: errorToData(error) } : rest;
      }
      scope.postMessage({ type: "event", name, event: data });
    });
  }
}
