/**
 * The load tool's WebSocket client: RFC 6455 over a TCP socket with Nagle
 * off, read and written like a socket (binary frames, subprotocol `mqtt`).
 *
 * Why not the standard `WebSocket` class: Deno's client writes a frame's
 * header and payload separately with Nagle on, so a message over about 1 KB
 * waits for the server's delayed ACK: 40-45 ms per round trip, which made a
 * QoS 1 run measure the tool (about 1,400 msg/s) instead of the broker.
 * Here each frame is one write. Frames are masked with the all-zero key
 * (valid framing; the masking's purpose, protecting proxies from a
 * browser's script, does not apply to a load tool), so the tool spends no
 * CPU on XOR.
 *
 * @module
 */

const enc = new TextEncoder();

/** A WebSocket read and written like a socket. */
export class WsByteConn {
  #conn: Deno.TcpConn;
  /** Received bytes not yet parsed into frames. */
  #in = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;
  /** Payload bytes of the current data frame still to hand out. */
  #payloadLeft = 0;
  #closed = false;

  private constructor(conn: Deno.TcpConn, rest: Uint8Array) {
    this.#conn = conn;
    this.#in.set(rest);
    this.#end = rest.length;
  }

  /** Opens `url` (`ws://host:port/path`) with the subprotocol `mqtt`. */
  static async open(url: string): Promise<WsByteConn> {
    const u = new URL(url);
    const conn = await Deno.connect({
      hostname: u.hostname,
      port: Number(u.port || 80),
    });
    conn.setNoDelay(true);
    const key = btoa(
      String.fromCharCode(...crypto.getRandomValues(new Uint8Array(16))),
    );
    await conn.write(enc.encode(
      `GET ${u.pathname} HTTP/1.1\r\nHost: ${u.host}\r\n` +
        "Upgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
        "Sec-WebSocket-Protocol: mqtt\r\n\r\n",
    ));
    // The response head, and whatever followed it.
    let buf = new Uint8Array(0);
    while (true) {
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk);
      if (n === null) {
        conn.close();
        throw new Error(`WebSocket ${url}: closed during the handshake`);
      }
      const next = new Uint8Array(buf.length + n);
      next.set(buf);
      next.set(chunk.subarray(0, n), buf.length);
      buf = next;
      const head = new TextDecoder().decode(buf);
      const end = head.indexOf("\r\n\r\n");
      if (end < 0) continue;
      if (!/^HTTP\/1\.1 101/.test(head)) {
        conn.close();
        throw new Error(`WebSocket ${url}: ${head.split("\r\n")[0]}`);
      }
      return new WsByteConn(conn, buf.subarray(end + 4));
    }
  }

  /** Copies received payload bytes into `p`: their count, or null at the end. */
  async read(p: Uint8Array): Promise<number | null> {
    while (true) {
      if (this.#payloadLeft > 0 && this.#end > this.#start) {
        const n = Math.min(
          this.#payloadLeft,
          this.#end - this.#start,
          p.length,
        );
        p.set(this.#in.subarray(this.#start, this.#start + n));
        this.#start += n;
        this.#payloadLeft -= n;
        return n;
      }
      if (this.#payloadLeft === 0 && this.#frameHeader()) continue;
      if (this.#closed) return null;
      // More bytes: compact, grow if a header needs it, read.
      if (this.#start > 0) {
        this.#in.copyWithin(0, this.#start, this.#end);
        this.#end -= this.#start;
        this.#start = 0;
      }
      if (this.#end === this.#in.length) {
        const bigger = new Uint8Array(this.#in.length * 2);
        bigger.set(this.#in);
        this.#in = bigger;
      }
      const n = await this.#conn.read(this.#in.subarray(this.#end));
      if (n === null) return null;
      this.#end += n;
    }
  }

  /**
   * Parses the next frame header if it is all there: true when it did (a
   * data frame's payload is then handed out; a control frame was handled).
   */
  #frameHeader(): boolean {
    const b = this.#in;
    const avail = this.#end - this.#start;
    if (avail < 2) return false;
    const s = this.#start;
    const opcode = b[s]! & 0x0f;
    let len = b[s + 1]! & 0x7f;
    let head = 2;
    if (len === 126) {
      if (avail < 4) return false;
      len = (b[s + 2]! << 8) | b[s + 3]!;
      head = 4;
    } else if (len === 127) {
      if (avail < 10) return false;
      len = Number(new DataView(b.buffer, s + 2, 8).getBigUint64(0));
      head = 10;
    }
    if (opcode >= 8) {
      // Control frame (close, ping, pong): wait until it is whole.
      if (avail < head + len) return false;
      const payload = b.slice(s + head, s + head + len);
      this.#start = s + head + len;
      if (opcode === 8) this.#closed = true;
      else if (opcode === 9) this.#send(0xa, payload).catch(() => {});
      return true;
    }
    this.#start = s + head;
    this.#payloadLeft = len;
    return true;
  }

  /** One frame, one write (masked with the zero key: bytes unchanged). */
  #send(opcode: number, p: Uint8Array): Promise<number> {
    const n = p.length;
    const head = n < 126 ? 6 : n < 65536 ? 8 : 14;
    const frame = new Uint8Array(head + n);
    frame[0] = 0x80 | opcode;
    if (n < 126) frame[1] = 0x80 | n;
    else if (n < 65536) {
      frame[1] = 0x80 | 126;
      frame[2] = n >> 8;
      frame[3] = n & 0xff;
    } else {
      frame[1] = 0x80 | 127;
      new DataView(frame.buffer).setBigUint64(2, BigInt(n));
    }
    // The 4 mask bytes stay 0.
    frame.set(p, head);
    return this.#writeAll(frame);
  }

  async #writeAll(frame: Uint8Array): Promise<number> {
    let off = 0;
    while (off < frame.length) {
      off += await this.#conn.write(frame.subarray(off));
    }
    return frame.length;
  }

  /** Sends `p` as one binary message. */
  async write(p: Uint8Array): Promise<number> {
    await this.#send(0x2, p);
    return p.length;
  }

  close(): void {
    if (!this.#closed) {
      this.#closed = true;
      // A close frame (1000), best effort.
      this.#send(0x8, new Uint8Array([0x03, 0xe8])).catch(() => {});
    }
    try {
      this.#conn.close();
    } catch {
      // already closed
    }
  }
}
