// The Mosquitto test helper itself: a broker that cannot open a listener
// fails at start with its log, instead of passing the readiness check and
// resetting the first client (the cause of a flaky interop test: two
// listeners given one port).
import assert from "node:assert/strict";
import { HAVE_MOSQUITTO, startMosquitto } from "./_mosquitto.ts";

Deno.test({
  name: "startMosquitto() on a port in use fails at start with Mosquitto's log",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    using held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = (held.addr as Deno.NetAddr).port;
    await assert.rejects(
      startMosquitto({ port }),
      (e: Error) =>
        /exited at start[\s\S]*Address already in use/.test(e.message),
    );
  },
});

Deno.test({
  name: "startMosquitto() resolves only once every listener is open",
  ignore: !HAVE_MOSQUITTO,
  async fn() {
    using held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const taken = (held.addr as Deno.NetAddr).port;
    // The first listener opens, the second cannot: Mosquitto exits.
    await assert.rejects(
      startMosquitto({ extraConfig: `listener ${taken} 127.0.0.1` }),
      /Address already in use/,
    );
    await using m = await startMosquitto();
    assert.match(m.log(), / running$/m);
  },
});
