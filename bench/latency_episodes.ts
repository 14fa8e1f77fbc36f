/**
 * Where a latency run's tail comes from: reads the per-message files that
 * bench/latency_probe.c writes with `--dump` (bench/c_latency.ts
 * `--dump-dir`), and prints for each file how many messages were slower
 * than a few thresholds and the episodes of slow messages: runs of them
 * closer than `--gap` ms to each other, with when each began (from the
 * first measured message's due time), the time since the one before, how
 * long it lasted, how many messages it held and its slowest.
 *
 * An episode at a fixed period, in every broker's runs, is the machine's;
 * one in a single broker's runs only is that broker's (see bench/README.md,
 * "The tail's floor on this VM").
 *
 * ```sh
 * deno run -A bench/c_latency.ts --scenarios latency --repeat 3 --dump-dir /tmp/lat
 * deno run -A bench/latency_episodes.ts --rate 10000 /tmp/lat/latency-*.txt
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fmt } from "./_compare_table.ts";
import { Histogram } from "./_latency.ts";

/** One measured message: sequence number, latency from due and from write (ns). */
export interface DumpedMessage {
  seq: number;
  latencyNs: number;
  fromWriteNs: number;
}

/** Parses a `--dump` file: one `seq latency fromWrite` line per message. */
export function parseDump(text: string): DumpedMessage[] {
  const out: DumpedMessage[] = [];
  for (const line of text.split("\n")) {
    if (line === "") continue;
    const [seq, lat, fromWrite] = line.split(" ").map(Number);
    if (
      !Number.isFinite(seq) || !Number.isFinite(lat) ||
      !Number.isFinite(fromWrite)
    ) throw new Error(`not a latency dump line: "${line}"`);
    out.push({ seq: seq!, latencyNs: lat!, fromWriteNs: fromWrite! });
  }
  return out;
}

/** A run of slow messages. */
export interface Episode {
  /** When the first one was due, ms after the first measured message's due time. */
  startMs: number;
  /** From the first one's due time to the last one's, ms. */
  lengthMs: number;
  messages: number;
  maxUs: number;
}

/**
 * The episodes of messages slower than `overUs`: a slow message due less
 * than `gapMs` after the last one joins its episode.
 */
export function episodes(
  messages: DumpedMessage[],
  o: { rate: number; overUs: number; gapMs: number },
): Episode[] {
  if (messages.length === 0) return [];
  let first = messages[0]!.seq;
  for (const m of messages) if (m.seq < first) first = m.seq;
  const out: Episode[] = [];
  let lastMs = -Infinity;
  for (const m of messages) {
    const us = m.latencyNs / 1000;
    if (us <= o.overUs) continue;
    const at = (m.seq - first) * 1000 / o.rate;
    const cur = out[out.length - 1];
    if (cur !== undefined && at - lastMs < o.gapMs) {
      cur.lengthMs = at - cur.startMs;
      cur.messages++;
      if (us > cur.maxUs) cur.maxUs = us;
    } else out.push({ startMs: at, lengthMs: 0, messages: 1, maxUs: us });
    lastMs = at;
  }
  return out;
}

/** How many messages took longer than each threshold (µs). */
export function countOver(
  messages: DumpedMessage[],
  thresholdsUs: number[],
): number[] {
  return thresholdsUs.map((t) =>
    messages.reduce((n, m) => m.latencyNs > t * 1000 ? n + 1 : n, 0)
  );
}

function main(): number {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: {
      rate: { type: "string", default: "10000" },
      over: { type: "string", default: "1000" },
      gap: { type: "string", default: "5" },
      list: { type: "boolean", default: false },
    },
  });
  if (positionals.length === 0) {
    console.error(
      "usage: deno run -A bench/latency_episodes.ts [--rate 10000] [--over 1000] " +
        "[--gap 5] [--list] FILE...",
    );
    return 2;
  }
  const o = {
    rate: Number(values.rate),
    overUs: Number(values.over),
    gapMs: Number(values.gap),
  };
  const thresholds = [300, 500, 1000, 2000];
  for (const file of positionals) {
    const msgs = parseDump(Deno.readTextFileSync(file));
    const hist = new Histogram();
    for (const m of msgs) hist.record(m.latencyNs / 1000);
    const eps = episodes(msgs, o);
    const over = countOver(msgs, thresholds);
    console.log(
      `${file}: ${fmt(msgs.length)} messages, p99 ${
        fmt(hist.quantile(0.99))
      } ` +
        `p99.9 ${fmt(hist.quantile(0.999))} max ${fmt(hist.max)} µs; over ${
          thresholds.map((t, i) => `${t} µs: ${over[i]}`).join(", ")
        }; ${eps.length} episodes over ${o.overUs} µs`,
    );
    if (!values.list) continue;
    let prev: number | undefined;
    for (const e of eps) {
      console.log(
        `  at ${e.startMs.toFixed(1)} ms (+${
          prev === undefined ? "0" : (e.startMs - prev).toFixed(1)
        }), ${e.lengthMs.toFixed(1)} ms long, ${e.messages} messages, max ${
          Math.round(e.maxUs)
        } µs`,
      );
      prev = e.startMs;
    }
  }
  return 0;
}

if (import.meta.main) Deno.exit(main());
