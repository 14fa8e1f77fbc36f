/**
 * Keeps the load tool's TLS and WebSocket transports working
 * (`deno task compare -- --transport tls|ws`): fan-in and QoS 1 for half a
 * second each against an in-process Kite with an mqtts and a ws listener.
 */

import assert from "node:assert/strict";
import type { LoadTransport } from "../bench/_link.ts";
import { formatResult, runLoad, type ScenarioName } from "../bench/load.ts";
import { HAVE_OPENSSL, makeCerts } from "./_broker_certs.ts";
import { startBroker } from "./_helpers.ts";

Deno.test({
  name: "load.ts runs fan-in and QoS 1 over TLS and WebSocket against Kite",
  ignore: !HAVE_OPENSSL,
  async fn(t) {
    await using certs = await makeCerts();
    const broker = await startBroker({
      listeners: [
        {
          protocol: "mqtts",
          port: 0,
          certFile: certs.serverCert,
          keyFile: certs.serverKey,
        },
        { protocol: "ws", port: 0 },
      ],
    });
    try {
      const runs: [LoadTransport, number][] = [
        [
          { kind: "tls", caCerts: [certs.caPem] },
          broker.listeners[1]!.addr.port,
        ],
        [{ kind: "ws", path: "/mqtt" }, broker.listeners[2]!.addr.port],
      ];
      for (const [transport, port] of runs) {
        for (const scenario of ["fanin", "qos1"] as ScenarioName[]) {
          await t.step(`${transport.kind} ${scenario}`, async () => {
            const r = await runLoad({
              port,
              scenario,
              transport,
              warmup: 0.1,
              duration: 0.5,
            });
            const info = formatResult(r);
            assert.equal(r.transport, transport.kind);
            assert.ok((r.deliveredPerSec ?? 0) > 0, info);
            assert.equal(r.duplicates, 0, info);
            if (scenario === "qos1") {
              assert.equal(r.lost, 0, info);
              assert.equal(r.unacked, 0, info);
            }
          });
        }
      }
    } finally {
      await broker.close();
    }
  },
});
