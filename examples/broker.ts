/**
 * Basic broker: a Kite MQTT broker on `KITE_PORT` (default 1883), in
 * memory, until Ctrl-C (or for `KITE_EXAMPLE_MS` milliseconds).
 *
 * ```sh
 * deno run -A examples/broker.ts
 * KITE_PORT=1884 deno run -A examples/broker.ts
 * ```
 *
 * @module
 */

import { Broker } from "@kite/mqtt/broker";

const port = Number(Deno.env.get("KITE_PORT") ?? 1883);
const runMs = Number(Deno.env.get("KITE_EXAMPLE_MS") ?? 0); // 0: until Ctrl-C

const broker = new Broker({
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port, // 0 picks a free port
  // Every option has a default; a few you may want to change:
  maxPacketSize: 256 * 1024,
  sessionExpiryInterval: 3600,
  // Hooks decide who may connect, publish and subscribe:
  authorizePublish: (_client, topic) =>
    topic.startsWith("forbidden/") ? 0x87 : 0,
});
await broker.listen();
console.log(`broker listening on ${broker.addr.hostname}:${broker.addr.port}`);

// Stop on Ctrl-C / SIGTERM, or after KITE_EXAMPLE_MS.
const { promise: stop, resolve } = Promise.withResolvers<string>();
const signals: Deno.Signal[] = Deno.build.os === "windows"
  ? ["SIGINT"]
  : ["SIGINT", "SIGTERM"];
const onSignal = () => resolve("signal");
for (const s of signals) Deno.addSignalListener(s, onSignal);
const timer = runMs > 0 ? setTimeout(() => resolve("time is up"), runMs) : 0;

const why = await stop;
clearTimeout(timer);
for (const s of signals) Deno.removeSignalListener(s, onSignal);
console.log(`closing (${why}): ${broker.connectedClients} clients connected`);
await broker.close(); // v5 clients get DISCONNECT 0x8B (server shutting down)
console.log("broker closed");
