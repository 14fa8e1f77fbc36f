/**
 * bench/bare_relay.ts over the runtime's stream handles, as Kite's broker
 * reads its TCP sockets since 2026-12-03 (codec/_handle_io.ts): the same
 * relay (CONNACK, SUBACK, PINGRESP, every QoS 0 PUBLISH read written as read
 * to every subscriber), but each socket is a `tcp_wrap` handle read by
 * callback into one shared buffer and written with `writeBuffer`, with no
 * promise per read or write. compare.ts and bench/c_latency.ts run it as
 * `relay-handles`: the latency floor of a Deno program that reads its
 * sockets this way.
 *
 * ```sh
 * deno run -A bench/bare_relay_handles.ts --port 1883
 * ```
 *
 * @module
 */

import process from "node:process";
import { listenArgs, packetLength } from "./bare_accept.ts";

interface Handle {
  onread: (() => void) | undefined;
  readStart(): number;
  readStop(): number;
  useUserBuffer(b: Uint8Array): void;
  writeBuffer(req: { oncomplete(status: number): void }, d: Uint8Array): number;
  setNoDelay(on: boolean): number;
  close(): void;
}

interface Server {
  onconnection: ((status: number, client?: Handle) => void) | undefined;
  bind(host: string, port: number): number;
  listen(backlog: number): number;
}

const binding = (process as unknown as {
  binding(name: string): Record<string, unknown>;
}).binding;
const tcp = binding("tcp_wrap") as {
  TCP: new (type: number) => Server;
  constants: { SERVER: number };
  setupListenWrap(s: Server): void;
};
const state = (binding("stream_wrap") as { streamBaseState: Int32Array })
  .streamBaseState;

const CONNACK = Uint8Array.of(0x20, 0x02, 0x00, 0x00);
const PINGRESP = Uint8Array.of(0xd0, 0x00);
const READ_BUF = new Uint8Array(64 * 1024);
const REQ = { oncomplete(_status: number) {} };

const subscribers = new Set<Handle>();

/** One client: the bytes of an unfinished packet carried to the next read. */
function serve(h: Handle): void {
  h.setNoDelay(true);
  h.useUserBuffer(READ_BUF);
  let rest: Uint8Array | undefined;
  const end = () => {
    subscribers.delete(h);
    h.readStop();
    h.close();
  };
  h.onread = () => {
    const n = state[0]!;
    if (n < 0) return end();
    if (n === 0) return;
    let buf: Uint8Array = READ_BUF;
    let len = n;
    if (rest !== undefined) {
      buf = new Uint8Array(rest.length + n);
      buf.set(rest);
      buf.set(READ_BUF.subarray(0, n), rest.length);
      len = buf.length;
      rest = undefined;
    }
    let start = 0;
    let from = -1;
    let to = -1;
    while (start < len) {
      const plen = packetLength(buf, len, start);
      if (plen === 0) break;
      const type = buf[start]! >> 4;
      if (type === 3 && (buf[start]! & 0x06) === 0) {
        if (from < 0 || to !== start) {
          if (from >= 0) relay(buf.slice(from, to));
          from = start;
        }
        to = start + plen;
      } else if (type === 1) h.writeBuffer(REQ, CONNACK);
      else if (type === 8) {
        subscribers.add(h);
        h.writeBuffer(
          REQ,
          Uint8Array.of(0x90, 3, buf[start + 2]!, buf[start + 3]!, 0),
        );
      } else if (type === 12) h.writeBuffer(REQ, PINGRESP);
      else if (type === 14) {
        if (from >= 0) relay(buf.slice(from, to));
        return end();
      }
      start += plen;
    }
    if (from >= 0) relay(buf.slice(from, to));
    if (start < len) rest = buf.slice(start, len);
  };
  h.readStart();
}

function relay(data: Uint8Array): void {
  for (const s of subscribers) s.writeBuffer(REQ, data);
}

if (import.meta.main) {
  const { hostname, port } = listenArgs();
  const server = new tcp.TCP(tcp.constants.SERVER);
  if (server.bind(hostname, port) !== 0 || server.listen(511) !== 0) {
    console.error(`cannot listen on ${hostname}:${port}`);
    Deno.exit(1);
  }
  server.onconnection = (status, client) => {
    if (status === 0 && client !== undefined) serve(client);
  };
  tcp.setupListenWrap(server);
}
