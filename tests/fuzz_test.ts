/**
 * The fuzz targets (tests/fuzz/) in CI: what they once found, replayed
 * from fixtures (tests/fuzz/regressions.ts), and a short run of each target
 * with a fixed seed (a few seconds). Longer runs, other seeds:
 * `deno task fuzz -- --seed N --seconds 300`.
 */

import assert from "node:assert/strict";
import { MqttError, PacketDecoder } from "../codec/mod.ts";
import {
  checkDecoderCase,
  type DecoderCase,
  fuzzDecoder,
} from "./fuzz/decoder_fuzz.ts";
import {
  type ClientPlan,
  fuzzConnection,
  replayBatches,
} from "./fuzz/connection_fuzz.ts";
import { fromHex } from "./fuzz/_mutate.ts";
import {
  CONNECTION_REGRESSIONS,
  DECODER_REGRESSIONS,
} from "./fuzz/regressions.ts";

for (const row of DECODER_REGRESSIONS) {
  Deno.test(`PacketDecoder fuzz regression: ${row.name}`, () => {
    const c: DecoderCase = {
      side: row.side,
      version: row.version,
      maxPacketSize: row.maxPacketSize,
      chunks: row.chunks.map(fromHex),
      note: row.name,
    };
    assert.equal(checkDecoderCase(c)?.message, undefined);
    const d = new PacketDecoder({
      ...(row.version !== undefined ? { version: row.version } : {}),
      ...(row.maxPacketSize !== undefined
        ? { maxPacketSize: row.maxPacketSize }
        : {}),
    });
    let n = 0;
    let error: unknown;
    try {
      for (const chunk of c.chunks) d.push(chunk, () => n++);
    } catch (e) {
      error = e;
    }
    if (row.code !== undefined) {
      assert.ok(
        error instanceof MqttError,
        `fails with 0x${row.code.toString(16)}`,
      );
      assert.equal(error.reasonCode, row.code);
    } else assert.equal(error, undefined);
    if (row.packets !== undefined) assert.equal(n, row.packets);
  });
}

for (const row of CONNECTION_REGRESSIONS) {
  Deno.test(`Broker fuzz regression: ${row.name}`, async () => {
    const batches: ClientPlan[][] = row.batches.map((clients) =>
      clients.map((c) => ({
        version: c.version,
        writeSeed: c.writeSeed,
        abrupt: c.abrupt,
        reader: c.reader ?? "normal",
        segments: c.steps.map(fromHex),
        steps: c.steps.map((_, i) => `step ${i}`),
      }))
    );
    assert.equal((await replayBatches(row.seed, batches))?.message, undefined);
  });
}

Deno.test("PacketDecoder keeps its invariants on 2000 fuzzed inputs (fixed seed)", () => {
  const r = fuzzDecoder({ seed: 20260101, iterations: 2000 });
  assert.equal(r.iterations, 2000);
  assert.deepEqual(
    r.failures.map((f) => `${f.kind}: ${f.message}\n${f.reproduction}`),
    [],
  );
});

Deno.test("Broker keeps its invariants over 60 fuzzed batches of clients (fixed seed)", async () => {
  const r = await fuzzConnection({ seed: 20260101, iterations: 60 });
  assert.equal(r.iterations, 60);
  assert.deepEqual(
    r.failures.map((f) => `${f.kind}: ${f.message}\n${f.reproduction}`),
    [],
  );
});
