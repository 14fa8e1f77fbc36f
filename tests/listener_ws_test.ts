/**
 * `WebSocketListener` runs the shared `Listener` suite
 * (tests/listener_suite.ts) as `ws://` and as `wss://` (certificates made
 * by openssl at load time), dialed with the standard `WebSocket` class.
 */

import { WebSocketListener } from "../broker/listen/websocket.ts";
import { HAVE_OPENSSL, makeCerts } from "./_broker_certs.ts";
import { dialWebSocket } from "./_ws_dial.ts";
import { listenerSuite } from "./listener_suite.ts";

listenerSuite("WebSocketListener (ws)", async () => {
  const listener = await WebSocketListener.open({
    hostname: "127.0.0.1",
    port: 0,
  });
  return {
    listener,
    protocol: "ws",
    dial: () => dialWebSocket(`ws://127.0.0.1:${listener.addr.port}/mqtt`),
  };
});

if (!HAVE_OPENSSL) {
  Deno.test({
    name: "WebSocketListener (wss) suite (needs openssl)",
    ignore: true,
    fn() {},
  });
} else {
  const certs = await makeCerts();
  globalThis.addEventListener("unload", () => {
    Deno.removeSync(certs.dir, { recursive: true });
  });
  listenerSuite("WebSocketListener (wss)", async () => {
    const listener = await WebSocketListener.open({
      hostname: "127.0.0.1",
      port: 0,
      certFile: certs.serverCert,
      keyFile: certs.serverKey,
    });
    return {
      listener,
      protocol: "wss",
      dial: () =>
        dialWebSocket(`wss://127.0.0.1:${listener.addr.port}/mqtt`, {
          caCerts: [certs.caPem],
        }),
    };
  });
}
