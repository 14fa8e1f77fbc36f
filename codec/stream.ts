/**
 * Web stream wrappers around the codec: bytes to packets and packets to
 * bytes.
 *
 * @module
 */

import type { Packet, ProtocolVersion } from "./packet.ts";
import { type DecoderOptions, PacketDecoder } from "./decode.ts";
import { encode } from "./encode.ts";
import { MalformedPacketError } from "./errors.ts";

/**
 * Decodes a byte stream into packets. Packets may be split at any byte and
 * many may arrive in one chunk; decoding errors ({@linkcode MqttError})
 * error the stream. A stream that ends inside a packet errors with a
 * MalformedPacketError. Payloads are views of the chunks (see decode.ts), so
 * the writer must not reuse a chunk's memory after writing it.
 *
 * @example
 * ```ts
 * import { PacketDecoderStream } from "@kite/mqtt/codec";
 * const bytes = ReadableStream.from([new Uint8Array([0xd0, 0x00])]);
 * for await (const packet of bytes.pipeThrough(new PacketDecoderStream({ version: 4 }))) {
 *   console.log(packet.type); // "pingresp"
 * }
 * ```
 */
export class PacketDecoderStream extends TransformStream<Uint8Array, Packet> {
  /** The decoder, to read or set `version` and `maxPacketSize`. */
  readonly decoder: PacketDecoder;

  /** Creates the stream; options as for {@linkcode PacketDecoder}. */
  constructor(options?: DecoderOptions) {
    const decoder = new PacketDecoder(options);
    let enqueue: (p: Packet) => void = () => {};
    super({
      start(controller) {
        enqueue = (p) => controller.enqueue(p);
      },
      transform(chunk) {
        decoder.push(chunk, enqueue);
      },
      flush() {
        if (decoder.buffered > 0) {
          throw new MalformedPacketError(
            `stream ended inside a packet (${decoder.buffered} bytes buffered)`,
          );
        }
      },
    });
    this.decoder = decoder;
  }
}

/** Options for {@linkcode PacketEncoderStream}. */
export interface EncoderStreamOptions {
  /** Protocol version (default 4); a CONNECT written through sets it. */
  version?: ProtocolVersion;
}

/**
 * Encodes packets into bytes, one chunk per packet. Writing a CONNECT sets
 * `version` to its protocol version.
 *
 * @example
 * ```ts
 * import { PacketEncoderStream } from "@kite/mqtt/codec";
 * const enc = new PacketEncoderStream({ version: 5 });
 * const writer = enc.writable.getWriter();
 * writer.write({ type: "pingreq" });
 * writer.close();
 * for await (const bytes of enc.readable) console.log(bytes); // [192, 0]
 * ```
 */
export class PacketEncoderStream extends TransformStream<Packet, Uint8Array> {
  /** Protocol version used for packets other than CONNECT. */
  version: ProtocolVersion;

  /** Creates the stream. */
  constructor(options?: EncoderStreamOptions) {
    const self = {} as { s: PacketEncoderStream };
    super({
      transform(packet, controller) {
        const s = self.s;
        if (packet.type === "connect") s.version = packet.protocolVersion;
        controller.enqueue(encode(packet, { version: s.version }));
      },
    });
    self.s = this;
    this.version = options?.version ?? 4;
  }
}
