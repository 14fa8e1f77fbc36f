/**
 * The platform's ceiling for the latency scenarios: a bare Deno relay that
 * does only what a broker must to pass a QoS 0 message from one client to
 * another. It answers CONNECT with CONNACK, SUBSCRIBE with a SUBACK
 * granting QoS 0 and PINGREQ with PINGRESP, and writes every QoS 0 PUBLISH
 * it reads, as read, to every connection that subscribed (whatever the
 * filter); it closes on DISCONNECT or EOF. No sessions, no topic matching,
 * no QoS 1/2 (such a PUBLISH is dropped), no logging. A connection reads
 * into a 512-byte buffer that doubles (up to 64 KiB) while reads fill it, so
 * idle connections stay small, and the PUBLISHes of one read go out in one
 * write per subscriber, as a lean broker would.
 *
 * compare.ts runs it beside the brokers in the latency scenarios (started
 * like Kite, with the start task's V8 flags, pinned to the same core): the
 * tail a Deno program has on this machine before any MQTT work.
 *
 * ```sh
 * deno run -A bench/bare_relay.ts --port 1883
 * ```
 *
 * @module
 */

import { listenAndServe, packetLength } from "./bare_accept.ts";

const CONNACK = Uint8Array.of(0x20, 0x02, 0x00, 0x00);
const PINGRESP = Uint8Array.of(0xd0, 0x00);

/** One client's writes: one at a time, later ones queued behind. */
class Out {
  readonly conn: Deno.TcpConn;
  #queue: Uint8Array[] = [];
  #busy = false;
  constructor(conn: Deno.TcpConn) {
    this.conn = conn;
  }
  send(data: Uint8Array): void {
    if (this.#busy) this.#queue.push(data);
    else this.#pump(data);
  }
  async #pump(first: Uint8Array): Promise<void> {
    this.#busy = true;
    try {
      for (let d: Uint8Array | undefined = first; d; d = this.#queue.shift()) {
        let off = 0;
        while (off < d.length) {
          off += await this.conn.write(off === 0 ? d : d.subarray(off));
        }
      }
    } catch {
      this.#queue = []; // the socket failed: the read loop ends it
    } finally {
      this.#busy = false;
    }
  }
}

const subscribers = new Set<Out>();

async function serve(conn: Deno.TcpConn): Promise<void> {
  const out = new Out(conn);
  try {
    conn.setNoDelay(true);
    let buf = new Uint8Array(512);
    let start = 0;
    let end = 0;
    while (true) {
      if (end === buf.length) {
        if (start > 0) {
          buf.copyWithin(0, start, end);
          end -= start;
          start = 0;
        } else if (buf.length < 65536) {
          const bigger = new Uint8Array(buf.length * 2);
          bigger.set(buf);
          buf = bigger;
        } else return; // a packet over 64 KiB: not for us
      }
      const n = await conn.read(buf.subarray(end));
      if (n === null) return;
      const filled = end + n === buf.length;
      end += n;
      let from = -1; // the PUBLISHes of this read: buf[from..to)
      let to = -1;
      while (start < end) {
        const len = packetLength(buf, end, start);
        if (len === 0) break;
        const type = buf[start]! >> 4;
        if (type === 3 && (buf[start]! & 0x06) === 0) {
          if (from < 0 || to !== start) {
            if (from >= 0) relay(buf.slice(from, to));
            from = start;
          }
          to = start + len;
        } else if (type === 1) out.send(CONNACK);
        else if (type === 8) {
          subscribers.add(out);
          out.send(Uint8Array.of(0x90, 3, buf[start + 2]!, buf[start + 3]!, 0));
        } else if (type === 12) out.send(PINGRESP);
        else if (type === 14) {
          // The PUBLISHes read with the DISCONNECT go out first.
          if (from >= 0) relay(buf.slice(from, to));
          return;
        }
        start += len;
      }
      if (from >= 0) relay(buf.slice(from, to));
      if (start === end) start = end = 0;
      if (filled && buf.length < 65536) { // more is waiting: read more at once
        const bigger = new Uint8Array(buf.length * 2);
        bigger.set(buf.subarray(start, end));
        end -= start;
        start = 0;
        buf = bigger;
      }
    }
  } catch {
    // reset by the client
  } finally {
    subscribers.delete(out);
    try {
      conn.close();
    } catch { /* closed */ }
  }
}

function relay(data: Uint8Array): void {
  for (const s of subscribers) s.send(data);
}

if (import.meta.main) await listenAndServe(serve);
