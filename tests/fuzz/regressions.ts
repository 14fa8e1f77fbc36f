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
  /** The clients, run concurrently: each step's bytes in hex, in order. */
  clients: {
    version: ProtocolVersion;
    /** Written as the fuzzer wrote them (chunking and pauses). */
    writeSeed: number;
    abrupt: boolean;
    steps: string[];
  }[];
}

/** Decoder bugs. */
export const DECODER_REGRESSIONS: DecoderRegression[] = [];

/** Broker bugs. */
export const CONNECTION_REGRESSIONS: ConnectionRegression[] = [];
