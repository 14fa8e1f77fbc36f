/**
 * Where the broker allocates, per message: a broker in this process, a
 * load scenario (bench/load.ts) in a subprocess against it, and V8's
 * sampling heap profiler (through `node:inspector`, counting objects a
 * scavenge or a mark-compact already collected) while the load runs. The
 * sampled bytes are divided by the PUBLISH packets the broker received in
 * that time, by call site (the allocating function and two callers; a
 * function the optimizer inlined counts as its caller).
 *
 * Bytes per message, not time: the figure does not depend on what else the
 * machine is doing, so two commits can be compared on a busy machine.
 * Fewer bytes mean fewer scavenges, each a pause of the whole broker.
 *
 * ```sh
 * deno run -A bench/alloc_profile.ts --scenario latency --seconds 6
 * ```
 *
 * @module
 */

import { Session } from "node:inspector";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { Broker } from "../broker/mod.ts";
import { freePort } from "./_brokers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    scenario: { type: "string", default: "latency" },
    seconds: { type: "string", default: "6" },
    top: { type: "string", default: "25" },
    interval: { type: "string", default: "128" },
  },
});
const SECONDS = Number(values.seconds);
const LOAD = fileURLToPath(new URL("./load.ts", import.meta.url));

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}
interface ProfileNode {
  callFrame: CallFrame;
  selfSize: number;
  children: ProfileNode[];
}

const port = freePort();
const broker = new Broker({ port });
await broker.listen();

const session = new Session();
session.connect();
const post = <T>(method: string, params: object = {}): Promise<T> =>
  new Promise((resolve, reject) =>
    session.post(
      method,
      params,
      (err: Error | null, r: unknown) => err ? reject(err) : resolve(r as T),
    )
  );

// The load runs 2 s longer than the sampling, which starts after its warm-up.
const load = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    LOAD,
    "--port",
    String(port),
    "--scenario",
    values.scenario,
    "--warmup",
    "2",
    "--duration",
    String(SECONDS + 2),
  ],
  stdout: "piped",
  stderr: "inherit",
}).spawn();
const ready = Date.now() + 10_000;
while (broker.connectedClients === 0 && Date.now() < ready) {
  await new Promise((r) => setTimeout(r, 50));
}
await new Promise((r) => setTimeout(r, 2_000));

const before = broker.stats.messagesReceived;
await post("HeapProfiler.startSampling", {
  samplingInterval: Number(values.interval),
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
await new Promise((r) => setTimeout(r, SECONDS * 1000));
const { profile } = await post<{ profile: { head: ProfileNode } }>(
  "HeapProfiler.stopSampling",
);
const messages = broker.stats.messagesReceived - before;

const bySite = new Map<string, number>();
let total = 0;
const name = (f: CallFrame) =>
  `${f.functionName || "(anonymous)"} ${
    f.url.replace(/^.*\//, "") || "(native)"
  }:${f.lineNumber + 1}`;
const walk = (node: ProfileNode, callers: string[]) => {
  const here = [name(node.callFrame), ...callers].slice(0, 3);
  total += node.selfSize;
  const key = here.join(" < ");
  bySite.set(key, (bySite.get(key) ?? 0) + node.selfSize);
  for (const c of node.children) walk(c, here);
};
walk(profile.head, []);

const output = await load.output();
console.log(new TextDecoder().decode(output.stdout).trimEnd());
console.log(
  `\n${messages} messages in ${SECONDS} s; ${
    (total / messages).toFixed(0)
  } bytes allocated per message (sampled; line numbers are of the transpiled JS)`,
);
for (
  const [site, bytes] of [...bySite].sort((a, b) => b[1] - a[1]).slice(
    0,
    Number(values.top),
  )
) {
  console.log(`${(bytes / messages).toFixed(0).padStart(6)} B  ${site}`);
}
session.disconnect();
await broker.close();
