/**
 * What the fuzzers found, as fixtures that tests/fuzz_test.ts replays: the
 * (shrunk) failing input of each bug, byte for byte as the fuzzer printed
 * it. A decoder row must pass every decoder invariant (and fail with
 * `code`, or yield `packets` packets, when given); a connection row must
 * run on a fresh broker with every connection invariant kept.
 *
 * @module
 */

import type { ProtocolVersion } from "../../codec/mod.ts";

/** A decoder input that once broke an invariant. */
export interface DecoderRegression {
  /** What was wrong (and where it was fixed). */
  name: string;
  side: "server" | "client";
  version: ProtocolVersion | undefined;
  maxPacketSize: number | undefined;
  /** Each chunk in hex, pushed in order. */
  chunks: string[];
  /** The reason code it must fail with, if it must fail. */
  code?: number;
  /** How many packets it must yield (before failing, if it fails). */
  packets?: number;
}

/** A broker input that once broke an invariant. */
export interface ConnectionRegression {
  /** What was wrong (and where it was fixed). */
  name: string;
  /** The run's seed (it picks the broker's options). */
  seed: number;
  /**
   * Batches run one after the other on one broker (sessions carried over),
   * each a list of clients run concurrently.
   */
  batches: ClientFixture[][];
}

/** One client of a batch: each step's bytes in hex, in order. */
export interface ClientFixture {
  version: ProtocolVersion;
  /** Written as the fuzzer wrote them (chunking and pauses). */
  writeSeed: number;
  abrupt: boolean;
  steps: string[];
}

/** Decoder bugs. */
export const DECODER_REGRESSIONS: DecoderRegression[] = [
  {
    // Seed 1, iteration 982: a PUBLISH (0x33) as the first packet on the
    // server side was decoded (as 3.1.1) and yielded, though the decoder
    // expects a CONNECT first [MQTT-3.1.0-1]; every other type was refused.
    // Fixed in checkFirstByte (codec/_decode_body.ts).
    name: "a PUBLISH before CONNECT is a protocol error on the server side",
    side: "server",
    version: undefined,
    maxPacketSize: undefined,
    chunks: [
      "3330000451545405c0bee100000fc3a92d2d305a305ff09f8ca130782d000f61e697a55ff09f8ca130f09f8ca1620001bd00",
    ],
    code: 0x82,
    packets: 0,
  },
  {
    // Seed 1, iteration 1842: PUBREC with reason code 0x00 spelt out and no
    // properties decoded as { reasonCode: 0 }, which encodes to the short
    // form, which decodes without it: not the same packet. Fixed in
    // reasonTail (codec/_decode_body.ts): absent means 0x00.
    name: "a v5 ack with reason code 0x00 and no properties round trips",
    side: "client",
    version: 5,
    maxPacketSize: undefined,
    chunks: ["50036f9500"],
    packets: 1,
  },
  {
    // The same with an empty property block (PUBCOMP).
    name:
      "a v5 ack with reason code 0x00 and an empty property block round trips",
    side: "client",
    version: 5,
    maxPacketSize: undefined,
    chunks: ["7004630e0000"],
    packets: 1,
  },
];

/** Broker bugs. */
export const CONNECTION_REGRESSIONS: ConnectionRegression[] = [
  {
    // Seed 1, batch 0: a CONNECT whose `authenticate` hook answers later,
    // then bytes that do not decode. The connection ended while the hook
    // was pending (end() drops the backlog); when the hook settled,
    // Connection.#drain read the dropped backlog: TypeError, an unhandled
    // rejection. Fixed in #drain (broker/connection/connection.ts).
    name: "a connection that ends while an async hook is pending",
    seed: 1,
    batches: [[{
      version: 5,
      writeSeed: 1933943431,
      abrupt: true,
      steps: [
        // CONNECT v5, client id fz3, user name "slow" (the hook waits).
        "106200044d51545405a60000032200040003667a333501000800055f5fe697a52600055af09f8ca1000a20f09f8ca124c3a962622600000006e697a530615f26000362615f0004e697a52d0004667a2f62000b1bd9ce5a1986b59f1490ab0004736c6f77",
        // A SUBSCRIBE with a corrupted length: malformed.
        "822edbc10c2600000002786226000000000004",
        "311a000006080000230009b59d530432a4ad14850a32e9d5c71f9f61",
        "c000",
      ],
    }]],
  },
  {
    // Seed 100, batch 1254: a v5 CONNECT waiting for its `authenticate`
    // hook, then a second CONNECT with an unknown protocol name. The
    // decoder's 0x84 was answered as if it were the first CONNECT: CONNACK
    // 0x01 in the 3.1.1 form, which a v5 client cannot decode. Fixed in
    // Connection.#fail (broker/connection/connection.ts): the 3.1.1 answer
    // only while no CONNECT was read; this client gets a v5 CONNACK 0x84.
    name: "a second CONNECT with a bad protocol name before CONNACK",
    seed: 100,
    batches: [[{
      version: 5,
      writeSeed: 1000121581,
      abrupt: false,
      steps: [
        // CONNECT v5, client id fz3, user name "slow".
        "103100044d51545405c2000017111b23b66f170026000000085af09f8ca1245f242200010003667a330004736c6f770002054b",
        // A mutated PUBLISH that reads as a CONNECT for protocol "fz/b".
        "103c0004667a2f62000210030000080000260004f09f8ca100016234831082bc6ed0da951b1c7ca4ec6f3507b791848581c3fd57ad56d89d7bf60fd8812802fd871c",
        "c000",
      ],
    }]],
  },
];
