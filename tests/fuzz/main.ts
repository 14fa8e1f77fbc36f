/**
 * `deno task fuzz`: seeded, time-bounded fuzzing of the decoder and of a
 * broker connection (see decoder_fuzz.ts and connection_fuzz.ts).
 *
 * ```sh
 * deno task fuzz -- --seed 42 --seconds 300 --target decoder|connection|all
 * deno task fuzz -- --target decoder --seed 42 --start 1234 --iterations 1
 * ```
 *
 * Options: `--seed N` (default: from the clock, printed), `--seconds S` per
 * target (default 60), `--iterations N` (instead of or with `--seconds`),
 * `--start I` (first iteration: replays one with `--iterations 1`),
 * `--keep-going` (collect every distinct failure instead of stopping at the
 * first), `--hang-seconds H` (how long an iteration may take before it
 * counts as a hang; default 20 for the decoder, 120 for the connection).
 *
 * Each target runs in a worker; a target that makes no progress for
 * `--hang-seconds` is stopped and reported as a hang with its iteration. It
 * prints the seed and iteration count, and for each failure the seed, the
 * iteration, what broke and a shrunk reproduction (bytes in hex); the exit
 * code is 1 when anything failed.
 *
 * @module
 */

import { decoderFixture, makeDecoderCase } from "./decoder_fuzz.ts";
import { connectionFixture, ConnectionFuzzer } from "./connection_fuzz.ts";
import type { WorkerMessage, WorkerRequest } from "./_worker.ts";

type Target = "decoder" | "connection";

interface Args {
  seed: number;
  seconds: number | undefined;
  iterations: number | undefined;
  start: number | undefined;
  targets: Target[];
  keepGoing: boolean;
  hangSeconds: number | undefined;
}

const USAGE =
  "usage: deno task fuzz -- [--seed N] [--seconds S] [--iterations N] [--start I] [--target decoder|connection|all] [--keep-going] [--hang-seconds H]";

function parseArgs(argv: string[]): Args {
  const args: Args = {
    seed: Date.now() % 0x7fffffff,
    seconds: undefined,
    iterations: undefined,
    start: undefined,
    targets: ["decoder", "connection"],
    keepGoing: false,
    hangSeconds: undefined,
  };
  const num = (name: string, v: string | undefined): number => {
    const n = Number(v);
    if (v === undefined || !Number.isFinite(n) || n < 0) {
      throw new Error(`${name} needs a number\n${USAGE}`);
    }
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const [flag, inline] = a.includes("=") ? a.split("=", 2) : [a, undefined];
    const value = () => inline ?? argv[++i];
    switch (flag) {
      case "--":
        break;
      case "--seed":
        args.seed = Math.floor(num(flag, value()));
        break;
      case "--seconds":
        args.seconds = num(flag, value());
        break;
      case "--iterations":
        args.iterations = Math.floor(num(flag, value()));
        break;
      case "--start":
        args.start = Math.floor(num(flag, value()));
        break;
      case "--hang-seconds":
        args.hangSeconds = num(flag, value());
        break;
      case "--keep-going":
        args.keepGoing = true;
        break;
      case "--target": {
        const t = value();
        if (t === "all") args.targets = ["decoder", "connection"];
        else if (t === "decoder" || t === "connection") args.targets = [t];
        else throw new Error(`unknown target ${t}\n${USAGE}`);
        break;
      }
      case "--help":
      case "-h":
        console.log(USAGE);
        Deno.exit(0);
        break;
      default:
        throw new Error(`unknown option ${a}\n${USAGE}`);
    }
  }
  if (args.seconds === undefined && args.iterations === undefined) {
    args.seconds = 60;
  }
  return args;
}

/** The input of an iteration, for a hang report. */
function inputOf(target: Target, seed: number, iteration: number): string {
  return target === "decoder"
    ? decoderFixture(makeDecoderCase(seed, iteration))
    : connectionFixture(ConnectionFuzzer.plan(seed, iteration));
}

/** Runs one target in a worker; resolves with the number of failures. */
function runTarget(target: Target, args: Args): Promise<number> {
  // [iteration, heartbeat]: shrinking a failure beats without iterating.
  const progress = new SharedArrayBuffer(8);
  const current = new Int32Array(progress);
  const first = args.start ?? 0;
  Atomics.store(current, 0, first);
  const worker = new Worker(new URL("./_worker.ts", import.meta.url), {
    type: "module",
  });
  const hangMs = (args.hangSeconds ?? (target === "decoder" ? 20 : 120)) *
    1000;
  const started = Date.now();
  let failures = 0;
  return new Promise((resolve) => {
    let last = -1;
    let lastChange = Date.now();
    const finish = (n: number) => {
      clearInterval(watchdog);
      worker.terminate();
      resolve(n);
    };
    const watchdog = setInterval(() => {
      const now = Atomics.load(current, 0);
      const beat = now * 65536 + Atomics.load(current, 1);
      if (beat !== last) {
        last = beat;
        lastChange = Date.now();
        return;
      }
      if (Date.now() - lastChange < hangMs) return;
      console.log(
        `FAIL ${target} seed ${args.seed} iteration ${now}: hang (no progress for ${
          hangMs / 1000
        } s)\ninput:\n${
          inputOf(target, args.seed, now)
        }\nreplay: deno task fuzz -- --target ${target} --seed ${args.seed} --start ${now} --iterations 1`,
      );
      finish(failures + 1);
    }, 1000);
    worker.onmessage = (e: MessageEvent<WorkerMessage>) => {
      const m = e.data;
      if (m.type === "failure") {
        failures++;
        const f = m.failure;
        console.log(
          `FAIL ${f.target} seed ${f.seed} iteration ${f.iteration}: ${f.kind}\n${f.message}\nreproduction: ${f.reproduction}\nreplay: deno task fuzz -- --target ${f.target} --seed ${f.seed} --start ${f.iteration} --iterations 1\n`,
        );
        return;
      }
      if (m.type === "crash") {
        console.log(
          `FAIL ${target} seed ${args.seed}: the fuzzer crashed\n${m.error}`,
        );
        finish(failures + 1);
        return;
      }
      const secs = ((Date.now() - started) / 1000).toFixed(1);
      console.log(
        `fuzz ${target}: seed ${args.seed}, ${m.iterations} iterations (from ${first}) in ${secs} s, ${m.failures} failure(s), heap ${
          m.heapMiB.toFixed(0)
        } MiB`,
      );
      for (const [w, n] of m.warnings) console.log(`  ${n} x ${w}`);
      finish(failures);
    };
    worker.onerror = (e) => {
      e.preventDefault();
      console.log(
        `FAIL ${target} seed ${args.seed}: worker error ${e.message}`,
      );
      finish(failures + 1);
    };
    const request: WorkerRequest = {
      target,
      seed: args.seed,
      keepGoing: args.keepGoing,
      progress,
      ...(args.seconds !== undefined ? { seconds: args.seconds } : {}),
      ...(args.iterations !== undefined ? { iterations: args.iterations } : {}),
      ...(args.start !== undefined ? { start: args.start } : {}),
    };
    worker.postMessage(request);
  });
}

if (import.meta.main) {
  let args: Args;
  try {
    args = parseArgs(Deno.args);
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(2);
  }
  console.log(
    `fuzz: seed ${args.seed}, targets ${args.targets.join(", ")}, ${
      args.seconds !== undefined ? `${args.seconds} s` : ""
    }${
      args.seconds !== undefined && args.iterations !== undefined ? " or " : ""
    }${
      args.iterations !== undefined ? `${args.iterations} iterations` : ""
    } each`,
  );
  let failed = 0;
  for (const t of args.targets) failed += await runTarget(t, args);
  Deno.exit(failed > 0 ? 1 : 0);
}
