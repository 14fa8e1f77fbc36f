/**
 * Checking the `cluster` setting (private): a mapping with `url` (a NATS
 * URL or a list of them), `nodeId` and `name` (tokens usable in NATS
 * subjects and JetStream names). A problem is one line naming the key.
 *
 * @module
 */

import { describeValue, didYouMean, toCamel } from "./_suggest.ts";
import type { ClusterOptions } from "./types.ts";

const KEYS = ["url", "nodeId", "name"] as const;

/** Letters, digits, `-` and `_`: safe in NATS subjects, streams, buckets. */
const TOKEN = /^[A-Za-z0-9_-]{1,64}$/;

/** What is wrong with one NATS URL, or undefined. */
export function natsUrlProblem(url: string): string | undefined {
  const text = url.includes("://") ? url : `nats://${url}`;
  let u: URL;
  try {
    u = new URL(text);
  } catch {
    return `is not a URL (nats://host:4222), got ${JSON.stringify(url)}`;
  }
  if (!["nats:", "tls:", "ws:", "wss:"].includes(u.protocol)) {
    return `must be a nats:// URL, got ${JSON.stringify(url)}`;
  }
  if (u.hostname === "") return `needs a host, got ${JSON.stringify(url)}`;
  return undefined;
}

/** What is wrong with a node id or cluster name, or undefined. */
export function tokenProblem(value: unknown): string | undefined {
  if (typeof value !== "string") {
    return `must be a string, got ${describeValue(value)}`;
  }
  if (!TOKEN.test(value)) {
    return `must be 1 to 64 letters, digits, "-" or "_", got ${
      JSON.stringify(value)
    }`;
  }
  if (value.startsWith("_kite")) return `must not start with "_kite"`;
  return undefined;
}

/**
 * Checks a `cluster` value: the `ClusterOptions` (camelCase keys, `url`
 * always a list), or the problem.
 */
export function checkCluster(
  value: unknown,
): { ok: true; value: ClusterOptions } | { ok: false; error: string } {
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return {
      ok: false,
      error: `must be a mapping (url, nodeId, name), got ${
        describeValue(value)
      }`,
    };
  }
  const out: ClusterOptions = {};
  for (const [raw, v] of Object.entries(value)) {
    const key = toCamel(raw);
    if (!(KEYS as readonly string[]).includes(key)) {
      return {
        ok: false,
        error: `has an unknown key "${raw}"${didYouMean(raw, KEYS)}`,
      };
    }
    if (key === "url") {
      const list = typeof v === "string" ? [v] : v;
      if (
        !Array.isArray(list) || !list.every((u) => typeof u === "string")
      ) {
        return {
          ok: false,
          error: `url must be a NATS URL or a list of them, got ${
            describeValue(v)
          }`,
        };
      }
      for (const u of list as string[]) {
        const problem = natsUrlProblem(u);
        if (problem !== undefined) {
          return { ok: false, error: `url ${problem}` };
        }
      }
      out.url = [...list as string[]];
      continue;
    }
    const problem = tokenProblem(v);
    if (problem !== undefined) return { ok: false, error: `${raw} ${problem}` };
    out[key as "nodeId" | "name"] = v as string;
  }
  return { ok: true, value: out };
}
