/**
 * Runs one fuzz target inside a worker for tests/fuzz/main.ts, so that the
 * main thread can stop a target stuck in a synchronous loop. It writes the
 * current iteration into the shared progress array, posts each failure as
 * it is found, and posts the result at the end.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { type FoundFailure, fuzzDecoder } from "./decoder_fuzz.ts";
import { fuzzConnection } from "./connection_fuzz.ts";

/** What main.ts asks a worker to run. */
export interface WorkerRequest {
  target: "decoder" | "connection";
  seed: number;
  seconds?: number;
  iterations?: number;
  start?: number;
  keepGoing: boolean;
  progress: SharedArrayBuffer;
}

/** What a worker posts back. */
export type WorkerMessage =
  | { type: "failure"; failure: FoundFailure }
  | {
    type: "done";
    iterations: number;
    failures: number;
    warnings: [string, number][];
    heapMiB: number;
  }
  | { type: "crash"; error: string };

self.onmessage = async (e: MessageEvent<WorkerRequest>) => {
  const r = e.data;
  const post = (m: WorkerMessage) => self.postMessage(m);
  const options = {
    seed: r.seed,
    keepGoing: r.keepGoing,
    progress: new Int32Array(r.progress),
    onFailure: (failure: FoundFailure) => post({ type: "failure", failure }),
    ...(r.seconds !== undefined ? { seconds: r.seconds } : {}),
    ...(r.iterations !== undefined ? { iterations: r.iterations } : {}),
    ...(r.start !== undefined ? { start: r.start } : {}),
  };
  try {
    if (r.target === "decoder") {
      const res = fuzzDecoder(options);
      post({
        type: "done",
        iterations: res.iterations,
        failures: res.failures.length,
        warnings: [],
        heapMiB: Deno.memoryUsage().heapUsed / 2 ** 20,
      });
    } else {
      const res = await fuzzConnection(options);
      post({
        type: "done",
        iterations: res.iterations,
        failures: res.failures.length,
        warnings: [...res.warnings],
        heapMiB: Deno.memoryUsage().heapUsed / 2 ** 20,
      });
    }
  } catch (err) {
    post({
      type: "crash",
      error: err instanceof Error ? err.stack ?? err.message : String(err),
    });
  }
};
