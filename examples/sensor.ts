/**
 * IoT temperature sensor: a fixed client id with `cleanStart: false` and a
 * session expiry, so the broker keeps its session (subscriptions and QoS 1
 * messages sent while it was away) between runs. It publishes a JSON reading
 * every `KITE_INTERVAL_MS` (default 5000) and obeys setpoint commands on
 * `sensors/<id>/set`, including those sent while it was offline.
 *
 * ```sh
 * deno run -A examples/sensor.ts                       # Ctrl-C to stop
 * deno run -A client/cli.ts pub -t sensors/kitchen/set -m 23 -q 1
 * deno run -A examples/sensor.ts                       # gets the setpoint
 * ```
 *
 * `KITE_EXAMPLE_COUNT` stops it after that many readings.
 *
 * @module
 */

import { Client } from "@kite/mqtt/client";

const id = Deno.env.get("KITE_SENSOR_ID") ?? "kitchen";
const interval = Number(Deno.env.get("KITE_INTERVAL_MS") ?? 5000);
const count = Number(Deno.env.get("KITE_EXAMPLE_COUNT") ?? Infinity);

const client = new Client({
  host: Deno.env.get("KITE_HOST") ?? "127.0.0.1",
  port: Number(Deno.env.get("KITE_PORT") ?? 1883),
  clientId: `sensor-${id}`,
  cleanStart: false, // resume the session if the broker still has it
  sessionExpiryInterval: 3600, // v5: keep it for an hour after we go away
  will: {
    topic: `sensors/${id}/status`,
    payload: "offline",
    retain: true,
    qos: 1,
  },
});

let setpoint = 21;
// Register the handler before connecting: a resumed session may deliver
// queued messages right after CONNACK.
client.onMessage((m) => {
  if (m.topic === `sensors/${id}/set`) {
    setpoint = Number(m.payloadText);
    console.log(
      `setpoint is now ${setpoint} (received${m.dup ? " again" : ""})`,
    );
  }
});

const connack = await client.connect();
console.log(`connected, session present: ${connack.sessionPresent}`);
if (!connack.sessionPresent) {
  // A new session: subscribe once; the broker remembers it from now on.
  await client.subscribe(`sensors/${id}/set`, 1);
  console.log(`subscribed to sensors/${id}/set`);
}
await client.publish(`sensors/${id}/status`, "online", {
  qos: 1,
  retain: true,
});

let temp = setpoint;
for (let n = 1; n <= count; n++) {
  temp += (setpoint - temp) * 0.3 + (Math.random() - 0.5) * 0.2;
  const reading = {
    sensor: id,
    temp: Number(temp.toFixed(2)),
    setpoint,
    ts: Date.now(),
  };
  await client.publish(`sensors/${id}/temp`, JSON.stringify(reading), 1);
  console.log(`published ${JSON.stringify(reading)}`);
  if (n < count) await new Promise((r) => setTimeout(r, interval));
}

// A normal disconnect: no will; the session stays for sessionExpiryInterval.
await client.publish(`sensors/${id}/status`, "offline", {
  qos: 1,
  retain: true,
});
await client.disconnect();
console.log("disconnected, session kept");
