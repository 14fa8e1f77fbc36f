/**
 * The CPU time Kite spends answering one `GET /metrics`, measured from the
 * broker process's own CPU counters (Linux `/proc/PID/stat`): Kite
 * (broker/main.ts, `--http-port`) with `--clients` idle MQTT clients
 * connected, scraped `--scrapes` times back to back; the broker's CPU time
 * over those scrapes divided by their number. At one scrape a second, the
 * share of a core that scraping costs is that time per second.
 *
 * ```sh
 * deno run -A bench/scrape_cost.ts --clients 1000 --scrapes 1000
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { freePort } from "./_brokers.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    clients: { type: "string", default: "1000" },
    scrapes: { type: "string", default: "1000" },
  },
});
const CLIENTS = Number(values.clients);
const SCRAPES = Number(values.scrapes);
const MAIN = fileURLToPath(new URL("../broker/main.ts", import.meta.url));

const port = freePort();
const http = freePort();
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    MAIN,
    "--port",
    String(port),
    "--http-port",
    String(http),
    "--enable-persistence=false",
    "--log-level",
    "warning",
    "--sys-interval",
    "0",
  ],
  stdin: "null",
  stdout: "null",
  stderr: "null",
}).spawn();

/** User + system CPU time of the broker so far, ms. */
function cpuMs(): number {
  const stat = Deno.readTextFileSync(`/proc/${child.pid}/stat`);
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10; // clock ticks of 10 ms
}

async function scrape(): Promise<number> {
  const r = await fetch(`http://127.0.0.1:${http}/metrics`);
  return (await r.text()).length;
}

try {
  const deadline = Date.now() + 20_000;
  while (true) {
    try {
      await scrape();
      break;
    } catch (e) {
      if (Date.now() > deadline) throw e;
      await new Promise((r) => setTimeout(r, 50)); // poll for start-up
    }
  }
  // Idle clients, each with a session: a scrape walks the sessions.
  const conns: Deno.TcpConn[] = [];
  for (let i = 0; i < CLIENTS; i++) {
    const c = await Deno.connect({ hostname: "127.0.0.1", port });
    const id = new TextEncoder().encode(`idle-${i}`);
    const body = [0, 4, 77, 81, 84, 84, 4, 2, 0, 0, 0, id.length, ...id];
    await c.write(new Uint8Array([0x10, body.length, ...body]));
    await c.read(new Uint8Array(4)); // CONNACK
    conns.push(c);
  }
  for (let i = 0; i < 50; i++) await scrape(); // compile the paths first
  const before = cpuMs();
  const t0 = performance.now();
  let bytes = 0;
  for (let i = 0; i < SCRAPES; i++) bytes += await scrape();
  const wall = performance.now() - t0;
  const cpu = cpuMs() - before;
  console.log(
    `${SCRAPES} scrapes of ${
      Math.round(bytes / SCRAPES)
    } bytes with ${CLIENTS} clients: broker CPU ${cpu} ms, ${
      (cpu / SCRAPES).toFixed(3)
    } ms per scrape (${
      (cpu / SCRAPES / 10).toFixed(4)
    }% of a core at one scrape a second); ${
      (wall / SCRAPES).toFixed(2)
    } ms per scrape wall time`,
  );
  for (const c of conns) c.close();
} finally {
  child.kill("SIGTERM");
  await child.status;
}
