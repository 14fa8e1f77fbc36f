/**
 * The connection target's invariants on what one client saw (private to
 * tests/fuzz): what the broker's own decoder makes of the client's bytes
 * (so what the broker must answer), and the checks on the broker's output
 * (decodable, in order, within the client's and the broker's limits).
 *
 * @module
 */

import { encode, PacketDecoder } from "../../codec/mod.ts";
import type {
  ConnectPacket,
  Packet,
  ProtocolVersion,
} from "../../codec/mod.ts";
import { TopicAliasReceiver } from "../../codec/_topic_alias.ts";
import type { BrokerSettings } from "../../broker/config/types.ts";
import type { ClientPlan } from "./_client_plan.ts";
import type { Peer } from "./_peer.ts";

function describe(e: unknown): string {
  return e instanceof Error ? `${e.name}: ${e.message}` : String(e);
}

/** A broken invariant. */
export interface Failure {
  kind: string;
  message: string;
}

/** What the broker's decoder makes of a client's bytes (same decoder). */
export interface Expectation {
  /** The version of the broker's answers (its first CONNECT's, else 4). */
  outVersion: ProtocolVersion;
  /** The client's first CONNECT, if its first packet is one. */
  connect: ConnectPacket | undefined;
  /** "error": the broker must close; "complete": all decoded. */
  state: "error" | "complete" | "partial";
  /** PINGREQs decoded (each is answered while connected). */
  pings: number;
  /** PUBACKs, PUBRECs and PUBCOMPs decoded (what frees a send window). */
  acks: number;
}

export function expectation(
  plan: ClientPlan,
  maxPacketSize: number,
): Expectation {
  const d = new PacketDecoder({ maxPacketSize });
  let first = true;
  let connect: ConnectPacket | undefined;
  let pings = 0;
  let acks = 0;
  let state: Expectation["state"];
  try {
    for (const s of plan.segments) {
      d.push(s, (p) => {
        if (first && p.type === "connect") connect = p;
        first = false;
        if (p.type === "pingreq") pings++;
        if (
          p.type === "puback" || p.type === "pubrec" || p.type === "pubcomp"
        ) acks++;
      });
    }
    state = d.buffered === 0 ? "complete" : "partial";
  } catch {
    state = "error";
  }
  return {
    outVersion: connect?.protocolVersion ?? 4,
    connect,
    state,
    pings,
    acks,
  };
}

/** Packets a server never sends. */
const CLIENT_ONLY = new Set([
  "connect",
  "subscribe",
  "unsubscribe",
  "pingreq",
]);

/**
 * What the order of a server's packets must be: CONNACK (or AUTH in an
 * enhanced authentication) first v5:[MQTT-3.2.0-1]; nothing after a refusing
 * CONNACK [MQTT-3.2.2-7]; no DISCONNECT before a successful CONNACK
 * [MQTT-3.14.0-1], and none at all, nor AUTH, to a 3.1.1 client; no
 * client-only packet types; no PUBLISH with an empty topic and no alias.
 */
function checkOrder(
  received: readonly Packet[],
  v: ProtocolVersion,
): string | undefined {
  let accepted = false;
  let refused = false;
  for (let i = 0; i < received.length; i++) {
    const p = received[i]!;
    const at = `packet ${i} (${p.type})`;
    if (refused) return `${at} after a refusing CONNACK [MQTT-3.2.2-7]`;
    if (CLIENT_ONLY.has(p.type)) return `${at}: a server never sends it`;
    if (v !== 5 && (p.type === "auth" || p.type === "disconnect")) {
      return `${at} to a v${v} client`;
    }
    if (p.type === "connack") {
      if (accepted) return `${at}: a second CONNACK`;
      if (p.reasonCode === 0) accepted = true;
      else refused = true;
      continue;
    }
    if (!accepted && p.type !== "auth") {
      return `${at} before a successful CONNACK v5:[MQTT-3.2.0-1] [MQTT-3.14.0-1]`;
    }
    if (p.type === "publish" && p.topic === "" && !p.properties?.topicAlias) {
      return `${at}: an empty topic and no topic alias`;
    }
  }
  return undefined;
}

/** What the broker sent one client: decodable, within its limits. */
export function checkOutput(
  peer: Peer,
  e: Expectation,
  s: Readonly<Required<BrokerSettings>>,
): Failure | undefined {
  if (peer.decodeError !== undefined) {
    return {
      kind: "undecodable output",
      message: `the broker sent bytes that do not decode as v${e.outVersion}: ${
        describe(peer.decodeError)
      } (after ${peer.received.length} packets)`,
    };
  }
  const order = checkOrder(peer.received, e.outVersion);
  if (order !== undefined) return { kind: "packet order", message: order };
  const c = e.connect;
  // Flow control: without an ack from the client, the QoS 1/2 messages in
  // flight to it (distinct packet ids) stay within the broker's
  // maxInflightMessages and the client's Receive Maximum [MQTT-3.3.4-7].
  const window = Math.min(
    s.maxInflightMessages,
    c?.protocolVersion === 5 ? c.properties?.receiveMaximum ?? 65535 : 65535,
  );
  const ids = new Set<number>();
  for (const p of peer.received) {
    if (p.type !== "publish") continue;
    if (p.qos > s.maxQos) {
      return {
        kind: "qos",
        message:
          `a QoS ${p.qos} PUBLISH from a broker whose maximum is ${s.maxQos}`,
      };
    }
    if (p.retain && !s.retainAvailable) {
      return {
        kind: "retain",
        message: "a PUBLISH with RETAIN from a broker without retain",
      };
    }
    if (p.qos > 0) ids.add(p.packetId!);
  }
  if (e.acks === 0 && ids.size > window) {
    return {
      kind: "flow control",
      message:
        `${ids.size} QoS 1/2 messages in flight to a client that acknowledged none (window ${window}) [MQTT-3.3.4-7]`,
    };
  }
  if (c === undefined || c.protocolVersion !== 5) return undefined;
  const max = c.properties?.maximumPacketSize ?? Infinity;
  const aliases = new TopicAliasReceiver(
    c.properties?.topicAliasMaximum ?? 0,
  );
  for (const p of peer.received) {
    if (p.type !== "publish") continue;
    const size = encode(p, { version: 5 }).length;
    if (size > max) {
      return {
        kind: "oversized output",
        message:
          `a PUBLISH of ${size} bytes to a client with Maximum Packet Size ${max} v5:[MQTT-3.1.2-24]`,
      };
    }
    try {
      aliases.resolve(p.topic, p.properties?.topicAlias ?? 0);
    } catch (err) {
      return {
        kind: "bad topic alias",
        message:
          `the broker sent topic alias ${p.properties?.topicAlias} to a client with Topic Alias Maximum ${aliases.max}: ${
            describe(err)
          }`,
      };
    }
  }
  return undefined;
}
