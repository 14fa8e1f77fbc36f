/**
 * Seeded generators of valid packets for the randomised codec tests.
 */

import { PACKET_TYPE_NUMBER, PROPERTY_TABLE } from "../codec/mod.ts";
import type {
  Packet,
  PacketType,
  Properties,
  PropertyContext,
  ProtocolVersion,
  QoS,
  Subscription,
  Will,
} from "../codec/mod.ts";

/** mulberry32: a small seeded PRNG returning [0, 1). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Random helpers over one PRNG. */
export class Gen {
  constructor(readonly rnd: () => number) {}
  int(min: number, max: number): number {
    return min + Math.floor(this.rnd() * (max - min + 1));
  }
  bool(p = 0.5): boolean {
    return this.rnd() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(0, list.length - 1)]!;
  }
  bytes(max: number): Uint8Array {
    const b = new Uint8Array(this.int(0, max));
    for (let i = 0; i < b.length; i++) b[i] = this.int(0, 255);
    return b;
  }
  /** A string of ASCII and multi-byte characters, no U+0000, no + or #. */
  text(min: number, max: number): string {
    const parts = ["a", "b", "Z", "0", "-", "_", " ", "é", "日", "🌡", "$", "x"];
    let s = "";
    const n = this.int(min, max);
    for (let i = 0; i < n; i++) s += this.pick(parts);
    return s;
  }
  topic(): string {
    const levels: string[] = [];
    const n = this.int(1, 4);
    for (let i = 0; i < n; i++) levels.push(this.text(0, 6));
    const t = levels.join("/");
    return t.length === 0 ? "t" : t;
  }
  filter(): string {
    const levels: string[] = [];
    const n = this.int(1, 4);
    for (let i = 0; i < n; i++) {
      const r = this.rnd();
      levels.push(r < 0.2 ? "+" : this.text(0, 5));
    }
    if (this.bool(0.2)) levels.push("#");
    const f = levels.join("/");
    return f.length === 0 ? "f" : f;
  }
  qos(): QoS {
    return this.int(0, 2) as QoS;
  }
  id(): number {
    return this.int(1, 65535);
  }

  /** Random valid properties for a context (undefined when none chosen). */
  props(ctx: PropertyContext): Properties | undefined {
    if (this.bool(0.3)) return undefined;
    const out: Record<string, unknown> = {};
    for (const row of PROPERTY_TABLE) {
      if (!(row.contexts as readonly string[]).includes(ctx)) continue;
      if (!this.bool(0.4)) continue;
      switch (row.type) {
        case "byte":
          out[row.name] = this.int(0, 1);
          break;
        case "u16":
          out[row.name] = this.int(1, 65535);
          break;
        case "u32":
          out[row.name] = this.bool(0.2) ? 0xffffffff : this.int(1, 1e9);
          break;
        case "string":
          // A Response Topic is a topic name [MQTT-3.3.2-14].
          out[row.name] = row.name === "responseTopic"
            ? this.topic()
            : this.text(0, 12);
          break;
        case "binary":
          out[row.name] = this.bytes(12);
          break;
        case "varint": {
          const n = ctx === "subscribe" ? 1 : this.int(1, 3);
          const ids: number[] = [];
          for (let i = 0; i < n; i++) {
            ids.push(
              this.pick([
                1,
                127,
                128,
                16383,
                16384,
                268435455,
                this.int(1, 1e6),
              ]),
            );
          }
          out[row.name] = ids;
          break;
        }
        case "pair": {
          const n = this.int(1, 3);
          const pairs: [string, string][] = [];
          const key = this.text(0, 4);
          for (let i = 0; i < n; i++) {
            pairs.push([this.bool() ? key : this.text(0, 4), this.text(0, 6)]);
          }
          out[row.name] = pairs;
          break;
        }
      }
    }
    return Object.keys(out).length === 0 ? undefined : out as Properties;
  }

  /** Attaches properties when v5 and some were generated. */
  withProps<T extends object>(
    p: T,
    v: ProtocolVersion,
    ctx: PropertyContext,
  ): T {
    if (v !== 5) return p;
    const props = this.props(ctx);
    if (props !== undefined) {
      (p as { properties?: Properties }).properties = props;
    }
    return p;
  }

  /** v5 tail: reason code present when properties are or when non-zero. */
  reasonTail<T extends object>(
    t: T,
    v: ProtocolVersion,
    ctx: PropertyContext,
  ): T {
    if (v !== 5) return t;
    const p = t as { reasonCode?: number; properties?: Properties };
    this.withProps(p, v, ctx);
    if (p.properties !== undefined) p.reasonCode = this.int(0, 255);
    else if (this.bool()) p.reasonCode = this.int(1, 255);
    return t;
  }

  packet(v: ProtocolVersion): Packet {
    // Every type in wire order; AUTH exists only in 5.0.
    const types = (Object.keys(PACKET_TYPE_NUMBER) as PacketType[])
      .filter((t) => v === 5 || t !== "auth");
    const type = this.pick(types);
    switch (type) {
      case "connect": {
        const p: Packet = {
          type: "connect",
          protocolVersion: v,
          clientId: this.text(0, 23),
          cleanStart: this.bool(),
          keepAlive: this.int(0, 65535),
        };
        this.withProps(p, v, "connect");
        if (this.bool()) {
          const will: Will = {
            topic: this.topic(),
            payload: this.bytes(20),
            qos: this.qos(),
            retain: this.bool(),
          };
          this.withProps(will, v, "will");
          p.will = will;
        }
        if (this.bool()) p.username = this.text(0, 10);
        if ((p.username !== undefined || v === 5) && this.bool()) {
          p.password = this.bytes(10);
        }
        return p;
      }
      case "connack":
        return this.withProps(
          {
            type: "connack",
            sessionPresent: this.bool(),
            reasonCode: this.int(0, 255),
          },
          v,
          "connack",
        );
      case "publish": {
        const qos = this.qos();
        const p: Packet = {
          type: "publish",
          topic: this.topic(),
          payload: this.bytes(this.bool(0.1) ? 300 : 40),
          qos,
          retain: this.bool(),
          dup: qos > 0 && this.bool(),
        };
        if (qos > 0) p.packetId = this.id();
        this.withProps(p, v, "publish");
        if (v === 5 && p.properties?.topicAlias !== undefined && this.bool()) {
          p.topic = "";
        }
        return p;
      }
      case "puback":
      case "pubrec":
      case "pubrel":
      case "pubcomp":
        return this.reasonTail({ type, packetId: this.id() }, v, type);
      case "subscribe": {
        const subs: Subscription[] = [];
        const n = this.int(1, 4);
        for (let i = 0; i < n; i++) {
          const shared = v === 5 && this.bool(0.2);
          const s: Subscription = {
            filter: shared
              ? `$share/${this.text(1, 3)}/${this.filter()}`
              : this.filter(),
            qos: this.qos(),
          };
          if (v === 5) {
            if (!shared && this.bool()) s.noLocal = true;
            if (this.bool()) s.retainAsPublished = true;
            const rh = this.int(0, 2);
            if (rh !== 0) s.retainHandling = rh as 1 | 2;
          }
          subs.push(s);
        }
        return this.withProps(
          { type: "subscribe", packetId: this.id(), subscriptions: subs },
          v,
          "subscribe",
        );
      }
      case "suback": {
        const codes: number[] = [];
        const n = this.int(1, 5);
        for (let i = 0; i < n; i++) {
          codes.push(this.pick([0, 1, 2, 0x80, 0x87, 0x8f]));
        }
        return this.withProps(
          { type: "suback", packetId: this.id(), reasonCodes: codes },
          v,
          "suback",
        );
      }
      case "unsubscribe": {
        const filters: string[] = [];
        const n = this.int(1, 4);
        for (let i = 0; i < n; i++) filters.push(this.filter());
        return this.withProps(
          { type: "unsubscribe", packetId: this.id(), filters },
          v,
          "unsubscribe",
        );
      }
      case "unsuback": {
        const p: Packet = { type: "unsuback", packetId: this.id() };
        if (v === 5) {
          const codes: number[] = [];
          const n = this.int(1, 4);
          for (let i = 0; i < n; i++) {
            codes.push(this.pick([0, 0x11, 0x80, 0x87]));
          }
          p.reasonCodes = codes;
          this.withProps(p, v, "unsuback");
        }
        return p;
      }
      case "pingreq":
        return { type: "pingreq" };
      case "pingresp":
        return { type: "pingresp" };
      case "disconnect":
        return this.reasonTail({ type: "disconnect" }, v, "disconnect");
      case "auth":
        return this.reasonTail({ type: "auth" }, v, "auth");
    }
    throw new Error("unreachable");
  }
}
