/**
 * Command and control: a gateway for several devices subscribes to
 * `devices/+/command`, parses each command as JSON, acts on it, and
 * publishes the device's status (retained) to `devices/<id>/status`.
 *
 * ```sh
 * deno run -A examples/command_device.ts
 * deno run -A client/cli.ts pub -t devices/lamp-1/command -m '{"action":"on"}'
 * deno run -A client/cli.ts sub -t 'devices/+/status' -v
 * ```
 *
 * `KITE_EXAMPLE_COUNT` stops it after that many commands.
 *
 * @module
 */

import { Client, type Message } from "@kite/mqtt/client";

type Command =
  | { action: "on" | "off" | "toggle" }
  | { action: "dim"; level: number };
interface Status {
  on: boolean;
  level: number;
  updated: string;
  error?: string;
}

const count = Number(Deno.env.get("KITE_EXAMPLE_COUNT") ?? Infinity);
const client = new Client({
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
  clientId: "command-gateway",
});
const devices = new Map<string, Status>();

await client.connect();
let handled = 0;
const { promise: finished, resolve } = Promise.withResolvers<void>();
await client.subscribe("devices/+/command", 1, async (m) => {
  await handle(m);
  if (++handled >= count) resolve();
});
console.log("ready: listening on devices/+/command");

async function handle(m: Message): Promise<void> {
  const id = m.topic.split("/")[1]!;
  const status = devices.get(id) ?? { on: false, level: 100, updated: "" };
  let cmd: Command;
  try {
    cmd = parse(m.json());
  } catch (e) {
    const error = e instanceof Error ? e.message : String(e);
    console.log(`${id}: bad command ${m.payloadText}: ${error}`);
    await report(id, { ...status, error });
    return;
  }
  switch (cmd.action) {
    case "on":
      status.on = true;
      break;
    case "off":
      status.on = false;
      break;
    case "toggle":
      status.on = !status.on;
      break;
    case "dim":
      status.level = cmd.level;
      break;
  }
  devices.set(id, status);
  console.log(`${id}: ${cmd.action} -> on=${status.on} level=${status.level}`);
  await report(id, status);
}

function parse(v: unknown): Command {
  const c = v as { action?: unknown; level?: unknown };
  if (c?.action === "on" || c?.action === "off" || c?.action === "toggle") {
    return { action: c.action };
  }
  if (
    c?.action === "dim" && typeof c.level === "number" && c.level >= 0 &&
    c.level <= 100
  ) {
    return { action: "dim", level: c.level };
  }
  throw new Error(
    'expected {"action":"on"|"off"|"toggle"} or {"action":"dim","level":0..100}',
  );
}

async function report(id: string, status: Status): Promise<void> {
  status.updated = new Date().toISOString();
  // Retained, so a dashboard that subscribes later sees the current state.
  await client.publish(`devices/${id}/status`, JSON.stringify(status), {
    qos: 1,
    retain: true,
  });
}

await finished;
await client.disconnect();
console.log(`handled ${handled} commands`);
