/**
 * The few MQTT 3.1.1 packets the load tool sends, encoded once at start-up,
 * and the template a publisher patches per message.
 *
 * These are byte-level builders, deliberately independent from the codec so
 * that the load tool can measure a broken or slow Kite codec too. The smoke
 * test checks that they equal `codec/encode.ts` output when the codec exists.
 *
 * @module
 */

const te = new TextEncoder();

/** Bytes of a remaining-length varint [MQTT-2.2.3]. */
function varint(n: number): number[] {
  const out: number[] = [];
  do {
    let byte = n % 128;
    n = Math.floor(n / 128);
    if (n > 0) byte |= 0x80;
    out.push(byte);
  } while (n > 0);
  return out;
}

function u16(n: number): number[] {
  return [(n >> 8) & 0xff, n & 0xff];
}

function str(s: string): number[] {
  const b = te.encode(s);
  return [...u16(b.length), ...b];
}

function packet(first: number, body: number[]): Uint8Array {
  return Uint8Array.from([first, ...varint(body.length), ...body]);
}

/** A user name and optional password for {@linkcode connectBytes}. */
export interface Login {
  username: string;
  password?: string;
}

/** A 3.1.1 CONNECT with no will; a user name and password when given. */
export function connectBytes(
  clientId: string,
  keepAlive: number,
  cleanSession = true,
  login?: Login,
): Uint8Array {
  let flags = cleanSession ? 0x02 : 0x00;
  const tail: number[] = [];
  if (login !== undefined) {
    flags |= 0x80; // user name flag
    tail.push(...str(login.username));
    if (login.password !== undefined) {
      flags |= 0x40; // password flag
      tail.push(...str(login.password));
    }
  }
  return packet(0x10, [
    ...str("MQTT"),
    4, // protocol level 3.1.1
    flags, // connect flags
    ...u16(keepAlive),
    ...str(clientId),
    ...tail,
  ]);
}

/**
 * SUBSCRIBE with one filter, or several at the same QoS (fixed header flags
 * 0b0010 [MQTT-3.8.1-1]).
 */
export function subscribeBytes(
  packetId: number,
  filter: string | string[],
  qos: number,
): Uint8Array {
  const filters = typeof filter === "string" ? [filter] : filter;
  return packet(0x82, [
    ...u16(packetId),
    ...filters.flatMap((f) => [...str(f), qos]),
  ]);
}

/** DISCONNECT. */
export const DISCONNECT: Uint8Array = Uint8Array.of(0xe0, 0x00);
/** PINGREQ. */
export const PINGREQ: Uint8Array = Uint8Array.of(0xc0, 0x00);

/** First bytes of the four 2-byte acks (PUBREL has flags 0b0010). */
export const PUBACK = 0x40;
/** PUBREC first byte. */
export const PUBREC = 0x50;
/** PUBREL first byte ([MQTT-3.6.1-1]: flags 0b0010). */
export const PUBREL = 0x62;
/** PUBCOMP first byte. */
export const PUBCOMP = 0x70;

/** A PUBLISH encoded once, with the offsets a sender patches per message. */
export interface PublishTemplate {
  bytes: Uint8Array;
  /** Offset of the 2-byte packet id, or -1 for QoS 0. */
  packetIdOffset: number;
  /** Offset of the payload. */
  payloadOffset: number;
}

/** Encodes a PUBLISH (no retain, no dup) with a zeroed payload. */
export function publishTemplate(
  topic: string,
  qos: number,
  payloadSize: number,
): PublishTemplate {
  const t = str(topic);
  const idBytes = qos > 0 ? [0, 1] : [];
  const body = [...t, ...idBytes, ...new Array<number>(payloadSize).fill(0)];
  const bytes = packet(0x30 | (qos << 1), body);
  const headerLen = bytes.length - body.length;
  return {
    bytes,
    packetIdOffset: qos > 0 ? headerLen + t.length : -1,
    payloadOffset: headerLen + t.length + idBytes.length,
  };
}
