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
  /** How it reads (default "normal"). */
  reader?: "normal" | "slow" | "mute";
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
  {
    // Seed 5005, batches 2701-2702 (the broker kept sessions between
    // them): fz2 (3.1.1, persistent) subscribes to # at QoS 1 and gets
    // messages it never acknowledges; it reconnects as v5 with Receive
    // Maximum 2 and the session resumes. Session.attach resent every
    // message in flight at once (4 to 8 of them), over the client's
    // Receive Maximum [MQTT-3.3.4-7]. Fixed in Session.attach/pump
    // (broker/session.ts): at most Receive Maximum at once, same packet
    // ids and order, the rest as acknowledgements make room.
    name: "a resumed session resends no more than the new Receive Maximum",
    seed: 5005,
    batches: [
      [{
        version: 5,
        writeSeed: 580412906,
        abrupt: false,
        steps: [
          // CONNECT v5 fz1.
          "104a00044d51545405c645010821317727ffffffff0003667a31020101000178000dbb5b1c51f1834f4adaea878f91001030f09f8ca16120f09f8ca17824e697a50009dcf77d387f13f05604",
          // PUBLISH QoS 2 (DUP) to "x".
          "3c4500017800011f26000820e697a530e697a50005f09f8ca1242600022d7800066162f09f8ca113800c7187ffdbffcbf2d0d40c4fc0af94d78703ad6f0798bbc2ae6a99dd27b7",
          "c000",
        ],
      }, {
        version: 4,
        writeSeed: 1573514379,
        abrupt: false,
        steps: [
          // CONNECT 3.1.1 fz2, clean session 0, user name "slow".
          "101500044d5154540480003c0003667a320004736c6f77",
          // PUBLISH QoS 2 retained to "x".
          "35130001780004a22dd83d086359d018d11300a712",
          // SUBSCRIBE # and $share/h/# at QoS 1.
          "8213c9b300012301000a2473686172652f682f2301",
          "b0f32fc1cdf7757cf2ead3",
          "c000",
        ],
      }],
      [{
        version: 5,
        writeSeed: 894017356,
        abrupt: false,
        steps: [
          // CONNECT v5 fz2, clean start 0, Receive Maximum 2.
          "102700044d515454053400000821000227ffffffff0003667a32000006736c6f772f61000402dbf3fb",
          "32340004667a2f6100021803000008000f242d61c3a930f09f8ca16162c3a924230007c2d8b3c18ccd9b00dfa048b883cec33e70f2",
          "c000",
        ],
      }],
    ],
  },
];
